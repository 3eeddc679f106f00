"""A faithful local emulator of the App Services Admin API v3.0 (specs/admin-api.md sections 1-5 and 9).

A real HTTP server (http.server.ThreadingHTTPServer) on 127.0.0.1 in a background thread, serving login,
refresh, logout and the logs endpoint under /api/admin/v3.0 with the real service's quirks: error bodies
with and without `error_code`, 201 on refresh, refresh tokens rejected as access tokens without a code
(so clients must not refresh on it), every answer `Content-Type: application/json` exactly. The logs
query itself lives in `admin_api_logs_query`. Tests steer it through its clock, token expiry and
injected faults, and read back every request it answered.
"""

from __future__ import annotations

import base64
import dataclasses
import hmac
import json
import logging
import re
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from realm_alert_pipeline.constants import ACCESS_TOKEN_LIFETIME, LOG_RETENTION
from realm_alert_pipeline.local.admin_api_logs_query import (
    LogQueryError,
    LogStore,
    parse_log_query,
    to_epoch_ms,
)

DEMO_GROUP_ID = "6512a3f4c8e1b27d9a0f4c31"
DEMO_APP_ID = "6512a41bd3c5e8f01b7a2e90"
DEMO_PUBLIC_KEY = "emulator-public-key"
DEMO_PRIVATE_KEY = "emulator-private-key"

BASE_PATH = "/api/admin/v3.0"
REFRESH_TOKEN_LIFETIME = timedelta(days=60)
FAULT_KINDS = ("status", "expire_session", "delay", "drop")
# The host the real service puts in an error's `link` (the UI log view of the failed request).
_LINK_HOST = "https://services.cloud.mongodb.com"
_DEVICE_ID = "0" * 24

_LOGIN = re.compile(r"/auth/providers/([^/]+)/login")
_SESSION = re.compile(r"/auth/session")
_LOGS = re.compile(r"/groups/([^/]+)/apps/([^/]+)/logs")

# What the real service sends with its JSON answers (specs 1, S14); only Content-Type matters to clients.
_STANDARD_HEADERS = {
    "Content-Type": "application/json",
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "X-Frame-Options": "DENY",
    "Vary": "Origin",
}

log = logging.getLogger(__name__)


@dataclass
class Fault:
    """One injected failure. Matches requests whose path contains `path` ("" = any);
    lets `after` matching requests through first, then fires on the next `times` matching requests.

    kind: "status"  -> answer `status` with `body` (str, sent as-is; may be HTML or "") and `headers`
                       (e.g. {"Retry-After": "1"}, {"Content-Type": "text/html"});
          "expire_session" -> expire all access tokens now, so this request gets the real
                       401 {"error":"invalid session: access token expired","error_code":"InvalidSession",...};
          "delay"   -> sleep `delay_s` then answer normally;
          "drop"    -> close the connection without any response.

    Each fault counts every matching request on its own; when several are due on one request, the one
    injected first fires.
    """

    kind: str
    path: str = ""
    status: int = 500
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    after: int = 0
    times: int = 1
    delay_s: float = 0.0


@dataclass
class RecordedRequest:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]  # as parsed by urllib.parse.parse_qs(keep_blank_values=True)
    headers: dict[str, str]
    status: int  # what the emulator answered (0 for a dropped connection)


@dataclass
class _ArmedFault:
    fault: Fault
    seen: int = 0
    fired: int = 0


@dataclass
class _Token:
    kind: str  # "access" | "refresh"
    session_id: str
    expires_at: datetime
    revoked: bool = False


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _json_answer(status: int, payload: dict | str | None) -> _Answer:
    if payload is None:
        body = b""
    elif isinstance(payload, str):
        body = payload.encode("utf-8")  # already-serialised JSON (a logs page)
    else:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return _Answer(status, body, dict(_STANDARD_HEADERS))


