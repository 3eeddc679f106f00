"""App Services Admin API v3.0 client: session handling, retries and log paging (specs/admin-api.md 1-5, 7, 10).

Quirks handled here:
- login (`POST /auth/providers/mongodb-cloud/login`) returns an access token good for 30 minutes and a
  refresh token; `POST /auth/session` with the refresh token answers 201 with a new access token only;
- an expired access token gets 401 `InvalidSession`; we refresh once, log in once if the refresh is
  refused, and retry the request once; never more per request;
- the session lives in the `Control` collection so runs and processes share one login;
- `errors_only` filters by presence (never send `errors_only=false`); `start_date` is exclusive,
  `end_date` inclusive; pages are followed through `nextEndDate`/`nextSkip`;
- 429 and transient 5xx are retried with backoff (or Retry-After); error bodies may lack
  `error_code` or not be JSON at all.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg
import requests
from pydantic import PrivateAttr

from realm_alert_pipeline.constants import (
    ACCESS_TOKEN_REFRESH_MARGIN,
    CONTROL_COLLECTION,
    DEFAULT_ADMIN_API_BASE_URL,
)
from realm_alert_pipeline.core.backoff import parse_retry_after, retry_delay
from realm_alert_pipeline.core.http_errors import (
    ErrorBody,
    describe_failure,
    excerpt,
    is_config_status,
    is_invalid_session,
    is_retryable_status,
    parse_error_body,
)
from realm_alert_pipeline.core.paging import (
    PagingError,
    PagingGuard,
    build_log_query,
    drop_repeated,
    entry_ids,
    next_page_params,
    page_entries,
)
from realm_alert_pipeline.resources.admin_session_store import (
    AdminSessionStore,
    SessionInfo,
    StoredSession,
    key_fingerprint,
)
from realm_alert_pipeline.resources.mongo import MongoResource

LOGIN_PATH = "/auth/providers/mongodb-cloud/login"
SESSION_PATH = "/auth/session"
_NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
_REDACTED = "[redacted]"
# Shorter strings are not redacted: replacing them could garble an unrelated message.
_MIN_SECRET_LENGTH = 6
# Admin API tokens are JWTs: three base64url parts, the first always starting with `eyJ` ('{"').
_JWT = re.compile(r"eyJ[\w-]*\.[\w-]+\.[\w-]+")

logger = dg.get_dagster_logger(__name__)


class AdminApiError(Exception):
    """A failed Admin API call: `status` (HTTP, or None for a network failure), `error_code`
    (may be None), `message`, `link`. Never carries a key or token."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        link: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_code = error_code
        self.link = link

    def __str__(self) -> str:
        return self.message


class AdminApiConfigError(AdminApiError):
    """Not worth retrying: rejected API keys, 403 (no access), 404 (unknown group/app), 400."""


@dataclass(frozen=True)
class SessionStatus:
    """What ensure_session did, without any secret. action: "reused" | "refreshed" | "logged_in"."""

    action: str
    access_expires_at: datetime
    user_id: str | None


@dataclass
class _RenewalBudget:
    """At most one refresh and one login for one API call: a server that keeps refusing cannot loop us."""

    refreshed: bool = False
    logged_in: bool = False


@dataclass(frozen=True)
class _Reply:
    response: requests.Response
    attempts: int


