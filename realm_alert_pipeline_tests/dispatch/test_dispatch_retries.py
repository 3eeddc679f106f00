"""An alert whose dispatch run failed (Twilio or MongoDB down beyond every retry) is not left pending.

The sensor requests a later attempt with a new run_key after a backoff, never while a run of the
alert is open (a Dagster run retry on its way counts as open), texts nobody twice across attempts,
and after the last allowed attempt settles the alert "failed" with one Error naming it and the last
failure. Sensor ticks go through build_sensor_context with a real DagsterInstance, runs through
execute_in_process on it, Twilio is the emulator over HTTP, MongoDB SecantusDB over TCP.
"""

import dataclasses
from datetime import timedelta

import dagster as dg
import pytest

from realm_alert_pipeline.constants import (
    ALERT_COLLECTION,
    ALERT_TAG,
    DISPATCH_ATTEMPT_TAG,
    ERROR_COLLECTION,
    RUN_KEY_TAG,
)
from realm_alert_pipeline.dispatch import build_dispatch_defs
from realm_alert_pipeline.local.twilio_emulator import DEMO_AUTH_TOKEN, TwilioFault
from realm_alert_pipeline.settings import PipelineSettings
from realm_alert_pipeline_tests.dispatch.helpers import ALICE, BOB, FAST, T0, Clock, emulator_sms, make_alert

# One send attempt per recipient and no op retry: one 429 fails the run, so the tests stay quick.
TUNING = dataclasses.replace(
    FAST,
    send_attempts=1,
    op_max_retries=0,
    retry_backoff=(timedelta(minutes=1), timedelta(minutes=5)),
    max_attempts=3,
)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def defs(clock):
    return build_dispatch_defs(PipelineSettings(), clock=clock, tuning=TUNING)


def tick(defs, instance, mongo):
    return defs.sensor.evaluate_tick(dg.build_sensor_context(instance=instance, resources={"mongo": mongo}))


def launch(defs, instance, mongo, sms, secondary, request):
    """What the daemon does with a RunRequest: a run tagged with its run_key."""
    return defs.job.execute_in_process(
        run_config=request.run_config,
        tags={**request.tags, RUN_KEY_TAG: request.run_key},
        resources={"mongo": mongo, "sms": sms, "secondary_mongo": secondary},
        instance=instance,
        raise_on_error=False,
    )


def texts_to(emulator, number):
    return [m for m in emulator.messages if m["to"] == number]


def test_a_failed_run_is_retried_later_with_a_new_run_key_texting_each_recipient_once(
    defs, clock, instance, mongo, db, secondary, twilio_emulator
):
    alert = make_alert(created_at=T0 - timedelta(minutes=1))
    db[ALERT_COLLECTION].insert_one(alert)
    alert_id = str(alert["_id"])
    sms = emulator_sms(twilio_emulator, f"{ALICE},{BOB}")
    [first] = tick(defs, instance, mongo).run_requests
    assert first.run_key == alert_id and first.tags[DISPATCH_ATTEMPT_TAG] == "1"
    # Twilio throttles ALICE's text; BOB's goes out; the run fails.
    twilio_emulator.inject(TwilioFault(kind="status", status=429, code=20429, times=1))
    assert not launch(defs, instance, mongo, sms, secondary, first).success
    assert [m["to"] for m in twilio_emulator.messages] == [BOB]

    clock.now = T0 + TUNING.rerequest_after
    noticed = tick(defs, instance, mongo)
    assert noticed.run_requests == []
    assert "1 waiting to retry a failed run" in noticed.skip_message
    retry_at = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})["dispatch"]["retry_at"]
    assert retry_at == clock.now + TUNING.retry_backoff[0]

    clock.now = retry_at - timedelta(seconds=1)
    assert tick(defs, instance, mongo).run_requests == []
    clock.now = retry_at
    [second] = tick(defs, instance, mongo).run_requests
    assert second.run_key == f"{alert_id}:1"
    assert second.run_config == {"alert_id": alert_id}
    assert second.tags[ALERT_TAG] == alert_id and second.tags[DISPATCH_ATTEMPT_TAG] == "2"

    assert launch(defs, instance, mongo, sms, secondary, second).success
    assert len(texts_to(twilio_emulator, ALICE)) == 1
    assert len(texts_to(twilio_emulator, BOB)) == 1
    assert twilio_emulator.post_count == 3  # ALICE 429, BOB, ALICE
    stored = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})
    assert stored["state"] == "dispatched" and stored["processed"]["alerted"] is True
    assert stored["dispatch"]["attempts"] == 2 and stored["dispatch"]["run_key"] == f"{alert_id}:1"
    clock.now += timedelta(hours=1)
    assert tick(defs, instance, mongo).skip_message == f"no pending alerts in {mongo.database}.Alert"


