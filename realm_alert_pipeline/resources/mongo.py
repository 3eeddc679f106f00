"""MongoDB access: one resource per deployment, clients cached per process, indexes created in one place."""

import logging
from functools import lru_cache

import dagster as dg
from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, OperationFailure

from realm_alert_pipeline.constants import (
    ALERT_COLLECTION,
    DEFAULT_DATABASE,
    ERROR_COLLECTION,
    LOG_COLLECTION,
)


@lru_cache(maxsize=16)
def mongo_client(uri: str, timeout_ms: int = 10_000) -> MongoClient:
    """One pooled client per URI and process; datetimes come back as aware UTC."""
    return MongoClient(
        uri,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        appname="realm-alert-pipeline",
    )


def ensure_indexes(db: Database) -> None:
    """Create every index the pipeline relies on. Idempotent: every entry point calls it."""
    # One index serves both Log queries: detect's pending logs (app_id, detected: false) and the log
    # check's range count per detected value. On SecantusDB every index costs an insert about as much
    # as the insert itself, so Log gets exactly one.
    db[LOG_COLLECTION].create_index(
        [("app_id", ASCENDING), ("detected", ASCENDING), ("started_at", DESCENDING)]
    )
    db[ALERT_COLLECTION].create_index([("state", ASCENDING), ("created_at", ASCENDING)])
    # Ingest detect step: the open alert of a fingerprint, and the exactly-once guards.
    db[ALERT_COLLECTION].create_index(
        [("app_id", ASCENDING), ("fingerprint", ASCENDING), ("created_at", DESCENDING)]
    )
    _ensure_unique_applied_batches(db[ALERT_COLLECTION])
    db[ALERT_COLLECTION].create_index([("chain_key", ASCENDING)], unique=True, sparse=True)
    # Dispatch sensor: pending alerts never requested (next_check_at null) or due again, oldest first.
    db[ALERT_COLLECTION].create_index(
        [("state", ASCENDING), ("dispatch.next_check_at", ASCENDING), ("created_at", ASCENDING)]
    )
    db[ERROR_COLLECTION].create_index([("date", DESCENDING)])


_APPLIED_BATCHES = [("applied_batches", ASCENDING)]
_INDEX_NOT_FOUND = 27
_INDEX_CONFLICTS = (85, 86)  # IndexOptionsConflict, IndexKeySpecsConflict


def _ensure_unique_applied_batches(alerts: Collection) -> None:
    """A detect batch is applied to at most one alert: unique across alerts (multikey), so two detect
    runs whose clocks straddle an alert's realert boundary cannot count one batch in two alerts.

    Replaces the plain index of earlier versions. Should alerts already share a batch (a double count
    from before), the plain index stays, with a warning, rather than failing every entry point.
    """
    try:
        alerts.create_index(_APPLIED_BATCHES, unique=True, sparse=True)
        return
    except OperationFailure as exc:
        if exc.code not in _INDEX_CONFLICTS:
            raise
    try:
        alerts.drop_index(_APPLIED_BATCHES)
    except OperationFailure as exc:
        if exc.code != _INDEX_NOT_FOUND:  # a concurrent caller replaced it first
            raise
    try:
        alerts.create_index(_APPLIED_BATCHES, unique=True, sparse=True)
    except DuplicateKeyError:
        logging.getLogger(__name__).warning(
            "%s documents share a detect batch in applied_batches (an earlier double count): kept a"
            " non-unique index; remove the batch id from all but one alert to get the guard",
            alerts.name,
        )
        alerts.create_index(_APPLIED_BATCHES)


class MongoResource(dg.ConfigurableResource):
    """A MongoDB deployment reached by URI (SecantusDB locally, Atlas in production)."""

    uri: str
    database: str = DEFAULT_DATABASE
    timeout_ms: int = 10_000

    def __repr_args__(self):
        # pydantic builds repr()/str() from this; a MongoDB URI may hold a password.
        yield "database", self.database

    def get_database(self) -> Database:
        return mongo_client(self.uri, self.timeout_ms)[self.database]

    def get_indexed_database(self) -> Database:
        """The database with the pipeline's indexes in place."""
        db = self.get_database()
        ensure_indexes(db)
        return db
