"""An alert is texted to every on-call number once, copied to the secondary MongoDB and then marked.

A bad number fails alone (the others still get their text), an unconfigured Twilio or secondary is
recorded as skipped while the rest runs, a bad ALERT_SMS_TO fails the run with a clear Error record,
and dispatching a settled alert does nothing. Twilio is the emulator over HTTP through the real SDK,
MongoDB is SecantusDB over TCP, runs go through a real DagsterInstance.
"""

import pytest

from realm_alert_pipeline.constants import ALERT_COLLECTION, ERROR_COLLECTION, SMS_TAG
from realm_alert_pipeline.local.twilio_emulator import DEMO_AUTH_TOKEN
from realm_alert_pipeline.resources.mongo import MongoResource
from realm_alert_pipeline.resources.secondary_mongo import SecondaryMongoResource
from realm_alert_pipeline.resources.sms import SmsResource
from realm_alert_pipeline_tests.dispatch.helpers import (
    ALICE,
    BOB,
    FAST,
    INVALID_TO,
    NOT_MOBILE_TO,
    UNSUBSCRIBED_TO,
    closed_port_uri,
    dispatch,
    emulator_sms,
    make_alert,
)


def op_metadata(result, op_name):
    [event] = [e for e in result.get_step_success_events() if e.step_key == op_name]
    outputs = [e for e in result.events_for_node(op_name) if e.event_type_value == "STEP_OUTPUT"]
    return {k: v.value for k, v in outputs[0].event_specific_data.metadata.items()} if event else {}


def test_one_invalid_number_fails_alone_and_the_copy_equals_the_alert(
    instance, mongo, db, secondary, twilio_emulator
):
    alert = make_alert()
    db[ALERT_COLLECTION].insert_one(alert)
    sms = emulator_sms(twilio_emulator, f"{ALICE},{INVALID_TO},{BOB}")

    result = dispatch(instance, mongo, sms, secondary, alert["_id"])

    assert result.success
    assert sorted(m["to"] for m in twilio_emulator.messages) == sorted([ALICE, BOB])
    stored = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})
    by_to = {d["to"]: d for d in stored["deliveries"]}
    assert [d["to"] for d in stored["deliveries"]] == [ALICE, INVALID_TO, BOB]
    assert by_to[INVALID_TO]["status"] == "failed"
    assert by_to[INVALID_TO]["error_code"] == 21211
    assert by_to[INVALID_TO]["sid"] is None
    sids = {m["to"]: m["sid"] for m in twilio_emulator.messages}
    for number in (ALICE, BOB):
        assert by_to[number]["sid"] == sids[number]
        assert by_to[number]["status"] == "queued"
        assert by_to[number]["attempts"] == 1
        assert by_to[number]["attempt_started_at"] is not None
    assert stored["state"] == "dispatched"
    assert stored["processed"]["alerted"] is True
    assert stored["processed"]["date"] == stored["secondary"]["date"]
    assert stored["sms"]["state"] == "partial"
    assert stored["secondary"]["state"] == "copied"
    copy = secondary.get_collection().find_one({"_id": alert["_id"]})
    assert copy == stored
    assert op_metadata(result, "send_alert_sms")["recipients_sent"] == 2
    assert op_metadata(result, "send_alert_sms")["recipients_failed"] == 1
    assert op_metadata(result, "send_alert_sms")["segments"] == 1
    assert op_metadata(result, "mark_alert_processed")["secondary_state"] == "copied"
    assert result.dagster_run.tags[SMS_TAG] == "twilio"  # dagster.yaml bounds concurrent texting by it
    # Run monitoring fails a run whose worker died, so it stops holding the alert as "open".
    assert result.dagster_run.tags["dagster/max_runtime"] == "1800"


