"""Occurrences folded into an alert while its text is being sent are reported, not lost.

Ingest folds new occurrences of a pending alert into `count` only, and into `since_last_alert` once
the alert is dispatched. The text reports the count it was rendered with (`sms.count_texted`); when
the dispatch settles the alert, the occurrences counted in between become `since_last_alert`, in the
same atomic update that makes it "dispatched", and a repeated mark step adds nothing. Steps run over
SecantusDB over TCP and the Twilio emulator over HTTP.
"""

import time
from datetime import timedelta

import pytest

from realm_alert_pipeline.constants import ALERT_COLLECTION
from realm_alert_pipeline.core.timeutil import utc_now
from realm_alert_pipeline.dispatch import steps
from realm_alert_pipeline.dispatch.deliveries import SendPolicy
from realm_alert_pipeline.dispatch.failures import DispatchError
from realm_alert_pipeline.local.twilio_emulator import TwilioFault
from realm_alert_pipeline.resources.secondary_mongo import SecondaryMongoResource
from realm_alert_pipeline.resources.sms import SmsResource
from realm_alert_pipeline_tests.dispatch.helpers import ALICE, BOB, emulator_sms, make_alert

POLICY = SendPolicy(attempts=1, backoff_s=0, backoff_cap_s=0, recheck_s=0)


def send(db, sms, alert_id):
    return steps.send_alert_sms(
        db,
        sms,
        str(alert_id),
        run_id="run-1",
        clock=utc_now,
        sleep=time.sleep,
        policy=POLICY,
        max_segments=1,
        lease=timedelta(minutes=10),
    )


def fold(db, alert_id, occurrences):
    """What ingest's detect step does with new occurrences of a pending alert (see ingest/detect.py)."""
    db[ALERT_COLLECTION].update_one({"_id": alert_id, "state": "pending"}, {"$inc": {"count": occurrences}})


def test_occurrences_folded_in_while_texting_become_since_last_alert(db, secondary, twilio_emulator):
    alert = make_alert(count=3)
    db[ALERT_COLLECTION].insert_one(alert)
    sms = emulator_sms(twilio_emulator, f"{ALICE},{BOB}")
    twilio_emulator.inject(TwilioFault(kind="status", status=429, code=20429, after=1))  # BOB throttled

    with pytest.raises(DispatchError, match="1 of 2 recipient"):
        send(db, sms, alert["_id"])
    fold(db, alert["_id"], 2)  # the next window's ingest run, while the dispatch retries
    assert send(db, sms, alert["_id"]).state == "sent"
    fold(db, alert["_id"], 4)
    steps.copy_alert(db, secondary, str(alert["_id"]), clock=utc_now)
    fold(db, alert["_id"], 1)  # between the copy and the mark

    result = steps.mark_alert_processed(db, str(alert["_id"]))

    bodies = {m["body"] for m in twilio_emulator.messages}
    assert len(bodies) == 1 and "3x" in bodies.pop()  # both texts were rendered once, at count 3
    stored = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})
    assert stored["sms"]["count_texted"] == 3
    assert stored["count"] == 10
    assert stored["state"] == "dispatched"
    assert stored["since_last_alert"] == 7
    assert result.since_last_alert == 7
    # The copy was made before the last fold: it shows what was known then.
    assert secondary.get_collection().find_one({"_id": alert["_id"]})["since_last_alert"] == 6

    again = steps.mark_alert_processed(db, str(alert["_id"]))

    assert again.state == "already settled"
    assert db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})["since_last_alert"] == 7


def test_nothing_folded_in_leaves_since_last_alert_at_zero_and_the_copy_equal(db, secondary, twilio_emulator):
    alert = make_alert(count=5)
    db[ALERT_COLLECTION].insert_one(alert)

    send(db, emulator_sms(twilio_emulator, ALICE), alert["_id"])
    steps.copy_alert(db, secondary, str(alert["_id"]), clock=utc_now)
    steps.mark_alert_processed(db, str(alert["_id"]))

    stored = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})
    assert stored["since_last_alert"] == 0 and stored["sms"]["count_texted"] == 5
    assert secondary.get_collection().find_one({"_id": alert["_id"]}) == stored


def test_an_alert_never_texted_keeps_its_since_last_alert(db, twilio_emulator):
    alert = make_alert(count=2)
    db[ALERT_COLLECTION].insert_one(alert)

    assert send(db, SmsResource(), alert["_id"]).state == "skipped"
    fold(db, alert["_id"], 3)
    steps.copy_alert(db, SecondaryMongoResource(), str(alert["_id"]), clock=utc_now)
    steps.mark_alert_processed(db, str(alert["_id"]))

    assert db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})["since_last_alert"] == 0
