"""One bad log entry costs only itself: an item of `logs` that is not an object, a `started` out of range
in UTC, or an entry BSON cannot hold (a NUL in a key, a lone surrogate, an integer over 8 bytes, a
document over 16 MiB) is recorded in `Error` and skipped, while the rest of its page and window is
stored and alerted, and the window's run still succeeds."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from realm_alert_pipeline.constants import LOG_COLLECTION
from realm_alert_pipeline.core.windows import QueryBounds
from realm_alert_pipeline.ingest.extract import MALFORMED_ENTRY_CODE, extract_window
from realm_alert_pipeline.local.admin_api_emulator import DEMO_APP_ID, DEMO_GROUP_ID, Fault
from realm_alert_pipeline_tests.ingest.helpers import check_results, log_entry, materialization_metadata


def serve_one_page(emulator, entries: list) -> None:
    """The emulator answers the logs request with exactly this page (any JSON, as a broken server might)."""
    emulator.inject(
        Fault(
            kind="status",
            path="/logs",
            status=200,
            body=json.dumps({"logs": entries}),
            headers={"Content-Type": "application/json"},
            times=1,
        )
    )


def _with(window, **fields):
    """A FUNCTION error inside `window`, with `fields` set as given (even `started`)."""
    return {**log_entry(window.start + timedelta(minutes=4), kind="FUNCTION"), **fields}


BAD_ENTRIES = {
    "a number": lambda w: 42,
    "null": lambda w: None,
    "a string": lambda w: "6b18f1e4a3c91f0e7b37ae8b",
    "a list": lambda w: [{"_id": "6b18f1e4a3c91f0e7b37ae8b"}],
    "year 9999 with a negative offset": lambda w: _with(w, started="9999-12-31T23:30:00-01:00"),
    "year 1 with a positive offset": lambda w: _with(w, started="0001-01-01T00:30:00+01:00"),
    "a NUL byte in a key": lambda w: _with(w, **{"bad\u0000key": 1}),
    "a lone surrogate in the message": lambda w: _with(w, error="FunctionError: bad \ud83d char"),
    "a lone surrogate in the _id": lambda w: _with(w, _id="6b18f1e4a3c91f0e7b37ae8b\udc80"),
    "an integer over 8 bytes": lambda w: _with(w, status=2**70),
}


@pytest.mark.parametrize("make_bad", BAD_ENTRIES.values(), ids=BAD_ENTRIES.keys())
def test_a_bad_entry_over_http_is_recorded_and_the_rest_of_the_page_lands(
    runner, admin_api_emulator, window, make_bad
):
    good = [log_entry(window.start + timedelta(minutes=1, seconds=i), kind="DB_TRIGGER") for i in range(2)]
    late = log_entry(window.start + timedelta(minutes=6), kind="AUTH")
    serve_one_page(admin_api_emulator, [late, make_bad(window), *good])

    result = runner.run(window)

    assert result.success
    assert {d["_id"] for d in runner.logs.find()} == {e["_id"] for e in [late, *good]}
    errors = list(runner.errors.find())
    assert [(e["code"], e["step"], e["partition"]) for e in errors] == [
        (MALFORMED_ENTRY_CODE, "extract", window.partition_key)
    ]
    metadata = materialization_metadata(result, "app_services_error_logs")
    assert (metadata["entries_read"], metadata["new"], metadata["malformed"]) == (4, 3, 1)
    assert check_results(result) == {"stored_logs_match_read": True, "alert_log_ids_exist": True}
    # One alert for the AUTH error, one for the DB_TRIGGER pair.
    assert sorted(a["count"] for a in runner.alerts.find()) == [1, 2]


def test_an_unencodable_entry_is_named_in_error_without_its_contents(runner, admin_api_emulator, window):
    bad = _with(window, error="FunctionError: secret-ish payload \ud83d", **{"k\u0000": 1})
    serve_one_page(admin_api_emulator, [bad, log_entry(window.start + timedelta(minutes=2))])

    runner.run(window)

    error = runner.errors.find_one()
    assert error["entry_id"] == bad["_id"]
    assert bad["_id"] in error["message"] and "not storable as BSON (" in error["message"]
    assert "secret-ish payload" not in error["message"]


def test_entries_stored_before_count_as_already_seen_when_a_page_falls_back_to_one_by_one(db):
    now = datetime.now(UTC).replace(microsecond=0)
    bounds = QueryBounds(now - timedelta(minutes=20), now)
    page = [log_entry(now - timedelta(minutes=5, seconds=i)) for i in range(4)]
    problems = []

    def extract(pages):
        return extract_window(
            pages=pages,
            log_collection=db[LOG_COLLECTION],
            bounds=bounds,
            partition_key="2026-12-09-06:10",
            group_id=DEMO_GROUP_ID,
            app_id=DEMO_APP_ID,
            clock=lambda: now,
            on_malformed=problems.extend,
        )

    extract([page[:2]])
    unencodable = log_entry(now - timedelta(minutes=7), status=-(2**64))
    stats = extract([[*page, unencodable]])

    assert (stats.new, stats.already_seen, stats.malformed) == (2, 2, 1)
    assert (stats.distinct_read, stats.stored_in_bounds) == (4, 4)
    assert [p.entry_id for p in problems] == [unencodable["_id"]]
    assert "OverflowError" in problems[0].reason


def test_a_document_the_server_refuses_for_its_size_is_skipped_while_the_page_lands(db):
    now = datetime.now(UTC).replace(microsecond=0)
    bounds = QueryBounds(now - timedelta(minutes=20), now)
    good = [log_entry(now - timedelta(minutes=5, seconds=i)) for i in range(3)]
    huge = log_entry(now - timedelta(minutes=6), logs=["x" * (16 * 1024 * 1024)])
    problems = []

    stats = extract_window(
        pages=[[good[0], huge, *good[1:]]],
        log_collection=db[LOG_COLLECTION],
        bounds=bounds,
        partition_key="2026-12-09-06:10",
        group_id=DEMO_GROUP_ID,
        app_id=DEMO_APP_ID,
        clock=lambda: now,
        on_malformed=problems.extend,
    )

    assert (stats.new, stats.malformed, stats.distinct_read, stats.stored_in_bounds) == (3, 1, 3, 3)
    assert [p.entry_id for p in problems] == [huge["_id"]]
    assert "10334" in problems[0].reason or "DocumentTooLarge" in problems[0].reason