def test_every_recipient_refused_settles_the_alert_as_failed(instance, mongo, db, secondary, twilio_emulator):
    alert = make_alert()
    db[ALERT_COLLECTION].insert_one(alert)
    sms = emulator_sms(twilio_emulator, f"{INVALID_TO},{UNSUBSCRIBED_TO},{NOT_MOBILE_TO}")

    result = dispatch(instance, mongo, sms, secondary, alert["_id"])

    assert result.success
    assert twilio_emulator.messages == []
    stored = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})
    assert [d["error_code"] for d in stored["deliveries"]] == [21211, 21610, 21614]
    assert stored["state"] == "failed"
    assert stored["processed"]["alerted"] is True
    assert secondary.get_collection().find_one({"_id": alert["_id"]}) == stored


def test_unconfigured_twilio_is_skipped_and_the_copy_still_made(
    instance, mongo, db, secondary, twilio_emulator
):
    alert = make_alert(deliveries=None)
    db[ALERT_COLLECTION].insert_one(alert)

    result = dispatch(instance, mongo, SmsResource(), secondary, alert["_id"])

    assert result.success
    assert twilio_emulator.post_count == 0
    stored = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})
    assert stored["deliveries"] == []
    assert stored["sms"] == {"state": "skipped", "reason": "TWILIO_* not set"}
    assert stored["state"] == "dispatched"
    assert stored["processed"]["alerted"] is True
    assert secondary.get_collection().find_one({"_id": alert["_id"]}) == stored


def test_unconfigured_secondary_is_skipped_and_the_sms_still_sent(instance, mongo, db, twilio_emulator):
    alert = make_alert()
    db[ALERT_COLLECTION].insert_one(alert)

    result = dispatch(
        instance, mongo, emulator_sms(twilio_emulator, ALICE), SecondaryMongoResource(), alert["_id"]
    )

    assert result.success
    assert [m["to"] for m in twilio_emulator.messages] == [ALICE]
    stored = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})
    assert stored["secondary"]["state"] == "skipped"
    assert stored["secondary"]["reason"] == "SECONDARY_MONGODB_URI not set"
    assert stored["state"] == "dispatched"
    assert stored["processed"]["alerted"] is True
    assert op_metadata(result, "copy_alert_to_secondary")["secondary_state"] == "skipped"


def test_invalid_alert_sms_to_fails_the_run_naming_the_value(instance, mongo, db, secondary, twilio_emulator):
    alert = make_alert()
    db[ALERT_COLLECTION].insert_one(alert)
    sms = emulator_sms(twilio_emulator, f"{ALICE}, 0044 7911 123456")

    result = dispatch(instance, mongo, sms, secondary, alert["_id"], raise_on_error=False)

    assert not result.success
    assert twilio_emulator.post_count == 0
    [error] = db[ERROR_COLLECTION].find({})
    assert error["code"] == "ALERT_SMS_TO_INVALID"
    assert "0044 7911 123456" in error["message"] and "ALERT_SMS_TO" in error["message"]
    assert error["run_id"] == result.run_id
    assert error["partition"] is None
    assert set(error) >= {"date", "code", "message", "http_status", "run_id", "partition"}
    stored = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})
    assert stored["state"] == "pending" and stored["processed"]["alerted"] is False
    # Not retried: a configuration error does not heal by waiting.
    assert len([e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]) == 0


def test_twilio_refusing_our_credentials_fails_the_run_without_leaking_the_token(
    instance, mongo, db, secondary, twilio_emulator
):
    alert = make_alert()
    db[ALERT_COLLECTION].insert_one(alert)
    wrong_token = "wrong-token-" + DEMO_AUTH_TOKEN[::-1]
    sms = emulator_sms(twilio_emulator, f"{ALICE},{BOB}", auth_token=wrong_token)

    result = dispatch(instance, mongo, sms, secondary, alert["_id"], raise_on_error=False)

    assert not result.success
    assert twilio_emulator.messages == []
    assert twilio_emulator.post_count == 1  # the first refusal stops the batch: same answer for everyone
    [error] = db[ERROR_COLLECTION].find({})
    assert error["code"] == "TWILIO_SENDER_REFUSED"
    assert error["http_status"] == 401
    assert "20003" in error["message"]
    stored = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})
    assert stored["state"] == "pending" and stored["processed"]["alerted"] is False
    assert stored["deliveries"][0]["status"] == "blocked"
    for entry in instance.all_logs(result.run_id):
        assert wrong_token not in str(entry)
    assert wrong_token not in str(list(db[ERROR_COLLECTION].find({})))
    assert wrong_token not in str(stored)

    # Fixed credentials, re-executed: everyone gets the text once.
    fixed = dispatch(
        instance, mongo, emulator_sms(twilio_emulator, f"{ALICE},{BOB}"), secondary, alert["_id"]
    )
    assert fixed.success
    assert sorted(m["to"] for m in twilio_emulator.messages) == sorted([ALICE, BOB])


