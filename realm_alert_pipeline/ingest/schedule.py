"""`ingest_schedule`: launch each window's run once the window has closed (plus a lag for late writes),
and catch up the recent windows whose runs failed or never ran.

A window is read with an overlap of one window back at most, so a window whose run failed (an Admin
API outage longer than the run's own retries) would otherwise lose its errors for good. The truth is
the Dagster instance: a window is caught up when `app_services_error_logs` has no materialization for
it and no run of it is queued, in progress or about to be retried by the run-retry daemon.
"""

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from realm_alert_pipeline.constants import (
    INGEST_CATCH_UP_LOOKBACK,
    INGEST_CATCH_UP_MAX_PER_TICK,
    LOG_RETENTION,
    PARTITION_KEY_FORMAT,
    PARTITION_TAG,
    PRIORITY_TAG,
    SCHEDULE_NAME_TAG,
)
from realm_alert_pipeline.core.timeutil import ensure_utc
from realm_alert_pipeline.core.windows import (
    Window,
    catch_up_candidates,
    latest_closed_window,
    schedule_cron,
    window_containing,
    window_for_partition_key,
)
from realm_alert_pipeline.settings import PipelineSettings

SCHEDULE_NAME = "ingest_schedule"
LOGS_ASSET_KEY = dg.AssetKey("app_services_error_logs")
# The window that just closed (fresh errors to text) is launched before backfills (priority 0) and
# catch-ups of failed windows.
LIVE_PRIORITY = "10"
CATCH_UP_PRIORITY = "-1"

_FINISHED = frozenset(
    {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
)


def build_ingest_schedule(
    settings: PipelineSettings,
    job: UnresolvedAssetJobDefinition | dg.JobDefinition,
    *,
    default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.RUNNING,
    logs_asset_key: dg.AssetKey = LOGS_ASSET_KEY,
    catch_up_lookback: timedelta = INGEST_CATCH_UP_LOOKBACK,
    catch_up_max_per_tick: int = INGEST_CATCH_UP_MAX_PER_TICK,
) -> dg.ScheduleDefinition:
    """A UTC schedule ticking once per window, `schedule_lag_seconds` after each boundary.

    Each tick requests the newest window whose end + lag is not after the tick's scheduled time, with
    the partition key as run_key, so a tick evaluated twice (daemon restart) launches one run. It also
    requests up to `catch_up_max_per_tick` earlier windows (oldest first) of the last `catch_up_lookback`
    that still lack their logs (see catch_up_requests), from the window of the schedule's first run on:
    a new deployment does not backfill the day before it was switched on.
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
            " ingest that window; re-request recent windows left without logs (failed or never run)."
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
        requests = [dg.RunRequest(run_key=key, partition_key=key, tags={PRIORITY_TAG: LIVE_PRIORITY})]
        floor = _first_scheduled_window(context.instance, settings.window_minutes)
        if floor is not None:
            candidates = catch_up_candidates(
                window,
                first=max(first_window, floor, key=lambda w: w.start),
                now=at,
                lookback=catch_up_lookback,
                retention=LOG_RETENTION,
            )
            requests += catch_up_requests(
                context.instance, candidates, logs_asset_key=logs_asset_key, limit=catch_up_max_per_tick
            )
        return requests

    return ingest_schedule


def catch_up_requests(
    instance: dg.DagsterInstance,
    candidates: Sequence[Window],
    *,
    logs_asset_key: dg.AssetKey,
    limit: int,
) -> list[dg.RunRequest]:
    """Run requests for the first `limit` of `candidates` (oldest first) that still need a run.

    A window needs one when `logs_asset_key` has no materialization for its partition and no run of the
    partition (any job: a backfill counts too) is queued, in progress or failed and waiting for the
    run-retry daemon. The run_key counts the partition's finished runs, so each attempt gets a new key
    (the daemon drops a run_key it has seen) while a tick evaluated twice still launches one run.
    """
    if not candidates or limit <= 0:
        return []
    keys = [window.partition_key for window in candidates]
    materialized = instance.get_latest_storage_id_by_partition(
        logs_asset_key, dg.DagsterEventType.ASSET_MATERIALIZATION, set(keys)
    )
    runs_by_key: dict[str, list[dg.DagsterRun]] = {}
    for run in instance.get_runs(filters=dg.RunsFilter(tags={PARTITION_TAG: keys})):
        runs_by_key.setdefault(run.tags.get(PARTITION_TAG, ""), []).append(run)
    requests = []
    for key in keys:
        if key in materialized:
            continue
        runs = runs_by_key.get(key, [])
        if _busy(runs):
            continue
        attempt = sum(run.status in _FINISHED for run in runs)
        requests.append(
            dg.RunRequest(
                run_key=f"{key}:catch-up:{attempt}", partition_key=key, tags={PRIORITY_TAG: CATCH_UP_PRIORITY}
            )
        )
        if len(requests) >= limit:
            break
    return requests


def _busy(runs: Iterable[dg.DagsterRun]) -> bool:
    """A run of the partition is waiting, running, or failed with an automatic retry still to come."""
    return any(run.status not in _FINISHED or run.is_complete_and_waiting_to_retry for run in runs)


def _first_scheduled_window(instance: dg.DagsterInstance, window_minutes: int) -> Window | None:
    """The window of the schedule's first run in this instance: catch-up never reaches further back."""
    first = instance.get_runs(
        filters=dg.RunsFilter(tags={SCHEDULE_NAME_TAG: SCHEDULE_NAME}), limit=1, ascending=True
    )
    key = first[0].tags.get(PARTITION_TAG) if first else None
    try:
        start = datetime.strptime(key, PARTITION_KEY_FORMAT).replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None
    # window_containing, not the key's own window: the window size may have changed since.
    return window_containing(start, window_minutes)
