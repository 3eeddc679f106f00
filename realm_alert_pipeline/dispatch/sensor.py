"""`alert_dispatch_sensor`: one open `dispatch_alert` run per pending alert until the alert is settled.

Its truth is the Alert collection, not the sensor cursor: requesting a run stamps the alert
(`dispatch.requested_at`, `attempts`, `run_key`, `next_check_at`), so a later tick, a restarted daemon
or a lost cursor does not request it twice. An alert with a run requested is looked at again every
`rerequest_after`: while a run of it is open the sensor waits; when no run carries the current
run_key the request was lost and is made again with the same run_key; when every run failed
(FAILURE/CANCELED, no Dagster run retry coming) the next attempt is requested after a backoff with a
new run_key, and after `max_attempts` the alert is settled "failed" with an `Error` naming it (rules
in retry_plan). The first attempt's run_key is the alert's id. Each tick handles at most
`max_alerts_per_tick` alerts, new ones first, and stops early at its time budget.
"""

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime

import dagster as dg
from pymongo.errors import PyMongoError

from realm_alert_pipeline.constants import (
    ALERT_COLLECTION,
    ALERT_TAG,
    DISPATCH_ATTEMPT_TAG,
    DISPATCH_SENSOR,
    RUN_KEY_TAG,
)
from realm_alert_pipeline.dispatch import alert_store, deliveries, retry_plan
from realm_alert_pipeline.dispatch.retry_plan import GIVE_UP, REQUEST, RunsSeen
from realm_alert_pipeline.dispatch.tuning import DispatchTuning
from realm_alert_pipeline.resources.mongo import MongoResource
from realm_alert_pipeline.settings import PipelineSettings

_MAX_ERROR_MESSAGE = 600


def build_alert_dispatch_sensor(
    job: dg.JobDefinition,
    settings: PipelineSettings,
    *,
    clock: Callable[[], datetime],
    tuning: DispatchTuning,
    monotonic: Callable[[], float] = time.monotonic,
) -> dg.SensorDefinition:
    @dg.sensor(
        name=DISPATCH_SENSOR,
        job=job,
        minimum_interval_seconds=settings.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Launches a dispatch_alert run per pending Alert (run_key = the alert's _id; a later "
        "attempt after failed runs: '<_id>:<n>'), one open run per alert.",
    )
    def alert_dispatch_sensor(context: dg.SensorEvaluationContext, mongo: MongoResource):
        deadline = monotonic() + tuning.tick_budget_s
        where = f"{mongo.database}.{ALERT_COLLECTION}"
        requests: list[dg.RunRequest] = []
        waiting: Counter = Counter()
        gave_up: list[str] = []
        try:
            db = mongo.get_indexed_database()
            now = clock()
            due = alert_store.due_pending_alerts(db, now, tuning.max_alerts_per_tick)
            runs = _runs_by_alert(context.instance, due)
            updates = []
            to_give_up: list[tuple[dict, RunsSeen]] = []
            for alert in due:
                if monotonic() > deadline:
                    context.log.info(f"tick time budget of {tuning.tick_budget_s} s used; the rest waits")
                    break
                alert_id = str(alert["_id"])
                dispatch = alert.get("dispatch")
                seen = _summarise(runs.get(alert_id, []), retry_plan.current_run_key(alert_id, dispatch))
                plan = retry_plan.plan_dispatch(
                    alert_id,
                    dispatch,
                    seen,
                    now,
                    check_after=tuning.rerequest_after,
                    backoff=tuning.retry_backoff,
                    max_attempts=tuning.max_attempts,
                )
                if plan.action == REQUEST:
                    requests.append(_run_request(alert_id, plan.run_key, plan.attempt))
                    updates.append(
                        alert_store.request_update(
                            alert, run_key=plan.run_key, attempt=plan.attempt, now=now, check_at=plan.check_at
                        )
                    )
                elif plan.action == GIVE_UP:
                    to_give_up.append((alert, seen))
                else:
                    waiting[plan.reason] += 1
                    updates.append(
                        alert_store.wait_update(alert, check_at=plan.check_at, retry_at=plan.retry_at)
                    )
            alert_store.apply_tick(db, updates)
            for alert, seen in to_give_up:
                if _give_up(db, alert["_id"], seen, now, tuning.max_attempts):
                    gave_up.append(str(alert["_id"]))
                    context.log.warning(
                        f"alert {alert['_id']}: dispatch given up, settled failed (see Error)"
                    )
            if requests:
                return dg.SensorResult(run_requests=requests)
            pending = alert_store.count_pending(db)
        except PyMongoError as exc:
            return dg.SkipReason(
                f"primary MongoDB unreachable (MONGODB_URI, database {mongo.database}): "
                f"{type(exc).__name__}: {str(exc)[:200]}"
            )
        return dg.SkipReason(_skip_message(pending, where, waiting, gave_up, tuning))

    return alert_dispatch_sensor


def _run_request(alert_id: str, run_key: str, attempt: int) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=run_key,
        run_config={"alert_id": alert_id},
        tags={ALERT_TAG: alert_id, DISPATCH_ATTEMPT_TAG: str(attempt)},
    )


