"""The local stack (two SecantusDB servers, both emulators) for the tests of the user's commands."""

from datetime import timedelta

import pytest

from realm_alert_pipeline.local.stack import LocalStack


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("local"), future=timedelta(0)) as stack:
        yield stack