def _error(status: int, message: str, error_code: str | None = None, link: str | None = None) -> _Answer:
    payload: dict[str, str] = {"error": message}
    if error_code is not None:
        payload["error_code"] = error_code
    if link is not None:
        payload["link"] = link
    return _json_answer(status, payload)


class AdminApiEmulator:
    """Serves login, refresh and the logs endpoint under /api/admin/v3.0 with the real quirks."""

    def __init__(
        self,
        *,
        public_key: str = DEMO_PUBLIC_KEY,
        private_key: str = DEMO_PRIVATE_KEY,
        group_id: str = DEMO_GROUP_ID,
        app_id: str = DEMO_APP_ID,
        logs: Iterable[dict] = (),
        retention: timedelta | None = LOG_RETENTION,
        access_token_lifetime: timedelta = ACCESS_TOKEN_LIFETIME,
        host: str = "127.0.0.1",
        port: int = 0,
        refresh_token_lifetime: timedelta = REFRESH_TOKEN_LIFETIME,
        hide_future: bool = False,
    ) -> None:
        self.public_key = public_key
        self.private_key = private_key
        self.group_id = group_id
        self.app_id = app_id
        self.retention = retention
        # With logs generated ahead of time, only what has "happened" by now() is served: a live feed.
        self.hide_future = hide_future
        self.access_token_lifetime = access_token_lifetime
        self.refresh_token_lifetime = refresh_token_lifetime
        self.user_id = secrets.token_hex(12)
        self._host = host
        self._port = port
        self._store = LogStore(logs)
        self._lock = threading.Lock()
        self._clock_offset = timedelta(0)
        self._tokens: dict[str, _Token] = {}
        self._faults: list[_ArmedFault] = []
        self._requests: list[RecordedRequest] = []
        self._login_count = 0
        self._refresh_count = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # no keys or tokens
        return f"AdminApiEmulator(url={self._url_or_none()!r}, group_id={self.group_id!r}, app_id={self.app_id!r})"

    # lifecycle
    def start(self) -> AdminApiEmulator:
        if self._server is not None:
            raise RuntimeError("the Admin API emulator is already running")
        server = _Server((self._host, self._port), _Handler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="admin-api-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> AdminApiEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """e.g. "http://127.0.0.1:PORT/api/admin/v3.0" (what ADMIN_API_BASE_URL is set to)."""
        url = self._url_or_none()
        if url is None:
            raise RuntimeError("the Admin API emulator is not running: call start() first")
        return url

    def _url_or_none(self) -> str | None:
        if self._server is None:
            return None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{BASE_PATH}"

    # the emulator's clock (token expiry, retention): real UTC now plus an offset tests control
    def now(self) -> datetime:
        return datetime.now(UTC) + self._clock_offset

    def advance_clock(self, delta: timedelta) -> None:
        with self._lock:
            self._clock_offset += delta

    # data
    def add_logs(self, entries: Iterable[dict]) -> None:
        """Add entries while running (late arrivals); entries are kept as given (strings as the API returns).

        An entry whose `_id` is already served replaces it. A bad entry (no `_id`, unparsable `started`)
        raises ValueError and nothing of the batch is added.
        """
        self._store.add(entries)

    @property
    def log_count(self) -> int:
        """How many entries are stored (served or not, whatever the retention)."""
        return len(self._store)

    @property
    def retained_log_count(self) -> int:
        """How many stored entries are inside the retention period (what a query can return)."""
        if self.retention is None:
            return len(self._store)
        return len(self._store) - self._store.count_older_than(to_epoch_ms(self.now() - self.retention))

    # sessions
    def expire_access_tokens(self) -> None:
        with self._lock:
            for token in self._tokens.values():
                if token.kind == "access":
                    token.revoked = True

    def revoke_refresh_tokens(self) -> None:
        with self._lock:
            for token in self._tokens.values():
                if token.kind == "refresh":
                    token.revoked = True

    # faults and observation
    def inject(self, fault: Fault) -> None:
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if fault.after < 0 or fault.times < 1 or fault.delay_s < 0:
            raise ValueError(f"fault needs after >= 0, times >= 1 and delay_s >= 0: {fault!r}")
        with self._lock:
            self._faults.append(_ArmedFault(dataclasses.replace(fault, headers=dict(fault.headers))))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request answered so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def login_count(self) -> int:
        """Login requests the emulator itself answered, whatever the outcome (not those a fault answered)."""
        return self._login_count

    @property
    def refresh_count(self) -> int:
        """POST /auth/session requests the emulator itself answered, whatever the outcome."""
        return self._refresh_count

    # request handling (called from the server's threads)
    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            chosen = None
            for armed in self._faults:
                if armed.fault.path not in path:
                    continue
                armed.seen += 1
                if chosen is None and armed.seen > armed.fault.after and armed.fired < armed.fault.times:
                    armed.fired += 1
                    chosen = armed.fault
            self._faults = [armed for armed in self._faults if armed.fired < armed.fault.times]
            return chosen

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _answer(self, method: str, path: str, query: dict[str, list[str]], headers, body: bytes) -> _Answer:
        if not path.startswith(BASE_PATH + "/"):
            return _error(404, "not found", "NotFound")
        route = path[len(BASE_PATH) :]
        if match := _LOGIN.fullmatch(route):
            return self._login(method, match.group(1), body) if method == "POST" else _method_not_allowed()
        if _SESSION.fullmatch(route):
            if method == "POST":
                return self._refresh(headers)
            if method == "DELETE":
                return self._logout(headers)
            return _method_not_allowed()
        if match := _LOGS.fullmatch(route):
            if method != "GET":
                return _method_not_allowed()
            return self._logs(match.group(1), match.group(2), query, headers)
        return _error(404, "not found", "NotFound")

    def _login(self, method: str, provider: str, body: bytes) -> _Answer:
        with self._lock:
            self._login_count += 1
        if provider != "mongodb-cloud":
            return _error(404, f"auth provider not found: {provider!r}", "AuthProviderNotFound")
        try:
            credentials = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, ValueError):
            return _error(400, "invalid request body: not JSON", "InvalidParameter")
        if not isinstance(credentials, dict):
            return _error(400, "invalid request body: expected a JSON object", "InvalidParameter")
        for name in ("username", "apiKey"):
            if not isinstance(credentials.get(name), str):
                return _error(400, f"invalid request body: '{name}' is required", "InvalidParameter")
        if not (
            hmac.compare_digest(credentials["username"].encode(), self.public_key.encode())
            and hmac.compare_digest(credentials["apiKey"].encode(), self.private_key.encode())
        ):
            return _error(
                401,
                "failed to authenticate with MongoDB Cloud API: You are not authorized for this resource.",
            )
        session_id = secrets.token_hex(12)
        refresh_token = self._issue("refresh", session_id, self.refresh_token_lifetime)
        access_token = self._issue("access", session_id, self.access_token_lifetime)
        return _json_answer(
            200,
            {
                "access_token": access_token,
                "refresh_token": refresh_token,
                "user_id": self.user_id,
                "device_id": _DEVICE_ID,
            },
        )

    def _refresh(self, headers) -> _Answer:
        with self._lock:
            self._refresh_count += 1
        failure = self._check_refresh_token(headers)
        if failure is not None:
            return failure
        session_id = self._tokens[_bearer(headers) or ""].session_id
        return _json_answer(
            201, {"access_token": self._issue("access", session_id, self.access_token_lifetime)}
        )

    def _logout(self, headers) -> _Answer:
        failure = self._check_refresh_token(headers)
        if failure is not None:
            return failure
        with self._lock:
            self._tokens[_bearer(headers) or ""].revoked = True
        return _json_answer(204, None)

    def _check_refresh_token(self, headers) -> _Answer | None:
        if headers.get("Authorization") is None:
            return _error(401, "invalid session: missing Authorization header", "InvalidSession")
        token = self._tokens.get(_bearer(headers) or "")
        if token is not None and token.kind == "access":
            return _error(401, "invalid refresh token: incorrect token type")
        if token is None or token.revoked or token.expires_at <= self.now():
            return _error(401, "invalid session: failed to find refresh token", "InvalidSession")
        return None

    def _logs(self, group_id: str, app_id: str, query, headers) -> _Answer:
        if headers.get("Authorization") is None:
            return _error(401, "invalid session: missing Authorization header", "InvalidSession")
        token = self._tokens.get(_bearer(headers) or "")
        if token is None:
            return _error(401, "invalid session: signature is invalid", "InvalidSession")
        if token.kind != "access":
            return _error(401, "invalid session: valid Issuer required")
        if token.revoked or token.expires_at <= self.now():
            link = f"{_LINK_HOST}/groups/{group_id}/apps/{app_id}/logs?co_id={secrets.token_hex(12)}"
            return _error(401, "invalid session: access token expired", "InvalidSession", link)
        if group_id != self.group_id or app_id != self.app_id:
            return _error(404, "app not found", "AppNotFound")
        try:
            log_query = parse_log_query(query)
        except LogQueryError as exc:
            return _error(400, str(exc), "InvalidParameter")
        now = self.now()
        cutoff = None if self.retention is None else to_epoch_ms(now - self.retention)
        latest = to_epoch_ms(now) if self.hide_future else None
        return _json_answer(200, self._store.query(log_query, not_before_ms=cutoff, not_after_ms=latest))

    def _issue(self, kind: str, session_id: str, lifetime: timedelta) -> str:
        issued_at = self.now()
        claims = {
            "baas_device_id": _DEVICE_ID,
            "baas_domain_id": self.app_id,
            "baas_id": secrets.token_hex(12),
            "baas_project_id": self.group_id,
            "exp": int((issued_at + lifetime).timestamp()),
            "iat": int(issued_at.timestamp()),
            "sub": self.user_id,
            "typ": kind,
        }
        if kind == "access":
            claims["iss"] = session_id
        token = ".".join(
            (
                _b64url(b'{"alg":"HS256","typ":"JWT"}'),
                _b64url(json.dumps(claims, separators=(",", ":")).encode()),
                _b64url(secrets.token_bytes(32)),
            )
        )
        with self._lock:
            self._tokens[token] = _Token(kind=kind, session_id=session_id, expires_at=issued_at + lifetime)
        return token


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _bearer(headers) -> str | None:
    scheme, _, token = (headers.get("Authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _method_not_allowed() -> _Answer:
    return _error(405, "method not allowed")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: AdminApiEmulator

    def __init__(self, *args, **kwargs) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def handle_error(self, request, client_address) -> None:
        # A client that gave up (timeout, closed socket) while a delayed answer was pending is expected.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        log.exception("admin api emulator: error serving %s", client_address)

    def close_connections(self) -> None:
        """End idle keep-alive connections too, so no handler thread outlives stop()."""
        with self._connections_lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a pooled requests.Session expects
    timeout = 60  # an idle keep-alive connection is closed after this long
    # Headers and body go out as two writes; with Nagle on, a keep-alive client waits ~40 ms for each.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def version_string(self) -> str:
        return "envoy"

    def log_message(self, format: str, *args) -> None:
        log.debug("admin api emulator: " + format, *args)

    def _handle(self) -> None:
        emulator = self.server.emulator
        split = urlsplit(self.path)
        path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        headers = dict(self.headers.items())
        body = self._read_body()
        recorded = RecordedRequest(self.command, path, query, headers, status=0)

        fault = emulator._take_fault(path)
        if fault is not None and fault.kind == "drop":
            emulator._record(recorded)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if fault is not None and fault.kind == "status":
            headers_out = {"Content-Type": "application/json"}
            for name, value in fault.headers.items():
                headers_out = {k: v for k, v in headers_out.items() if k.lower() != name.lower()}
                headers_out[name] = value
            answer = _Answer(fault.status, fault.body.encode("utf-8"), headers_out)
        else:
            if fault is not None and fault.kind == "delay":
                time.sleep(fault.delay_s)
            elif fault is not None and fault.kind == "expire_session":
                emulator.expire_access_tokens()
            try:
                answer = emulator._answer(self.command, path, query, self.headers, body)
            except Exception:
                log.exception("admin api emulator failed on %s %s", self.command, path)
                answer = _error(500, "internal emulator error")
        # Recorded before answering, so a client that has its response can already see its request.
        emulator._record(dataclasses.replace(recorded, status=answer.status))
        self._send(answer)

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            return self.rfile.read(int(length))
        except ValueError:
            self.close_connection = True
            return b""

    def _send(self, answer: _Answer) -> None:
        self.send_response(answer.status)
        sent_length = False
        for name, value in answer.headers.items():
            self.send_header(name, value)
            sent_length = sent_length or name.lower() == "content-length"
        if not sent_length:
            self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD" and answer.body:
            self.wfile.write(answer.body)


def load_logs_file(path: str | Path) -> list[dict]:
    """Read a JSON array of log entries; a ValueError names the file and what is wrong."""
    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read logs file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ValueError(f"logs file {path} is not valid JSON: {exc}") from None
    if not isinstance(entries, list):
        raise ValueError(
            f"logs file {path} must hold a JSON array of log entries, got {type(entries).__name__}"
        )
    return entries


def serve_forever(
    port: int = 0, logs_file: str | None = None, public_key: str | None = None, private_key: str | None = None
) -> int:
    """`realm-alerts emulate admin-api`: print the base URL on one line, serve until SIGINT/SIGTERM."""
    try:
        if logs_file:
            source, logs, live = str(logs_file), load_logs_file(Path(logs_file)), False
        else:
            source, logs, live = "the sample-log generator", _generated_live_logs(), True
        emulator = AdminApiEmulator(
            public_key=public_key or DEMO_PUBLIC_KEY,
            private_key=private_key or DEMO_PRIVATE_KEY,
            logs=logs,
            port=port,
            hide_future=live,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    stopping = threading.Event()
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[signum] = signal.signal(signum, lambda *_: stopping.set())
        except ValueError:  # not the main thread: rely on KeyboardInterrupt
            pass
    try:
        with emulator:
            print(f"Admin API emulator: {emulator.base_url}", flush=True)
            feed = "appearing as their start time passes" if live else "older than 10 days are not served"
            print(
                f"{emulator.log_count} log entries from {source} ({feed}). To point the pipeline at it:\n"
                f"  export ADMIN_API_BASE_URL={emulator.base_url}\n"
                f"  export ATLAS_PUBLIC_KEY={emulator.public_key} ATLAS_PRIVATE_KEY={emulator.private_key}\n"
                f"  export APP_SERVICES_GROUP_ID={emulator.group_id} APP_SERVICES_APP_ID={emulator.app_id}\n"
                "Ctrl-C stops it.",
                file=sys.stderr,
                flush=True,
            )
            while not stopping.wait(0.2):
                pass
    except KeyboardInterrupt:
        pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print("Admin API emulator stopped", file=sys.stderr, flush=True)
    return 0


def _generated_live_logs() -> list[dict]:
    """Realistic logs from 70 minutes ago to two days ahead; with hide_future they appear as time passes."""
    from realm_alert_pipeline.local.sample_logs import generate_sample_logs

    now = datetime.now(UTC)
    sample = generate_sample_logs(
        now - timedelta(minutes=70), now + timedelta(days=2), group_id=DEMO_GROUP_ID, app_id=DEMO_APP_ID
    )
    return sample.entries + sample.late_entries