class AdminApiResource(dg.ConfigurableResource):
    """App Services Admin API v3.0 client over requests, its session kept in the `Control` collection."""

    public_key: str
    private_key: str
    group_id: str
    app_id: str
    mongo: MongoResource
    base_url: str = DEFAULT_ADMIN_API_BASE_URL
    timeout_s: float = 30.0
    max_attempts: int = 5
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    # Upper bound on a server's Retry-After, so one answer cannot stall a run for hours.
    retry_after_cap_s: float = 60.0

    _http: requests.Session | None = PrivateAttr(default=None)
    _session: StoredSession | None = PrivateAttr(default=None)
    # Every token this instance has held or read from Control: an error body may echo an old one.
    _seen_tokens: set[str] = PrivateAttr(default_factory=set)

    # ----- public API -------------------------------------------------------------------------

    def ensure_session(self) -> SessionStatus:
        """Make sure Control holds a valid access token for this app (reuse / refresh / login)."""
        session, action = self._valid_session(_RenewalBudget())
        return SessionStatus(
            action=action, access_expires_at=session.access_expires_at, user_id=session.user_id
        )

    def check_login(self) -> SessionStatus:
        """Log in afresh (ignoring any stored session) to prove the key pair works; stores the new session.

        Raises AdminApiConfigError when the keys are rejected.
        """
        session = self._login()
        return SessionStatus(
            action="logged_in", access_expires_at=session.access_expires_at, user_id=session.user_id
        )

    def session_info(self) -> SessionInfo | None:
        """The stored session's public facts (user, last login/refresh, expiry), never a token."""
        return self._store().info()

    def iter_log_pages(
        self,
        start: datetime | None,
        end: datetime | None,
        *,
        errors_only: bool = True,
        types: list[str] | None = None,
    ) -> Iterator[list[dict]]:
        """Yield each page of log entries (newest first) with start exclusive, end inclusive.

        `start`/`end` must be timezone-aware (any offset; sent as UTC). Raises ValueError at once
        for naive datetimes or an empty window. Pages are fetched lazily, one request per page.
        """
        params = build_log_query(start, end, errors_only=errors_only, types=types)
        return self._pages(params)

    def iter_error_logs(self, start: datetime, end: datetime) -> Iterator[dict]:
        """Every error entry in (start, end], streamed page by page."""
        pages = self.iter_log_pages(start, end, errors_only=True)
        return (entry for page in pages for entry in page)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close()

    def close(self) -> None:
        """Release the HTTP connection pool (the resource opens a new one if used again)."""
        if self._http is not None:
            self._http.close()
            self._http = None

    # ----- repr without secrets ---------------------------------------------------------------

    def __repr_args__(self):
        # pydantic builds repr()/str() from this; the keys and the Mongo URI (may hold a password) stay out.
        yield "group_id", self.group_id
        yield "app_id", self.app_id
        yield "base_url", self.base_url
        yield "mongo_database", self.mongo.database

    # ----- paging -----------------------------------------------------------------------------

    def _logs_path(self) -> str:
        return f"/groups/{self.group_id}/apps/{self.app_id}/logs"

    def _pages(self, params: dict[str, str]) -> Iterator[list[dict]]:
        path = self._logs_path()
        guard = PagingGuard(params)
        previous_ids: set[str] = set()
        while params is not None:
            body = self._authorized_json("GET", path, params)
            try:
                entries = page_entries(body)
                following = next_page_params(params, body)
                guard.check(entries, following)
            except PagingError as exc:
                raise self._error(AdminApiError, f"Admin API GET {path}: {exc}", status=200) from None
            fresh = drop_repeated(entries, previous_ids)
            previous_ids = entry_ids(entries)
            logger.debug(
                "Admin API logs page %d: %d entries (%d repeated), %s",
                guard.pages,
                len(entries),
                len(entries) - len(fresh),
                "last page" if following is None else f"next end_date={following['end_date']}",
            )
            yield fresh
            params = following

    # ----- authorized calls -------------------------------------------------------------------

    def _authorized_json(self, method: str, path: str, params: dict[str, str] | None = None) -> dict:
        """One authorized call returning a JSON object, renewing the session at most once on a 401."""
        budget = _RenewalBudget()
        session, _ = self._valid_session(budget)
        reply = self._send(method, path, params=params, bearer=session.access_token)
        if reply.response.status_code == 401:
            body = self._error_body(reply.response)
            if is_invalid_session(401, body):
                logger.info(
                    "Admin API %s %s: session rejected (%s); renewing once", method, path, body.message
                )
                self._renew(session, budget)
                reply = self._send(method, path, params=params, bearer=self._session.access_token)
        if not 200 <= reply.response.status_code < 300:
            self._raise_for(method, path, reply)
        return self._json_object(method, path, reply.response)

    def _valid_session(self, budget: _RenewalBudget) -> tuple[StoredSession, str]:
        """A session whose access token is not about to expire: held, stored, refreshed or new."""
        now = datetime.now(UTC)
        if self._session is not None and not self._session.needs_refresh(now, ACCESS_TOKEN_REFRESH_MARGIN):
            return self._session, "reused"
        stored = self._store().load()
        if stored is not None:
            self._seen_tokens.update((stored.access_token, stored.refresh_token))
        if stored is not None and not stored.needs_refresh(now, ACCESS_TOKEN_REFRESH_MARGIN):
            self._session = stored
            return stored, "reused"
        if stored is None:
            budget.logged_in = True
            return self._login(), "logged_in"
        return self._renew(stored, budget)

    def _renew(self, session: StoredSession, budget: _RenewalBudget) -> tuple[StoredSession, str]:
        """Refresh, or log in when the refresh is refused; each at most once per call."""
        if not budget.refreshed:
            budget.refreshed = True
            refreshed = self._refresh(session)
            if refreshed is not None:
                return refreshed, "refreshed"
        if not budget.logged_in:
            budget.logged_in = True
            return self._login(), "logged_in"
        raise self._error(
            AdminApiError,
            "Admin API session could not be renewed: the server rejected a freshly issued access token",
            status=401,
        )

    def _login(self) -> StoredSession:
        issued_at = datetime.now(UTC)
        reply = self._send(
            "POST", LOGIN_PATH, json_body={"username": self.public_key, "apiKey": self.private_key}
        )
        status = reply.response.status_code
        if not 200 <= status < 300:
            if 400 <= status < 500 and not is_retryable_status(status):
                raise self._login_refused(reply.response)
            self._raise_for("POST", LOGIN_PATH, reply)
        payload = self._json_object("POST", LOGIN_PATH, reply.response)
        access, refresh = payload.get("access_token"), payload.get("refresh_token")
        if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
            raise self._error(
                AdminApiError, "Admin API login answered without access_token/refresh_token", status=status
            )
        self._session = self._store().save_login(
            access_token=access,
            refresh_token=refresh,
            user_id=_optional_str(payload.get("user_id")),
            device_id=_optional_str(payload.get("device_id")),
            issued_at=issued_at,
        )
        logger.info("Admin API logged in (user %s)", self._session.user_id)
        return self._session

    def _login_refused(self, response: requests.Response) -> AdminApiConfigError:
        """A 4xx on login: never retried, since the same keys or URL will be refused again."""
        status = response.status_code
        body = self._error_body(response)
        detail = body.message if body.form == "json" else describe_failure(status, body)
        if status in (401, 403):
            message = (
                f"Admin API login rejected the API key pair (HTTP {status}): {detail};"
                " check ATLAS_PUBLIC_KEY / ATLAS_PRIVATE_KEY"
            )
        elif status == 404:
            message = (
                f"Admin API login failed (HTTP 404): {detail}; check ADMIN_API_BASE_URL ({self.base_url})"
            )
        else:
            message = f"Admin API login failed (HTTP {status}): {detail}"
        return self._error(
            AdminApiConfigError, message, status=status, error_code=body.error_code, link=body.link
        )

    def _refresh(self, session: StoredSession) -> StoredSession | None:
        """A new access token from the refresh token; None when the server refuses (anything but 201)."""
        issued_at = datetime.now(UTC)
        reply = self._send("POST", SESSION_PATH, bearer=session.refresh_token)
        status = reply.response.status_code
        if status == 201:
            try:
                access = self._json_object("POST", SESSION_PATH, reply.response).get("access_token")
            except AdminApiError as exc:
                access = None
                logger.warning("Admin API refresh answered 201 with a bad body: %s", exc)
            if isinstance(access, str) and access:
                self._session = self._store().save_refresh(session, access_token=access, issued_at=issued_at)
                logger.info("Admin API session refreshed")
                return self._session
        else:
            body = self._error_body(reply.response)
            logger.info(
                "Admin API refresh refused (%s); logging in", self._redact(describe_failure(status, body))
            )
        return None

    # ----- transport --------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: dict | None = None,
        bearer: str | None = None,
    ) -> _Reply:
        """One request with retries for network errors, 429 and transient 5xx; other answers are returned."""
        self._check_settings()
        http = self._client()
        url = self.base_url.rstrip("/") + path
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = http.request(
                    method, url, params=params, json=json_body, headers=headers, timeout=self.timeout_s
                )
            except _NETWORK_ERRORS as exc:
                logger.debug(
                    "Admin API %s %s -> %s (attempt %d/%d)",
                    method,
                    path,
                    type(exc).__name__,
                    attempt,
                    self.max_attempts,
                )
                if attempt == self.max_attempts:
                    raise self._error(
                        AdminApiError,
                        f"Admin API {method} {path} failed after {attempt} attempt{'s' * (attempt > 1)}:"
                        f" {type(exc).__name__}: {excerpt(str(exc), 200)}",
                    ) from exc
                self._wait(method, path, attempt, type(exc).__name__, None)
                continue
            status = response.status_code
            logger.debug(
                "Admin API %s %s -> %d (attempt %d/%d)", method, path, status, attempt, self.max_attempts
            )
            if is_retryable_status(status) and attempt < self.max_attempts:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                response.close()
                self._wait(method, path, attempt, f"HTTP {status}", retry_after)
                continue
            return _Reply(response, attempt)
        raise AssertionError("unreachable: the loop returns or raises")

    def _wait(self, method: str, path: str, attempt: int, reason: str, retry_after: float | None) -> None:
        delay = retry_delay(
            attempt,
            retry_after,
            base_s=self.backoff_base_s,
            cap_s=self.backoff_cap_s,
            retry_after_cap_s=self.retry_after_cap_s,
        )
        logger.warning(
            "Admin API %s %s -> %s; retrying in %.2f s (attempt %d/%d)",
            method,
            path,
            reason,
            delay,
            attempt,
            self.max_attempts,
        )
        time.sleep(delay)

    def _raise_for(self, method: str, path: str, reply: _Reply) -> None:
        status = reply.response.status_code
        body = self._error_body(reply.response)
        tried = f" after {reply.attempts} attempts" if reply.attempts > 1 else ""
        message = f"Admin API {method} {path} failed{tried}: {describe_failure(status, body)}"
        # A 401 that no new token can cure (not "invalid session") means the key lacks access.
        no_access = status == 401 and not is_invalid_session(status, body)
        kind = AdminApiConfigError if is_config_status(status) or no_access else AdminApiError
        raise self._error(kind, message, status=status, error_code=body.error_code, link=body.link)

    def _error_body(self, response: requests.Response) -> ErrorBody:
        # Redacted before parsing: cutting a long message first could leave half a secret behind.
        return parse_error_body(response.status_code, self._redact(response.text))

    def _json_object(self, method: str, path: str, response: requests.Response) -> dict:
        status = response.status_code
        try:
            payload = response.json()
        except ValueError:
            content_type = response.headers.get("Content-Type", "no Content-Type")
            raise self._error(
                AdminApiError,
                f"Admin API {method} {path} answered HTTP {status} with a non-JSON body"
                f" ({content_type}): {excerpt(self._redact(response.text)) or '(empty)'}",
                status=status,
            ) from None
        if not isinstance(payload, dict):
            raise self._error(
                AdminApiError,
                f"Admin API {method} {path} answered HTTP {status} with a JSON {type(payload).__name__}"
                " where an object was expected",
                status=status,
            )
        return payload

    # ----- helpers ----------------------------------------------------------------------------

    def _client(self) -> requests.Session:
        if self._http is None:
            http = requests.Session()
            http.headers.update({"Accept": "application/json", "Content-Type": "application/json"})
            self._http = http
        return self._http

    def _store(self) -> AdminSessionStore:
        return AdminSessionStore(
            self.mongo.get_database()[CONTROL_COLLECTION],
            self.group_id,
            self.app_id,
            key_fingerprint(self.public_key, self.private_key),
        )

    def _check_settings(self) -> None:
        problems = []
        if self.max_attempts < 1:
            problems.append(f"max_attempts={self.max_attempts} must be at least 1")
        if self.timeout_s <= 0:
            problems.append(f"timeout_s={self.timeout_s} must be positive")
        if self.backoff_base_s < 0 or self.backoff_cap_s < 0 or self.retry_after_cap_s < 0:
            problems.append("backoff_base_s, backoff_cap_s and retry_after_cap_s must not be negative")
        if not self.base_url.startswith(("http://", "https://")):
            problems.append(f"base_url={self.base_url!r} is not an http(s) URL")
        if not self.public_key or not self.private_key:
            problems.append("the API key pair is empty: set ATLAS_PUBLIC_KEY and ATLAS_PRIVATE_KEY")
        if problems:
            raise AdminApiConfigError("invalid Admin API settings: " + "; ".join(problems))

    def _secrets(self) -> list[str]:
        secrets = [self.public_key, self.private_key, *self._seen_tokens]
        if self._session is not None:
            secrets += [self._session.access_token, self._session.refresh_token]
        return [s for s in secrets if isinstance(s, str) and len(s) >= _MIN_SECRET_LENGTH]

    def _redact(self, text: str) -> str:
        for secret in self._secrets():
            text = text.replace(secret, _REDACTED)
        return _JWT.sub(_REDACTED, text)  # a token of another process or session, echoed by the server

    def _error(self, kind: type[AdminApiError], message: str, **details) -> AdminApiError:
        """An exception whose message cannot leak a key or token, even if the server echoed one."""
        return kind(self._redact(message), **details)


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
