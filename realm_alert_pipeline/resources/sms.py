"""CONTRACT STUB (to be replaced by the implementation; keep these names and signatures)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import dagster as dg


class SmsConfigError(ValueError):
    """A missing or malformed SMS setting, naming the variable and the offending value."""


@dataclass(frozen=True)
class SentMessage:
    sid: str
    status: str
    to: str
    num_segments: int | None
    date_created: datetime | None


class SmsResource(dg.ConfigurableResource):
    """Texts through the official twilio SDK; optional (unconfigured -> `is_configured()` is False)."""

    account_sid: str | None = None
    auth_token: str | None = None
    api_key_sid: str | None = None
    api_key_secret: str | None = None
    from_number: str | None = None
    messaging_service_sid: str | None = None
    recipients: str = ""  # ALERT_SMS_TO: comma-separated E.164
    api_base_url: str | None = None  # only for the emulator
    timeout_s: float = 10.0

    def is_configured(self) -> bool: ...

    def recipient_numbers(self) -> list[str]:
        """Validated E.164 numbers; raises SmsConfigError naming each bad value."""

    def send_sms(self, to: str, body: str) -> SentMessage:
        """One create() call. Raises twilio's TwilioRestException / requests exceptions unchanged."""

    def find_sent(self, to: str, body: str, since: datetime) -> SentMessage | None:
        """Reconcile an uncertain send: a message to `to` from our sender with exactly `body`,
        created at or after `since` (minus skew), from the Messages list."""
