"""Texting through the official twilio SDK (Messages API), with settings validated by name and value.

Outside quirks handled (specs/twilio.md):
- The SDK's HTTP client has no timeout by default: every request gets `timeout_s`.
- There is no base-URL option: the emulator is reached through a TwilioHttpClient subclass that
  rewrites scheme/host/port after the SDK's edge/region handling (4.2), allowed for loopback hosts
  only so real credentials never go to an arbitrary host (4.4.10). Proxy variables are ignored for
  that client (4.4.3), and the SDK gets a non-empty `environment` so TWILIO_REGION/TWILIO_EDGE and
  fallback credentials in os.environ cannot leak in (4.4.2).
- create() is not idempotent: `find_sent` reconciles an uncertain send from the Messages list (6.4).
- Secrets (auth token, API key secret) are left out of repr/str and never put into an error message.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import phonenumbers
import requests
from pydantic import Field, PrivateAttr
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from realm_alert_pipeline.core.timeutil import ensure_utc

# The environment variable behind each field, for error messages.
ENV_VARS = {
    "account_sid": "TWILIO_ACCOUNT_SID",
    "auth_token": "TWILIO_AUTH_TOKEN",
    "api_key_sid": "TWILIO_API_KEY_SID",
    "api_key_secret": "TWILIO_API_KEY_SECRET",
    "from_number": "TWILIO_FROM_NUMBER",
    "messaging_service_sid": "TWILIO_MESSAGING_SERVICE_SID",
    "recipients": "ALERT_SMS_TO",
    "api_base_url": "TWILIO_API_BASE_URL",
    "timeout_s": "TWILIO_TIMEOUT_S",
}
# A message created this long before the attempt started still counts as ours (clock skew).
RECONCILE_SKEW = timedelta(seconds=60)
# The reconciling look-up pages newest first through the messages to one number, back to the attempt;
# past this many messages it gives up (SmsLookupError: outcome unknown, so nothing is re-sent).
RECONCILE_PAGE_SIZE = 100
RECONCILE_SCAN_LIMIT = 1000
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# Twilio's test-credential magic numbers (+15005550000..09). phonenumbers classes them as "personal
# numbers", not mobiles; they are accepted so the magic failure numbers can be exercised end to end.
TWILIO_TEST_NUMBERS = frozenset(f"+1500555000{d}" for d in range(10))

_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_API_KEY_SID = re.compile(r"^SK[0-9a-fA-F]{32}$")
_MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_SHORT_CODE = re.compile(r"^\d{5,6}$")
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_MOBILE_TYPES = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
# Set as the SDK's `environment`: non-empty, so the SDK does not fall back to os.environ.
_HERMETIC_ENVIRONMENT = {"REALM_ALERT_PIPELINE_TWILIO": "explicit-config-only"}


class SmsConfigError(ValueError):
    """A missing or malformed SMS setting, naming the variable and the offending value."""


class SmsLookupError(RuntimeError):
    """The Messages list could not be read, so whether an uncertain send went out is still unknown."""


@dataclass(frozen=True)
class SentMessage:
    sid: str
    status: str
    to: str
    num_segments: int | None
    date_created: datetime | None


class SmsResource(dg.ConfigurableResource):
    """Texts through the official twilio SDK; optional (unconfigured -> `is_configured()` is False)."""

    account_sid: str | None = Field(default=None, description="TWILIO_ACCOUNT_SID (AC + 32 hex)")
    auth_token: str | None = Field(default=None, repr=False, description="TWILIO_AUTH_TOKEN (secret)")
    api_key_sid: str | None = Field(
        default=None, description="TWILIO_API_KEY_SID (SK + 32 hex), instead of the auth token"
    )
    api_key_secret: str | None = Field(default=None, repr=False, description="TWILIO_API_KEY_SECRET (secret)")
    from_number: str | None = Field(
        default=None, description="TWILIO_FROM_NUMBER: E.164, short code or sender ID"
    )
    messaging_service_sid: str | None = Field(
        default=None, description="TWILIO_MESSAGING_SERVICE_SID (MG + 32 hex), instead of a From number"
    )
    recipients: str = Field(default="", description="ALERT_SMS_TO: comma-separated E.164 numbers")
    api_base_url: str | None = Field(
        default=None, description="TWILIO_API_BASE_URL: only for the local emulator (loopback hosts only)"
    )
    timeout_s: float = Field(default=10.0, description="timeout of every Twilio request, in seconds")
    reconcile_page_size: int = Field(
        default=RECONCILE_PAGE_SIZE, ge=1, le=1000, description="Messages list page size when reconciling"
    )
    reconcile_scan_limit: int = Field(
        default=RECONCILE_SCAN_LIMIT,
        ge=1,
        description="most messages to one number read when reconciling before the outcome is called unknown",
    )

    _client: Client | None = PrivateAttr(default=None)
    _client_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def is_configured(self) -> bool:
        """False when no SMS setting at all is given (texting is then skipped); a partial setup is
        "configured" and fails with a SmsConfigError naming what is missing."""
        fields = (
            self.account_sid,
            self.auth_token,
            self.api_key_sid,
            self.api_key_secret,
            self.from_number,
            self.messaging_service_sid,
            self.recipients,
        )
        return any(_given(value) for value in fields)

    def config_problems(self) -> list[str]:
        """Every problem with the settings, each naming its variable (and the value when not secret)."""
        return self._client_problems() + _recipient_problems(self.recipients)

    def validate_config(self) -> None:
        """Raise SmsConfigError listing every problem (for check-config and early failure)."""
        problems = self.config_problems()
        if problems:
            raise SmsConfigError("; ".join(problems))

    def recipient_numbers(self) -> list[str]:
        """Validated E.164 numbers; raises SmsConfigError naming each bad value."""
        problems = _recipient_problems(self.recipients)
        if problems:
            raise SmsConfigError("; ".join(problems))
        return _split_recipients(self.recipients)

    def send_sms(self, to: str, body: str) -> SentMessage:
        """One create() call. Raises twilio's TwilioRestException / requests exceptions unchanged."""
        client = self._get_client()  # validates the settings first
        kwargs: dict[str, str] = {"to": to, "body": body}
        if _given(self.from_number):
            kwargs["from_"] = self.from_number.strip()  # type: ignore[union-attr]
        else:
            kwargs["messaging_service_sid"] = self.messaging_service_sid.strip()  # type: ignore[union-attr]
        return _sent_message(client.messages.create(**kwargs))

    def find_sent(self, to: str, body: str, since: datetime) -> SentMessage | None:
        """Reconcile an uncertain send: a message to `to` from our sender containing `body`, created at
        or after `since` (minus skew), from the Messages list; None when there is none.

        Lists by To (and From) only and matches client-side: DateSent is null until a message is sent
        and has day precision, so filtering on it could hide a queued message. Pages newest first until
        a message is older than `since` - skew, so an alert storm texting the same number cannot push
        ours out of view; after `reconcile_scan_limit` messages without reaching that point it raises
        SmsLookupError (the outcome stays unknown and the caller must not re-send). The message is ours
        when our whole body is contained in its body: a trial account prefixes "Sent from your Twilio
        trial account - " and a Messaging Service may append opt-out text ("Reply STOP to
        unsubscribe"); the body ends with the alert's own token, so containment stays unambiguous.
        The newest match wins. Raises SmsLookupError when the list cannot be read.
        """
        client = self._get_client()
        earliest = ensure_utc(since) - RECONCILE_SKEW
        kwargs: dict[str, object] = {
            "to": to,
            "page_size": self.reconcile_page_size,
            "limit": self.reconcile_scan_limit,
        }
        if _given(self.from_number):
            kwargs["from_"] = self.from_number.strip()  # type: ignore[union-attr]
        scanned = 0
        try:
            for message in client.messages.stream(**kwargs):
                scanned += 1
                created = message.date_created
                if created is not None and ensure_utc(created) < earliest:
                    return None  # newest first: everything further is older still
                if created is not None and body and body in (message.body or ""):
                    return _sent_message(message)
        except (TwilioException, requests.RequestException) as exc:
            raise SmsLookupError(f"could not list Twilio messages to {to}: {_describe(exc)}") from exc
        if scanned >= self.reconcile_scan_limit:
            raise SmsLookupError(
                f"read {scanned} messages to {to} without reaching {earliest:%Y-%m-%dT%H:%M:%SZ}; "
                "whether the text went out is unknown, so it is not sent again"
            )
        return None

    def check_account(self) -> None:
        """Prove the credentials work with one cheap read (the newest message); raises on failure."""
        try:
            self._get_client().messages.list(limit=1)
        except requests.RequestException as exc:
            raise SmsLookupError(f"could not reach Twilio: {_describe(exc)}") from exc
        except TwilioException as exc:
            raise SmsConfigError(f"Twilio did not accept the account settings: {_describe(exc)}") from exc

    def _get_client(self) -> Client:
        """The SDK Client, built once per resource instance after the settings are validated."""
        with self._client_lock:
            if self._client is None:
                problems = self._client_problems()
                if problems:
                    raise SmsConfigError("; ".join(problems))
                self._client = self._build_client()
            return self._client

    def _build_client(self) -> Client:
        if _given(self.api_base_url):
            http_client: TwilioHttpClient = BaseUrlHttpClient(
                self.api_base_url.strip(), timeout=self.timeout_s
            )  # type: ignore[union-attr]
            http_client.session.trust_env = False  # type: ignore[union-attr]  # no proxy for the emulator
        else:
            http_client = TwilioHttpClient(timeout=self.timeout_s)
        account_sid = self.account_sid.strip()  # type: ignore[union-attr]
        if _given(self.api_key_sid):
            username, password = self.api_key_sid.strip(), self.api_key_secret  # type: ignore[union-attr]
        else:
            username, password = account_sid, self.auth_token
        return Client(
            username,
            password,
            account_sid,
            http_client=http_client,
            environment=dict(_HERMETIC_ENVIRONMENT),
        )

    def _client_problems(self) -> list[str]:
        """Credentials, sender, base URL and timeout; secrets are checked for presence only."""
        problems: list[str] = []
        account_sid, token = self.account_sid, self.auth_token
        key_sid, key_secret = self.api_key_sid, self.api_key_secret
        if not _given(account_sid):
            problems.append(f"{ENV_VARS['account_sid']} is not set")
        elif not _ACCOUNT_SID.match(account_sid.strip()):  # type: ignore[union-attr]
            problems.append(
                f"{ENV_VARS['account_sid']} {_shape(account_sid)} is not 'AC' followed by 32 hex digits"
            )
        if _given(key_sid) or _given(key_secret):
            if _given(token):
                problems.append(
                    f"set either {ENV_VARS['auth_token']} or {ENV_VARS['api_key_sid']}/"
                    f"{ENV_VARS['api_key_secret']}, not both"
                )
            if not _given(key_sid):
                problems.append(f"{ENV_VARS['api_key_secret']} is set but {ENV_VARS['api_key_sid']} is not")
            elif not _API_KEY_SID.match(key_sid.strip()):  # type: ignore[union-attr]
                problems.append(
                    f"{ENV_VARS['api_key_sid']} {_shape(key_sid)} is not 'SK' followed by 32 hex digits"
                )
            if not _given(key_secret):
                problems.append(f"{ENV_VARS['api_key_sid']} is set but {ENV_VARS['api_key_secret']} is not")
        elif not _given(token):
            problems.append(
                f"{ENV_VARS['auth_token']} is not set (or set {ENV_VARS['api_key_sid']} and "
                f"{ENV_VARS['api_key_secret']})"
            )
        problems += _sender_problems(self.from_number, self.messaging_service_sid)
        if _given(self.api_base_url):
            problems += _base_url_problems(self.api_base_url.strip())  # type: ignore[union-attr]
        if not 0 < self.timeout_s <= 300:
            problems.append(f"{ENV_VARS['timeout_s']}={self.timeout_s} is outside (0, 300] seconds")
        return problems