def test_no_second_run_while_one_is_open_or_a_run_retry_is_coming(defs, clock, instance, mongo, db):
    alert = make_alert(created_at=T0 - timedelta(minutes=1))
    db[ALERT_COLLECTION].insert_one(alert)
    alert_id = str(alert["_id"])
    [request] = tick(defs, instance, mongo).run_requests
    run = instance.create_run_for_job(
        job_def=defs.job, run_config=request.run_config, tags={**request.tags, RUN_KEY_TAG: request.run_key}
    )

    clock.now = T0 + TUNING.rerequest_after
    assert "1 in flight" in tick(defs, instance, mongo).skip_message  # queued, not started

    # The run failed and Dagster's run-retry daemon will launch its retry (dagster.yaml run_retries).
    instance.report_run_failed(instance.get_run_by_id(run.run_id))
    instance.add_run_tags(run.run_id, {"dagster/will_retry": "true"})
    clock.now += TUNING.rerequest_after
    assert "1 in flight" in tick(defs, instance, mongo).skip_message

    # No retry is coming after all: now the sensor's own backoff starts.
    instance.add_run_tags(run.run_id, {"dagster/will_retry": "false"})
    clock.now += TUNING.rerequest_after
    assert "1 waiting to retry a failed run" in tick(defs, instance, mongo).skip_message
    clock.now += TUNING.retry_backoff[0]
    [again] = tick(defs, instance, mongo).run_requests
    assert again.run_key == f"{alert_id}:1"


def test_past_the_last_attempt_the_alert_is_settled_failed_with_an_error(
    defs, clock, instance, mongo, db, secondary, twilio_emulator
):
    alert = make_alert(created_at=T0 - timedelta(minutes=1))
    db[ALERT_COLLECTION].insert_one(alert)
    alert_id = str(alert["_id"])
    sms = emulator_sms(twilio_emulator, ALICE)
    twilio_emulator.inject(TwilioFault(kind="status", status=429, code=20429, times=100))
    keys = []
    runs = []
    for _ in range(20):  # bounded: the loop ends when the sensor stops asking
        result = tick(defs, instance, mongo)
        for request in result.run_requests:
            keys.append(request.run_key)
            runs.append(launch(defs, instance, mongo, sms, secondary, request))
        if result.skip_message and "no pending alerts" in result.skip_message:
            break
        clock.now += TUNING.rerequest_after + TUNING.retry_backoff[-1]

    assert keys == [alert_id, f"{alert_id}:1", f"{alert_id}:2"]
    assert not any(run.success for run in runs)
    assert "gave up on 1 alert(s)" in result.skip_message
    stored = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})
    assert stored["state"] == "failed" and stored["processed"]["alerted"] is True
    assert stored["dispatch"]["gave_up"]["attempts"] == 3
    assert stored["dispatch"]["gave_up"]["last_run_id"] == runs[-1].run_id
    assert twilio_emulator.messages == []
    [gave_up] = db[ERROR_COLLECTION].find({"code": "DISPATCH_GAVE_UP"})
    assert gave_up["alert_id"] == alert_id and gave_up["run_id"] == runs[-1].run_id
    assert alert_id in gave_up["message"] and "after 3 dispatch attempt(s)" in gave_up["message"]
    assert "0 of 1 recipient(s) recorded as texted" in gave_up["message"]
    assert "last failure: TWILIO_UNAVAILABLE" in gave_up["message"]
    assert DEMO_AUTH_TOKEN not in str(list(db[ERROR_COLLECTION].find({})))
    # Each failed run recorded its own failure too.
    assert db[ERROR_COLLECTION].count_documents({"code": "TWILIO_UNAVAILABLE"}) == 3

    clock.now += timedelta(days=1)
    later = tick(defs, instance, mongo)
    assert later.run_requests == [] and later.skip_message == f"no pending alerts in {mongo.database}.Alert"


def test_a_run_that_failed_without_recording_an_error_is_named_in_the_give_up(
    defs, clock, instance, mongo, db
):
    alert = make_alert(created_at=T0 - timedelta(minutes=1), dispatch={"requested_at": T0, "attempts": 3})
    db[ALERT_COLLECTION].insert_one(alert)
    alert_id = str(alert["_id"])
    # The third attempt's run was canceled (e.g. from the UI) before it wrote anything.
    run = instance.create_run_for_job(
        job_def=defs.job,
        run_config={"alert_id": alert_id},
        tags={ALERT_TAG: alert_id, RUN_KEY_TAG: f"{alert_id}:2"},
        status=dg.DagsterRunStatus.CANCELED,
    )

    result = tick(defs, instance, mongo)

    assert result.run_requests == []
    [error] = db[ERROR_COLLECTION].find({"code": "DISPATCH_GAVE_UP"})
    assert f"run {run.run_id} ended CANCELED without recording an error" in error["message"]
    assert db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})["state"] == "failed"