def test_dispatching_a_settled_alert_does_nothing(instance, mongo, db, secondary, twilio_emulator):
    alert = make_alert(state="dispatched", processed={"date": None, "alerted": True})
    db[ALERT_COLLECTION].insert_one(alert)
    before = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})

    result = dispatch(instance, mongo, emulator_sms(twilio_emulator, ALICE), secondary, alert["_id"])

    assert result.success
    assert twilio_emulator.post_count == 0
    assert db[ALERT_COLLECTION].find_one({"_id": alert["_id"]}) == before
    assert secondary.get_collection().find_one({"_id": alert["_id"]}) is None
    assert op_metadata(result, "mark_alert_processed")["state"] == "already settled"


@pytest.mark.parametrize("state", ["suppressed", "failed"])
def test_a_suppressed_or_failed_alert_is_never_texted(instance, mongo, db, secondary, twilio_emulator, state):
    alert = make_alert(state=state)
    db[ALERT_COLLECTION].insert_one(alert)

    result = dispatch(instance, mongo, emulator_sms(twilio_emulator, ALICE), secondary, alert["_id"])

    assert result.success
    assert twilio_emulator.post_count == 0
    assert db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})["state"] == state


@pytest.mark.parametrize(
    ("alert_id", "code"), [("not-an-id", "ALERT_ID_INVALID"), ("0123456789abcdef01234567", "ALERT_NOT_FOUND")]
)
def test_an_unknown_alert_id_fails_clearly(instance, mongo, db, secondary, twilio_emulator, alert_id, code):
    result = dispatch(
        instance, mongo, emulator_sms(twilio_emulator, ALICE), secondary, alert_id, raise_on_error=False
    )

    assert not result.success
    [error] = db[ERROR_COLLECTION].find({})
    assert error["code"] == code
    assert alert_id in error["message"]


def test_partly_configured_twilio_fails_the_run_naming_what_is_missing(
    instance, mongo, db, secondary, twilio_emulator
):
    alert = make_alert()
    db[ALERT_COLLECTION].insert_one(alert)

    result = dispatch(
        instance, mongo, SmsResource(recipients=ALICE), secondary, alert["_id"], raise_on_error=False
    )

    assert not result.success
    assert twilio_emulator.post_count == 0
    [error] = db[ERROR_COLLECTION].find({})
    assert error["code"] == "SMS_CONFIG_INVALID"
    assert "TWILIO_ACCOUNT_SID" in error["message"]
    assert db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})["processed"]["alerted"] is False


def test_primary_mongodb_down_is_retried_then_fails_the_run(instance, twilio_emulator, secondary):
    down = MongoResource(uri=closed_port_uri(), timeout_ms=300)

    result = dispatch(
        instance,
        down,
        emulator_sms(twilio_emulator, ALICE),
        secondary,
        "0123456789abcdef01234567",
        raise_on_error=False,
    )

    assert not result.success
    retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retried) == FAST.op_max_retries
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert (
        "Failure: primary MongoDB unavailable: ServerSelectionTimeoutError"
        in failure.event_specific_data.error.message
    )
    assert failure.event_specific_data.user_failure_data.metadata["error_code"].value == "MONGODB_UNAVAILABLE"
    assert twilio_emulator.post_count == 0
