"""Reading a window of App Services logs over HTTP: the API pages backwards (newest first), ties at a page boundary
use nextSkip (even across a run of 150 entries with one timestamp), nextEndDate goes back verbatim, start_date is
exclusive and end_date inclusive, `errors_only` filters by presence so it is never sent as false, and any
timezone is sent as the same instant in UTC. Every matching entry must come back exactly once, in order."""

from datetime import timedelta, timezone

import pytest

from realm_alert_pipeline.core.timeutil import format_api_datetime, format_go_datetime
from realm_alert_pipeline_tests.resources.admin_api_helpers import (
    log_entry,
    logs_requests,
    make_resource,
    newest_first,
    recent,
)


@pytest.fixture
def window(admin_api_emulator):
    """(start, end, expected errors newest first) over 343 errors plus decoys; page boundaries fall on ties."""
    end = recent(30)
    start = end - timedelta(hours=1)
    run_at = end - timedelta(minutes=15) + timedelta(milliseconds=500)  # served as "...:SS.5Z"
    tie_at = run_at - timedelta(seconds=441)
    errors = [log_entry(end - timedelta(seconds=10 * k)) for k in range(60)]  # k=0: exactly on end
    errors += [log_entry(run_at) for _ in range(150)]  # positions 60..209: boundaries 100 and 200
    errors += [log_entry(run_at - timedelta(seconds=5 * k)) for k in range(1, 88)]  # 210..296
    errors += [log_entry(tie_at) for _ in range(6)]  # 297..302: boundary 300
    errors += [log_entry(tie_at - timedelta(seconds=3 * k)) for k in range(1, 41)]  # 303..342
    decoys = [log_entry(run_at, error=False) for _ in range(20)]
    decoys += [log_entry(tie_at, error=False) for _ in range(3)]
    decoys += [log_entry(end - timedelta(seconds=10 * k), error=False) for k in range(0, 60, 7)]
    decoys += [log_entry(start) for _ in range(3)]  # exactly on start: excluded
    decoys += [log_entry(start - timedelta(seconds=s)) for s in (1, 60)]
    decoys += [log_entry(end + timedelta(milliseconds=ms)) for ms in (1, 1000)]
    admin_api_emulator.add_logs(decoys + errors)
    return start, end, run_at, tie_at, newest_first(errors)


def test_window_across_four_pages_returns_every_error_once_in_order(admin_api_emulator, mongo, window):
    start, end, run_at, tie_at, expected = window
    resource = make_resource(admin_api_emulator, mongo)

    pages = list(resource.iter_log_pages(start, end, errors_only=True))

    assert [len(page) for page in pages] == [100, 100, 100, 43]
    got = [entry["_id"] for page in pages for entry in page]
    assert got == [entry["_id"] for entry in expected]
    assert all(entry.get("error") for page in pages for entry in page)

    queries = [r.query for r in logs_requests(admin_api_emulator)]
    assert len(queries) == 4
    for query in queries:
        assert query["start_date"] == [format_api_datetime(start)]
        assert query["errors_only"] == ["true"]
        assert query["limit"] == ["100"]
        assert "type" not in query
    assert queries[0]["end_date"] == [format_api_datetime(end)]
    assert "skip" not in queries[0]
    # nextEndDate is sent back as the server wrote it (Go-trimmed ".5Z", not our ".500Z").
    assert [q["end_date"] for q in queries[1:]] == [[format_go_datetime(run_at)]] * 2 + [
        [format_go_datetime(tie_at)]
    ]
    assert format_go_datetime(run_at).endswith(".5Z")
    assert [q["skip"] for q in queries[1:]] == [["40"], ["140"], ["3"]]


def test_iter_error_logs_streams_one_page_per_request(admin_api_emulator, mongo, window):
    start, end, _, _, expected = window
    resource = make_resource(admin_api_emulator, mongo)

    entries = resource.iter_error_logs(start, end)
    assert logs_requests(admin_api_emulator) == []  # nothing fetched until asked
    first = [next(entries) for _ in range(100)]
    assert len(logs_requests(admin_api_emulator)) == 1
    rest = list(entries)

    assert [e["_id"] for e in first + rest] == [e["_id"] for e in expected]
    assert len(logs_requests(admin_api_emulator)) == 4


