"""Two runs never text the same alert at once, and a crashed run does not hold an alert hostage.

The lease is keyed on the run family (root_run_id: Dagster run retries and re-executions continue at
once); a run whose lease holder has finished (crashed and marked failed) takes over without waiting
for the lease to expire; every write of the send step renews the lease and is made only while it is
held, so a run that lost it stops before texting anyone else. Runs go through a real DagsterInstance,
Twilio is the emulator over HTTP, MongoDB SecantusDB over TCP.
"""

import concurrent.futures
import time
from datetime import timedelta

import pytest

from realm_alert_pipeline.constants import ALERT_COLLECTION, ERROR_COLLECTION
from realm_alert_pipeline.core.timeutil import utc_now
from realm_alert_pipeline.dispatch import alert_store, steps
from realm_alert_pipeline.dispatch.deliveries import SendPolicy
from realm_alert_pipeline.dispatch.failures import DispatchError
from realm_alert_pipeline.local.twilio_emulator import TwilioFault
from realm_alert_pipeline_tests.dispatch.helpers import ALICE, BOB, JOB, emulator_sms, make_alert
from realm_alert_pipeline_tests.waiting import wait_until

POLICY = SendPolicy(attempts=1, backoff_s=0, backoff_cap_s=0, recheck_s=0)
LEASE = timedelta(minutes=10)


def send_step(db, sms, alert_id, *, run_id, lease_key=None, is_run_finished=lambda run_id: None):
    return steps.send_alert_sms(
        db,
        sms,
        str(alert_id),
        run_id=run_id,
        clock=utc_now,
        sleep=time.sleep,
        policy=POLICY,
        max_segments=1,
        lease=LEASE,
        lease_key=lease_key,
        is_run_finished=is_run_finished,
    )


def test_a_crashed_runs_lease_is_taken_over_without_texting_anyone_twice(
    instance, mongo, db, secondary, twilio_emulator
):
    sms = emulator_sms(twilio_emulator, f"{ALICE},{BOB}")
    # The crashed run: it texted ALICE (Twilio accepted), then its worker died before recording the
    # sid; run monitoring marked it failed. Its lease would still hold for ten minutes.
    crashed = instance.create_run_for_job(job_def=JOB, run_config={"alert_id": "0" * 24})
    instance.report_run_failed(instance.get_run_by_id(crashed.run_id))
    started = utc_now() - timedelta(seconds=5)
    body = "FUNCTION checkoutCart FunctionExecutionError: crashed holding the lease #c0ffee"
    sms.send_sms(ALICE, body)
    outbox = {"sid": None, "status": "sending", "attempts": 1, "error_code": None, "error_message": None,
              "attempt_started_at": started, "first_attempt_at": started, "updated_at": started}  # fmt: skip
    alert = make_alert(
        sms={"state": "sending", "body": body, "segments": 1, "encoding": "GSM-7", "count_texted": 3},
        deliveries=[{"to": ALICE, **outbox}],
        dispatch={"lease": {"key": crashed.run_id, "run_id": crashed.run_id, "until": utc_now() + LEASE}},
    )
    db[ALERT_COLLECTION].insert_one(alert)

    result = JOB.execute_in_process(
        run_config={"alert_id": str(alert["_id"])},
        resources={"mongo": mongo, "sms": sms, "secondary_mongo": secondary},
        instance=instance,
    )

    assert result.success
    assert [m["to"] for m in twilio_emulator.messages] == [ALICE, BOB]
    stored = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})
    assert stored["state"] == "dispatched"
    assert {d["to"]: d["reconciled"] for d in stored["deliveries"]} == {ALICE: True, BOB: False}
    assert stored["dispatch"]["run_id"] == result.run_id
    assert "lease" not in stored["dispatch"]  # released


def test_a_lease_held_by_a_run_still_going_is_respected(instance, mongo, db, secondary, twilio_emulator):
    running = instance.create_run_for_job(job_def=JOB, run_config={"alert_id": "0" * 24})
    alert = make_alert(
        dispatch={"lease": {"key": running.run_id, "run_id": running.run_id, "until": utc_now() + LEASE}}
    )
    db[ALERT_COLLECTION].insert_one(alert)

    result = JOB.execute_in_process(
        run_config={"alert_id": str(alert["_id"])},
        resources={"mongo": mongo, "sms": emulator_sms(twilio_emulator, ALICE), "secondary_mongo": secondary},
        instance=instance,
        raise_on_error=False,
    )

    assert not result.success
    assert twilio_emulator.post_count == 0
    [error] = db[ERROR_COLLECTION].find({})
    assert error["code"] == "ALERT_LEASED" and running.run_id in error["message"]


