"""The three steps of dispatching one alert, as plain functions over the Alert document.

1. `send_alert_sms`: text each recipient at most once, recording each delivery before moving on.
2. `copy_alert`: upsert the copy into the secondary MongoDB by the alert's `_id`. The copy is the
   alert as it will stand once settled (final `state`, `processed`, `secondary`), so after step 3
   the primary alert and its copy are equal.
3. `mark_alert_processed`: the commit point: `processed.alerted: true`, `processed.date` and the
   final state ("dispatched", or "failed" when every recipient refused the text for good).

Each step reads the alert afresh and does nothing for a settled alert, so any step can be repeated
(Dagster op retries, re-execution of a failed run) without texting anyone twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bson import ObjectId
from pymongo.database import Database
from pymongo.errors import PyMongoError

from realm_alert_pipeline.core.sms_text import render_alert_sms, sms_segments
from realm_alert_pipeline.dispatch import alert_store, deliveries
from realm_alert_pipeline.dispatch.deliveries import SendPolicy
from realm_alert_pipeline.resources.secondary_mongo import SecondaryMongoResource
from realm_alert_pipeline.resources.sms import SmsConfigError, SmsResource

SKIPPED = "skipped"
COPIED = "copied"
ALREADY_SETTLED = "already settled"


class DispatchError(Exception):
    """A step could not finish. `retryable`: trying again later can help; `code` names it in `Error`."""

    def __init__(self, message: str, *, code: str, retryable: bool, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable
        self.http_status = http_status


@dataclass(frozen=True)
class SmsStepResult:
    state: str  # "sent" | "partial" | "failed" | "skipped" | "already settled"
    recipients: int = 0
    sent: int = 0
    newly_sent: int = 0
    failed: int = 0
    segments: int = 0
    encoding: str = ""
    reason: str = ""


@dataclass(frozen=True)
class CopyStepResult:
    state: str  # "copied" | "skipped" | "already settled"
    target: str = ""


@dataclass(frozen=True)
class MarkStepResult:
    state: str  # the alert's final state, or "already settled"
    processed_date: datetime | None = None
    sms_state: str = ""
    recipients_sent: int = 0
    recipients_failed: int = 0
    segments: int = 0
    secondary_state: str = ""

    @classmethod
    def of(cls, state: str, alert: dict, date: datetime | None) -> MarkStepResult:
        sms = alert.get("sms") or {}
        return cls(
            state=state,
            processed_date=date,
            sms_state=str(sms.get("state") or ""),
            recipients_sent=int(sms.get("sent") or 0),
            recipients_failed=int(sms.get("failed") or 0),
            segments=int(sms.get("segments") or 0),
            secondary_state=str((alert.get("secondary") or {}).get("state") or ""),
        )


def load_alert_or_fail(db: Database, alert_id: str) -> tuple[ObjectId, dict]:
    try:
        oid = alert_store.parse_alert_id(alert_id)
    except alert_store.AlertIdError as exc:
        raise DispatchError(str(exc), code="ALERT_ID_INVALID", retryable=False) from exc
    alert = alert_store.load_alert(db, oid)
    if alert is None:
        raise DispatchError(
            f"no alert with _id {alert_id} in {db.name}.Alert", code="ALERT_NOT_FOUND", retryable=False
        )
    return oid, alert


def send_alert_sms(
    db: Database,
    sms: SmsResource,
    alert_id: str,
    *,
    run_id: str,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
    policy: SendPolicy,
    max_segments: int,
    lease: timedelta,
) -> SmsStepResult:
    """Step 1. Raises DispatchError when the alert's fate for some recipient is still open."""
    oid, alert = load_alert_or_fail(db, alert_id)
    if alert_store.is_settled(alert):
        return _summary(alert, ALREADY_SETTLED)
    now = clock()
    if not sms.is_configured():
        return _skip_sms(db, oid, alert, "TWILIO_* not set", now)
    try:
        recipients = sms.recipient_numbers()
    except SmsConfigError as exc:
        raise DispatchError(str(exc), code="ALERT_SMS_TO_INVALID", retryable=False) from exc
    if not recipients:
        return _skip_sms(db, oid, alert, "ALERT_SMS_TO is empty", now)

    claimed = alert_store.claim_lease(db, oid, run_id, now, now + lease)
    if claimed is None:
        holder = ((alert_store.load_alert(db, oid) or {}).get("dispatch") or {}).get("lease") or {}
        raise DispatchError(
            f"alert {alert_id} is being dispatched by run {holder.get('run_id')} "
            f"(lease until {holder.get('until')}); not texting in parallel",
            code="ALERT_LEASED",
            retryable=True,
        )
    try:
        return _send_to_recipients(db, sms, oid, claimed, recipients, clock, sleep, policy, max_segments)
    finally:
        try:
            alert_store.release_lease(db, oid, run_id)
        except PyMongoError:
            pass  # the lease expires on its own


