"""`alert_dispatch_sensor`: one `dispatch_alert` run per pending alert, exactly once.

Its truth is the Alert collection, not the sensor cursor: requesting a run stamps the alert
(`dispatch.requested_at`, `dispatch.next_check_at`), so a later tick, a restarted daemon or a lost
cursor skips it. Should a tick's requests be lost between stamping and launching, the alert comes up
again after `rerequest_after` and is requested anew only when no run with its run_key exists in the
instance (the daemon also refuses a run_key it has launched before). Each tick handles at most
`max_alerts_per_tick` alerts, oldest first, and stops early at its time budget.
"""

import time
from collections.abc import Callable
from datetime import datetime

import dagster as dg
from pymongo.errors import PyMongoError

from realm_alert_pipeline.constants import ALERT_COLLECTION, ALERT_TAG, DISPATCH_SENSOR, RUN_KEY_TAG
from realm_alert_pipeline.dispatch import alert_store
from realm_alert_pipeline.dispatch.tuning import DispatchTuning
from realm_alert_pipeline.resources.mongo import MongoResource
from realm_alert_pipeline.settings import PipelineSettings


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
        description="Launches one dispatch_alert run per pending Alert (run_key = the alert's _id).",
    )
    def alert_dispatch_sensor(context: dg.SensorEvaluationContext, mongo: MongoResource):
        deadline = monotonic() + tuning.tick_budget_s
        where = f"{mongo.database}.{ALERT_COLLECTION}"
        try:
            db = mongo.get_indexed_database()
            now = clock()
            next_check_at = now + tuning.rerequest_after
            requested: list[dict] = []
            postponed: list[dict] = []  # requested before, and a run for them exists
            for alert in alert_store.due_pending_alerts(db, now, tuning.max_alerts_per_tick):
                if monotonic() > deadline:
                    context.log.info(f"tick time budget of {tuning.tick_budget_s} s used; the rest waits")
                    break
                requested_before = (alert.get("dispatch") or {}).get("requested_at")
                if requested_before and _run_exists(context, str(alert["_id"])):
                    postponed.append(alert)
                else:
                    requested.append(alert)
            alert_store.record_tick(db, requested, postponed, now, next_check_at)
            if requested:
                return dg.SensorResult(run_requests=[_run_request(alert) for alert in requested])
            pending = alert_store.count_pending(db)
        except PyMongoError as exc:
            return dg.SkipReason(
                f"primary MongoDB unreachable (MONGODB_URI, database {mongo.database}): "
                f"{type(exc).__name__}: {str(exc)[:200]}"
            )
        waiting = len(postponed)
        if pending == 0:
            return dg.SkipReason(f"no pending alerts in {where}")
        return dg.SkipReason(
            f"{pending} pending alert(s) in {where} already have a dispatch_alert run requested"
            + (f" ({waiting} with a run that has not settled them: check those runs)" if waiting else "")
            + f"; they are looked at again {int(tuning.rerequest_after.total_seconds() // 60)} min after "
            "their request"
        )

    return alert_dispatch_sensor


def _run_request(alert: dict) -> dg.RunRequest:
    run_key = str(alert["_id"])
    return dg.RunRequest(run_key=run_key, run_config={"alert_id": run_key}, tags={ALERT_TAG: run_key})


def _run_exists(context: dg.SensorEvaluationContext, run_key: str) -> bool:
    runs = context.instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1)
    return bool(runs)
