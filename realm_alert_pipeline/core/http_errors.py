"""Reading Admin API failures: the error envelope, its fallbacks, and which statuses are worth a retry.

The envelope is `{"error": ..., "error_code": ..., "link": ...}` with `error_code` and `link`
optional (many real errors have no code). Like realm-cli, an empty body falls back to the HTTP
status text and a non-JSON body (a proxy's HTML 503 page) to its raw text, cut short.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from http import HTTPStatus

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Not worth retrying: the request or the configuration is wrong and will stay wrong.
CONFIG_STATUSES = frozenset({400, 403, 404})
INVALID_SESSION_CODE = "InvalidSession"
INVALID_SESSION_PREFIX = "invalid session"
MAX_EXCERPT_CHARS = 120
MAX_MESSAGE_CHARS = 500

_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class ErrorBody:
    """What an error response said.

    `form`: "json" (the envelope), "empty", "text" (not JSON) or "other-json" (JSON without an
    error message); for the last two, `message` is a one-line excerpt of the body.
    """

    message: str
    error_code: str | None = None
    link: str | None = None
    form: str = "json"


def status_phrase(status: int) -> str:
    """ "Service Unavailable" for 503; "" for a status Python does not know."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def excerpt(text: str, limit: int = MAX_EXCERPT_CHARS) -> str:
    """The start of `text` on one line, cut to `limit` characters with an ellipsis."""
    flat = _WHITESPACE.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def parse_error_body(status: int, text: str) -> ErrorBody:
    """Parse an error response body; never fails, whatever the server sent."""
    if not text or not text.strip():
        return ErrorBody(message=status_phrase(status) or f"HTTP {status}", form="empty")
    try:
        payload = json.loads(text)
    except ValueError:
        return ErrorBody(message=excerpt(text), form="text")
    if not isinstance(payload, dict):
        return ErrorBody(message=excerpt(text), form="other-json")
    # "detail"/"errorCode" are the Atlas Administration API's spelling, which login may pass through.
    candidates = (_optional_str(payload.get(key)) for key in ("error", "detail", "message", "reason"))
    message = next((found for found in candidates if found), None)
    error_code = _optional_str(payload.get("error_code")) or _optional_str(payload.get("errorCode"))
    if message is None:
        return ErrorBody(
            message=excerpt(text),
            error_code=error_code,
            link=_optional_str(payload.get("link")),
            form="other-json",
        )
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return ErrorBody(
        message=message, error_code=error_code, link=_optional_str(payload.get("link")), form="json"
    )


def describe_failure(status: int, body: ErrorBody) -> str:
    """One line for an exception: `HTTP 503 Service Unavailable (non-JSON body: <html>…)`."""
    head = f"HTTP {status} {status_phrase(status)}".rstrip()
    if body.form == "empty":
        return f"{head} (empty body)"
    if body.form == "text":
        return f"{head} (non-JSON body: {body.message})"
    if body.form == "other-json":
        return f"{head} (JSON body without an error message: {body.message})"
    code = f" [{body.error_code}]" if body.error_code else ""
    return f"{head}: {body.message}{code}"


def is_retryable_status(status: int) -> bool:
    """429 and the transient 5xx; 501 and other 5xx are not expected to heal by waiting."""
    return status in RETRYABLE_STATUSES


def is_config_status(status: int) -> bool:
    """400 (bad parameter), 403 (no access), 404 (unknown group/app): fix the config, do not retry."""
    return status in CONFIG_STATUSES


def is_invalid_session(status: int, body: ErrorBody) -> bool:
    """A 401 that a new access token can cure: code `InvalidSession` or a message "invalid session...".

    This also matches `invalid session: valid Issuer required` (a refresh token sent as the access
    token), which has no code and which realm-cli does not refresh on. We do: one bounded refresh
    replaces whatever token was wrong, and the request is retried only once.
    """
    if status != 401:
        return False
    return body.error_code == INVALID_SESSION_CODE or body.message.lower().startswith(INVALID_SESSION_PREFIX)