def _send_to_recipients(db, sms, oid, alert, recipients, clock, sleep, policy, max_segments):
    previous_sms = alert.get("sms") or {}
    # The text is rendered once and kept: a retry must send (and look up) exactly the same body.
    body = previous_sms.get("body") or render_alert_sms(alert, max_segments=max_segments)
    encoding, _, segments = sms_segments(body)
    sms_doc = {"state": "sending", "body": body, "segments": segments, "encoding": encoding}
    alert_store.save_sms(db, oid, sms_doc, clock(), reset_deliveries=False)

    records = {d["to"]: d for d in alert.get("deliveries") or [] if isinstance(d, dict) and d.get("to")}

    def save(delivery: dict) -> None:
        records[delivery["to"]] = delivery
        alert_store.save_deliveries(db, oid, list(records.values()), clock())

    results = []
    for to in recipients:
        result = deliveries.deliver(
            to, records.get(to), body, sender=sms, save=save, clock=clock, sleep=sleep, policy=policy
        )
        results.append(result)
        if result.outcome == deliveries.BLOCKED:
            break  # the same refusal awaits every recipient
    current = [records[to] for to in recipients if to in records]
    counts = {
        "recipients": len(recipients),
        "sent": sum(1 for d in current if deliveries.is_sent(d)),
        "newly_sent": sum(1 for r in results if r.outcome == deliveries.SENT),
        "failed": sum(1 for d in current if deliveries.is_refused(d)),
    }
    blocked = [r for r in results if r.outcome == deliveries.BLOCKED]
    open_ = [r for r in results if r.outcome == deliveries.UNRESOLVED]
    if blocked or open_:
        state = "blocked" if blocked else "incomplete"
        alert_store.save_sms(db, oid, {**sms_doc, "state": state, **counts}, clock(), reset_deliveries=False)
        if blocked:
            cause = blocked[0].error
            code, text, status = deliveries.error_details(cause)
            if isinstance(cause, SmsConfigError):
                raise DispatchError(
                    f"SMS settings are incomplete: {text}", code="SMS_CONFIG_INVALID", retryable=False
                )
            raise DispatchError(
                f"Twilio refused our account or sender (error {code}: {text}); fix the TWILIO_* "
                "settings and re-execute the run",
                code="TWILIO_SENDER_REFUSED",
                retryable=False,
                http_status=status,
            )
        first = open_[0]
        _, text, status = deliveries.error_details(first.error) if first.error else (None, "unknown", None)
        raise DispatchError(
            f"{len(open_)} of {len(recipients)} recipient(s) not texted yet ({text}); "
            "nobody already texted will be texted again",
            code="TWILIO_UNAVAILABLE",
            retryable=True,
            http_status=status,
        )
    outcome = deliveries.sms_outcome(current)
    alert_store.save_sms(db, oid, {**sms_doc, "state": outcome, **counts}, clock(), reset_deliveries=False)
    return SmsStepResult(state=outcome, segments=segments, encoding=encoding, **counts)


def _skip_sms(db, oid, alert, reason: str, now: datetime) -> SmsStepResult:
    alert_store.save_sms(
        db, oid, {"state": SKIPPED, "reason": reason}, now, reset_deliveries=alert.get("deliveries") is None
    )
    return SmsStepResult(state=SKIPPED, reason=reason)


def _summary(alert: dict, state: str) -> SmsStepResult:
    sms = alert.get("sms") or {}
    records = [d for d in alert.get("deliveries") or [] if isinstance(d, dict)]
    return SmsStepResult(
        state=state,
        recipients=len(records),
        sent=sum(1 for d in records if deliveries.is_sent(d)),
        failed=sum(1 for d in records if deliveries.is_refused(d)),
        segments=int(sms.get("segments") or 0),
        encoding=str(sms.get("encoding") or ""),
        reason=f"alert is {alert.get('state')}, processed.alerted={bool((alert.get('processed') or {}).get('alerted'))}",
    )


def copy_alert(
    db: Database, secondary: SecondaryMongoResource, alert_id: str, *, clock: Callable[[], datetime]
) -> CopyStepResult:
    """Step 2. The copy is upserted by `_id`, so repeating the step leaves one copy."""
    oid, alert = load_alert_or_fail(db, alert_id)
    if alert_store.is_settled(alert):
        return CopyStepResult(ALREADY_SETTLED)
    if not alert.get("sms"):
        raise DispatchError(
            f"alert {alert_id} has no SMS outcome yet: the send step must run first",
            code="DISPATCH_OUT_OF_ORDER",
            retryable=False,
        )
    now = clock()
    if not secondary.is_configured():
        info = {"state": SKIPPED, "reason": "SECONDARY_MONGODB_URI not set", "date": now}
        alert_store.save_secondary(db, oid, info, now)
        return CopyStepResult(SKIPPED)
    info = {"state": COPIED, "date": now, "target": secondary.target}
    copy = {**alert, **settled_fields(alert, now), "secondary": info, "updated_at": now}
    try:
        secondary.upsert_copy(copy)
    except PyMongoError as exc:
        raise DispatchError(
            f"secondary MongoDB ({secondary.target}) unavailable: {type(exc).__name__}: {str(exc)[:300]}",
            code="SECONDARY_MONGODB_UNAVAILABLE",
            retryable=True,
        ) from exc
    alert_store.save_secondary(db, oid, info, now)
    return CopyStepResult(COPIED, secondary.target)


def settled_fields(alert: dict, date: datetime) -> dict:
    """`processed` and `state` as step 3 writes them when the settling time is `date`."""
    processed = {**(alert.get("processed") or {}), "date": date, "alerted": True}
    return {"processed": processed, "state": deliveries.final_alert_state(alert)}


def mark_alert_processed(db: Database, alert_id: str) -> MarkStepResult:
    """Step 3. Settles the alert with the time of the copy step, so the copy and the alert agree."""
    oid, alert = load_alert_or_fail(db, alert_id)
    if alert_store.is_settled(alert):
        return MarkStepResult.of(ALREADY_SETTLED, alert, (alert.get("processed") or {}).get("date"))
    secondary = alert.get("secondary") or {}
    date = secondary.get("date")
    if date is None:
        raise DispatchError(
            f"alert {alert_id} has no secondary outcome yet: the copy step must run first",
            code="DISPATCH_OUT_OF_ORDER",
            retryable=False,
        )
    fields = settled_fields(alert, date)
    alert_store.mark_processed(db, oid, fields["processed"], fields["state"], date)
    return MarkStepResult.of(fields["state"], alert, date)
