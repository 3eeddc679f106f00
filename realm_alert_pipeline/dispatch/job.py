"""The `dispatch_alert` job: send the SMS, copy the alert to the secondary MongoDB, mark it processed.

Run config is just `{alert_id: "<24 hex>"}` (a config mapping hands it to the first op). Each op has a
Dagster RetryPolicy with exponential backoff for transient failures (Twilio 429/5xx/network, MongoDB
unavailable, anything unexpected); failures that retrying cannot fix (bad ALERT_SMS_TO, Twilio refusing
our account, a malformed MongoDB URI or name) fail at once. A failure that ends the run is also
written to the `Error` collection and kept on the alert (`dispatch.last_error`), without secrets;
the sensor then requests a later attempt (see retry_plan).
"""

import time
from collections.abc import Callable
from datetime import datetime

import dagster as dg
from pydantic import Field

from realm_alert_pipeline.constants import (
    DISPATCH_JOB,
    DISPATCH_MAX_RUNTIME_SECONDS,
    MAX_RUNTIME_TAG,
    SMS_TAG,
)
from realm_alert_pipeline.dispatch import alert_store, steps
from realm_alert_pipeline.dispatch.deliveries import SendPolicy
from realm_alert_pipeline.dispatch.failures import DispatchError, scrub, step_failure
from realm_alert_pipeline.dispatch.tuning import DispatchTuning
from realm_alert_pipeline.resources.mongo import MongoResource
from realm_alert_pipeline.resources.secondary_mongo import SecondaryMongoResource
from realm_alert_pipeline.resources.sms import SmsResource
from realm_alert_pipeline.settings import PipelineSettings


class DispatchAlertConfig(dg.Config):
    alert_id: str = Field(description="The Alert document's _id as 24 hex characters (the sensor's run_key).")


def build_dispatch_job(
    settings: PipelineSettings, *, clock: Callable[[], datetime], tuning: DispatchTuning
) -> dg.JobDefinition:
    """The job, its ops bound to `settings` (segment budget), `clock` and `tuning` (retries, backoff)."""
    retry_policy = dg.RetryPolicy(
        max_retries=tuning.op_max_retries,
        delay=tuning.op_retry_delay_s,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )
    send_policy = SendPolicy(
        attempts=tuning.send_attempts,
        backoff_s=tuning.send_backoff_s,
        backoff_cap_s=tuning.send_backoff_cap_s,
        recheck_s=tuning.reconcile_recheck_s,
    )

    def run_step(context: dg.OpExecutionContext, mongo: MongoResource, alert_id: str, step, secrets=()):
        return _run_step(
            context,
            mongo,
            alert_id,
            step,
            clock=clock,
            max_retries=tuning.op_max_retries,
            secrets=[mongo.uri, *secrets],
        )

    @dg.op(retry_policy=retry_policy, out=dg.Out(str, description="The alert id, for the next step."))
    def send_alert_sms(
        context: dg.OpExecutionContext, config: DispatchAlertConfig, mongo: MongoResource, sms: SmsResource
    ) -> dg.Output[str]:
        """Text each on-call number once; record every delivery in the alert before moving on."""
        result = run_step(
            context,
            mongo,
            config.alert_id,
            lambda: steps.send_alert_sms(
                mongo.get_indexed_database(),  # connects: inside the step, so an outage is retried
                sms,
                config.alert_id,
                run_id=context.run_id,
                clock=clock,
                sleep=time.sleep,
                policy=send_policy,
                max_segments=settings.sms_max_segments,
                lease=tuning.lease,
                lease_key=context.dagster_run.root_run_id or context.run_id,
                is_run_finished=lambda run_id: _is_run_finished(context.instance, run_id),
            ),
            secrets=[sms.auth_token, sms.api_key_secret],
        )
        context.log.info(
            f"alert {config.alert_id}: SMS {result.state} ({result.sent}/{result.recipients} sent, "
            f"{result.newly_sent} now, {result.failed} refused)"
        )
        metadata = {
            "alert_id": config.alert_id,
            "sms_state": result.state,
            "recipients": result.recipients,
            "recipients_sent": result.sent,
            "recipients_sent_now": result.newly_sent,
            "recipients_failed": result.failed,
            "segments": result.segments,
            "encoding": result.encoding,
        }
        if result.reason:
            metadata["reason"] = result.reason
        return dg.Output(config.alert_id, metadata=metadata)

    @dg.op(retry_policy=retry_policy, out=dg.Out(str, description="The alert id, for the next step."))
    def copy_alert_to_secondary(
        context: dg.OpExecutionContext,
        alert_id: str,
        mongo: MongoResource,
        secondary_mongo: SecondaryMongoResource,
    ) -> dg.Output[str]:
        """Upsert the alert, as it will stand once settled, into the secondary MongoDB by its _id."""
        result = run_step(
            context,
            mongo,
            alert_id,
            lambda: steps.copy_alert(mongo.get_database(), secondary_mongo, alert_id, clock=clock),
            secrets=[secondary_mongo.uri],
        )
        context.log.info(f"alert {alert_id}: secondary copy {result.state} {result.target}".rstrip())
        return dg.Output(
            alert_id,
            metadata={"alert_id": alert_id, "secondary_state": result.state, "target": result.target},
        )

    @dg.op(retry_policy=retry_policy, out=dg.Out(str, description="The alert's final state."))
    def mark_alert_processed(
        context: dg.OpExecutionContext, alert_id: str, mongo: MongoResource
    ) -> dg.Output[str]:
        """Settle the alert: processed.alerted true, processed.date, state dispatched or failed."""
        result = run_step(
            context, mongo, alert_id, lambda: steps.mark_alert_processed(mongo.get_database(), alert_id)
        )
        context.log.info(f"alert {alert_id}: {result.state}")
        return dg.Output(
            result.state,
            metadata={
                "alert_id": alert_id,
                "state": result.state,
                "sms_state": result.sms_state,
                "recipients_sent": result.recipients_sent,
                "recipients_failed": result.recipients_failed,
                "segments": result.segments,
                "secondary_state": result.secondary_state,
                "since_last_alert": result.since_last_alert,
            },
        )

    @dg.config_mapping
    def alert_id_only(config: DispatchAlertConfig) -> dict:
        return {"ops": {"send_alert_sms": {"config": {"alert_id": config.alert_id}}}}

    @dg.job(
        name=DISPATCH_JOB,
        config=alert_id_only,
        tags={SMS_TAG: "twilio", MAX_RUNTIME_TAG: str(DISPATCH_MAX_RUNTIME_SECONDS)},
        description="Text one alert to the on-call numbers through Twilio, copy it to the secondary "
        "MongoDB, and mark it processed. Launched by alert_dispatch_sensor, one run per alert.",
    )
    def dispatch_alert():
        mark_alert_processed(copy_alert_to_secondary(send_alert_sms()))

    return dispatch_alert


