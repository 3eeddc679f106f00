"""The `Error` collection: one document per failure of the pipeline itself, never holding a secret.

Messages are scrubbed (known secrets by value; bearer tokens, JWTs and `token=`/`apiKey:`-style pairs
by shape) and cut short, so a server that echoes a token or a whole response cannot leak it here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime

from bson.errors import BSONError
from pymongo.database import Database
from pymongo.errors import PyMongoError

from realm_alert_pipeline.constants import CONTROL_COLLECTION, ERROR_COLLECTION

log = logging.getLogger(__name__)

ERROR_MESSAGE_MAX_CHARS = 500
REDACTED = "[redacted]"
# Shorter values are not scrubbed by value: replacing them could garble an unrelated message.
_MIN_SECRET_LENGTH = 6

_TOKEN_SHAPES = (
    re.compile(r"(?i)\bbearer\s+[^\s\"',;]+"),
    re.compile(r"\beyJ[\w-]{4,}\.[\w-]{4,}(?:\.[\w-]*)?"),  # JWT
    re.compile(
        r"(?i)([\"']?(?:access_token|refresh_token|api_?key|private_?key|password|secret|auth_?token)"
        r"[\"']?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;}&]+)"
    ),
)


def scrub_message(message: object, secrets: Iterable[str | None] = ()) -> str:
    """`message` as text with every secret and token-like value replaced, at most ERROR_MESSAGE_MAX_CHARS.

    Lone surrogates (a log entry's broken text) are escaped, so the result can always be stored as BSON.
    """
    text = str(message).encode("utf-8", "backslashreplace").decode("utf-8")
    for secret in sorted((s for s in secrets if isinstance(s, str)), key=len, reverse=True):
        if len(secret) >= _MIN_SECRET_LENGTH:
            text = text.replace(secret, REDACTED)
    text = _TOKEN_SHAPES[0].sub("Bearer " + REDACTED, text)
    text = _TOKEN_SHAPES[1].sub(REDACTED, text)
    text = _TOKEN_SHAPES[2].sub(lambda m: m.group(1) + REDACTED, text)
    if len(text) > ERROR_MESSAGE_MAX_CHARS:
        text = text[: ERROR_MESSAGE_MAX_CHARS - 1] + "…"
    return text


def stored_session_secrets(db: Database, group_id: str, app_id: str) -> list[str]:
    """The tokens in this app's Control document, so they can be scrubbed by value (empty if unreadable)."""
    try:
        control = db[CONTROL_COLLECTION].find_one(
            {"_id": f"{group_id}:{app_id}"}, {"access_token": 1, "refresh_token": 1}
        )
    except PyMongoError:
        return []
    if not control:
        return []
    return [v for k, v in control.items() if k != "_id" and isinstance(v, str)]


def error_document(
    *,
    date: datetime,
    code: str,
    message: object,
    run_id: str | None,
    partition: str | None,
    http_status: int | None = None,
    step: str | None = None,
    app_id: str | None = None,
    entry_id: str | None = None,
    secrets: Iterable[str | None] = (),
) -> dict:
    """One `Error` document (scrubbed)."""
    secrets = list(secrets)
    doc = {
        "date": date,
        "code": code,
        "message": scrub_message(message, secrets),
        "http_status": http_status,
        "run_id": run_id,
        "partition": partition,
        "step": step,
        "app_id": app_id,
    }
    if entry_id is not None:
        doc["entry_id"] = scrub_message(entry_id, secrets)[:100]
    return doc


def record_errors(db: Database, documents: list[dict]) -> int:
    """Store error documents; a store that is itself failing is logged, never raised over the real failure."""
    if not documents:
        return 0
    try:
        db[ERROR_COLLECTION].insert_many(documents, ordered=False)
    except (PyMongoError, BSONError, UnicodeError, OverflowError) as exc:
        log.warning(
            "could not record %d pipeline error(s) in %s: %s",
            len(documents),
            ERROR_COLLECTION,
            type(exc).__name__,
        )
        return 0
    return len(documents)


def record_error(db: Database, **fields) -> dict:
    """Build (see error_document) and store one `Error` document; returns it."""
    doc = error_document(**fields)
    record_errors(db, [doc])
    return doc
