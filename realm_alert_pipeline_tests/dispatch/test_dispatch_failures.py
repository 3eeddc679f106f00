"""A dispatch step that fails for a reason waiting cannot fix fails at once, says why, and leaks nothing.

A malformed SECONDARY_MONGODB_URI (a port out of range: pymongo raises a plain ValueError) or a bad
database/collection name (pymongo's InvalidName, a PyMongoError like an outage) is not retried; it is
recorded in `Error` without the URI's password. Unknown exceptions are retried like outages and still
recorded once the run gives up. Runs go through a real DagsterInstance, MongoDB SecantusDB over TCP,
Twilio the emulator over HTTP.
"""

import pytest
from pymongo.errors import (
    ConfigurationError,
    InvalidName,
    InvalidURI,
    OperationFailure,
    ServerSelectionTimeoutError,
    WriteError,
)

from realm_alert_pipeline.constants import ALERT_COLLECTION, ERROR_COLLECTION
from realm_alert_pipeline.dispatch.failures import DispatchError, scrub, step_failure
from realm_alert_pipeline.resources.mongo import MongoResource
from realm_alert_pipeline.resources.secondary_mongo import SecondaryMongoResource
from realm_alert_pipeline_tests.dispatch.helpers import ALICE, emulator_sms, make_alert
from realm_alert_pipeline_tests.dispatch.helpers import dispatch as run_dispatch

PASSWORD = "s3cret-audit-pw"


def dispatch(instance, mongo, sms, secondary, alert_id):
    return run_dispatch(instance, mongo, sms, secondary, alert_id, raise_on_error=False)


def retries(result):
    return [e.step_key for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


@pytest.mark.parametrize(
    "secondary_settings",
    [
        {"uri": f"mongodb://audit:{PASSWORD}@127.0.0.1:99999/"},  # ValueError: port out of range
        {"uri": f"mongodb+srv://audit:{PASSWORD}@127.0.0.1/"},  # ConfigurationError: srv needs a host name
        {"collection": "Alert$copy"},  # InvalidName
        {"database": "audit logs"},  # InvalidName
    ],
    ids=["bad-port", "srv-with-ip", "bad-collection", "bad-database"],
)
def test_a_bad_secondary_setting_fails_the_copy_once_without_the_password(
    instance, mongo, mongo_uri, db, twilio_emulator, secondary_settings
):
    alert = make_alert()
    db[ALERT_COLLECTION].insert_one(alert)
    secondary = SecondaryMongoResource(**{"uri": mongo_uri, **secondary_settings}, timeout_ms=300)

    result = dispatch(instance, mongo, emulator_sms(twilio_emulator, ALICE), secondary, alert["_id"])

    assert not result.success
    assert retries(result) == []  # waiting does not fix a setting
    assert len(twilio_emulator.messages) == 1  # the text went out before the copy failed
    [error] = db[ERROR_COLLECTION].find({})
    assert error["code"] == "SECONDARY_MONGODB_CONFIG_INVALID"
    assert error["message"].startswith("secondary MongoDB settings (SECONDARY_MONGODB_URI")
    assert error["alert_id"] == str(alert["_id"]) and error["run_id"] == result.run_id
    assert PASSWORD not in error["message"]
    assert all(PASSWORD not in str(entry) for entry in instance.all_logs(result.run_id))
    stored = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})
    assert stored["state"] == "pending"
    assert stored["dispatch"]["last_error"]["code"] == "SECONDARY_MONGODB_CONFIG_INVALID"


def test_a_bad_primary_database_name_fails_at_once(instance, mongo_uri, twilio_emulator):
    bad = MongoResource(uri=mongo_uri, database="Logging.bad")

    result = dispatch(instance, bad, emulator_sms(twilio_emulator, ALICE), SecondaryMongoResource(), "0" * 24)

    assert not result.success
    assert retries(result) == []
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert (
        failure.event_specific_data.user_failure_data.metadata["error_code"].value == "MONGODB_CONFIG_INVALID"
    )
    assert twilio_emulator.post_count == 0


URI = f"mongodb://audit:{PASSWORD}@db.example.net:27017/?authSource=admin"


@pytest.mark.parametrize(
    ("exc", "code", "retryable"),
    [
        (ServerSelectionTimeoutError("db.example.net:27017: timed out"), "MONGODB_UNAVAILABLE", True),
        (WriteError("E11000", code=11000), "MONGODB_OPERATION_FAILED", True),
        (InvalidName("collection names must not contain '$'"), "MONGODB_CONFIG_INVALID", False),
        (InvalidURI("Invalid URI scheme"), "MONGODB_CONFIG_INVALID", False),
        (ConfigurationError("The DNS query name does not exist"), "MONGODB_CONFIG_INVALID", False),
        (OperationFailure("Authentication failed.", code=18), "MONGODB_CONFIG_INVALID", False),
        (OperationFailure("bad auth : Authentication failed.", code=8000), "MONGODB_CONFIG_INVALID", False),
        (ValueError("Port must be an integer between 0 and 65535"), "DISPATCH_CONFIG_INVALID", False),
        (TypeError("'NoneType' object is not subscriptable"), "DISPATCH_CONFIG_INVALID", False),
        (RuntimeError("something new"), "DISPATCH_UNEXPECTED_ERROR", True),
        (OSError("Connection reset by peer"), "DISPATCH_UNEXPECTED_ERROR", True),
    ],
    ids=lambda value: value if isinstance(value, str | bool) else type(value).__name__,
)
def test_failures_are_classified(exc, code, retryable):
    error = step_failure(exc, secrets=[URI])

    assert (error.code, error.retryable) == (code, retryable)
    assert type(exc).__name__ in error.message


def test_a_dispatch_error_is_kept_as_it_is():
    original = DispatchError("no alert", code="ALERT_NOT_FOUND", retryable=False)
    assert step_failure(original, secrets=[]) is original


@pytest.mark.parametrize(
    "text",
    [
        f"could not reach {URI}",
        f"auth audit:{PASSWORD} refused",
        f"password {PASSWORD} in a message",
        "URI mongodb://someone:other-pw@elsewhere/ echoed",  # credentials of a URI we do not know
    ],
)
def test_messages_are_scrubbed_of_secrets(text):
    scrubbed = scrub(text, [URI, None, ""])

    assert PASSWORD not in scrubbed and "other-pw" not in scrubbed
    assert "***" in scrubbed