def _run_step(
    context: dg.OpExecutionContext,
    mongo: MongoResource,
    alert_id: str,
    step: Callable,
    *,
    clock: Callable[[], datetime],
    max_retries: int,
    secrets: list[str | None],
):
    """Run a step; turn its failure into a dg.Failure that retries or not, and record the final one."""
    try:
        return step()
    except Exception as exc:  # noqa: BLE001 - every failure is classified, recorded and re-raised
        error = step_failure(exc, secrets)
    error.message = scrub(error.message, secrets)  # steps' own messages too: the event log keeps them
    final = not error.retryable or context.retry_number >= max_retries
    context.log.warning(f"alert {alert_id}: {error.code}: {error.message}")
    if final:
        _record_final_failure(context, mongo, alert_id, error, clock())
    raise dg.Failure(
        description=error.message,
        metadata={"alert_id": alert_id, "error_code": error.code, "retryable": str(error.retryable)},
        # On the last attempt no retry is left: failing plainly keeps this description in the UI
        # instead of Dagster's "Exceeded max_retries".
        allow_retries=not final,
    )


def _record_final_failure(
    context: dg.OpExecutionContext, mongo: MongoResource, alert_id: str, error: DispatchError, now: datetime
) -> None:
    """The run's failure into `Error`, and onto the alert for the sensor's give-up record."""
    try:
        db = mongo.get_database()
        alert_store.record_error(
            db,
            code=error.code,
            message=error.message,
            run_id=context.run_id,
            now=now,
            http_status=error.http_status,
            alert_id=alert_id,
        )
        failure = {"code": error.code, "message": error.message, "run_id": context.run_id, "date": now}
        alert_store.note_failure(db, alert_store.parse_alert_id(alert_id), failure)
    except Exception:  # noqa: BLE001 - the primary is down or misconfigured: the run's failure event is the record
        pass


def _is_run_finished(instance: dg.DagsterInstance, run_id: str) -> bool | None:
    """True/False for a run this instance knows; None for one it does not (then its lease expires)."""
    run = instance.get_run_by_id(run_id)
    return None if run is None else run.is_finished
