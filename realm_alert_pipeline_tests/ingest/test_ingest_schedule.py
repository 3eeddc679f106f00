"""The schedule launches each window once it has closed plus the lag, keyed by the partition, so the
daemon ingests every window exactly once even when a tick is evaluated twice."""

from datetime import UTC, datetime

import dagster as dg
import pytest
from dagster._utils.schedules import cron_string_iterator

from realm_alert_pipeline.ingest import build_ingest_defs
from realm_alert_pipeline.local.admin_api_emulator import DEMO_APP_ID, DEMO_GROUP_ID
from realm_alert_pipeline.resources.admin_api import AdminApiResource
from realm_alert_pipeline.resources.mongo import MongoResource
from realm_alert_pipeline.settings import PipelineSettings

SETTINGS = PipelineSettings(window_minutes=10, schedule_lag_seconds=60, partitions_start="2026-11-01-00:00")


def repository(ingest):
    mongo = MongoResource(uri="mongodb://127.0.0.1:9")  # never contacted: evaluating a tick reads no data
    admin_api = AdminApiResource(
        public_key="pk", private_key="sk", group_id=DEMO_GROUP_ID, app_id=DEMO_APP_ID, mongo=mongo
    )
    return ingest.definitions({"admin_api": admin_api, "mongo": mongo}).get_repository_def()


def evaluate(ingest, instance, tick: datetime):
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=tick, repository_def=repository(ingest)
    )
    return ingest.schedule.evaluate_tick(context)


@pytest.fixture(scope="module")
def ingest():
    return build_ingest_defs(SETTINGS)


@pytest.mark.parametrize(
    ("tick", "partition_key"),
    [
        (datetime(2026, 12, 1, 6, 21, tzinfo=UTC), "2026-12-01-06:10"),
        (datetime(2026, 12, 1, 7, 1, tzinfo=UTC), "2026-12-01-06:50"),
        (datetime(2026, 12, 1, 0, 1, tzinfo=UTC), "2026-11-30-23:50"),
        # A late evaluation (daemon catching up) still asks for the newest window closed by then.
        (datetime(2026, 12, 1, 6, 29, 30, tzinfo=UTC), "2026-12-01-06:10"),
    ],
)
def test_a_tick_requests_the_window_that_just_closed(ingest, instance, tick, partition_key):
    data = evaluate(ingest, instance, tick)
    assert [(r.partition_key, r.run_key) for r in data.run_requests] == [(partition_key, partition_key)]


def test_the_schedule_ticks_at_window_ends_plus_the_lag_in_utc(ingest):
    schedule = ingest.schedule
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("1-59/10 * * * *", "UTC")
    assert schedule.job_name == "ingest_error_logs"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    start = datetime(2026, 12, 1, 6, 0, tzinfo=UTC).timestamp()
    ticks = cron_string_iterator(start, schedule.cron_schedule, schedule.execution_timezone)
    assert [next(ticks).strftime("%H:%M") for _ in range(7)] == [
        "06:01",
        "06:11",
        "06:21",
        "06:31",
        "06:41",
        "06:51",
        "07:01",
    ]


def test_every_window_is_requested_once_by_consecutive_ticks(ingest, instance):
    start = datetime(2026, 12, 1, 5, 59, tzinfo=UTC).timestamp()
    ticks = cron_string_iterator(start, ingest.schedule.cron_schedule, "UTC")
    keys = [evaluate(ingest, instance, next(ticks)).run_requests[0].partition_key for _ in range(8)]
    assert keys == [
        f"2026-12-01-{h:02d}:{m:02d}"
        for h, m in [(5, 50), (6, 0), (6, 10), (6, 20), (6, 30), (6, 40), (6, 50), (7, 0)]
    ]


def test_no_run_before_the_first_partition(instance):
    ingest = build_ingest_defs(PipelineSettings(partitions_start="2026-12-01-06:00"))
    data = evaluate(ingest, instance, datetime(2026, 12, 1, 6, 5, tzinfo=UTC))
    assert not data.run_requests
    assert "before the first partition" in data.skip_message
