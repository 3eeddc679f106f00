"""An Admin API outage in the middle of a window fails the run visibly, leaves an `Error` document that
holds no key or token, and a retry of the run completes the window without duplicates or lost alerts;
an outage longer than the read overlap loses nothing either, because the schedule catches up the
windows whose runs failed."""

from datetime import timedelta

import dagster as dg

from realm_alert_pipeline.constants import CONTROL_COLLECTION, SCHEDULE_NAME_TAG
from realm_alert_pipeline.core.fingerprint import entry_fingerprint
from realm_alert_pipeline.ingest.schedule import SCHEDULE_NAME
from realm_alert_pipeline.local.admin_api_emulator import (
    DEMO_APP_ID,
    DEMO_PRIVATE_KEY,
    DEMO_PUBLIC_KEY,
    Fault,
)
from realm_alert_pipeline_tests.ingest.helpers import (
    FakeClock,
    IngestRunner,
    log_entry,
    materialization_metadata,
    past_window,
    storm,
)


def test_a_503_after_the_first_page_fails_the_run_and_a_retry_completes_the_window(
    admin_api_emulator, mongo, instance, window, clock
):
    runner = IngestRunner(admin_api_emulator, mongo, instance, clock, max_attempts=2)
    entries = storm(window.start + timedelta(seconds=10), 230, spacing=timedelta(seconds=2)) + [
        log_entry(window.start + timedelta(minutes=1), kind="TRIGGER_FAILURE")
    ]
    admin_api_emulator.add_logs(entries)
    html = "<html><body><h1>503 Service Unavailable</h1>upstream connect error</body></html>"
    admin_api_emulator.inject(
        Fault(
            kind="status",
            path="/logs",
            status=503,
            body=html,
            headers={"Content-Type": "text/html"},
            after=1,
            times=2,
        )
    )

    failed = runner.run(window, raise_on_error=False)

    assert not failed.success
    assert runner.logs.count_documents({}) == 100  # the first page landed before the outage
    assert runner.alerts.count_documents({}) == 0  # detect did not run on a half-read window
    errors = list(runner.errors.find())
    assert len(errors) == 1
    error = errors[0]
    assert (error["code"], error["http_status"], error["step"]) == ("admin_api_error", 503, "extract")
    assert (error["run_id"], error["partition"]) == (failed.run_id, window.partition_key)
    assert "503" in error["message"] and len(error["message"]) <= 500
    failure = next(e for e in failed.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert failure.step_key == "app_services_error_logs"
    assert "503" in failure.step_failure_data.error.message

    control = runner.db[CONTROL_COLLECTION].find_one({})
    secrets = [DEMO_PUBLIC_KEY, DEMO_PRIVATE_KEY, control["access_token"], control["refresh_token"]]
    stored_errors = [str(doc) for doc in runner.errors.find()]
    event_log = [str(record) for record in instance.all_logs(failed.run_id)]
    for secret in secrets:
        assert all(secret not in text for text in stored_errors)
        assert all(secret not in text for text in event_log)

    retried = runner.run(window)

    assert retried.success
    assert runner.logs.count_documents({}) == len(entries)
    extract = materialization_metadata(retried, "app_services_error_logs")
    assert (extract["new"], extract["already_seen"]) == (len(entries) - 100, 100)
    storm_alert = runner.alerts.find_one({"fingerprint": entry_fingerprint(entries[0], DEMO_APP_ID)})
    assert storm_alert["count"] == 230
    assert runner.alerts.count_documents({}) == 2


def test_rejected_api_keys_fail_the_session_step_with_a_clear_error(
    admin_api_emulator, mongo, instance, window, clock
):
    runner = IngestRunner(admin_api_emulator, mongo, instance, clock, private_key="not-the-private-key")

    result = runner.run(window, raise_on_error=False)

    assert not result.success
    error = runner.errors.find_one()
    assert (error["code"], error["step"], error["http_status"]) == ("admin_api_config_error", "session", 401)
    assert "ATLAS_PRIVATE_KEY" in error["message"]
    assert "not-the-private-key" not in str(error)
    assert all("not-the-private-key" not in str(r) for r in instance.all_logs(result.run_id))


def test_a_20_minute_outage_loses_no_window_because_the_schedule_catches_up(admin_api_emulator, mongo):
    first = past_window(0.75)
    windows = [first, first.shifted(1), first.shifted(2)]
    kinds = ("SCHEDULED_TRIGGER", "DB_TRIGGER", "TRIGGER_FAILURE")
    errors = [log_entry(w.start + timedelta(minutes=2), kind=k) for w, k in zip(windows, kinds, strict=True)]
    admin_api_emulator.add_logs(errors)
    clock = FakeClock(first.end + timedelta(minutes=1))
    scheduled = {SCHEDULE_NAME_TAG: SCHEDULE_NAME}  # the runs as ingest_schedule launches them
    with dg.instance_for_test() as instance:
        runner = IngestRunner(admin_api_emulator, mongo, instance, clock, max_attempts=1)
        repository = runner.defs.definitions(runner.resources).get_repository_def()

        def catch_ups(tick):
            context = dg.build_schedule_context(
                instance=instance, scheduled_execution_time=tick, repository_def=repository
            )
            return [
                r
                for r in runner.defs.schedule.evaluate_tick(context).run_requests
                if ":catch-up:" in r.run_key
            ]

        for window in windows[:2]:  # the Admin API is down for the first two windows' runs
            outage = Fault(kind="status", path="/logs", status=503, body="<html>down</html>", times=100)
            admin_api_emulator.inject(outage)
            assert not runner.run(window, raise_on_error=False, tags=scheduled).success
            admin_api_emulator.clear_faults()
            clock.advance(timedelta(minutes=10))
        assert runner.run(windows[2], tags=scheduled).success
        assert runner.logs.find_one({"_id": errors[0]["_id"]}) is None  # the overlap reaches one window back

        tick = windows[2].end + timedelta(minutes=1)
        requests = catch_ups(tick)
        assert [r.partition_key for r in requests] == [w.partition_key for w in windows[:2]]
        by_key = {w.partition_key: w for w in windows}
        for request in requests:
            assert runner.run(by_key[request.partition_key], tags=scheduled).success

        assert {e["_id"] for e in errors} <= {d["_id"] for d in runner.logs.find()}
        alerts = list(runner.alerts.find())
        assert sorted(log_id for alert in alerts for log_id in alert["log_ids"]) == sorted(
            e["_id"] for e in errors
        )
        assert [alert["count"] for alert in alerts] == [1, 1, 1]
        assert {alert["state"] for alert in alerts} == {"pending"}  # still young enough to text
        assert catch_ups(tick) == []  # every window is stored now
