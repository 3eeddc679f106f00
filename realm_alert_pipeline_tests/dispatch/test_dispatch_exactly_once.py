"""Nobody is texted twice, although Twilio's create() is not idempotent and runs fail halfway.

A 429 is retried (not processed by Twilio); a 5xx or a dropped connection after Twilio accepted the
message is reconciled against the Messages list before any re-send; a run that dies after texting
and before marking, or whose secondary MongoDB is down, is retried without texting again; a delivery
left "sending" by a crashed run is looked up first. Twilio is the emulator over HTTP through the
real SDK, MongoDB is SecantusDB over TCP, runs go through a real DagsterInstance with its op retries.
"""

import concurrent.futures
import dataclasses
from datetime import timedelta

import pytest

from realm_alert_pipeline.constants import ALERT_COLLECTION, ERROR_COLLECTION
from realm_alert_pipeline.core.timeutil import utc_now
from realm_alert_pipeline.dispatch import DispatchTuning, build_dispatch_defs
from realm_alert_pipeline.local.twilio_emulator import TwilioFault
from realm_alert_pipeline.resources.secondary_mongo import SecondaryMongoResource
from realm_alert_pipeline.settings import PipelineSettings
from realm_alert_pipeline_tests.dispatch.helpers import (
    ALICE,
    BOB,
    FAST,
    closed_port_uri,
    dispatch,
    emulator_sms,
    make_alert,
)
from realm_alert_pipeline_tests.waiting import wait_until


def retries(result, step_key):
    return sum(
        1 for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY" and e.step_key == step_key
    )


def messages_to(emulator, number):
    return [m for m in emulator.messages if m["to"] == number]


def test_a_429_is_sent_again_after_a_backoff(instance, mongo, db, secondary, twilio_emulator):
    alert = make_alert()
    db[ALERT_COLLECTION].insert_one(alert)
    twilio_emulator.inject(TwilioFault(kind="status", status=429, code=20429, times=1))

    result = dispatch(instance, mongo, emulator_sms(twilio_emulator, ALICE), secondary, alert["_id"])

    assert result.success
    assert len(twilio_emulator.messages) == 1
    assert twilio_emulator.post_count == 2
    [delivery] = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})["deliveries"]
    assert delivery["attempts"] == 2
    assert delivery["sid"] == twilio_emulator.messages[0]["sid"]
    assert delivery["error_code"] is None


def test_429s_beyond_the_in_op_attempts_are_retried_by_the_dagster_retry_policy(
    instance, mongo, db, secondary, twilio_emulator
):
    job = build_dispatch_defs(PipelineSettings(), tuning=dataclasses.replace(FAST, send_attempts=2)).job
    alert = make_alert()
    db[ALERT_COLLECTION].insert_one(alert)
    twilio_emulator.inject(TwilioFault(kind="status", status=429, code=20429, times=3))

    result = dispatch(
        instance, mongo, emulator_sms(twilio_emulator, f"{ALICE},{BOB}"), secondary, alert["_id"], job=job
    )

    assert result.success
    assert retries(result, "send_alert_sms") == 1
    # Op attempt 1: ALICE 429, 429 (gives up for now) | BOB 429, sent. Op attempt 2: ALICE sent, BOB skipped.
    assert twilio_emulator.post_count == 5
    assert sorted(m["to"] for m in twilio_emulator.messages) == sorted([ALICE, BOB])
    deliveries = {d["to"]: d for d in db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})["deliveries"]}
    assert deliveries[ALICE]["attempts"] == 3
    assert deliveries[BOB]["attempts"] == 2


def test_twilio_down_beyond_every_retry_fails_the_run_and_records_it(
    instance, mongo, db, secondary, twilio_emulator
):
    alert = make_alert()
    db[ALERT_COLLECTION].insert_one(alert)
    twilio_emulator.inject(TwilioFault(kind="status", status=429, code=20429, times=100))

    result = dispatch(
        instance, mongo, emulator_sms(twilio_emulator, ALICE), secondary, alert["_id"], raise_on_error=False
    )

    assert not result.success
    assert retries(result, "send_alert_sms") == FAST.op_max_retries
    assert twilio_emulator.post_count == FAST.send_attempts * (FAST.op_max_retries + 1)
    [error] = db[ERROR_COLLECTION].find({})
    assert error["code"] == "TWILIO_UNAVAILABLE" and error["http_status"] == 429
    stored = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})
    assert stored["state"] == "pending" and stored["deliveries"][0]["status"] == "retrying"


