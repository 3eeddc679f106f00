"""The Admin API session of each monitored app, kept in the `Control` collection.

One document per app, `_id` = "{group_id}:{app_id}", holding the tokens the login returned, so the
next run, another process or another resource instance reuses a valid access token instead of
logging in again (the tutorial's layout: `date` = last login, `last_modified` = last refresh).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pymongo.collection import Collection

from realm_alert_pipeline.constants import ACCESS_TOKEN_LIFETIME
from realm_alert_pipeline.core.timeutil import ensure_utc

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A token field in a (possibly JSON-escaped) document: `"access_token": "eyJ...` or `\\"access_token\\": \\"eyJ...`.
_TOKEN_FIELD = re.compile(r'((?:access|refresh)_token\\*"\s*:\s*\\*")[^"\\]*')


class _TokenFieldRedactor(logging.Filter):
    """pymongo's command log (DEBUG) echoes commands and replies, so Control's tokens would show up in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "_token" in text:
            redacted = _TOKEN_FIELD.sub(r"\1[redacted]", text)
            if redacted != text:
                record.msg, record.args = redacted, ()
        return True


_PYMONGO_COMMAND_LOGGER = logging.getLogger("pymongo.command")
if not any(isinstance(f, _TokenFieldRedactor) for f in _PYMONGO_COMMAND_LOGGER.filters):
    _PYMONGO_COMMAND_LOGGER.addFilter(_TokenFieldRedactor())


def control_id(group_id: str, app_id: str) -> str:
    return f"{group_id}:{app_id}"


def key_fingerprint(public_key: str, private_key: str) -> str:
    """Which key pair issued a session, without storing either key: HMAC-SHA256(private, public), cut short.

    A session issued to another key pair is not reused, so rotated or corrected keys take effect at
    once instead of when the old refresh token finally fails.
    """
    return hmac.new(private_key.encode(), public_key.encode(), hashlib.sha256).hexdigest()[:32]


def _to_millis(value: datetime) -> datetime:
    """BSON dates keep milliseconds; trimming first keeps the in-memory copy equal to the stored one."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class StoredSession:
    """A session as held in Control. The tokens are left out of repr()."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    user_id: str | None
    device_id: str | None
    logged_in_at: datetime | None
    refreshed_at: datetime | None
    access_expires_at: datetime

    def needs_refresh(self, now: datetime, margin: timedelta) -> bool:
        """True when the access token expires within `margin` of `now` (or already has)."""
        return now + margin >= self.access_expires_at


@dataclass(frozen=True)
class SessionInfo:
    """What Control says about an app's session, without any token: safe to log or show."""

    control_id: str
    user_id: str | None
    device_id: str | None
    logged_in_at: datetime | None
    refreshed_at: datetime | None
    access_expires_at: datetime | None


class AdminSessionStore:
    """Reads and writes one app's session document in `Control`."""

    def __init__(self, collection: Collection, group_id: str, app_id: str, fingerprint: str) -> None:
        self._collection = collection
        self.control_id = control_id(group_id, app_id)
        self._fingerprint = fingerprint
        self._group_id = group_id
        self._app_id = app_id

    def load(self) -> StoredSession | None:
        """The stored session, or None when there is none, it lacks a token or another key pair made it.

        A document without `access_expires_at` (written by an older tool) counts as expired,
        so its refresh token is tried before any new login.
        """
        doc = self._collection.find_one({"_id": self.control_id})
        if not doc or doc.get("key_fingerprint") != self._fingerprint:
            return None
        access, refresh = doc.get("access_token"), doc.get("refresh_token")
        if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
            return None
        expires = doc.get("access_expires_at")
        return StoredSession(
            access_token=access,
            refresh_token=refresh,
            user_id=doc.get("user_id"),
            device_id=doc.get("device_id"),
            logged_in_at=_optional_utc(doc.get("date")),
            refreshed_at=_optional_utc(doc.get("last_modified")),
            access_expires_at=_optional_utc(expires) or _EPOCH,
        )

    def info(self) -> SessionInfo | None:
        """The session's public facts (no tokens), or None when no session is stored."""
        doc = self._collection.find_one(
            {"_id": self.control_id},
            {"user_id": 1, "device_id": 1, "date": 1, "last_modified": 1, "access_expires_at": 1},
        )
        if not doc:
            return None
        return SessionInfo(
            control_id=self.control_id,
            user_id=doc.get("user_id"),
            device_id=doc.get("device_id"),
            logged_in_at=_optional_utc(doc.get("date")),
            refreshed_at=_optional_utc(doc.get("last_modified")),
            access_expires_at=_optional_utc(doc.get("access_expires_at")),
        )

    def save_login(
        self,
        *,
        access_token: str,
        refresh_token: str,
        user_id: str | None,
        device_id: str | None,
        issued_at: datetime,
    ) -> StoredSession:
        """Replace the app's session with a fresh login's tokens."""
        issued_at = _to_millis(issued_at)
        session = StoredSession(
            access_token=access_token,
            refresh_token=refresh_token,
            user_id=user_id,
            device_id=device_id,
            logged_in_at=issued_at,
            refreshed_at=issued_at,
            access_expires_at=issued_at + ACCESS_TOKEN_LIFETIME,
        )
        self._collection.replace_one({"_id": self.control_id}, self._document(session), upsert=True)
        return session

    def save_refresh(
        self, previous: StoredSession, *, access_token: str, issued_at: datetime
    ) -> StoredSession:
        """Store a refreshed access token (the refresh token stays the same).

        Written only over the session it was refreshed from: if another process has logged in
        meanwhile, its newer session is kept. Either token pair stays valid on the server.
        """
        issued_at = _to_millis(issued_at)
        session = StoredSession(
            access_token=access_token,
            refresh_token=previous.refresh_token,
            user_id=previous.user_id,
            device_id=previous.device_id,
            logged_in_at=previous.logged_in_at,
            refreshed_at=issued_at,
            access_expires_at=issued_at + ACCESS_TOKEN_LIFETIME,
        )
        result = self._collection.update_one(
            {"_id": self.control_id, "refresh_token": previous.refresh_token},
            {
                "$set": {
                    "access_token": access_token,
                    "last_modified": issued_at,
                    "access_expires_at": session.access_expires_at,
                }
            },
        )
        if result.matched_count == 0:
            # Gone or replaced by another login: store ours only if nothing is there.
            fields = {key: value for key, value in self._document(session).items() if key != "_id"}
            self._collection.update_one({"_id": self.control_id}, {"$setOnInsert": fields}, upsert=True)
        return session

    def _document(self, session: StoredSession) -> dict:
        return {
            "_id": self.control_id,
            "group_id": self._group_id,
            "app_id": self._app_id,
            "access_token": session.access_token,
            "refresh_token": session.refresh_token,
            "user_id": session.user_id,
            "device_id": session.device_id,
            "key_fingerprint": self._fingerprint,
            "date": session.logged_in_at,
            "last_modified": session.refreshed_at,
            "access_expires_at": session.access_expires_at,
        }


def _optional_utc(value: object) -> datetime | None:
    return ensure_utc(value) if isinstance(value, datetime) else None
