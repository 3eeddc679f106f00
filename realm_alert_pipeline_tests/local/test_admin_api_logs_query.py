"""The emulator's logs query without HTTP: the paging arithmetic the real Admin API implies (specs 5.1-5.5).

Newest first with `_id` as tie-break; `nextSkip` counts every already-read entry at the next entry's
millisecond (skipped prefix included), so runs of equal timestamps longer than a page still page; both
paging keys are absent on the last page; parameters are parsed strictly, as the emulator answers 400.
"""

from __future__ import annotations

import json

import pytest

from realm_alert_pipeline.local.admin_api_logs_query import (
    LogQuery,
    LogQueryError,
    LogStore,
    parse_log_query,
)


def make_store(started_by_id: dict[int, str]) -> LogStore:
    return LogStore({"_id": f"{n:024x}", "started": s} for n, s in started_by_id.items())


def run(store: LogStore, **query) -> dict:
    return json.loads(store.query(LogQuery(**query)))


def numbers(page: dict) -> list[int]:
    return [int(log["_id"], 16) for log in page["logs"]]


A, B, C = "2026-12-01T00:00:03Z", "2026-12-01T00:00:02.5Z", "2026-12-01T00:00:01Z"


@pytest.mark.parametrize(
    ("skip", "limit", "expected_ids", "next_end", "next_skip"),
    [
        (0, 10, [6, 5, 4, 3, 2, 1], None, None),
        (0, 1, [6], B, None),  # next entry (5) has another timestamp than everything read
        (0, 2, [6, 5], B, 1),  # 5 was read at B; 4 is next at B
        (0, 3, [6, 5, 4], B, 2),
        (0, 4, [6, 5, 4, 3], C, None),
        (1, 1, [5], B, 1),  # the skipped prefix counts
        (1, 2, [5, 4], B, 2),
        (2, 2, [4, 3], C, None),
        (5, 5, [1], None, None),
        (6, 5, [], None, None),
    ],
)
def test_paging_keys(skip, limit, expected_ids, next_end, next_skip):
    store = make_store({6: A, 5: B, 4: B, 3: B, 2: C, 1: C})

    page = run(store, skip=skip, limit=limit)

    assert numbers(page) == expected_ids
    assert page.get("nextEndDate") == next_end
    assert page.get("nextSkip") == next_skip
    assert ("nextEndDate" in page) == (next_end is not None)  # absent, never null


@pytest.mark.parametrize(
    ("start_ms", "end_ms", "expected_ids"),
    [
        (None, None, [3, 2, 1]),
        (1000, None, [3, 2]),  # 00:00:01 is the start itself: exclusive
        (None, 1000, [1]),  # inclusive end
        (999, 1001, [1]),
        (2500, 3000, [3]),
    ],
)
def test_date_bounds(start_ms, end_ms, expected_ids):
    base = 1_796_083_200_000  # 2026-12-01T00:00:00Z
    store = make_store({3: A, 2: B, 1: C})

    page = run(
        store,
        start_ms=None if start_ms is None else base + start_ms,
        end_ms=None if end_ms is None else base + end_ms,
    )

    assert numbers(page) == expected_ids


def test_retention_cutoff_hides_older_entries():
    store = make_store({3: A, 2: B, 1: C})

    assert numbers(json.loads(store.query(LogQuery(), not_before_ms=1_796_083_202_500))) == [3, 2]
    assert store.count_older_than(1_796_083_202_500) == 1


def test_adding_an_existing_id_replaces_it():
    store = make_store({1: C, 2: B})
    store.add([{"_id": f"{1:024x}", "started": A, "note": "rewritten"}])

    page = run(store)

    assert numbers(page) == [1, 2]
    assert page["logs"][0]["note"] == "rewritten"
    assert len(store) == 2


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, LogQuery()),
        ({"errors_only": ["false"]}, LogQuery(errors_only=True)),
        (
            {"type": ["AUTH,API_KEY", "DB_TRIGGER"]},
            LogQuery(types=frozenset({"AUTH", "API_KEY", "DB_TRIGGER"})),
        ),
        ({"limit": ["5", "50"], "skip": ["+3"]}, LogQuery(limit=5, skip=3)),
        ({"end_date": ["2026-12-01T01:00:00+01:00"]}, LogQuery(end_ms=1_796_083_200_000)),
        ({"start_date": ["2026-12-01"]}, LogQuery(start_ms=1_796_083_200_000)),
        ({"start_date": ["2026-12-01T00:00:00.0019Z"]}, LogQuery(start_ms=1_796_083_200_001)),
        ({"co_id": ["abc"], "user_id": ["u"]}, LogQuery(co_id="abc", user_id="u")),
    ],
)
def test_parse_log_query(query, expected):
    assert parse_log_query(query) == expected


@pytest.mark.parametrize(
    "query",
    [
        {"type": ["FOO"]},
        {"type": [""]},
        {"type": ["AUTH, API_KEY"]},
        {"limit": ["0"]},
        {"limit": ["101"]},
        {"limit": [" 5"]},
        {"skip": ["-1"]},
        {"skip": ["٣"]},
        {"end_date": ["2026-12-01T01:00:00 01:00"]},
        {"end_date": ["2026-12-01T01:00:00Z "]},
        {"start_date": ["1733011200"]},
    ],
)
def test_parse_log_query_rejects(query):
    with pytest.raises(LogQueryError):
        parse_log_query(query)
