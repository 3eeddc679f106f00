"""The three steps of dispatching one alert, as plain functions over the Alert document.

1. `send_alert_sms`: text each recipient at most once, recording each delivery before moving on.
2. `copy_alert`: upsert the copy into the secondary MongoDB by the alert's `_id`. The copy is the
   alert as it will stand once settled (final `state`, `processed`, `secondary`), so after step 3
   the primary alert and its copy are equal.
3. `mark_alert_processed`: the commit point: `processed.alerted: true`, `processed.date`, the
   final state ("dispatched", or "failed" when every recipient refused the text for good), and
   `since_last_alert` grown by the occurrences ingest folded in after the text was rendered.

Step 1 holds the alert's lease (see alert_store) so no other run texts it at the same time.

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
from realm_alert_pipeline.dispatch.failures import DispatchError, mongodb_failure
from realm_alert_pipeline.resources.secondary_mongo import SecondaryMongoResource
from realm_alert_pipeline.resources.sms import SmsConfigError, SmsResource

SKIPPED = "skipped"
COPIED = "copied"
ALREADY_SETTLED = "already settled"


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
    since_last_alert: int = 0

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
            since_last_alert=int(alert.get("since_last_alert") or 0),
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
    lease_key: str | None = None,
    is_run_finished: Callable[[str], bool | None] = lambda run_id: None,
) -> SmsStepResult:
    """Step 1. Raises DispatchError when the alert's fate for some recipient is still open.

    `lease_key` is the run family holding the alert (the root run id; default `run_id`);
    `is_run_finished(run_id)` tells whether another holder's run has ended (None: unknown), so a
    crashed run's lease is taken over at once rather than after it expires.
    """
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

    key = lease_key or run_id
    claimed = _claim(db, oid, alert_id, key, run_id, now, now + lease, is_run_finished)
    holding = _Lease(db, oid, key, lease, clock)
    try:
        return _send_to_recipients(
            db, sms, oid, claimed, recipients, clock, sleep, policy, max_segments, holding
        )
    except alert_store.LeaseLost as exc:
        raise DispatchError(
            f"{exc}; stopped before texting anyone else (the holder continues)",
            code="ALERT_LEASE_LOST",
            retryable=True,
        ) from exc
    finally:
        try:
            alert_store.release_lease(db, oid, key)
        except PyMongoError:
            pass  # the lease expires on its own


def _claim(db, oid, alert_id, key, run_id, now, until, is_run_finished) -> dict:
    claimed = alert_store.claim_lease(db, oid, key, run_id, now, until)
    if claimed is not None:
        return claimed
    holder = ((alert_store.load_alert(db, oid) or {}).get("dispatch") or {}).get("lease") or {}
    holder_run = holder.get("run_id")
    if holder_run and is_run_finished(str(holder_run)) is True:
        claimed = alert_store.take_over_lease(db, oid, holder, key, run_id, until)
        if claimed is not None:
            return claimed
    raise DispatchError(
        f"alert {alert_id} is being dispatched by run {holder_run} "
        f"(lease until {holder.get('until')}); not texting in parallel",
        code="ALERT_LEASED",
        retryable=True,
    )


@dataclass(frozen=True)
class _Lease:
    """Writes of the send step, each made only while this run still holds the alert, extending it."""

    db: Database
    oid: ObjectId
    key: str
    length: timedelta
    clock: Callable[[], datetime]

    def save_delivery(self, delivery: dict) -> None:
        now = self.clock()
        alert_store.save_delivery(
            self.db, self.oid, delivery, lease_key=self.key, now=now, until=now + self.length
        )

    def save_sms(self, sms_doc: dict) -> None:
        now = self.clock()
        alert_store.save_sms(
            self.db,
            self.oid,
            sms_doc,
            now,
            reset_deliveries=False,
            lease_key=self.key,
            until=now + self.length,
        )


def _send_to_recipients(db, sms, oid, alert, recipients, clock, sleep, policy, max_segments, lease: _Lease):
    previous_sms = alert.get("sms") or {}
    # The text is rendered once and kept: a retry must send (and look up) exactly the same body.
    # `count_texted` is the count that body reports: occurrences folded in later are reported by
    # the mark step as since_last_alert.
    if previous_sms.get("body"):
        body, count_texted = previous_sms["body"], previous_sms.get("count_texted")
    else:
        body, count_texted = render_alert_sms(alert, max_segments=max_segments), alert.get("count")
    encoding, _, segments = sms_segments(body)
    sms_doc = {"state": "sending", "body": body, "segments": segments, "encoding": encoding}
    if count_texted is not None:
        sms_doc["count_texted"] = count_texted
    lease.save_sms(sms_doc)

    records = {d["to"]: d for d in alert.get("deliveries") or [] if isinstance(d, dict) and d.get("to")}

    def save(delivery: dict) -> None:
        lease.save_delivery(delivery)
        records[delivery["to"]] = delivery

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
        lease.save_sms({**sms_doc, "state": state, **counts})
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
    lease.save_sms({**sms_doc, "state": outcome, **counts})
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
    except (PyMongoError, ValueError, TypeError) as exc:  # pymongo raises a bad port as ValueError
        raise mongodb_failure(
            exc,
            which="secondary",
            variables=f"SECONDARY_MONGODB_URI, target {secondary.target}",
            secrets=[secondary.uri],
        ) from exc
    alert_store.save_secondary(db, oid, info, now)
    return CopyStepResult(COPIED, secondary.target)


def settled_fields(alert: dict, date: datetime) -> dict:
    """`processed`, `state` and `since_last_alert` as step 3 writes them when the settling time is
    `date` (see alert_store.mark_processed for since_last_alert)."""
    processed = {**(alert.get("processed") or {}), "date": date, "alerted": True}
    return {
        "processed": processed,
        "state": deliveries.final_alert_state(alert),
        "since_last_alert": int(alert.get("since_last_alert") or 0) + folded_while_texting(alert),
    }


def folded_while_texting(alert: dict) -> int:
    """Occurrences counted into the alert after its text was rendered (0 when nothing was texted)."""
    texted = (alert.get("sms") or {}).get("count_texted")
    count = alert.get("count")
    if not isinstance(texted, int) or not isinstance(count, int):
        return 0
    return max(0, count - texted)


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
    settled = alert_store.mark_processed(db, oid, fields["processed"], fields["state"], date)
    if settled is None:  # settled meanwhile (a concurrent retry of this step)
        settled = alert_store.load_alert(db, oid) or alert
        return MarkStepResult.of(ALREADY_SETTLED, settled, (settled.get("processed") or {}).get("date"))
    return MarkStepResult.of(fields["state"], settled, date)