@pytest.mark.parametrize("fault", [TwilioFault(kind="accept_then_status", status=500, code=20500),
                                   TwilioFault(kind="accept_then_status", status=503, html=True),
                                   TwilioFault(kind="accept_then_drop")],
                         ids=["500", "503-html", "dropped"])  # fmt: skip
def test_an_ambiguous_send_is_reconciled_not_repeated(instance, mongo, db, secondary, twilio_emulator, fault):
    alert = make_alert()
    db[ALERT_COLLECTION].insert_one(alert)
    twilio_emulator.inject(fault)

    result = dispatch(
        instance, mongo, emulator_sms(twilio_emulator, f"{ALICE},{BOB}"), secondary, alert["_id"]
    )

    assert result.success
    assert len(messages_to(twilio_emulator, ALICE)) == 1
    assert len(messages_to(twilio_emulator, BOB)) == 1
    assert twilio_emulator.post_count == 2
    deliveries = {d["to"]: d for d in db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})["deliveries"]}
    assert deliveries[ALICE]["sid"] == messages_to(twilio_emulator, ALICE)[0]["sid"]
    assert deliveries[ALICE]["reconciled"] is True
    assert deliveries[ALICE]["attempts"] == 1
    assert deliveries[BOB]["reconciled"] is False


def test_an_ambiguous_send_that_never_reached_twilio_is_sent_once_after_the_lookup(
    instance, mongo, db, secondary, twilio_emulator
):
    alert = make_alert()
    db[ALERT_COLLECTION].insert_one(alert)
    # A 500 without storing: the lookup finds nothing, so the text goes out again (once).
    twilio_emulator.inject(TwilioFault(kind="status", status=500, code=20500))

    result = dispatch(instance, mongo, emulator_sms(twilio_emulator, ALICE), secondary, alert["_id"])

    assert result.success
    assert len(messages_to(twilio_emulator, ALICE)) == 1
    assert twilio_emulator.post_count == 2
    [delivery] = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})["deliveries"]
    assert delivery["attempts"] == 2 and delivery["reconciled"] is False


def test_a_run_that_died_after_texting_is_retried_without_texting_again(
    instance, mongo, db, secondary, twilio_emulator
):
    alert = make_alert()
    db[ALERT_COLLECTION].insert_one(alert)
    sms = emulator_sms(twilio_emulator, f"{ALICE},{BOB}")
    assert dispatch(instance, mongo, sms, secondary, alert["_id"]).success
    posts = twilio_emulator.post_count
    # The crash: deliveries were recorded, then the run died before marking the alert.
    db[ALERT_COLLECTION].update_one(
        {"_id": alert["_id"]},
        {"$set": {"state": "pending", "processed": {"date": None, "alerted": False}, "secondary": None}},
    )

    result = dispatch(instance, mongo, sms, secondary, alert["_id"])

    assert result.success
    assert twilio_emulator.post_count == posts
    stored = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})
    assert stored["state"] == "dispatched" and stored["processed"]["alerted"] is True
    assert all(d["attempts"] == 1 for d in stored["deliveries"])
    assert secondary.get_collection().find_one({"_id": alert["_id"]}) == stored


def test_a_delivery_left_sending_by_a_crashed_run_is_looked_up_before_any_resend(
    instance, mongo, db, secondary, twilio_emulator
):
    alert = make_alert()
    sms = emulator_sms(twilio_emulator, f"{ALICE},{BOB}")
    started = utc_now() - timedelta(seconds=5)
    # The crashed run had rendered the text, written ALICE's outbox record and called create(), which
    # Twilio accepted; BOB's record was written but the process died before his create().
    body = "FUNCTION checkoutCart FunctionExecutionError: crashed mid-send #abc123"
    sent = sms.send_sms(ALICE, body)
    outbox = {"sid": None, "status": "sending", "attempts": 1, "error_code": None, "error_message": None,
              "attempt_started_at": started, "first_attempt_at": started, "updated_at": started}  # fmt: skip
    alert.update(
        sms={"state": "sending", "body": body, "segments": 1, "encoding": "GSM-7"},
        deliveries=[{"to": ALICE, **outbox}, {"to": BOB, **outbox}],
    )
    db[ALERT_COLLECTION].insert_one(alert)
    posts = twilio_emulator.post_count

    result = dispatch(instance, mongo, sms, secondary, alert["_id"])

    assert result.success
    assert twilio_emulator.post_count == posts + 1  # only BOB, who was never texted
    assert len(messages_to(twilio_emulator, ALICE)) == 1
    assert len(messages_to(twilio_emulator, BOB)) == 1
    assert messages_to(twilio_emulator, BOB)[0]["body"] == body  # the same text as the crashed run's
    deliveries = {d["to"]: d for d in db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})["deliveries"]}
    assert deliveries[ALICE]["sid"] == sent.sid and deliveries[ALICE]["reconciled"] is True
    assert deliveries[BOB]["attempts"] == 2 and deliveries[BOB]["reconciled"] is False


