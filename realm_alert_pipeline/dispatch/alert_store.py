"""Reads and writes of the `Alert` and `Error` documents that the dispatch sensor and job make.

The Alert document is the dispatch side's only state: what was requested, who was texted, whether
the copy was made. Every write here is a single-document update, so a crash between two of them
leaves a state the next attempt can continue from.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ASCENDING, ReturnDocument, UpdateOne
from pymongo.database import Database

from realm_alert_pipeline.constants import (
    ALERT_COLLECTION,
    ALERT_PENDING,
    ERROR_COLLECTION,
)


class AlertIdError(ValueError):
    """The run config's alert_id is not an ObjectId string."""


def parse_alert_id(alert_id: str) -> ObjectId:
    """The Alert `_id` from its string form (the sensor's run_key); a clear error otherwise."""
    try:
        return ObjectId(str(alert_id).strip())
    except (InvalidId, TypeError) as exc:
        raise AlertIdError(f"alert_id={alert_id!r} is not a 24-character hex ObjectId") from exc


def is_settled(alert: Mapping) -> bool:
    """True when the alert needs no dispatch: already alerted, or not pending (suppressed/dispatched/failed)."""
    processed = alert.get("processed") or {}
    return bool(processed.get("alerted")) or alert.get("state") != ALERT_PENDING


def load_alert(db: Database, alert_id: ObjectId) -> dict | None:
    return db[ALERT_COLLECTION].find_one({"_id": alert_id})


# --- sensor --------------------------------------------------------------------------------------


def due_pending_alerts(db: Database, now: datetime, limit: int) -> list[dict]:
    """Pending, not yet alerted alerts, oldest first: never requested, or due for a second look at `now`.

    Two indexed queries rather than one `$or`, which SecantusDB answers by a collection scan (measured:
    1.2 s against 0.16 s with 21,000 alerts).
    """
    alerts = db[ALERT_COLLECTION]
    base = {"state": ALERT_PENDING, "processed.alerted": {"$ne": True}}
    projection = {"_id": 1, "created_at": 1, "dispatch": 1}
    found: dict = {}
    for due in (None, {"$lte": now}):
        query = {**base, "dispatch.next_check_at": due}
        for alert in alerts.find(query, projection).sort("created_at", ASCENDING).limit(limit):
            found[alert["_id"]] = alert
    oldest_first = sorted(
        found.values(), key=lambda a: (a.get("created_at") is None, a.get("created_at") or 0)
    )
    return oldest_first[:limit]


def count_pending(db: Database) -> int:
    return db[ALERT_COLLECTION].count_documents({"state": ALERT_PENDING, "processed.alerted": {"$ne": True}})


def record_tick(
    db: Database, requested: list[dict], postponed: list[dict], now: datetime, next_check_at: datetime
) -> None:
    """One bulk write for a tick: each requested alert stamped (`requested_at`, `request_count`), and
    every alert looked at gets `next_check_at`, before which no tick looks at it again."""
    updates = []
    for alert in requested:
        dispatch = alert.get("dispatch")
        count = (dispatch.get("request_count") or 0) if isinstance(dispatch, Mapping) else 0
        fields = {"requested_at": now, "next_check_at": next_check_at, "request_count": count + 1}
        updates.append(
            UpdateOne({"_id": alert["_id"], "state": ALERT_PENDING}, _dispatch_update(alert, fields))
        )
    for alert in postponed:
        fields = {"next_check_at": next_check_at}
        updates.append(
            UpdateOne({"_id": alert["_id"], "state": ALERT_PENDING}, _dispatch_update(alert, fields))
        )
    if updates:
        db[ALERT_COLLECTION].bulk_write(updates, ordered=False)


def _dispatch_update(alert: Mapping, fields: Mapping) -> dict:
    # `dispatch` may be absent or null in a fresh alert; a dotted $set into null is an error.
    if isinstance(alert.get("dispatch"), Mapping):
        return {"$set": {f"dispatch.{key}": value for key, value in fields.items()}}
    return {"$set": {"dispatch": dict(fields)}}


# --- job -----------------------------------------------------------------------------------------


def claim_lease(db: Database, alert_id: ObjectId, run_id: str, now: datetime, until: datetime) -> dict | None:
    """Hold the alert for `run_id` until `until`; the alert as it now stands, or None if another run holds it.

    A retry of the same run takes its own lease again; an expired lease (a crashed run) is taken over.
    """
    alerts = db[ALERT_COLLECTION]
    alerts.update_one({"_id": alert_id, "dispatch": None}, {"$set": {"dispatch": {}}})
    return alerts.find_one_and_update(
        {
            "_id": alert_id,
            "$or": [
                {"dispatch.lease": None},
                {"dispatch.lease.run_id": run_id},
                {"dispatch.lease.until": {"$lte": now}},
            ],
        },
        {"$set": {"dispatch.lease": {"run_id": run_id, "until": until}, "dispatch.run_id": run_id}},
        return_document=ReturnDocument.AFTER,
    )


def release_lease(db: Database, alert_id: ObjectId, run_id: str) -> None:
    db[ALERT_COLLECTION].update_one(
        {"_id": alert_id, "dispatch.lease.run_id": run_id}, {"$unset": {"dispatch.lease": ""}}
    )


def save_deliveries(db: Database, alert_id: ObjectId, deliveries: list[dict], now: datetime) -> None:
    db[ALERT_COLLECTION].update_one(
        {"_id": alert_id}, {"$set": {"deliveries": deliveries, "updated_at": now}}
    )


def save_sms(
    db: Database, alert_id: ObjectId, sms: Mapping, now: datetime, *, reset_deliveries: bool
) -> None:
    """Record the SMS step's state (`sms`); `reset_deliveries` makes a missing deliveries list []."""
    fields: dict = {"sms": dict(sms), "updated_at": now}
    if reset_deliveries:
        fields["deliveries"] = []
    db[ALERT_COLLECTION].update_one({"_id": alert_id}, {"$set": fields})


def save_secondary(db: Database, alert_id: ObjectId, secondary: Mapping, now: datetime) -> None:
    db[ALERT_COLLECTION].update_one(
        {"_id": alert_id}, {"$set": {"secondary": dict(secondary), "updated_at": now}}
    )


def mark_processed(db: Database, alert_id: ObjectId, processed: Mapping, state: str, now: datetime) -> bool:
    """Settle the alert (the commit point of a dispatch); False when it was settled already."""
    result = db[ALERT_COLLECTION].update_one(
        {"_id": alert_id, "processed.alerted": {"$ne": True}},
        {"$set": {"processed": dict(processed), "state": state, "updated_at": now}},
    )
    return result.modified_count == 1


def record_error(
    db: Database,
    *,
    code: str,
    message: str,
    run_id: str | None,
    now: datetime,
    http_status: int | None = None,
    alert_id: str | None = None,
) -> None:
    """One `Error` document for a failure of the dispatch itself (callers pass no secret in `message`)."""
    db[ERROR_COLLECTION].insert_one(
        {
            "date": now,
            "code": code,
            "message": message,
            "http_status": http_status,
            "run_id": run_id,
            "partition": None,
            "alert_id": alert_id,
            "source": "dispatch",
        }
    )
