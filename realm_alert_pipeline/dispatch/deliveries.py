"""Texting one recipient at most once, although Twilio's create() is not idempotent (specs/twilio.md 6.3-6.4).

Each recipient's delivery record in the alert is an outbox: it is written as "sending" before every
create() call, so a crash leaves evidence. Before any re-send, a record whose outcome is unknown
("sending" from a crashed run, "unknown" after a 5xx, read timeout or dropped connection) is looked up
in the Messages list (`find_sent`); found, its sid is recorded instead of sending again. A record with
a sid is sent, whatever its status, and is never texted again. 429s and connection failures were not
processed by Twilio, so they are simply sent again after a backoff.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from twilio.base.exceptions import TwilioRestException

from realm_alert_pipeline.constants import (
    ALERT_DISPATCHED,
    ALERT_FAILED,
    DELIVERY_BLOCKED,
    DELIVERY_FAILED,
    DELIVERY_RETRYING,
    DELIVERY_SENDING,
    DELIVERY_UNKNOWN,
    TWILIO_SENDER_ERROR_CODES,
)
from realm_alert_pipeline.core.backoff import backoff_delay
from realm_alert_pipeline.core.send_errors import PERMANENT, TRANSIENT, classify_send_error
from realm_alert_pipeline.resources.sms import SmsConfigError

# Outcomes of `deliver` for one recipient.
SENT = "sent"  # texted by this call (or found in the Messages list)
ALREADY_SENT = "already_sent"  # a previous attempt recorded a sid: not texted again
FAILED = "failed"  # Twilio refused this recipient for good (recorded now or before)
UNRESOLVED = "unresolved"  # still transient or unknown after this call's attempts: retry the step
BLOCKED = "blocked"  # Twilio refused our account or sender: no recipient can be texted until config is fixed

_MAX_ERROR_MESSAGE = 300


class MessageSender(Protocol):
    """What `deliver` needs from SmsResource."""

    def send_sms(self, to: str, body: str): ...

    def find_sent(self, to: str, body: str, since: datetime): ...


@dataclass(frozen=True)
class SendPolicy:
    attempts: int
    backoff_s: float
    backoff_cap_s: float
    recheck_s: float


@dataclass(frozen=True)
class DeliveryResult:
    delivery: dict
    outcome: str
    error: BaseException | None = None


def is_sent(delivery: Mapping | None) -> bool:
    """Recorded as sent: Twilio gave the message a sid (queued/accepted/sent/delivered/...)."""
    return bool(delivery and delivery.get("sid"))


def needs_reconciliation(delivery: Mapping | None) -> bool:
    """An earlier create() may have gone through: look it up before sending again."""
    return (
        bool(delivery)
        and not is_sent(delivery)
        and delivery.get("status") in (DELIVERY_SENDING, DELIVERY_UNKNOWN)
    )


def is_refused(delivery: Mapping | None) -> bool:
    return bool(delivery) and not is_sent(delivery) and delivery.get("status") == DELIVERY_FAILED


def sms_outcome(deliveries: Sequence[Mapping]) -> str:
    """ "sent" (everyone), "partial" (some refused for good), "failed" (every recipient refused for good)."""
    sent = sum(1 for d in deliveries if is_sent(d))
    if deliveries and sent == 0 and all(is_refused(d) for d in deliveries):
        return "failed"
    return "sent" if sent == len(deliveries) else "partial"


def final_alert_state(alert: Mapping) -> str:
    """ "failed" when every recipient refused the text for good, else "dispatched" (also when skipped)."""
    sms = alert.get("sms") or {}
    return ALERT_FAILED if sms.get("state") == "failed" else ALERT_DISPATCHED


def error_details(exc: BaseException) -> tuple[int | None, str, int | None]:
    """(Twilio error code, message, HTTP status) of a send failure, for the delivery record and `Error`.

    TwilioRestException keeps the body's code and message; transport errors keep their class name and
    text (the URL in it holds the account SID, which is not a secret, and never the auth token).
    """
    if isinstance(exc, TwilioRestException):
        code = exc.code if isinstance(exc.code, int) else None
        return code, str(exc.msg)[:_MAX_ERROR_MESSAGE], exc.status
    if isinstance(exc, SmsConfigError):
        return None, str(exc)[:_MAX_ERROR_MESSAGE], None  # names variables, never a secret value
    status = getattr(exc, "status", None)
    code = getattr(exc, "code", None)
    text = getattr(exc, "detail", None) or getattr(exc, "title", None) or str(exc)
    message = f"{type(exc).__name__}: {text}"[:_MAX_ERROR_MESSAGE]
    return (code if isinstance(code, int) else None), message, (status if isinstance(status, int) else None)


def is_sender_error(exc: BaseException) -> bool:
    """A refusal about our account or sender (bad credentials, From not ours, incomplete TWILIO_*
    settings), not about the recipient."""
    if isinstance(exc, SmsConfigError):
        return True
    code, _, status = error_details(exc)
    return code in TWILIO_SENDER_ERROR_CODES or status in (401, 403)


def new_delivery(to: str) -> dict:
    return {
        "to": to,
        "sid": None,
        "status": None,
        "attempts": 0,
        "error_code": None,
        "error_message": None,
        "attempt_started_at": None,
        "first_attempt_at": None,
        "updated_at": None,
    }


def deliver(
    to: str,
    previous: Mapping | None,
    body: str,
    *,
    sender: MessageSender,
    save: Callable[[dict], None],
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
    policy: SendPolicy,
    classify: Callable[[BaseException], str] = classify_send_error,
) -> DeliveryResult:
    """Text `to` unless its record says it was texted or refused; `save` persists every state change.

    Raises nothing for send failures: they become the record's status and the result's outcome.
    """
    delivery = {**new_delivery(to), **(previous or {})}
    if is_sent(delivery):
        return DeliveryResult(delivery, ALREADY_SENT)
    if is_refused(delivery):
        return DeliveryResult(delivery, FAILED)
    if needs_reconciliation(delivery):
        try:
            found = _look_up(sender, to, body, _since(delivery), sleep, policy)
        except Exception as exc:  # noqa: BLE001 - any lookup failure means "still unknown"
            return DeliveryResult(delivery, UNRESOLVED, exc)
        if found is not None:
            return _record_sent(delivery, found, clock, save, reconciled=True)

    last_error: BaseException | None = None
    for attempt in range(1, policy.attempts + 1):
        if attempt > 1:
            sleep(backoff_delay(attempt - 1, policy.backoff_s, policy.backoff_cap_s))
        started = clock()
        delivery.update(
            status=DELIVERY_SENDING,
            attempts=int(delivery.get("attempts") or 0) + 1,
            attempt_started_at=started,
            first_attempt_at=delivery.get("first_attempt_at") or started,
            updated_at=started,
        )
        save(dict(delivery))
        try:
            message = sender.send_sms(to, body)
        except Exception as exc:  # noqa: BLE001 - classified below; unknown kinds count as ambiguous
            last_error = exc
            code, text, _ = error_details(exc)
            if is_sender_error(exc):
                _record_error(delivery, DELIVERY_BLOCKED, code, text, clock, save)
                return DeliveryResult(delivery, BLOCKED, exc)
            kind = classify(exc)
            if kind == PERMANENT:
                _record_error(delivery, DELIVERY_FAILED, code, text, clock, save)
                return DeliveryResult(delivery, FAILED, exc)
            if kind == TRANSIENT:
                _record_error(delivery, DELIVERY_RETRYING, code, text, clock, save)
                continue
            # AMBIGUOUS, or a kind this code does not know: it may have been sent.
            _record_error(delivery, DELIVERY_UNKNOWN, code, text, clock, save)
            try:
                found = _look_up(sender, to, body, _since(delivery), sleep, policy)
            except Exception as lookup_exc:  # noqa: BLE001 - cannot tell: never re-send blind
                return DeliveryResult(delivery, UNRESOLVED, lookup_exc)
            if found is not None:
                return _record_sent(delivery, found, clock, save, reconciled=True)
            continue
        return _record_sent(delivery, message, clock, save, reconciled=False)
    return DeliveryResult(delivery, UNRESOLVED, last_error)


def _since(delivery: Mapping) -> datetime:
    """Any attempt for this alert may be the one that went through: search from the first."""
    return delivery.get("first_attempt_at") or delivery["attempt_started_at"]


def _look_up(sender, to, body, since, sleep, policy):
    found = sender.find_sent(to, body, since)
    if found is None and policy.recheck_s > 0:
        sleep(policy.recheck_s)  # a message accepted a moment ago may not be listed yet
        found = sender.find_sent(to, body, since)
    return found


def _record_sent(delivery: dict, message, clock, save, *, reconciled: bool) -> DeliveryResult:
    delivery.update(
        sid=message.sid,
        status=message.status or "queued",
        error_code=None,
        error_message=None,
        num_segments=message.num_segments,
        reconciled=reconciled,
        updated_at=clock(),
    )
    save(dict(delivery))
    return DeliveryResult(delivery, SENT)


def _record_error(delivery: dict, status: str, code, text: str, clock, save) -> None:
    delivery.update(status=status, error_code=code, error_message=text, updated_at=clock())
    save(dict(delivery))
