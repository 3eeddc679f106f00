"""Fixtures of the ingest tests: a real Dagster instance and an ingest runner on the emulator and SecantusDB."""

from datetime import timedelta

import dagster as dg
import pytest

from realm_alert_pipeline_tests.ingest.helpers import FakeClock, IngestRunner, past_window


@pytest.fixture(scope="module")
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def window():
    """A closed 10-minute window three hours back in real time."""
    return past_window(3)


@pytest.fixture
def clock(window):
    """The pipeline's clock, one minute after `window` closed."""
    return FakeClock(window.end + timedelta(minutes=1))


@pytest.fixture
def runner(admin_api_emulator, mongo, instance, clock):
    return IngestRunner(admin_api_emulator, mongo, instance, clock)
