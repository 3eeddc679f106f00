"""The schedule launches each window once it has closed plus the lag, keyed by the partition, so the
daemon ingests every window exactly once even when a tick is evaluated twice; and it re-requests the
recent windows that an Admin API outage (or a stopped daemon) left without stored logs, a few per tick,
never one already running or queued, never one before the first partition or beyond the API's retention."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._utils.schedules import cron_string_iterator

from realm_alert_pipeline.constants import (
    INGEST_JOB,
    PARTITION_TAG,
    PRIORITY_TAG,
    RUN_KEY_TAG,
    SCHEDULE_NAME_TAG,
)
from realm_alert_pipeline.ingest import build_ingest_defs
from realm_alert_pipeline.ingest.schedule import SCHEDULE_NAME, build_ingest_schedule
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


# ----- catch-up of windows left without logs -----------------------------------------------------------

TICK = datetime(2026, 12, 1, 12, 1, tzinfo=UTC)  # newest closed window: 11:50
FAILED = dg.DagsterRunStatus.FAILURE


@pytest.fixture
def fresh_instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def key_at(hour: int, minute: int) -> str:
    return f"2026-12-01-{hour:02d}:{minute:02d}"


# Where a queued run would be launched from (Dagster requires one on every queued run).
ORIGIN = RemoteJobOrigin(
    repository_origin=RemoteRepositoryOrigin(
        code_location_origin=GrpcServerCodeLocationOrigin(host="localhost", port=4000, location_name="test"),
        repository_name="__repository__",
    ),
    job_name=INGEST_JOB,
)


def add_run(instance, key: str, status: dg.DagsterRunStatus, *, scheduled: bool = True, **tags) -> None:
    """A run of partition `key` as Dagster records it; `scheduled`: launched by ingest_schedule."""
    run_tags = {PARTITION_TAG: key, **tags}
    if scheduled:
        run_tags[SCHEDULE_NAME_TAG] = SCHEDULE_NAME
    instance.add_run(
        dg.DagsterRun(job_name=INGEST_JOB, status=status, tags=run_tags, remote_job_origin=ORIGIN)
    )


def materialized(instance, key: str) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization("app_services_error_logs", partition=key))


def requested(data) -> list[tuple[str, str, str | None]]:
    return [(r.partition_key, r.run_key, r.tags.get(PRIORITY_TAG)) for r in data.run_requests]


def test_windows_whose_runs_failed_are_requested_again_oldest_first_behind_the_new_window(
    ingest, fresh_instance
):
    add_run(fresh_instance, key_at(11, 0), dg.DagsterRunStatus.SUCCESS)  # the schedule's first run
    materialized(fresh_instance, key_at(11, 0))
    add_run(fresh_instance, key_at(11, 10), FAILED)
    add_run(fresh_instance, key_at(11, 20), FAILED)
    add_run(fresh_instance, key_at(11, 20), FAILED, scheduled=False)  # a manual re-execution, failed too
    add_run(fresh_instance, key_at(11, 30), dg.DagsterRunStatus.STARTED)
    add_run(fresh_instance, key_at(11, 40), dg.DagsterRunStatus.QUEUED)

    data = evaluate(ingest, fresh_instance, TICK)

    assert requested(data) == [
        (key_at(11, 50), key_at(11, 50), "10"),
        (key_at(11, 10), f"{key_at(11, 10)}:catch-up:1", "-1"),
        (key_at(11, 20), f"{key_at(11, 20)}:catch-up:2", "-1"),
    ]
    # The same tick evaluated again (daemon restart) asks for the same run keys: still one run each.
    assert requested(evaluate(ingest, fresh_instance, TICK)) == requested(data)


def test_a_window_with_a_run_waiting_or_in_progress_is_not_requested_twice(ingest, fresh_instance):
    add_run(fresh_instance, key_at(10, 50), FAILED)
    busy = [
        dg.DagsterRunStatus.QUEUED,
        dg.DagsterRunStatus.NOT_STARTED,
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED,
        dg.DagsterRunStatus.CANCELING,
    ]
    for minute, status in zip((0, 10, 20, 30, 40), busy, strict=True):
        add_run(fresh_instance, key_at(11, minute), FAILED)
        add_run(fresh_instance, key_at(11, minute), status, scheduled=False)  # e.g. a backfill's run

    assert [key for key, _, _ in requested(evaluate(ingest, fresh_instance, TICK))] == [
        key_at(11, 50),
        key_at(10, 50),
    ]


def test_a_window_already_stored_or_about_to_be_retried_is_not_requested(ingest, fresh_instance):
    add_run(fresh_instance, key_at(11, 20), FAILED)
    # A backfill fixed it.
    add_run(fresh_instance, key_at(11, 20), dg.DagsterRunStatus.SUCCESS, scheduled=False)
    materialized(fresh_instance, key_at(11, 20))
    # Failed, and the run-retry daemon will retry it (the retry not launched yet).
    add_run(fresh_instance, key_at(11, 30), FAILED, **{"dagster/will_retry": "true"})
    add_run(fresh_instance, key_at(11, 40), dg.DagsterRunStatus.SUCCESS)  # succeeded yet stored nothing
    materialized(fresh_instance, key_at(11, 10))  # before the schedule's first run: never looked at

    assert requested(evaluate(ingest, fresh_instance, TICK)) == [
        (key_at(11, 50), key_at(11, 50), "10"),
        (key_at(11, 40), f"{key_at(11, 40)}:catch-up:1", "-1"),
    ]


def test_each_attempt_gets_a_new_run_key_so_the_daemon_does_not_drop_it(ingest, fresh_instance):
    retried = {"dagster/will_retry": "true", "dagster/auto_retry_run_id": "x"}  # its retry was launched
    add_run(fresh_instance, key_at(11, 40), FAILED, **retried)
    add_run(fresh_instance, key_at(11, 40), FAILED, **{"dagster/will_retry": "false"})  # the retry failed too
    first = requested(evaluate(ingest, fresh_instance, TICK))[1]
    add_run(fresh_instance, key_at(11, 40), dg.DagsterRunStatus.CANCELED, **{RUN_KEY_TAG: first[1]})

    second = requested(evaluate(ingest, fresh_instance, TICK))[1]

    assert (first[1], second[1]) == (f"{key_at(11, 40)}:catch-up:2", f"{key_at(11, 40)}:catch-up:3")


def test_catch_up_is_bounded_per_tick_and_by_the_lookback(ingest, fresh_instance):
    # The schedule first ran two days ago and nothing since was stored (a long outage, a stopped daemon).
    add_run(fresh_instance, "2026-11-29-12:00", FAILED)

    catch_ups = [r.partition_key for r in evaluate(ingest, fresh_instance, TICK).run_requests[1:]]

    # The 24-hour lookback starts at 2026-11-30 12:01; six per tick, oldest first.
    assert catch_ups == [f"2026-11-30-{h}" for h in ("12:10", "12:20", "12:30", "12:40", "12:50", "13:00")]


def test_a_new_deployment_does_not_backfill_the_day_before_its_first_scheduled_run(ingest, fresh_instance):
    add_run(fresh_instance, key_at(9, 0), FAILED, scheduled=False)  # a manual try before switching it on
    assert requested(evaluate(ingest, fresh_instance, TICK)) == [(key_at(11, 50), key_at(11, 50), "10")]

    add_run(fresh_instance, key_at(11, 20), FAILED)  # the schedule's first run

    assert [r.partition_key for r in evaluate(ingest, fresh_instance, TICK).run_requests] == [
        key_at(11, 50),
        key_at(11, 20),
        key_at(11, 30),
        key_at(11, 40),
    ]


def test_no_window_before_the_first_partition_is_requested(fresh_instance):
    ingest = build_ingest_defs(PipelineSettings(partitions_start="2026-12-01-11:20"))
    add_run(fresh_instance, key_at(10, 0), FAILED)  # the schedule ran before the partitions were moved

    assert [r.partition_key for r in evaluate(ingest, fresh_instance, TICK).run_requests] == [
        key_at(11, 50),
        key_at(11, 20),
        key_at(11, 30),
        key_at(11, 40),
    ]


def test_no_window_beyond_the_admin_api_retention_is_requested(ingest, fresh_instance):
    schedule = build_ingest_schedule(
        SETTINGS, ingest.job, catch_up_lookback=timedelta(days=30), catch_up_max_per_tick=2
    )
    add_run(fresh_instance, "2026-11-15-00:00", FAILED)  # first scheduled run, 16 days back
    context = dg.build_schedule_context(
        instance=fresh_instance, scheduled_execution_time=TICK, repository_def=repository(ingest)
    )

    data = schedule.evaluate_tick(context)

    # The API keeps 10 days: the oldest window it still holds ends after 2026-11-21 12:01.
    assert [r.partition_key for r in data.run_requests[1:]] == ["2026-11-21-12:00", "2026-11-21-12:10"]
