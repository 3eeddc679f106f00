"""A backfill re-ingests past windows through the `ingest_error_logs` job without paging anyone: every
window lands once, old errors only make suppressed alerts, and windows older than the Admin API's 10-day
retention succeed with a warning instead of failing."""

from datetime import UTC, datetime, timedelta

from realm_alert_pipeline.constants import INGEST_JOB
from realm_alert_pipeline.core.windows import window_containing
from realm_alert_pipeline.ingest.assets import RETENTION_WARNING
from realm_alert_pipeline_tests.ingest.helpers import (
    FakeClock,
    IngestRunner,
    log_entry,
    materialization_metadata,
)


def test_a_backfill_through_the_job_ingests_each_window_once(admin_api_emulator, mongo, instance):
    now = datetime.now(UTC)
    first = window_containing(now - timedelta(days=2), 10)
    windows = [first.shifted(i) for i in range(3)]
    entries = [
        log_entry(w.start + timedelta(minutes=m), kind=kind)
        for w in windows
        for m, kind in [(1, "AUTH"), (7, "DB_TRIGGER")]
    ]
    admin_api_emulator.add_logs(entries)
    runner = IngestRunner(admin_api_emulator, mongo, instance, FakeClock(now))
    job = runner.defs.definitions(runner.resources).resolve_job_def(INGEST_JOB)

    # Newest first, as a backfill may well run them; twice, as a re-run of the backfill would.
    for window in reversed(windows + windows):
        result = job.execute_in_process(partition_key=window.partition_key, instance=instance)
        assert result.success
        assert result.dagster_run.tags["test"] == "ingest"  # the factory's tags reach every run

    assert runner.logs.count_documents({}) == len(entries)
    # `window` names the run that stored the entry first: its own window, or the next one's overlap.
    for doc in runner.logs.find():
        own = window_containing(doc["started_at"], 10)
        assert doc["window"] in {own.partition_key, own.shifted(1).partition_key}
    alerts = list(runner.alerts.find())
    assert {a["state"] for a in alerts} == {"suppressed"}
    assert sum(a["count"] for a in alerts) == len(entries)


def test_a_window_older_than_the_retention_succeeds_with_a_warning(admin_api_emulator, mongo, instance):
    now = datetime.now(UTC)
    window = window_containing(now - timedelta(days=11), 10)
    runner = IngestRunner(admin_api_emulator, mongo, instance, FakeClock(now))
    logs_requests_before = sum(r.path.endswith("/logs") for r in admin_api_emulator.requests)

    result = runner.run(window)

    assert result.success
    extract = materialization_metadata(result, "app_services_error_logs")
    assert extract["warning"] == RETENTION_WARNING
    assert (extract["pages"], extract["entries_read"], extract["new"]) == (0, 0, 0)
    assert sum(r.path.endswith("/logs") for r in admin_api_emulator.requests) == logs_requests_before
    assert runner.errors.count_documents({}) == 0
