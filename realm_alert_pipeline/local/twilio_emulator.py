"""A faithful local emulator of Twilio's Messages API (specs/twilio.md section 9) on 127.0.0.1.

A real HTTP server (http.server.ThreadingHTTPServer in a background thread) that the official twilio
SDK talks to through its own code path: Basic auth with the account's auth token or an API key,
UTF-8 form bodies, the legacy 4-key error JSON (never RFC-9457 `type`/`title`, which the SDK would
raise as a different exception class), RFC 2822 dates, string counters, newest-first paged lists
with a relative `next_page_uri`, and the magic test numbers of Twilio's test credentials (section 7).
It keeps every message it "sent" so tests and the local demo can read them, and can inject the
failures that matter for alerting: 429s, 5xx (JSON or HTML), dropped connections, slow answers, and
the ambiguous send (stored, yet the client sees an error).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from realm_alert_pipeline.core.sms_text import sms_segments, utf16_units

DEMO_ACCOUNT_SID = "AC" + "0" * 31 + "1"
DEMO_AUTH_TOKEN = "emulator-auth-token"
DEMO_FROM_NUMBER = "+15005550006"

API_VERSION = "2010-04-01"
MAX_BODY_UNITS = 1600
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

# Magic numbers of Twilio's test credentials (specs/twilio.md section 7).
_MAGIC_FROM_INVALID = "+15005550001"  # 21212
_MAGIC_FROM_NOT_OWNED = "+15005550007"  # 21606
_MAGIC_FROM_QUEUE_FULL = "+15005550008"  # 429 / 21611
_MAGIC_TO = {
    "+15005550001": (21211, "The 'To' number {to} is not a valid phone number."),
    "+15005550002": (
        21612,
        "The 'To' phone number: {to}, is not currently reachable using the 'From' phone number: "
        "{sender} via SMS.",
    ),
    "+15005550003": (
        21408,
        "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}.",
    ),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "To number: {to}, is not a mobile number"),
}

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_SHORT_CODE = re.compile(r"^\d{3,6}$")
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_MESSAGES_PATH = re.compile(rf"^/{API_VERSION}/Accounts/([^/]+)/Messages\.json$")
_MESSAGE_PATH = re.compile(rf"^/{API_VERSION}/Accounts/([^/]+)/Messages/([^/]+)\.json$")
_PAGE_TOKEN_PREFIX = "PA"

_DEFAULT_FAULT_TEXT = {
    429: (20429, "Too Many Requests"),
    500: (20500, "An internal server error has occurred"),
    502: (20500, "Bad Gateway"),
    503: (20503, "Service Unavailable"),
    504: (20500, "Gateway Timeout"),
}


@dataclass
class TwilioFault:
    """One injected failure on POST .../Messages.json (or `path` substring), after `after` matching
    requests, for `times` requests.

    kind: "status"          -> do NOT accept; answer `status` with `body` (a 4-key JSON error built from
                               `code`/`message` when body is None; HTML for 502 when html=True) and
                               `retry_after` header if set;
          "accept_then_status" -> accept and store the message, then answer `status` (ambiguous send);
          "accept_then_drop"   -> accept and store, then close the connection without a response;
          "drop"            -> close the connection without storing anything;
          "delay"           -> sleep `delay_s`, then behave normally.

    `method` limits the fault to one HTTP method ("" = any), so a list issued to reconcile an
    ambiguous send does not consume a fault meant for creates. A request matches when its method
    matches and `path` is a substring of its path.
    """

    kind: str
    path: str = "/Messages.json"
    status: int = 500
    code: int | None = None
    message: str | None = None
    body: str | None = None
    html: bool = False
    retry_after: int | None = None
    after: int = 0
    times: int = 1
    delay_s: float = 0.0
    method: str = "POST"

    _KINDS = ("status", "accept_then_status", "accept_then_drop", "drop", "delay")

    def __post_init__(self) -> None:
        if self.kind not in self._KINDS:
            raise ValueError(f"TwilioFault kind {self.kind!r} is not one of {', '.join(self._KINDS)}")


@dataclass
class _ArmedFault:
    fault: TwilioFault
    seen: int = 0
    fired: int = 0


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] | None = None


class _TwilioError(Exception):
    """A Twilio API error answer (legacy shape)."""

    def __init__(self, status: int, code: int, message: str, **extra: object) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def reply(self) -> _Reply:
        return _error_reply(self.status, self.code, self.message, **self.extra)


class TwilioEmulator:
    """Messages create/list/fetch with Basic auth, the error catalogue and the magic test numbers."""

    def __init__(
        self,
        *,
        account_sid: str = DEMO_ACCOUNT_SID,
        auth_token: str = DEMO_AUTH_TOKEN,
        owned_numbers: tuple[str, ...] = (DEMO_FROM_NUMBER,),
        api_keys: dict[str, str] | None = None,  # SK... -> secret
        host: str = "127.0.0.1",
        port: int = 0,
        on_message: Callable[[dict], None] | None = None,
    ) -> None:
        self.account_sid = account_sid
        self._auth_token = auth_token
        self.owned_numbers = tuple(owned_numbers)
        self._api_keys = dict(api_keys or {})
        self._host = host
        self._port = port
        self._on_message = on_message
        self._lock = threading.Lock()
        self._messages: list[dict] = []  # oldest first
        self._faults: list[_ArmedFault] = []
        self._post_count = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    def __repr__(self) -> str:
        state = self.base_url if self._server else "stopped"
        return f"TwilioEmulator({state}, account={self.account_sid})"

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> TwilioEmulator:
        if self._server is not None:
            return self
        server = _Server((self._host, self._port), _Handler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="twilio-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        # Keep-alive connections outlive serve_forever(); close them so a stopped emulator answers nothing.
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> TwilioEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """e.g. "http://127.0.0.1:PORT" (what TWILIO_API_BASE_URL is set to)."""
        if self._server is None:
            raise RuntimeError("the Twilio emulator is not running: call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    # --- what tests and users read and control ---------------------------------------------------

    @property
    def messages(self) -> list[dict]:
        """Every accepted message, as its JSON resource (oldest first)."""
        with self._lock:
            return [dict(m) for m in self._messages]

    def inject(self, fault: TwilioFault) -> None:
        with self._lock:
            self._faults.append(_ArmedFault(replace(fault)))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def clear_messages(self) -> None:
        with self._lock:
            self._messages.clear()

    @property
    def post_count(self) -> int:
        """How many create requests arrived (accepted or not)."""
        with self._lock:
            return self._post_count

    def set_status(
        self, sid: str, status: str, *, error_code: int | None = None, error_message: str | None = None
    ) -> dict:
        """Move a stored message along its lifecycle (e.g. "delivered", or "undelivered" with 30003)."""
        with self._lock:
            message = self._find(sid)
            if message is None:
                raise KeyError(sid)
            now = _rfc2822(_now())
            message.update(
                status=status, error_code=error_code, error_message=error_message, date_updated=now
            )
            if status in ("sent", "delivered", "undelivered") and message["date_sent"] is None:
                message["date_sent"] = now
            return dict(message)

    # --- request handling (called from server threads) -------------------------------------------

    def _handle(self, handler: _Handler, method: str) -> None:
        split = urlsplit(handler.path)
        path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        form = _parse_form(handler) if method == "POST" else {}
        is_create = method == "POST" and _MESSAGES_PATH.match(path) is not None
        fault = self._arm(method, path, is_create)

        if fault is not None and fault.kind == "drop":
            handler.drop_connection()
            return
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.delay_s)
        if fault is not None and fault.kind == "status":
            handler.send_reply(_fault_reply(fault))
            return

        reply, created = self._route(handler, method, path, query, form)
        if created is not None and fault is not None and fault.kind == "accept_then_drop":
            handler.drop_connection()
            return
        if created is not None and fault is not None and fault.kind == "accept_then_status":
            reply = _fault_reply(fault)
        handler.send_reply(reply)

    def _arm(self, method: str, path: str, is_create: bool) -> TwilioFault | None:
        """Count the request and return the fault it triggers, if any (the first armed one matching)."""
        with self._lock:
            if is_create:
                self._post_count += 1
            for armed in self._faults:
                fault = armed.fault
                if fault.method and fault.method.upper() != method:
                    continue
                if fault.path not in path:
                    continue
                armed.seen += 1
                if armed.seen > fault.after and armed.fired < fault.times:
                    armed.fired += 1
                    return fault
        return None

    def _route(
        self, handler: _Handler, method: str, path: str, query: dict, form: dict
    ) -> tuple[_Reply, dict | None]:
        list_match = _MESSAGES_PATH.match(path)
        one_match = _MESSAGE_PATH.match(path)
        if not list_match and not one_match:
            return _not_found(path), None
        try:
            self._authenticate(handler.headers.get("Authorization"))
            account = (list_match or one_match).group(1)
            if account != self.account_sid:
                return _not_found(path), None
            if list_match and method == "POST":
                created = self._create(form)
                return _json_reply(201, created), created
            if list_match and method == "GET":
                return _json_reply(200, self._list(path, query)), None
            if one_match and method == "GET":
                return _json_reply(200, self._fetch(path, one_match.group(2))), None
            if one_match and method == "POST":
                return _json_reply(200, self._update(path, one_match.group(2), form)), None
            if one_match and method == "DELETE":
                self._delete(path, one_match.group(2))
                return _Reply(204), None
            raise _TwilioError(405, 20004, "Method not allowed")
        except _TwilioError as error:
            return error.reply(), None

    def _authenticate(self, header: str | None) -> None:
        """Basic auth: the account SID with its auth token, or an API key SID (SK...) with its secret."""
        username, password = _basic_credentials(header)
        if username == self.account_sid and password == self._auth_token:
            return
        if username is not None and username.startswith("SK") and self._api_keys.get(username) == password:
            return
        raise _TwilioError(401, 20003, "Authenticate", detail="Your AccountSid or AuthToken was incorrect.")

    def _create(self, form: dict[str, list[str]]) -> dict:
        """Validate in Twilio's order (specs 9.3), then store and return the new Message resource."""
        to = _first(form, "To")
        sender = _first(form, "From")
        service = _first(form, "MessagingServiceSid")
        body = _first(form, "Body")
        has_media = bool(_first(form, "MediaUrl") or _first(form, "ContentSid"))

        if not to:
            raise _TwilioError(400, 21604, "A 'To' phone number is required.")
        if not _E164.match(to) or (sender and to == sender):
            raise _TwilioError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not sender and not service:
            raise _TwilioError(400, 21603, "A 'From' phone number is required.")
        if sender:
            self._check_sender(sender)
        if service and not _MESSAGING_SERVICE_SID.match(service):
            raise _TwilioError(400, 21701, f"The Messaging Service Sid {service} is invalid.")
        if not body and not has_media:
            raise _TwilioError(400, 21602, "Message body is required.")
        if utf16_units(body or "") > MAX_BODY_UNITS:
            raise _TwilioError(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        validity = _first(form, "ValidityPeriod")
        if validity is not None and not (validity.isdigit() and 1 <= int(validity) <= 36000):
            raise _TwilioError(400, 90007, "The ValidityPeriod must be between 1 and 36000 seconds.")
        if to in _MAGIC_TO:
            code, text = _MAGIC_TO[to]
            raise _TwilioError(400, code, text.format(to=to, sender=sender or service))
        if sender == _MAGIC_FROM_QUEUE_FULL:
            raise _TwilioError(429, 21611, "SMS queue is full.")

        message = self._new_message(to=to, sender=sender, service=service, body=body or "")
        with self._lock:
            self._messages.append(message)
        if self._on_message is not None:
            self._on_message(dict(message))
        return dict(message)

    def _check_sender(self, sender: str) -> None:
        well_formed = _E164.match(sender) or _SHORT_CODE.match(sender) or _ALPHANUMERIC_SENDER.match(sender)
        if sender == _MAGIC_FROM_INVALID or not well_formed:
            raise _TwilioError(
                400,
                21212,
                f"The 'From' number {sender} is not a valid phone number, shortcode, or alphanumeric sender ID.",
            )
        if sender == _MAGIC_FROM_QUEUE_FULL:
            return  # "owned" by every test account; the queue-full answer comes after the other checks
        if sender == _MAGIC_FROM_NOT_OWNED or sender not in self.owned_numbers:
            raise _TwilioError(
                400,
                21606,
                f"The From phone number {sender} is not a valid, SMS-capable inbound phone number "
                "or short code for your account.",
            )

    def _new_message(self, *, to: str, sender: str | None, service: str | None, body: str) -> dict:
        sid = "SM" + uuid.uuid4().hex
        now = _rfc2822(_now())
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
        # With a Messaging Service and no From, Twilio has not picked a sender (nor counted) yet.
        pending_sender = service is not None and sender is None
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None if service else now,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": None if pending_sender else sender,
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": "0" if pending_sender else str(sms_segments(body)[2]),
            "price": None,
            "price_unit": None,
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {"media": uri.removesuffix(".json") + "/Media.json"},
            "to": to,
            "uri": uri,
        }

    def _list(self, path: str, query: dict[str, list[str]]) -> dict:
        """A page of Messages, newest first, filtered by To/From/DateSent(</>); relative page URIs."""
        page_size = _int_param(query, "PageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        page = _int_param(query, "Page", 0, 0, 10**9)
        to, sender = _first(query, "To"), _first(query, "From")
        sent_on = _date_filter(query, "DateSent")
        sent_before = _date_filter(query, "DateSent<")
        sent_after = _date_filter(query, "DateSent>")
        with self._lock:
            newest_first = [dict(m) for m in reversed(self._messages)]

        def keep(message: dict) -> bool:
            if to is not None and message["to"] != to:
                return False
            if sender is not None and message["from"] != sender:
                return False
            if sent_on or sent_before or sent_after:
                sent = _parse_rfc2822(message["date_sent"])
                if sent is None:
                    return False
                if sent_on and not _same_day_or_instant(sent, sent_on, "="):
                    return False
                if sent_before and not _same_day_or_instant(sent, sent_before, "<"):
                    return False
                if sent_after and not _same_day_or_instant(sent, sent_after, ">"):
                    return False
            return True

        matching = [m for m in newest_first if keep(m)]
        token = _first(query, "PageToken")
        start_index = page * page_size
        if token and token.startswith(_PAGE_TOKEN_PREFIX):
            # The token names the last message of the previous page, so new messages do not shift pages.
            sids = [m["sid"] for m in matching]
            last_sid = token[len(_PAGE_TOKEN_PREFIX) :]
            if last_sid in sids:
                start_index = sids.index(last_sid) + 1
        records = matching[start_index : start_index + page_size]
        filters = [(k, v) for k, v in _flat(query) if k not in ("Page", "PageSize", "PageToken")]

        def page_uri(number: int, last_sid: str | None = None) -> str:
            params = [*filters, ("PageSize", str(page_size)), ("Page", str(number))]
            if last_sid:
                params.append(("PageToken", _PAGE_TOKEN_PREFIX + last_sid))
            return f"{path}?{urlencode(params)}"

        has_next = start_index + page_size < len(matching)
        return {
            "messages": records,
            "page": page,
            "page_size": page_size,
            "start": start_index,
            "end": start_index + max(len(records) - 1, 0),
            "uri": page_uri(page, token[len(_PAGE_TOKEN_PREFIX) :] if token else None),
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1, records[-1]["sid"]) if has_next and records else None,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
        }

    def _fetch(self, path: str, sid: str) -> dict:
        with self._lock:
            message = self._find(sid)
            if message is None:
                raise _not_found_error(path)
            return dict(message)

    def _update(self, path: str, sid: str, form: dict[str, list[str]]) -> dict:
        """Redact (Body="") or cancel a scheduled message (Status=canceled)."""
        with self._lock:
            message = self._find(sid)
            if message is None:
                raise _not_found_error(path)
            body, status = _first(form, "Body"), _first(form, "Status")
            if body is not None:
                if body != "":
                    raise _TwilioError(400, 20001, "Body can only be set to an empty string (redaction).")
                message["body"] = ""
            if status is not None:
                if status != "canceled" or message["status"] != "scheduled":
                    raise _TwilioError(400, 20001, "Only a scheduled message can be canceled.")
                message["status"] = "canceled"
            message["date_updated"] = _rfc2822(_now())
            return dict(message)

    def _delete(self, path: str, sid: str) -> None:
        with self._lock:
            message = self._find(sid)
            if message is None:
                raise _not_found_error(path)
            self._messages.remove(message)

    def _find(self, sid: str) -> dict | None:
        return next((m for m in self._messages if m["sid"] == sid), None)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    emulator: TwilioEmulator

    def handle_error(self, request, client_address) -> None:
        # A client that gave up (timeout) or a dropped connection is part of the game, not an error.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server_version = "twilio-emulator"
    protocol_version = "HTTP/1.1"
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    timeout = 60  # an idle keep-alive connection is closed after this many seconds

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle + delayed ACK add ~40 ms per request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        emulator = self.server.emulator
        with emulator._lock:
            emulator._connections.add(self.connection)

    def finish(self) -> None:
        emulator = self.server.emulator
        with emulator._lock:
            emulator._connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.emulator._handle(self, "GET")

    def do_POST(self) -> None:  # noqa: N802
        self.server.emulator._handle(self, "POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self.server.emulator._handle(self, "DELETE")

    def send_reply(self, reply: _Reply) -> None:
        self.send_response(reply.status)
        if reply.status != 204:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in (reply.headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if reply.body:
            self.wfile.write(reply.body)

    def drop_connection(self) -> None:
        """Close the socket without a byte of response: the client cannot know what happened."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet by default
        pass


# --- helpers -------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _rfc2822(moment: datetime) -> str:
    """Twilio's date format, e.g. "Thu, 24 Aug 2023 05:01:45 +0000" (ISO 8601 would parse as None)."""
    return format_datetime(moment.astimezone(UTC))


def _parse_rfc2822(value: str | None) -> datetime | None:
    if not value:
        return None
    return parsedate_to_datetime(value).astimezone(UTC)


def _parse_form(handler: _Handler) -> dict[str, list[str]]:
    length = int(handler.headers.get("Content-Length") or 0)
    raw = handler.rfile.read(length) if length > 0 else b""
    text = raw.decode("utf-8", errors="replace")
    return parse_qs(text, keep_blank_values=True, encoding="utf-8", errors="replace")


def _first(values: dict[str, list[str]], key: str) -> str | None:
    found = values.get(key)
    return found[0] if found else None


def _flat(values: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(key, value) for key, items in values.items() for value in items]


def _int_param(query: dict[str, list[str]], key: str, default: int, low: int, high: int) -> int:
    raw = _first(query, key)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise _TwilioError(400, 20001, f"Invalid {key}: {raw}")
    return max(low, min(high, int(raw)))


def _date_filter(query: dict[str, list[str]], key: str) -> date | datetime | None:
    """`YYYY-MM-DD` (day precision, as documented) or a full `...T...Z` timestamp (what the SDK sends)."""
    raw = _first(query, key)
    if not raw:
        return None
    try:
        if "T" in raw:
            return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)
        return date.fromisoformat(raw)
    except ValueError:
        raise _TwilioError(400, 20001, f"Invalid {key}: {raw}") from None


def _same_day_or_instant(sent: datetime, bound: date | datetime, op: str) -> bool:
    """DateSent= matches the day (documented precision; the SDK sends even a date as `...T00:00:00Z`).
    DateSent< / DateSent> read as "on or before" / "on or after" the timestamp or day."""
    if op == "=":
        return sent.date() == (bound.date() if isinstance(bound, datetime) else bound)
    if isinstance(bound, datetime):
        left, right = sent, bound
    else:
        left, right = sent.date(), bound
    return left <= right if op == "<" else left >= right


def _basic_credentials(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.startswith("Basic "):
        return None, None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else (None, None)


def _json_reply(status: int, payload: dict) -> _Reply:
    return _Reply(status, json.dumps(payload).encode("utf-8"))


def _error_reply(status: int, code: int, message: str, **extra: object) -> _Reply:
    payload = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
        **extra,
    }
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else None
    return _Reply(status, json.dumps(payload, sort_keys=True).encode("utf-8"), headers=headers)


def _not_found_error(path: str) -> _TwilioError:
    return _TwilioError(404, 20404, f"The requested resource {path} was not found")


def _not_found(path: str) -> _Reply:
    return _not_found_error(path).reply()


def _fault_reply(fault: TwilioFault) -> _Reply:
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    if fault.body is not None:
        content_type = "text/html" if fault.html else "application/json"
        return _Reply(fault.status, fault.body.encode("utf-8"), content_type, headers)
    if fault.html:
        phrase = _reason(fault.status)
        page = (
            f"<html><head><title>{fault.status} {phrase}</title></head><body><h1>{phrase}</h1></body></html>"
        )
        return _Reply(fault.status, page.encode("utf-8"), "text/html", headers)
    default_code, default_text = _DEFAULT_FAULT_TEXT.get(fault.status, (fault.status, _reason(fault.status)))
    reply = _error_reply(fault.status, fault.code or default_code, fault.message or default_text)
    reply.headers = {**(reply.headers or {}), **headers}
    return reply


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def serve_forever(port: int = 0) -> int:
    """`realm-alerts emulate twilio`: serve on 127.0.0.1 until SIGINT/SIGTERM; print each message sent."""
    stopping = threading.Event()

    def show(message: dict) -> None:
        print(
            f"SMS {message['sid']} to {message['to']} ({message['num_segments']} segment(s)): {message['body']}",
            flush=True,
        )

    previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with TwilioEmulator(port=port, on_message=show) as emulator:
            print(
                f"Twilio emulator: {emulator.base_url} (account {emulator.account_sid}, from {DEMO_FROM_NUMBER})",
                flush=True,
            )
            print(
                f"  set TWILIO_API_BASE_URL={emulator.base_url} TWILIO_ACCOUNT_SID={emulator.account_sid} "
                f"TWILIO_FROM_NUMBER={DEMO_FROM_NUMBER} and TWILIO_AUTH_TOKEN to the emulator's demo token "
                "(DEMO_AUTH_TOKEN in realm_alert_pipeline/local/twilio_emulator.py)",
                flush=True,
            )
            while not stopping.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("Twilio emulator stopped", flush=True)
    return 0
