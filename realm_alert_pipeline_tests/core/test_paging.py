"""The Admin API pages backwards in time: ties at a page boundary use nextSkip, nextEndDate goes back verbatim,
every other filter stays fixed, the last page has no nextEndDate, and a server that repeats a cursor or
stalls must not keep the client paging forever. `errors_only` filters by its mere presence."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from realm_alert_pipeline.core.paging import (
    PagingError,
    PagingGuard,
    build_log_query,
    drop_repeated,
    entry_ids,
    next_page_params,
    page_entries,
)

T0 = datetime(2026, 12, 3, 11, 0, tzinfo=UTC)
T1 = datetime(2026, 12, 3, 11, 10, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"start": T0, "end": T1, "errors_only": True},
            {
                "start_date": "2026-12-03T11:00:00.000Z",
                "end_date": "2026-12-03T11:10:00.000Z",
                "errors_only": "true",
                "limit": "100",
            },
        ),
        ({"start": None, "end": None}, {"limit": "100"}),
        (
            # An offset is converted to the same instant in UTC; sub-millisecond digits are cut.
            {"start": None, "end": datetime(2026, 12, 3, 13, 10, 0, 123999, tzinfo=PLUS_TWO)},
            {"end_date": "2026-12-03T11:10:00.123Z", "limit": "100"},
        ),
        (
            {"start": T0, "end": None, "types": ["DB_TRIGGER", "SCHEDULED_TRIGGER"], "limit": 5},
            {"start_date": "2026-12-03T11:00:00.000Z", "type": "DB_TRIGGER,SCHEDULED_TRIGGER", "limit": "5"},
        ),
        (
            {"start": None, "end": None, "user_id": "u1", "co_id": "c1", "types": "AUTH"},
            {"user_id": "u1", "co_id": "c1", "type": "AUTH", "limit": "100"},
        ),
    ],
)
def test_build_log_query(kwargs, expected):
    start, end = kwargs.pop("start"), kwargs.pop("end")
    assert build_log_query(start, end, **kwargs) == expected


@pytest.mark.parametrize("errors_only", [False, None, 0])
def test_errors_only_is_left_out_rather_than_sent_false(errors_only):
    params = build_log_query(T0, T1, errors_only=errors_only)
    assert "errors_only" not in params


@pytest.mark.parametrize(
    ("start", "end", "kwargs", "message"),
    [
        (datetime(2026, 12, 3, 11, 0), T1, {}, "start=2026-12-03T11:00:00 is a naive datetime"),
        (T0, datetime(2026, 12, 3, 11, 10), {}, "end=2026-12-03T11:10:00 is a naive datetime"),
        (T1, T0, {}, "empty window"),
        (T0, T0, {}, "empty window"),
        (T0, T1, {"limit": 101}, "limit=101 is outside 1..100"),
        (T0, T1, {"limit": 0}, "limit=0 is outside 1..100"),
        (T0, T1, {"types": ["DB_TRIGGER,AUTH"]}, "invalid log type"),
        (T0, T1, {"types": [""]}, "invalid log type"),
    ],
)
def test_build_log_query_rejects_bad_input(start, end, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_log_query(start, end, **kwargs)


BASE = {"start_date": "2026-12-03T11:00:00.000Z", "errors_only": "true", "type": "DB_TRIGGER", "limit": "100"}


@pytest.mark.parametrize(
    ("params", "body", "expected"),
    [
        # Last page: nextEndDate absent (or null, which must not loop either).
        (BASE, {"logs": []}, None),
        (BASE, {"logs": [{}], "nextEndDate": None}, None),
        # nextEndDate verbatim (Go-trimmed fraction kept as sent), no skip.
        (
            BASE,
            {"logs": [{}], "nextEndDate": "2026-12-03T11:05:08.5Z"},
            {**BASE, "end_date": "2026-12-03T11:05:08.5Z"},
        ),
        # Tie at the boundary: skip added.
        (
            {**BASE, "end_date": "2026-12-03T11:10:00.000Z"},
            {"logs": [{}], "nextEndDate": "2026-12-03T11:05:08Z", "nextSkip": 2},
            {**BASE, "end_date": "2026-12-03T11:05:08Z", "skip": "2"},
        ),
        # A previous skip is dropped when the next page needs none.
        (
            {**BASE, "end_date": "2026-12-03T11:05:08Z", "skip": "2"},
            {"logs": [{}], "nextEndDate": "2026-12-03T11:04:00Z"},
            {**BASE, "end_date": "2026-12-03T11:04:00Z"},
        ),
        # nextSkip 0 is the same as no skip.
        (
            BASE,
            {"logs": [{}], "nextEndDate": "2026-12-03T11:04:00Z", "nextSkip": 0},
            {**BASE, "end_date": "2026-12-03T11:04:00Z"},
        ),
    ],
)
def test_next_page_params(params, body, expected):
    assert next_page_params(params, body) == expected


def test_next_page_params_leaves_its_input_alone():
    params = dict(BASE)
    next_page_params(params, {"logs": [{}], "nextEndDate": "2026-12-03T11:04:00Z", "nextSkip": 3})
    assert params == BASE


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"nextEndDate": 17}, "nextEndDate 17 is not a timestamp string"),
        ({"nextEndDate": ""}, "is not a timestamp string"),
        (
            {"nextEndDate": "2026-12-03T11:04:00Z", "nextSkip": "2"},
            "nextSkip '2' is not a non-negative integer",
        ),
        ({"nextEndDate": "2026-12-03T11:04:00Z", "nextSkip": -1}, "nextSkip -1"),
        ({"nextEndDate": "2026-12-03T11:04:00Z", "nextSkip": True}, "nextSkip True"),
    ],
)
def test_next_page_params_rejects_malformed_cursor(body, message):
    with pytest.raises(PagingError, match=message):
        next_page_params(BASE, body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [({}, []), ({"logs": None}, []), ({"logs": []}, []), ({"logs": [{"_id": "a"}]}, [{"_id": "a"}])],
)
def test_page_entries_accepts_missing_or_null_logs(body, expected):
    assert page_entries(body) == expected


@pytest.mark.parametrize(
    "logs",
    [
        [{"_id": "a"}, 3, {"_id": "b"}],
        [None, "6b18f1e4a3c91f0e7b37ae8b", ["x"], {"_id": "c"}],
        [42],
    ],
)
def test_page_entries_pass_items_that_are_not_objects_on_for_the_caller_to_report(logs):
    # One bad item must not cost the page: the extract step records it as malformed and stores the rest.
    assert page_entries({"logs": logs}) == logs


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"logs": {"_id": "a"}}, "'logs' is a dict"),
        ({"logs": "x"}, "'logs' is a str"),
        ({"logs": 7}, "'logs' is a int"),
    ],
)
def test_page_entries_rejects_other_shapes(body, message):
    with pytest.raises(PagingError, match=message):
        page_entries(body)


def _walk(first: dict, cursors: list[tuple[str | None, int | None]]) -> PagingGuard:
    """Feed the guard a sequence of server answers, each one page with one entry."""
    guard = PagingGuard(first)
    params = first
    for next_end, next_skip in cursors:
        body = {"logs": [{"_id": "x"}]}
        if next_end is not None:
            body["nextEndDate"] = next_end
        if next_skip is not None:
            body["nextSkip"] = next_skip
        following = next_page_params(params, body)
        guard.check(body["logs"], following)
        if following is None:
            break
        params = following
    return guard


@pytest.mark.parametrize(
    "cursors",
    [
        [(None, None)],
        [("2026-12-03T11:05:00Z", None), ("2026-12-03T11:04:00Z", None), (None, None)],
        # A run of identical timestamps: same nextEndDate, growing nextSkip.
        [
            ("2026-12-03T11:05:00Z", 100),
            ("2026-12-03T11:05:00Z", 200),
            ("2026-12-03T11:04:59.9Z", None),
            (None, None),
        ],
        # Same instant written differently still compares as the same instant.
        [("2026-12-03T11:05:00Z", 100), ("2026-12-03T11:05:00.000Z", 200), (None, None)],
    ],
)
def test_guard_accepts_cursors_that_move_back(cursors):
    guard = _walk({**BASE, "end_date": "2026-12-03T11:10:00.000Z"}, cursors)
    assert guard.pages == len(cursors)


@pytest.mark.parametrize(
    ("cursors", "message"),
    [
        # The same cursor twice.
        ([("2026-12-03T11:05:00Z", 2), ("2026-12-03T11:05:00Z", 2)], "repeats a page cursor"),
        ([("2026-12-03T11:05:00Z", None), ("2026-12-03T11:05:00Z", None)], "repeats a page cursor"),
        # Skip going backwards at the same timestamp (a cycle).
        ([("2026-12-03T11:05:00Z", 200), ("2026-12-03T11:05:00Z", 100)], "repeats a page cursor"),
        # Pointing forward in time.
        ([("2026-12-03T11:05:00Z", None), ("2026-12-03T11:06:00Z", None)], "repeats a page cursor"),
        # Beyond the requested end.
        ([("2026-12-03T11:11:00Z", None)], "repeats a page cursor"),
        # A cursor equal to the first request (end_date itself, skip 0).
        ([("2026-12-03T11:10:00Z", None)], "repeats a page cursor"),
        ([("yesterday", None)], "not an ISO 8601 timestamp"),
    ],
)
def test_guard_stops_a_server_that_would_loop(cursors, message):
    with pytest.raises(PagingError, match=message):
        _walk({**BASE, "end_date": "2026-12-03T11:10:00.000Z"}, cursors)


def test_guard_without_end_date_accepts_any_first_cursor():
    assert _walk(BASE, [("2030-01-01T00:00:00Z", None), (None, None)]).pages == 2


def test_guard_rejects_an_empty_page_that_announces_another():
    guard = PagingGuard(BASE)
    following = next_page_params(BASE, {"logs": [], "nextEndDate": "2026-12-03T11:05:00Z"})
    with pytest.raises(PagingError, match="page 1 .* is empty but announces a next page"):
        guard.check([], following)


@pytest.mark.parametrize(
    ("entries", "previous", "expected_ids"),
    [
        ([{"_id": "a"}, {"_id": "b"}], set(), ["a", "b"]),
        ([{"_id": "c"}, {"_id": "d"}], {"c"}, ["d"]),
        ([{"no_id": 1}, {"_id": {"$oid": "x"}}], {"x"}, [None, {"$oid": "x"}]),
        ([{"_id": "a"}, 7, None, "a", {"_id": "b"}], {"a"}, [7, None, "a", "b"]),
    ],
)
def test_drop_repeated(entries, previous, expected_ids):
    kept = drop_repeated(entries, previous)
    assert [entry.get("_id") if isinstance(entry, dict) else entry for entry in kept] == expected_ids


def test_entry_ids_ignores_non_string_ids_and_items_that_are_not_objects():
    assert entry_ids([{"_id": "a"}, {"_id": 5}, {}, 3, None, "b", ["c"]]) == {"a"}