def _runs_by_alert(instance: dg.DagsterInstance, alerts: list[dict]) -> dict[str, list[dg.DagsterRun]]:
    """The runs of each requested alert, newest first: two queries for the whole tick, by the alert tag
    the sensor sets and by the run_keys it used (a run launched by hand with a run_key counts too)."""
    ids = {str(a["_id"]) for a in alerts if retry_plan.attempts_made(a.get("dispatch"))}
    if not ids:
        return {}
    keys = [
        key
        for a in alerts
        if str(a["_id"]) in ids
        for key in retry_plan.run_keys_so_far(str(a["_id"]), a.get("dispatch"))
    ]
    records = {}
    for tags in ({ALERT_TAG: sorted(ids)}, {RUN_KEY_TAG: keys}):
        for record in instance.get_run_records(filters=dg.RunsFilter(tags=tags)):
            records[record.dagster_run.run_id] = record
    by_alert: dict[str, list[dg.DagsterRun]] = defaultdict(list)
    for record in sorted(records.values(), key=lambda r: r.create_timestamp, reverse=True):
        run = record.dagster_run
        owner = run.tags.get(ALERT_TAG) or retry_plan.alert_id_of_run_key(run.tags.get(RUN_KEY_TAG, ""))
        if owner in ids:
            by_alert[owner].append(run)
    return by_alert


def _summarise(runs: list[dg.DagsterRun], current_key: str | None) -> RunsSeen:
    """Open (not finished, or failed with a Dagster run retry on its way), succeeded, failed."""
    open_ = succeeded = failed = 0
    last_failed = None
    for run in runs:
        if not run.is_finished or run.is_complete_and_waiting_to_retry:
            open_ += 1
        elif run.is_success:
            succeeded += 1
        else:
            failed += 1
            last_failed = last_failed or run
    return RunsSeen(
        open=open_,
        succeeded=succeeded,
        failed=failed,
        with_current_key=sum(1 for run in runs if current_key and run.tags.get(RUN_KEY_TAG) == current_key),
        last_failed_run_id=last_failed.run_id if last_failed else None,
        last_failed_status=last_failed.status.value if last_failed else None,
    )


def _give_up(db, alert_id, seen: RunsSeen, now: datetime, max_attempts: int) -> bool:
    """Settle the alert "failed" and record one Error naming it and its last failure (no secrets: the
    job scrubbed `dispatch.last_error` when it wrote it)."""
    alert = alert_store.load_alert(db, alert_id) or {}
    dispatch = alert.get("dispatch") or {}
    attempts = retry_plan.attempts_made(dispatch)
    last_error = dispatch.get("last_error") if isinstance(dispatch.get("last_error"), Mapping) else None
    if last_error and last_error.get("run_id") == seen.last_failed_run_id:
        last = f"{last_error.get('code')}: {last_error.get('message')}"
    elif seen.last_failed_run_id:
        last = (
            f"run {seen.last_failed_run_id} ended {seen.last_failed_status} without recording an error "
            "(was the primary MongoDB reachable? see the run's logs)"
        )
    else:
        last = "unknown"
    records = [d for d in alert.get("deliveries") or [] if isinstance(d, dict)]
    texted = sum(1 for d in records if deliveries.is_sent(d))
    what = " ".join(str(alert.get(f)) for f in ("type", "source", "error_code") if alert.get(f))
    message = (
        f"alert {alert_id} ({what or 'unknown error'}, {alert.get('count')}x) settled failed after "
        f"{attempts} dispatch attempt(s) (limit {max_attempts}); {texted} of {len(records)} recipient(s) "
        f"recorded as texted; last failure: {last}"
    )[:_MAX_ERROR_MESSAGE]
    info = {
        "at": now,
        "attempts": attempts,
        "last_run_id": seen.last_failed_run_id,
        "last_failure": last[:300],
    }
    if alert_store.give_up(db, alert_id, now, info) is None:
        return False  # settled meanwhile
    alert_store.record_error(
        db,
        code="DISPATCH_GAVE_UP",
        message=message,
        run_id=seen.last_failed_run_id,
        now=now,
        alert_id=str(alert_id),
    )
    return True


def _skip_message(
    pending: int, where: str, waiting: Counter, gave_up: list[str], tuning: DispatchTuning
) -> str:
    parts = []
    if gave_up:
        parts.append(
            f"gave up on {len(gave_up)} alert(s) after {tuning.max_attempts} failed attempts (see Error)"
        )
    if pending == 0:
        parts.insert(0, f"no pending alerts in {where}")
        return "; ".join(parts)
    details = ", ".join(f"{count} {reason}" for reason, count in sorted(waiting.items()))
    minutes = max(1, int(tuning.rerequest_after.total_seconds() // 60))
    check = (
        f"{pending} pending alert(s) in {where} already have a dispatch_alert run requested"
        + (f" (this tick: {details})" if details else "")
        + f"; each is looked at again every {minutes} min while its run is open"
    )
    if waiting.get(retry_plan.SUCCEEDED_UNSETTLED):
        check += "; check the runs that succeeded without settling their alert"
    return "; ".join([check, *parts])
