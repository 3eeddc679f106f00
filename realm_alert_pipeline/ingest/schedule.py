"""`ingest_schedule`: launch each window's run once the window has closed (plus a lag for late writes)."""

from datetime import datetime, timedelta

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from realm_alert_pipeline.core.timeutil import ensure_utc
from realm_alert_pipeline.core.windows import (
    latest_closed_window,
    schedule_cron,
    window_for_partition_key,
)
from realm_alert_pipeline.settings import PipelineSettings

SCHEDULE_NAME = "ingest_schedule"


def build_ingest_schedule(
    settings: PipelineSettings,
    job: UnresolvedAssetJobDefinition | dg.JobDefinition,
    *,
    default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.RUNNING,
) -> dg.ScheduleDefinition:
    """A UTC schedule ticking once per window, `schedule_lag_seconds` after each boundary.

    Each tick requests the newest window whose end + lag is not after the tick's scheduled time, with
    the partition key as run_key, so a tick evaluated twice (daemon restart) launches one run.
    """
    lag = timedelta(seconds=settings.schedule_lag_seconds)
    first_window = window_for_partition_key(settings.partitions_start, settings.window_minutes)

    @dg.schedule(
        name=SCHEDULE_NAME,
        cron_schedule=schedule_cron(settings.window_minutes, settings.schedule_lag_seconds),
        job=job,
        execution_timezone="UTC",
        default_status=default_status,
        description=(
            f"Every {settings.window_minutes} min, {settings.schedule_lag_seconds} s after a window closes,"
            " ingest that window."
        ),
    )
    def ingest_schedule(context: dg.ScheduleEvaluationContext):
        at: datetime = ensure_utc(context.scheduled_execution_time or datetime.now().astimezone())
        window = latest_closed_window(at, settings.window_minutes, lag)
        if window.start < first_window.start:
            return dg.SkipReason(
                f"the newest closed window ({window.partition_key}) is before the first partition"
                f" {settings.partitions_start} (INGEST_PARTITIONS_START)"
            )
        key = window.partition_key
        return dg.RunRequest(run_key=key, partition_key=key)

    return ingest_schedule
