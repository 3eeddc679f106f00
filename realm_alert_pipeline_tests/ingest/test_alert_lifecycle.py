"""Nobody is texted twice for one ongoing error, and nobody about last week's: an error that keeps
recurring updates its open alert until the realert interval has passed, then opens a new pending alert
that carries how many occurrences came after the last text; a backfill of old windows creates only
suppressed alerts."""

from datetime import UTC, datetime, timedelta

from realm_alert_pipeline.constants import ALERT_DISPATCHED
from realm_alert_pipeline.core.windows import window_containing
from realm_alert_pipeline_tests.ingest.helpers import (
    FakeClock,
    IngestRunner,
    log_entry,
    materialization_metadata,
    storm,
)


def run_window(runner, admin_api_emulator, window, occurrences: int):
    admin_api_emulator.add_logs(storm(window.start + timedelta(minutes=2), occurrences))
    runner.clock.now = window.end + timedelta(minutes=1)
    return runner.run(window)


def test_a_recurring_error_updates_its_alert_until_realert_then_opens_a_new_one(
    runner, admin_api_emulator, window
):
    """TEST_SETTINGS: realert after 30 minutes."""
    run_window(runner, admin_api_emulator, window, 4)
    (first,) = runner.alerts.find()
    assert (first["state"], first["count"]) == ("pending", 4)

    # Still pending (not texted yet): occurrences fold in, no second pending alert, nothing "since last".
    result = run_window(runner, admin_api_emulator, window.shifted(1), 3)
    assert materialization_metadata(result, "alerts")["alerts_updated"] == 1
    (first,) = runner.alerts.find()
    assert (first["count"], first["since_last_alert"]) == (7, 0)

    # The dispatch side texted it: later occurrences also count as "since the last text".
    runner.alerts.update_one({"_id": first["_id"]}, {"$set": {"state": ALERT_DISPATCHED}})
    run_window(runner, admin_api_emulator, window.shifted(2), 2)
    (first,) = runner.alerts.find()
    assert (first["count"], first["since_last_alert"], first["state"]) == (9, 2, ALERT_DISPATCHED)
    assert first["window"] == window.partition_key and first["created_at"] == window.end + timedelta(
        minutes=1
    )

    # 30 minutes after the first alert was created: a new pending alert.
    result = run_window(runner, admin_api_emulator, window.shifted(3), 5)
    assert runner.clock.now - first["created_at"] == timedelta(minutes=30)
    alerts = list(runner.alerts.find(sort=[("created_at", 1)]))
    assert [
        (a["state"], a["count"], a["since_last_alert"], a["covers_since_last_alert"]) for a in alerts
    ] == [
        (ALERT_DISPATCHED, 9, 2, 0),
        ("pending", 5, 0, 2),
    ]
    assert alerts[1]["window"] == window.shifted(3).partition_key
    assert alerts[0]["fingerprint"] == alerts[1]["fingerprint"]
    assert materialization_metadata(result, "alerts")["alerts_created"] == 1


def test_a_failed_alert_is_not_reopened_by_new_occurrences(runner, admin_api_emulator, window):
    run_window(runner, admin_api_emulator, window, 1)
    runner.alerts.update_one({}, {"$set": {"state": "failed"}})
    run_window(runner, admin_api_emulator, window.shifted(1), 1)
    assert sorted(a["state"] for a in runner.alerts.find()) == ["failed", "pending"]


def test_errors_older_than_the_age_limit_are_stored_and_counted_in_suppressed_alerts(
    runner, admin_api_emulator, window
):
    """A run that catches up late: entries already older than ALERT_MAX_AGE (60 min) are not texted."""
    old = storm(window.start + timedelta(minutes=1), 3)
    admin_api_emulator.add_logs(old + [log_entry(window.start + timedelta(minutes=2), kind="AUTH")])
    runner.clock.now = window.end + timedelta(minutes=90)

    result = runner.run(window)

    assert runner.logs.count_documents({}) == 4
    assert sorted((a["state"], a["count"]) for a in runner.alerts.find()) == [
        ("suppressed", 1),
        ("suppressed", 3),
    ]
    assert materialization_metadata(result, "alerts")["alerts_suppressed"] == 2
    # Old occurrences of the same error, seen later, fold into the suppressed alert.
    admin_api_emulator.add_logs(storm(window.start + timedelta(minutes=3), 2))
    runner.clock.advance(timedelta(minutes=5))
    runner.run(window)
    assert sorted((a["state"], a["count"]) for a in runner.alerts.find()) == [
        ("suppressed", 1),
        ("suppressed", 5),
    ]


def test_a_backfill_of_windows_from_three_days_ago_creates_only_suppressed_alerts(
    admin_api_emulator, mongo, instance
):
    now = datetime.now(UTC)
    first = window_containing(now - timedelta(days=3), 10)
    windows = [first.shifted(i) for i in range(4)]
    entries = []
    for i, window in enumerate(windows):
        entries += storm(window.start + timedelta(minutes=1), 3 + i)
        entries.append(log_entry(window.start + timedelta(minutes=6), kind="TRIGGER_FAILURE"))
    admin_api_emulator.add_logs(entries)
    runner = IngestRunner(admin_api_emulator, mongo, instance, FakeClock(now))

    for window in windows:
        assert runner.run(window).success

    assert runner.logs.count_documents({}) == len(entries)
    alerts = list(runner.alerts.find())
    assert {a["state"] for a in alerts} == {"suppressed"}
    assert sorted(a["count"] for a in alerts) == [4, 3 + 4 + 5 + 6]
    assert sum(a["count"] for a in alerts) == len(entries)
