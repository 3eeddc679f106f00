"""Fixtures of the dispatch tests: a real Dagster instance and a secondary database on the test server."""

import uuid

import dagster as dg
import pytest

from realm_alert_pipeline.resources.mongo import mongo_client
from realm_alert_pipeline.resources.secondary_mongo import SecondaryMongoResource


@pytest.fixture(scope="module")
def instance():
    """A real (temporary) DagsterInstance: run storage, event log, run_key tags. Shared by a module's
    tests (it takes about a second to create); their alerts, so their run_keys, never repeat."""
    with dg.instance_for_test() as dagster_instance:
        yield dagster_instance


@pytest.fixture
def secondary(mongo_uri):
    """The secondary deployment: a database of its own on the same SecantusDB server."""
    resource = SecondaryMongoResource(uri=mongo_uri, database=f"secondary_{uuid.uuid4().hex[:12]}")
    yield resource
    mongo_client(mongo_uri).drop_database(resource.database)
