"""Detect step: turn stored, not yet detected errors into `Alert` documents, exactly once per log.

Every `Log` document with `detected: False` of the app is pending, whichever run stored it, so a run
that crashed between extract and detect loses nothing. Pending logs are read in bounded batches,
grouped by (fingerprint, too old to text), and each group is folded into an alert:

- realert: while the newest alert of the fingerprint is pending or dispatched and younger than
  `realert`, new occurrences update it ($inc count, bounded log_ids, newest log's fields; and
  since_last_alert once it was dispatched); otherwise a new pending alert is created, carrying the
  previous one's since_last_alert as covers_since_last_alert;
- age limit: errors older than `max_age` when first seen go to alerts created `suppressed` (never
  texted), which absorb later old occurrences the same way.

Exactly once, across crashes and concurrent runs:
1. claim: the group's logs get `detect_batch` (a hash of their sorted ids) and `detect_suppressed`;
   only unclaimed logs can be claimed, so each log belongs to exactly one batch;
2. apply: the alert update is filtered on `applied_batches != batch` and pushes the batch id (bounded),
   and a batch already found in some alert's `applied_batches` is never applied again; a new alert
   carries a unique `chain_key` (app, fingerprint, kind, predecessor), so two runs racing to open the
   same fingerprint's next alert cannot both succeed; and `applied_batches` is unique across alerts, so
   two runs whose clocks straddle an alert's realert boundary (one folds the batch into the open
   alert, the other opens the next alert with it) cannot both succeed either;
3. mark: the batch's logs get `detected: True`. A run that dies before this finishes the claimed
   batches first on its next start.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bson import ObjectId
from pymongo import DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from realm_alert_pipeline.constants import (
    ALERT_COLLECTION,
    ALERT_DISPATCHED,
    ALERT_LOG_IDS_LIMIT,
    ALERT_PENDING,
    ALERT_SUPPRESSED,
    LOG_COLLECTION,
)
from realm_alert_pipeline.core.fingerprint import SOURCE_FIELDS, error_source, normalize_error_code

DETECT_BATCH_SIZE = 1_000
# How many applied batch ids an alert remembers; a crashed batch is retried within a few runs.
APPLIED_BATCHES_LIMIT = 20
_MAX_FOLD_ATTEMPTS = 8
_IN_CHUNK = 100

_LOG_FIELDS = {
    name: 1
    for name in (
        "_id",
        "co_id",
        "type",
        "group_id",
        "started",
        "completed",
        "started_at",
        "error",
        "error_code",
        "fingerprint",
        "detect_batch",
        "detect_suppressed",
        *SOURCE_FIELDS,
    )
}


class DetectError(RuntimeError):
    """The alerts could not be brought to a consistent state (e.g. endless contention)."""


@dataclass
class DetectStats:
    """What one detect pass did (plain ints, ready for Dagster metadata)."""

    logs_detected: int = 0
    batches: int = 0
    alerts_created: int = 0
    alerts_suppressed: int = 0
    alerts_updated: int = 0
    batches_already_applied: int = 0
    # alert id -> (type, source, state, occurrences folded in by this run)
    touched: dict[ObjectId, list] = field(default_factory=dict)

    def touch(self, alert_id: ObjectId, log: dict, state: str, count: int) -> None:
        row = self.touched.setdefault(alert_id, [log.get("type") or "?", error_source(log) or "-", state, 0])
        row[3] += count


def batch_id_for(log_ids: Iterable[str], suppressed: bool) -> str:
    """A stable id for one group of logs: the same logs always make the same batch."""
    digest = hashlib.sha256(("suppressed\n" if suppressed else "live\n").encode())
    for log_id in sorted(log_ids):
        digest.update(log_id.encode("utf-8", "surrogatepass") + b"\n")
    return digest.hexdigest()[:32]


def _sort_key(log: dict) -> tuple:
    return (log["started_at"], log["_id"])


def detect_alerts(
    db: Database,
    *,
    app_id: str,
    partition_key: str,
    now: datetime,
    realert: timedelta,
    max_age: timedelta,
    batch_size: int = DETECT_BATCH_SIZE,
) -> DetectStats:
    """Fold every pending error log of `app_id` into alerts (see the module docstring)."""
    logs = db[LOG_COLLECTION]
    stats = DetectStats()
    fold = _Folder(db, app_id=app_id, partition_key=partition_key, now=now, realert=realert, stats=stats)
    # Batches claimed by a run that died before marking them.
    leftover = logs.distinct(
        "detect_batch", {"app_id": app_id, "detected": False, "detect_batch": {"$exists": True}}
    )
    for batch_id in leftover:
        fold.apply_batch(batch_id)
    unclaimed = {"app_id": app_id, "detected": False, "detect_batch": {"$exists": False}}
    too_old_before = now - max_age
    while True:
        pending = list(
            logs.find(unclaimed, {"_id": 1, "fingerprint": 1, "started_at": 1})
            .sort([("started_at", 1), ("_id", 1)])
            .limit(batch_size)
        )
        if not pending:
            break
        groups: dict[tuple[str, bool], list[str]] = {}
        for log in pending:
            suppressed = log["started_at"] < too_old_before
            groups.setdefault((log.get("fingerprint") or "", suppressed), []).append(log["_id"])
        for (_, suppressed), ids in groups.items():
            batch_id = batch_id_for(ids, suppressed)
            # Chunks of ids: SecantusDB's `$in` slows down quadratically with the list length.
            for offset in range(0, len(ids), _IN_CHUNK):
                logs.update_many(
                    {"_id": {"$in": ids[offset : offset + _IN_CHUNK]}, **unclaimed},
                    {"$set": {"detect_batch": batch_id, "detect_suppressed": suppressed}},
                )
            fold.apply_batch(batch_id)
    return stats


class _Folder:
    """Applies claimed batches to alerts for one detect pass."""

    def __init__(
        self,
        db: Database,
        *,
        app_id: str,
        partition_key: str,
        now: datetime,
        realert: timedelta,
        stats: DetectStats,
    ) -> None:
        self.logs = db[LOG_COLLECTION]
        self.alerts = db[ALERT_COLLECTION]
        self.app_id = app_id
        self.partition_key = partition_key
        self.now = now
        self.realert = realert
        self.stats = stats

    def apply_batch(self, batch_id: str) -> None:
        # A batch is bounded by the batch size of the run that claimed it.
        members = list(
            self.logs.find({"app_id": self.app_id, "detected": False, "detect_batch": batch_id}, _LOG_FIELDS)
        )
        if not members:
            return
        self.stats.batches += 1
        already = self.alerts.find_one({"app_id": self.app_id, "applied_batches": batch_id}, {"_id": 1})
        if already is not None:
            alert_id = already["_id"]
            self.stats.batches_already_applied += 1
        else:
            alert_id = self._fold(batch_id, members)
        marked = self.logs.update_many(
            {"app_id": self.app_id, "detected": False, "detect_batch": batch_id},
            {"$set": {"detected": True, "alert_id": alert_id, "detected_at": self.now}},
        )
        self.stats.logs_detected += marked.modified_count

    def _fold(self, batch_id: str, members: list[dict]) -> ObjectId:
        members.sort(key=_sort_key)
        newest = members[-1]
        fingerprint = newest.get("fingerprint") or ""
        suppressed = bool(newest.get("detect_suppressed"))
        for _ in range(_MAX_FOLD_ATTEMPTS):
            previous = self._latest_alert(fingerprint, suppressed)
            open_states = (ALERT_SUPPRESSED,) if suppressed else (ALERT_PENDING, ALERT_DISPATCHED)
            if (
                previous is not None
                and previous.get("state") in open_states
                and previous["created_at"] > self.now - self.realert
            ):
                if self._update(previous, batch_id, members):
                    return previous["_id"]
            else:
                alert_id = self._create(previous, batch_id, members, suppressed)
                if alert_id is not None:
                    return alert_id
            # Lost a race: another run may have applied this very batch meanwhile.
            applied = self.alerts.find_one({"app_id": self.app_id, "applied_batches": batch_id}, {"_id": 1})
            if applied is not None:
                self.stats.batches_already_applied += 1
                return applied["_id"]
        raise DetectError(
            f"alert for fingerprint {fingerprint} kept changing under {_MAX_FOLD_ATTEMPTS} attempts; giving up"
        )

    def _latest_alert(self, fingerprint: str, suppressed: bool) -> dict | None:
        state = ALERT_SUPPRESSED if suppressed else {"$ne": ALERT_SUPPRESSED}
        return self.alerts.find_one(
            {"app_id": self.app_id, "fingerprint": fingerprint, "state": state},
            {"state": 1, "created_at": 1, "last_seen": 1, "since_last_alert": 1},
            sort=[("created_at", DESCENDING), ("_id", DESCENDING)],
        )

    def _update(self, alert: dict, batch_id: str, members: list[dict]) -> bool:
        """Fold the batch into an open alert; False when its state changed or the batch got there first."""
        count = len(members)
        newest = members[-1]
        increments = {"count": count}
        if alert["state"] == ALERT_DISPATCHED:
            increments["since_last_alert"] = count
        sets = {"updated_at": self.now}
        last_seen = alert.get("last_seen")
        if last_seen is None or newest["started_at"] >= last_seen:
            sets.update(_tutorial_fields(newest))
        try:
            result = self.alerts.update_one(
                {"_id": alert["_id"], "state": alert["state"], "applied_batches": {"$ne": batch_id}},
                {
                    "$inc": increments,
                    "$set": sets,
                    "$min": {"first_seen": members[0]["started_at"]},
                    "$max": {"last_seen": newest["started_at"]},
                    "$push": {
                        "log_ids": {"$each": _newest_ids(members), "$slice": -ALERT_LOG_IDS_LIMIT},
                        "applied_batches": {"$each": [batch_id], "$slice": -APPLIED_BATCHES_LIMIT},
                    },
                },
            )
        except DuplicateKeyError:  # another run applied the batch to another alert meanwhile
            return False
        if result.matched_count:
            self.stats.alerts_updated += 1
            self.stats.touch(alert["_id"], newest, alert["state"], count)
            return True
        return False

    def _create(
        self, previous: dict | None, batch_id: str, members: list[dict], suppressed: bool
    ) -> ObjectId | None:
        """Open the fingerprint's next alert; None when a concurrent run opened it first."""
        newest = members[-1]
        state = ALERT_SUPPRESSED if suppressed else ALERT_PENDING
        kind = "suppressed" if suppressed else "live"
        fingerprint = newest.get("fingerprint") or ""
        predecessor = str(previous["_id"]) if previous is not None else "none"
        alert = {
            "_id": ObjectId(),
            **_tutorial_fields(newest),
            "app_id": self.app_id,
            "group_id": newest.get("group_id"),
            "processed": {"date": None, "alerted": False},
            "type": newest.get("type"),
            "error_code": normalize_error_code(newest.get("error_code")),
            "source": error_source(newest),
            "fingerprint": fingerprint,
            "count": len(members),
            "first_seen": members[0]["started_at"],
            "last_seen": newest["started_at"],
            "log_ids": _newest_ids(members),
            "state": state,
            "window": self.partition_key,
            "created_at": self.now,
            "updated_at": self.now,
            "since_last_alert": 0,
            "covers_since_last_alert": 0
            if suppressed or previous is None
            else int(previous.get("since_last_alert") or 0),
            "deliveries": [],
            "secondary": None,
            "applied_batches": [batch_id],
            "chain_key": f"{self.app_id}:{fingerprint}:{kind}:{predecessor}",
        }
        try:
            self.alerts.insert_one(alert)
        except DuplicateKeyError:  # the next alert exists already, or the batch is in another alert
            return None
        if suppressed:
            self.stats.alerts_suppressed += 1
        else:
            self.stats.alerts_created += 1
        self.stats.touch(alert["_id"], newest, state, len(members))
        return alert["_id"]


def _tutorial_fields(log: dict) -> dict:
    """The original tutorial's alert fields, taken from the newest log of the alert."""
    return {
        "refId": log["_id"],
        "co_id": log.get("co_id"),
        "started": log.get("started"),
        "completed": log.get("completed"),
        "error": log.get("error"),
    }


def _newest_ids(members: list[dict]) -> list[str]:
    """Log ids oldest to newest (members are sorted), only the newest ALERT_LOG_IDS_LIMIT."""
    return [log["_id"] for log in members[-ALERT_LOG_IDS_LIMIT:]]