class BaseUrlHttpClient(TwilioHttpClient):
    """A TwilioHttpClient that sends every request to `base_url` (scheme, host, port and path prefix).

    It rewrites after the SDK's edge/region hostname handling, so TWILIO_REGION cannot mangle the host,
    and it covers absolute next-page URLs too (specs/twilio.md 4.2).
    """

    def __init__(self, base_url: str, **kwargs) -> None:
        super().__init__(**kwargs)  # sets session, timeout, logger; skipping it breaks the client
        self.base_url = base_url

    def request(
        self,
        method,
        url,
        params=None,
        data=None,
        headers=None,
        auth=None,
        timeout=None,
        allow_redirects=False,
    ):
        return super().request(
            method,
            rebase_url(url, self.base_url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


def rebase_url(url: str, base: str) -> str:
    """`url` with the scheme, host and port of `base`, and `base`'s path prefixed to its path."""
    b, u = urlsplit(base), urlsplit(url)
    return urlunsplit((b.scheme, b.netloc, b.path.rstrip("/") + u.path, u.query, u.fragment))


# --- validation ----------------------------------------------------------------------------------


def _given(value: str | None) -> bool:
    return value is not None and value.strip() != ""


def _shape(value: str | None) -> str:
    """A hint at a malformed identifier without echoing it whole (it may be a secret pasted by mistake)."""
    text = (value or "").strip()
    return f"(got {len(text)} characters starting {text[:4]!r})"


def _sender_problems(from_number: str | None, messaging_service_sid: str | None) -> list[str]:
    has_from, has_service = _given(from_number), _given(messaging_service_sid)
    from_var, service_var = ENV_VARS["from_number"], ENV_VARS["messaging_service_sid"]
    if has_from and has_service:
        return [f"set either {from_var} or {service_var}, not both"]
    if not has_from and not has_service:
        return [f"neither {from_var} nor {service_var} is set: Twilio needs a sender"]
    if has_from:
        sender = from_number.strip()  # type: ignore[union-attr]
        if not (_E164.match(sender) or _SHORT_CODE.match(sender) or _ALPHANUMERIC_SENDER.match(sender)):
            return [
                f"{from_var}: {sender!r} is not an E.164 number (like '+14155550100'), "
                "a short code or an alphanumeric sender ID"
            ]
        return []
    service = messaging_service_sid.strip()  # type: ignore[union-attr]
    if not _MESSAGING_SERVICE_SID.match(service):
        return [f"{service_var}: {service!r} is not 'MG' followed by 32 hex digits"]
    return []


def _base_url_problems(base_url: str) -> list[str]:
    var = ENV_VARS["api_base_url"]
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"{var}: {base_url!r} is not an http(s) URL"]
    if parts.hostname not in LOOPBACK_HOSTS:
        return [
            f"{var}: {base_url!r} is not a loopback address ({', '.join(LOOPBACK_HOSTS)}); "
            "the base-URL override exists only for the local emulator, so credentials never go elsewhere"
        ]
    return []


def _split_recipients(raw: str) -> list[str]:
    """The comma-separated items, stripped, blanks skipped, duplicates removed (first one kept)."""
    numbers: list[str] = []
    for item in (raw or "").split(","):
        number = item.strip()
        if number and number not in numbers:
            numbers.append(number)
    return numbers


def _recipient_problems(raw: str) -> list[str]:
    var = ENV_VARS["recipients"]
    numbers = _split_recipients(raw)
    if not numbers:
        return [f"{var} is empty: give the comma-separated E.164 numbers to text (like '+14155550100')"]
    return [f"{var}: {problem}" for number in numbers if (problem := recipient_problem(number))]


def recipient_problem(number: str) -> str | None:
    """Why `number` is not a usable SMS recipient in E.164 form, naming the value; None when it is."""
    if " " in number:
        return f"{number!r} contains spaces (write E.164 like '+14155550100')"
    if not number.startswith("+"):
        return f"{number!r} is not E.164 (missing '+')"
    if not _E164.match(number):
        return f"{number!r} is not E.164 ('+' then 2 to 15 digits, no separators)"
    if number in TWILIO_TEST_NUMBERS:
        return None
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return f"{number!r} is not a valid mobile number (unknown country code)"
    if not phonenumbers.is_valid_number(parsed):
        return f"{number!r} is not a valid mobile number (not a number in its country's plan)"
    if phonenumbers.number_type(parsed) not in _MOBILE_TYPES:
        kind = _NUMBER_KINDS.get(phonenumbers.number_type(parsed), "not a mobile")
        return f"{number!r} is not a valid mobile number (it is {kind})"
    return None


_NUMBER_KINDS = {
    phonenumbers.PhoneNumberType.FIXED_LINE: "a fixed-line number",
    phonenumbers.PhoneNumberType.TOLL_FREE: "a toll-free number",
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    phonenumbers.PhoneNumberType.SHARED_COST: "a shared-cost number",
    phonenumbers.PhoneNumberType.VOIP: "a VoIP number",
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "a personal (forwarding) number",
    phonenumbers.PhoneNumberType.PAGER: "a pager number",
    phonenumbers.PhoneNumberType.UAN: "a company (UAN) number",
    phonenumbers.PhoneNumberType.VOICEMAIL: "a voicemail number",
}


def _sent_message(message) -> SentMessage:
    segments = message.num_segments
    return SentMessage(
        sid=message.sid,
        status=str(message.status) if message.status is not None else "",
        to=message.to,
        num_segments=int(segments) if isinstance(segments, str) and segments.isdigit() else None,
        date_created=message.date_created,
    )


def _describe(exc: BaseException) -> str:
    """A one-line description without response bodies or URLs with credentials."""
    status = getattr(exc, "status", None)
    if status is not None:
        return f"{type(exc).__name__} (HTTP {status}, code {getattr(exc, 'code', None)})"
    if isinstance(exc, TwilioException) and len(exc.args) > 1:  # "Unable to fetch page", Response
        return f"{exc.args[0]} (HTTP {getattr(exc.args[1], 'status_code', '?')})"
    return type(exc).__name__
