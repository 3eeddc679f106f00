"""The local default's logs look like a real App Services app's: every log type of the sample file, a trigger
failing every 15 minutes, bursts with timestamp ties, a failure with its error handler, late entries, and
the same entries for the same moment in every session (as the real API would return them)."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from realm_alert_pipeline.core.timeutil import parse_api_datetime
from realm_alert_pipeline.local.admin_api_emulator import DEMO_APP_ID, DEMO_GROUP_ID
from realm_alert_pipeline.local.sample_logs import generate_sample_logs, load_sample_templates

NOW = datetime(2026, 12, 3, 16, 47, 12, tzinfo=UTC)


def _generate(start=NOW - timedelta(minutes=70), end=NOW):
    return generate_sample_logs(start, end, group_id=DEMO_GROUP_ID, app_id=DEMO_APP_ID)


def test_seventy_minutes_hold_every_log_type_of_the_sample_with_errors_and_successes():
    entries = _generate().entries
    assert {e["type"] for e in entries} == {t["type"] for t in load_sample_templates()}
    assert sum(bool(e.get("error")) for e in entries) > sum(not e.get("error") for e in entries) > 0


def test_entries_are_newest_first_within_the_range_and_belong_to_the_app():
    entries = _generate().entries
    started = [parse_api_datetime(e["started"]) for e in entries]
    assert started == sorted(started, reverse=True)
    assert NOW - timedelta(minutes=70) <= min(started) and max(started) < NOW
    assert {(e["group_id"], e["app_id"]) for e in entries} == {(DEMO_GROUP_ID, DEMO_APP_ID)}


def test_ids_carry_the_start_time_and_are_unique():
    entries = _generate().entries
    assert len({e["_id"] for e in entries}) == len(entries)
    for entry in entries:
        assert int(entry["_id"][:8], 16) == int(parse_api_datetime(entry["started"]).timestamp())
        assert entry["co_id"] < entry["_id"]


def test_a_scheduled_trigger_fails_every_quarter_hour():
    failing = [
        parse_api_datetime(e["started"])
        for e in _generate(NOW - timedelta(hours=2), NOW).entries
        if e.get("event_subscription_name") == "getUnpausedClustersMetrics"
    ]
    assert len(failing) == 8
    assert {moment.minute for moment in failing} == {0, 15, 30, 45}


def test_bursts_have_timestamp_ties_among_errors_and_between_an_error_and_a_success():
    entries = _generate().entries
    by_started = Counter(e["started"] for e in entries if e["type"] == "DB_TRIGGER")
    tied = [started for started, count in by_started.items() if count > 1]
    assert len(tied) >= 2
    mixed = [s for s in tied if {bool(e.get("error")) for e in entries if e["started"] == s} == {True, False}]
    assert mixed


def test_the_error_handler_points_at_its_trigger_failure():
    entries = _generate().entries
    failures = {e["co_id"] for e in entries if e["type"] == "TRIGGER_FAILURE"}
    handlers = [e for e in entries if e["type"] == "TRIGGER_ERROR_HANDLER"]
    assert handlers and all(h["parent_co_id"] in failures for h in handlers)


def test_late_entries_start_inside_the_range_and_are_not_served_from_the_start():
    sample = _generate()
    assert sample.late_entries
    served = {e["_id"] for e in sample.entries}
    for entry in sample.late_entries:
        assert entry["_id"] not in served
        assert NOW - timedelta(minutes=70) <= parse_api_datetime(entry["started"]) < NOW


@pytest.mark.parametrize("shift", [timedelta(minutes=5), timedelta(minutes=37), timedelta(hours=3)])
def test_two_sessions_generate_the_same_entries_where_their_ranges_overlap(shift):
    first = _generate(NOW - timedelta(hours=4), NOW)
    second = _generate(NOW - timedelta(hours=4) + shift, NOW + shift)
    overlap_start = NOW - timedelta(hours=4) + shift

    def in_overlap(sample):
        return {e["_id"]: e for e in sample.entries if parse_api_datetime(e["started"]) >= overlap_start}

    assert in_overlap(first) == {
        key: entry for key, entry in in_overlap(second).items() if parse_api_datetime(entry["started"]) < NOW
    }