def test_all_entries_when_errors_are_not_wanted_and_window_bounds(admin_api_emulator, mongo):
    end = recent(30)
    start = end - timedelta(minutes=10)
    inside = [
        log_entry(end),  # on end_date: included
        log_entry(end, error=False),
        log_entry(end - timedelta(minutes=5), error=False),
        log_entry(start + timedelta(milliseconds=1)),
    ]
    outside = [log_entry(start), log_entry(start, error=False), log_entry(end + timedelta(milliseconds=1))]
    admin_api_emulator.add_logs(inside + outside)
    resource = make_resource(admin_api_emulator, mongo)

    everything = [e["_id"] for page in resource.iter_log_pages(start, end, errors_only=False) for e in page]
    errors = [e["_id"] for e in resource.iter_error_logs(start, end)]

    assert everything == [e["_id"] for e in newest_first(inside)]
    assert errors == [e["_id"] for e in newest_first(inside) if e.get("error")]
    queries = [r.query for r in logs_requests(admin_api_emulator)]
    assert "errors_only" not in queries[0]
    assert queries[1]["errors_only"] == ["true"]
    assert all(q.get("errors_only", ["true"]) == ["true"] for q in queries)


def test_types_are_sent_comma_joined(admin_api_emulator, mongo):
    end = recent(30)
    start = end - timedelta(minutes=10)
    wanted = [
        log_entry(end - timedelta(seconds=1), kind="DB_TRIGGER"),
        log_entry(end, kind="SCHEDULED_TRIGGER"),
    ]
    admin_api_emulator.add_logs(wanted + [log_entry(end, kind="TRIGGER_FAILURE")])
    resource = make_resource(admin_api_emulator, mongo)

    pages = list(resource.iter_log_pages(start, end, types=["DB_TRIGGER", "SCHEDULED_TRIGGER"]))

    assert [e["_id"] for e in pages[0]] == [e["_id"] for e in newest_first(wanted)]
    assert logs_requests(admin_api_emulator)[0].query["type"] == ["DB_TRIGGER,SCHEDULED_TRIGGER"]


def test_end_with_an_offset_reaches_the_server_as_the_same_instant(admin_api_emulator, mongo):
    end = recent(30)
    start = end - timedelta(minutes=10)
    on_end = log_entry(end)
    admin_api_emulator.add_logs([on_end, log_entry(end + timedelta(milliseconds=1))])
    resource = make_resource(admin_api_emulator, mongo)
    plus_two = timezone(timedelta(hours=2))

    got = [e["_id"] for e in resource.iter_error_logs(start.astimezone(plus_two), end.astimezone(plus_two))]

    assert got == [on_end["_id"]]
    query = logs_requests(admin_api_emulator)[0].query
    assert query["end_date"] == [format_api_datetime(end)]
    assert query["end_date"][0].endswith("Z")
    assert query["start_date"] == [format_api_datetime(start)]


def test_naive_datetimes_are_rejected_before_any_request(admin_api_emulator, mongo):
    resource = make_resource(admin_api_emulator, mongo)
    end = recent(30)

    with pytest.raises(ValueError, match="is a naive datetime: give a timezone"):
        resource.iter_error_logs(end.replace(tzinfo=None) - timedelta(minutes=10), end.replace(tzinfo=None))
    with pytest.raises(ValueError, match="empty window"):
        resource.iter_log_pages(end, end - timedelta(minutes=1))
    assert admin_api_emulator.requests == []


def test_a_late_entry_written_while_paging_is_not_returned_twice(admin_api_emulator, mongo):
    end = recent(30)
    start = end - timedelta(hours=1)
    tied_at = end - timedelta(minutes=1)
    entries = [log_entry(tied_at) for _ in range(150)]
    admin_api_emulator.add_logs(entries)
    resource = make_resource(admin_api_emulator, mongo)

    pages = resource.iter_log_pages(start, end)
    first = next(pages)
    # Written late with the same `started` and a higher `_id`, it sorts first: the server's page 2
    # (end_date=T, skip=100) now begins with page 1's last entry again.
    admin_api_emulator.add_logs([log_entry(tied_at)])
    second = next(pages)

    ids = [e["_id"] for e in first + second]
    assert logs_requests(admin_api_emulator)[1].query["skip"] == ["100"]
    assert len(ids) == len(set(ids)) == 150
    assert ids == [e["_id"] for e in newest_first(entries)]


def test_empty_window_yields_one_empty_page(admin_api_emulator, mongo):
    end = recent(30)
    resource = make_resource(admin_api_emulator, mongo)

    assert list(resource.iter_log_pages(end - timedelta(minutes=10), end)) == [[]]