def test_a_run_retry_or_re_execution_continues_under_its_root_runs_lease(db, twilio_emulator):
    # Run "attempt-1" (root "root-1") died mid-send; Dagster's run retry "attempt-2" shares the root.
    alert = make_alert(
        dispatch={"lease": {"key": "root-1", "run_id": "attempt-1", "until": utc_now() + LEASE}}
    )
    db[ALERT_COLLECTION].insert_one(alert)
    sms = emulator_sms(twilio_emulator, ALICE)

    with pytest.raises(DispatchError, match="being dispatched by run attempt-1"):
        send_step(db, sms, alert["_id"], run_id="other", lease_key="root-2")
    result = send_step(db, sms, alert["_id"], run_id="attempt-2", lease_key="root-1")

    assert result.state == "sent" and len(twilio_emulator.messages) == 1


def test_every_delivery_write_renews_the_lease_and_needs_it(db):
    alert = make_alert()
    db[ALERT_COLLECTION].insert_one(alert)
    now = utc_now()
    assert alert_store.claim_lease(db, alert["_id"], "root-1", "run-1", now, now + LEASE) is not None
    later = now + timedelta(minutes=8)
    delivery = {"to": ALICE, "sid": None, "status": "sending", "attempts": 1}

    alert_store.save_delivery(db, alert["_id"], delivery, lease_key="root-1", now=later, until=later + LEASE)
    alert_store.save_delivery(
        db,
        alert["_id"],
        {**delivery, "sid": "SM1", "status": "queued"},
        lease_key="root-1",
        now=later,
        until=later + LEASE,
    )

    stored = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})
    assert stored["dispatch"]["lease"]["until"] == later + LEASE
    assert stored["deliveries"] == [{"to": ALICE, "sid": "SM1", "status": "queued", "attempts": 1}]
    with pytest.raises(alert_store.LeaseLost):
        alert_store.save_delivery(
            db, alert["_id"], {**delivery, "to": BOB}, lease_key="root-2", now=later, until=later
        )
    assert [d["to"] for d in db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})["deliveries"]] == [ALICE]


def test_a_run_that_lost_its_lease_mid_send_texts_nobody_else(db, twilio_emulator):
    alert = make_alert()
    db[ALERT_COLLECTION].insert_one(alert)
    sms = emulator_sms(twilio_emulator, f"{ALICE},{BOB}")
    twilio_emulator.inject(TwilioFault(kind="delay", delay_s=1.0))  # ALICE's create() takes a second
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        run = pool.submit(send_step, db, sms, alert["_id"], run_id="slow-run")
        wait_until(
            lambda: run.done() or db[ALERT_COLLECTION].find_one({"_id": alert["_id"]}).get("deliveries"),
            timeout=10,
            what="the first delivery record",
        )
        # Meanwhile the lease passed to another run (as after an expiry).
        taken = db[ALERT_COLLECTION].update_one(
            {"_id": alert["_id"]},
            {"$set": {"dispatch.lease": {"key": "other", "run_id": "other", "until": utc_now() + LEASE}}},
        )
        assert taken.modified_count == 1
        with pytest.raises(DispatchError) as caught:
            run.result(timeout=30)

    assert caught.value.code == "ALERT_LEASE_LOST" and caught.value.retryable
    assert [m["to"] for m in twilio_emulator.messages] == [ALICE]  # BOB left to the lease holder
    stored = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})
    assert stored["dispatch"]["lease"]["key"] == "other"  # not released by the run that lost it
    # ALICE's record still says "sending": the holder looks her message up instead of re-sending.
    assert stored["deliveries"][0]["status"] == "sending"


def test_the_job_holds_the_lease_under_its_root_run_id_while_texting(
    instance, mongo, db, secondary, twilio_emulator
):
    alert = make_alert()
    db[ALERT_COLLECTION].insert_one(alert)
    twilio_emulator.inject(TwilioFault(kind="delay", delay_s=1.0))
    resources = {"mongo": mongo, "sms": emulator_sms(twilio_emulator, ALICE), "secondary_mongo": secondary}
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        run = pool.submit(
            JOB.execute_in_process,
            run_config={"alert_id": str(alert["_id"])},
            resources=resources,
            instance=instance,
        )
        lease = wait_until(
            lambda: (
                (db[ALERT_COLLECTION].find_one({"_id": alert["_id"]}).get("dispatch") or {}).get("lease")
                or (run.done() and "run finished")
            ),
            timeout=10,
            what="the run to take the lease",
        )
        lease = None if lease == "run finished" else lease
        result = run.result(timeout=30)

    assert result.success
    assert lease is not None, "never saw the lease while create() was in flight"
    # A fresh run is its own root; its run retries and re-executions carry this id as root_run_id.
    run_record = instance.get_run_by_id(result.run_id)
    assert lease["key"] == (run_record.root_run_id or result.run_id) == result.run_id
    assert lease["run_id"] == result.run_id
    assert "lease" not in db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})["dispatch"]
