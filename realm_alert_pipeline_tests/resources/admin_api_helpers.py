"""Builders shared by the Admin API client tests: log entries shaped like the real ones, and a resource
pointed at the emulator with small backoffs."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from realm_alert_pipeline.core.timeutil import format_go_datetime
from realm_alert_pipeline.local.admin_api_emulator import (
    DEMO_APP_ID,
    DEMO_GROUP_ID,
    DEMO_PRIVATE_KEY,
    DEMO_PUBLIC_KEY,
    AdminApiEmulator,
)
from realm_alert_pipeline.resources.admin_api import AdminApiResource
from realm_alert_pipeline.resources.mongo import MongoResource

_counter = itertools.count(1)


def log_entry(started: datetime, *, error: bool = True, kind: str = "DB_TRIGGER") -> dict:
    """An entry as the API returns it: ObjectId-shaped `_id` whose prefix is `started`, Go-style timestamps."""
    seq = next(_counter)
    prefix = f"{int(started.timestamp()):08x}"
    entry = {
        "_id": f"{prefix}{seq:016x}",
        "co_id": f"{prefix}{seq:015x}0",
        "type": kind,
        "domain_id": DEMO_APP_ID[:-1] + "1",
        "app_id": DEMO_APP_ID,
        "group_id": DEMO_GROUP_ID,
        "request_url": "",
        "request_method": "",
        "started": format_go_datetime(started),
        "completed": format_go_datetime(started + timedelta(milliseconds=120)),
        "event_subscription_name": "orderAudit",
        "messages": [],
    }
    if error:
        entry["error"] = f"FunctionError: Cannot access member 'db' of undefined (#{seq})"
    return entry


def newest_first(entries: list[dict]) -> list[dict]:
    """The API's order: `started` descending, then `_id` descending (specs 5.4)."""
    from realm_alert_pipeline.core.timeutil import parse_api_datetime

    return sorted(entries, key=lambda e: (parse_api_datetime(e["started"]), e["_id"]), reverse=True)


def recent(minutes: float) -> datetime:
    """A whole-second instant `minutes` ago (inside the emulator's 10-day retention)."""
    return (datetime.now(UTC) - timedelta(minutes=minutes)).replace(microsecond=0)


def make_resource(emulator: AdminApiEmulator, mongo: MongoResource, **overrides) -> AdminApiResource:
    config = {
        "public_key": DEMO_PUBLIC_KEY,
        "private_key": DEMO_PRIVATE_KEY,
        "group_id": DEMO_GROUP_ID,
        "app_id": DEMO_APP_ID,
        "mongo": mongo,
        "base_url": emulator.base_url,
        "timeout_s": 5.0,
        "max_attempts": 4,
        "backoff_base_s": 0.01,
        "backoff_cap_s": 0.05,
    }
    config.update(overrides)
    return AdminApiResource(**config)


def logs_requests(emulator: AdminApiEmulator) -> list:
    return [r for r in emulator.requests if r.path.endswith("/logs")]
