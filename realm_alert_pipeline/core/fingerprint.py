"""Error fingerprints: which App Services errors count as "the same error" (pure, no Dagster).

fingerprint = sha256 over, in this order and separated by U+001F:
  1. app_id
  2. type                (SCHEDULED_TRIGGER, DB_TRIGGER, FUNCTION, ...)
  3. source              (see error_source(): trigger, log forwarder, endpoint, webhook or function name)
  4. error_code          (absent, null and "" are the same: many real errors carry none)
  5. the normalised message (see normalize_message())
and kept as the first 32 hex digits.

Two occurrences of one error differ in the ids, numbers, timestamps, e-mail addresses and quoted
values inside their message, and in the depth of their stack trace; none of those take part.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from functools import lru_cache

# Fields naming where an error came from, most specific first. A trigger runs a function, and the
# trigger is what the team configured and names in an incident; a log forwarder and an endpoint are
# likewise more telling than the function behind them.
SOURCE_FIELDS = (
    "log_forwarder_name",  # LOG_FORWARDER (its event_subscription_name is a generated "<name>_event_subscription")
    "event_subscription_name",  # triggers: SCHEDULED/DB/AUTH_TRIGGER, TRIGGER_FAILURE, TRIGGER_ERROR_HANDLER
    "endpoint_route",  # ENDPOINT
    "incoming_webhook_name",  # WEBHOOK (legacy)
    "function_name",  # FUNCTION, SERVICE_FUNCTION, ...
)

# Only this much of the normalised message counts: long tails (rule lists, payload dumps) vary.
MESSAGE_PREFIX_CHARS = 500

_SEPARATOR = "\x1f"

# Masks, applied in this order (a timestamp holds numbers, an ObjectId may look like a number, ...).
# Each runs only when its tell-tale character is present: this runs once per stored entry.
_STACK_FRAME = re.compile(r"^\s+at\s.*$", re.MULTILINE)
_ISO_TIMESTAMP = re.compile(
    r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b"
)
_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_HEX_ID = re.compile(r"\b[0-9a-fA-F]{16,}\b")  # ObjectIds (24 hex) and other long hex ids
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# A single quote must open and close at a word boundary, so the apostrophe in "can't" opens nothing.
_QUOTES = (
    ("'", re.compile(r"(?<!\w)'[^'\n]*'(?!\w)")),
    ('"', re.compile(r'"[^"\n]*"')),
    ("`", re.compile(r"`[^`\n]*`")),
)
_NUMBER = re.compile(r"\d+")
# Masking an overlong message is wasted work: only MESSAGE_PREFIX_CHARS survive.
_SCAN_CHARS = 4 * MESSAGE_PREFIX_CHARS


def error_source(entry: Mapping) -> str | None:
    """The name of what failed (trigger, forwarder, endpoint route, webhook, function), or None."""
    for field in SOURCE_FIELDS:
        value = entry.get(field)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def normalize_error_code(value: object) -> str | None:
    """`error_code` may be absent, null or "" on real errors (specs 6.3): all of those are None."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


@lru_cache(maxsize=1024)
def normalize_message(message: str) -> str:
    """The message with its variable parts masked, stack frames dropped, whitespace collapsed, cut short.

    Masked: ISO timestamps -> <ts>, UUIDs -> <uuid>, ObjectIds and other hex of 16+ digits -> <id>,
    e-mail addresses -> <email>, '...', "..." and `...` -> <q>, any run of digits -> <n>. Stack frames
    are JavaScript's "    at fn (file:line:col)" lines.
    """
    text = _STACK_FRAME.sub("", message) if "\n" in message else message
    text = text[:_SCAN_CHARS]
    if "-" in text:
        text = _ISO_TIMESTAMP.sub("<ts>", text)
        text = _UUID.sub("<uuid>", text)
    text = _HEX_ID.sub("<id>", text)
    if "@" in text:
        text = _EMAIL.sub("<email>", text)
    for quote, pattern in _QUOTES:
        if quote in text:
            text = pattern.sub("<q>", text)
    text = _NUMBER.sub("<n>", text)
    return " ".join(text.split())[:MESSAGE_PREFIX_CHARS]


def error_fingerprint(
    *, app_id: str, type: str | None, source: str | None, error_code: str | None, message: str
) -> str:
    """The fingerprint of one error (see the module docstring for what takes part)."""
    parts = (
        app_id or "",
        type or "",
        source or "",
        normalize_error_code(error_code) or "",
        normalize_message(message or ""),
    )
    # surrogatepass: a lone surrogate (JSON "\\ud83d" decodes to one) must not make hashing raise;
    # every other string hashes exactly as plain UTF-8.
    return hashlib.sha256(_SEPARATOR.join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def entry_fingerprint(entry: Mapping, app_id: str) -> str:
    """The fingerprint of an Admin API log entry of the monitored app `app_id`."""
    message = entry.get("error")
    return error_fingerprint(
        app_id=app_id,
        type=entry.get("type") if isinstance(entry.get("type"), str) else None,
        source=error_source(entry),
        error_code=entry.get("error_code"),
        message=message if isinstance(message, str) else "",
    )