def test_the_secondary_down_fails_the_copy_and_a_retry_copies_without_texting_again(
    instance, mongo, db, secondary, twilio_emulator
):
    alert = make_alert()
    db[ALERT_COLLECTION].insert_one(alert)
    sms = emulator_sms(twilio_emulator, ALICE)
    password = "s3cret-secondary-password"
    down = SecondaryMongoResource(
        uri=closed_port_uri(f"audit:{password}"), database=secondary.database, timeout_ms=300
    )

    failed = dispatch(instance, mongo, sms, down, alert["_id"], raise_on_error=False)

    assert not failed.success
    assert retries(failed, "copy_alert_to_secondary") == FAST.op_max_retries
    assert len(twilio_emulator.messages) == 1
    [error] = db[ERROR_COLLECTION].find({})
    assert error["code"] == "SECONDARY_MONGODB_UNAVAILABLE"
    assert "unavailable" in error["message"] and password not in error["message"]
    assert all(password not in str(entry) for entry in instance.all_logs(failed.run_id))
    stored = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})
    assert stored["state"] == "pending" and stored["processed"]["alerted"] is False
    assert stored["sms"]["state"] == "sent"

    result = dispatch(instance, mongo, sms, secondary, alert["_id"])

    assert result.success
    assert twilio_emulator.post_count == 1
    stored = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})
    assert stored["state"] == "dispatched" and stored["secondary"]["state"] == "copied"
    assert secondary.get_collection().find_one({"_id": alert["_id"]}) == stored


def test_a_concurrent_run_holding_the_alert_keeps_this_one_from_texting(
    instance, mongo, db, secondary, twilio_emulator
):
    job = build_dispatch_defs(PipelineSettings(), tuning=DispatchTuning(op_max_retries=0)).job
    alert = make_alert(
        dispatch={"lease": {"run_id": "another-run", "until": utc_now() + timedelta(minutes=5)}}
    )
    db[ALERT_COLLECTION].insert_one(alert)

    result = dispatch(instance, mongo, emulator_sms(twilio_emulator, ALICE), secondary, alert["_id"], job=job,
                      raise_on_error=False)  # fmt: skip

    assert not result.success
    assert twilio_emulator.post_count == 0
    [error] = db[ERROR_COLLECTION].find({})
    assert error["code"] == "ALERT_LEASED" and "another-run" in error["message"]


def test_the_outbox_record_is_written_before_twilio_is_called(
    instance, mongo, db, secondary, twilio_emulator
):
    alert = make_alert()
    db[ALERT_COLLECTION].insert_one(alert)
    twilio_emulator.inject(TwilioFault(kind="delay", delay_s=1.0))
    sms = emulator_sms(twilio_emulator, ALICE)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        run = pool.submit(dispatch, instance, mongo, sms, secondary, alert["_id"])

        def outbox_record_in_flight():
            stored = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})
            if stored.get("deliveries") and stored["deliveries"][0]["status"] == "sending":
                return stored["deliveries"][0], twilio_emulator.messages
            return run.done() and "run finished"

        seen = wait_until(outbox_record_in_flight, timeout=10, what="the outbox record")
        seen = None if seen == "run finished" else seen

        assert run.result(timeout=30).success
    assert seen is not None, "never saw the outbox record while create() was in flight"
    delivery, messages_then = seen
    assert messages_then == []  # Twilio had not stored the message yet
    assert delivery["sid"] is None and delivery["attempts"] == 1
    assert delivery["attempt_started_at"] is not None
    assert len(twilio_emulator.messages) == 1
