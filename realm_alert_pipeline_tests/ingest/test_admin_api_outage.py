"""An Admin API outage in the middle of a window fails the run visibly, leaves an `Error` document that
holds no key or token, and a retry of the run completes the window without duplicates or lost alerts."""

from datetime import timedelta

import dagster as dg

from realm_alert_pipeline.constants import CONTROL_COLLECTION
from realm_alert_pipeline.core.fingerprint import entry_fingerprint
from realm_alert_pipeline.local.admin_api_emulator import (
    DEMO_APP_ID,
    DEMO_PRIVATE_KEY,
    DEMO_PUBLIC_KEY,
    Fault,
)
from realm_alert_pipeline_tests.ingest.helpers import IngestRunner, log_entry, materialization_metadata, storm


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
