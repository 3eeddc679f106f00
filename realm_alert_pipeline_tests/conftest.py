"""Shared fixtures: a real MongoDB wire-protocol server (SecantusDB) over TCP, one fresh database per test."""

import uuid

import pytest

from realm_alert_pipeline.local.mongo_server import EmbeddedMongo
from realm_alert_pipeline.resources.mongo import MongoResource, mongo_client


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory):
    """URI of a SecantusDB server started once for the whole session."""
    with EmbeddedMongo(tmp_path_factory.mktemp("secantus")) as server:
        yield server.uri


@pytest.fixture
def mongo(mongo_uri):
    """A MongoResource on a database of its own, dropped after the test."""
    resource = MongoResource(uri=mongo_uri, database=f"test_{uuid.uuid4().hex[:12]}")
    yield resource
    mongo_client(mongo_uri).drop_database(resource.database)


@pytest.fixture
def db(mongo):
    """The test's primary database, with the pipeline's indexes."""
    return mongo.get_indexed_database()


@pytest.fixture
def admin_api_emulator():
    """A fresh Admin API emulator (no logs) on a free port; tests add logs and faults."""
    from realm_alert_pipeline.local.admin_api_emulator import AdminApiEmulator

    with AdminApiEmulator() as emulator:
        yield emulator


@pytest.fixture
def twilio_emulator():
    """A fresh Twilio emulator on a free port with the demo account."""
    from realm_alert_pipeline.local.twilio_emulator import TwilioEmulator

    with TwilioEmulator() as emulator:
        yield emulator
