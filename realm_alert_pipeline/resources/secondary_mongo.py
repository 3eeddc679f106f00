"""The optional second MongoDB deployment that receives an audit/reporting copy of each dispatched alert."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg
from pymongo.collection import Collection

from realm_alert_pipeline.constants import DEFAULT_SECONDARY_COLLECTION, DEFAULT_SECONDARY_DATABASE
from realm_alert_pipeline.resources.mongo import mongo_client


class SecondaryMongoConfigError(ValueError):
    """The copy was asked for while SECONDARY_MONGODB_URI is not set."""


class SecondaryMongoResource(dg.ConfigurableResource):
    """A MongoDB deployment for alert copies; optional (no `uri` -> `is_configured()` is False)."""

    uri: str | None = None  # SECONDARY_MONGODB_URI (may hold a password: bind it with EnvVar)
    database: str = DEFAULT_SECONDARY_DATABASE
    collection: str = DEFAULT_SECONDARY_COLLECTION
    timeout_ms: int = 10_000

    def __repr_args__(self):
        # pydantic builds repr()/str() from this; the URI may hold a password.
        yield "configured", self.is_configured()
        yield "target", self.target

    def is_configured(self) -> bool:
        return bool(self.uri and self.uri.strip())

    @property
    def target(self) -> str:
        """Where copies go, without the URI (which may carry credentials): "database.collection"."""
        return f"{self.database}.{self.collection}"

    def get_collection(self) -> Collection:
        if not self.is_configured():
            raise SecondaryMongoConfigError("SECONDARY_MONGODB_URI is not set: no secondary copy")
        return mongo_client(self.uri.strip(), self.timeout_ms)[self.database][self.collection]

    def upsert_copy(self, document: Mapping) -> None:
        """Replace (or insert) the copy with the document's `_id`: repeating it leaves one copy."""
        self.get_collection().replace_one({"_id": document["_id"]}, dict(document), upsert=True)
