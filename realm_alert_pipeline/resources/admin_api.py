"""CONTRACT STUB (to be replaced by the implementation; keep these names and signatures)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import dagster as dg

from realm_alert_pipeline.constants import DEFAULT_ADMIN_API_BASE_URL
from realm_alert_pipeline.resources.mongo import MongoResource


class AdminApiError(Exception):
    """A failed Admin API call: `status` (HTTP, or None for a network failure), `error_code`
    (may be None), `message`, `link`. Never carries a key or token."""

    def __init__(self, message: str, *, status: int | None = None, error_code: str | None = None,
                 link: str | None = None) -> None: ...


class AdminApiConfigError(AdminApiError):
    """Not worth retrying: rejected API keys, 403 (no access), 404 (unknown group/app), 400."""


@dataclass(frozen=True)
class SessionStatus:
    """What ensure_session did, without any secret. action: "reused" | "refreshed" | "logged_in"."""

    action: str
    access_expires_at: datetime
    user_id: str | None


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

    def ensure_session(self) -> SessionStatus:
        """Make sure Control holds a valid access token for this app (reuse / refresh / login)."""

    def iter_log_pages(
        self,
        start: datetime | None,
        end: datetime | None,
        *,
        errors_only: bool = True,
        types: list[str] | None = None,
    ) -> Iterator[list[dict]]:
        """Yield each page of log entries (newest first) with start exclusive, end inclusive."""

    def iter_error_logs(self, start: datetime, end: datetime) -> Iterator[dict]:
        """Every error entry in (start, end], streamed page by page."""
