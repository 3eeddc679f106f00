"""Every pending alert gets exactly one dispatch run, whatever happens to the sensor's own state.

The sensor's truth is the Alert collection: a second tick, a fresh cursor (daemon restart) or a
backlog far larger than one tick requests each alert once; suppressed alerts are never requested; a
tick whose requests were lost is made good after a timeout only when no run with the alert's run_key
exists. Sensor ticks are evaluated with build_sensor_context against a real DagsterInstance and
SecantusDB over TCP.
"""

import itertools
from datetime import timedelta

import dagster as dg
import pytest

from realm_alert_pipeline.constants import ALERT_COLLECTION, ALERT_TAG, RUN_KEY_TAG
from realm_alert_pipeline.dispatch import DispatchTuning, build_dispatch_defs
from realm_alert_pipeline.dispatch.sensor import build_alert_dispatch_sensor
from realm_alert_pipeline.resources.mongo import MongoResource
from realm_alert_pipeline.settings import PipelineSettings
from realm_alert_pipeline_tests.dispatch.helpers import (
    ALICE,
    FAST,
    JOB,
    T0,
    Clock,
    closed_port_uri,
    emulator_sms,
    make_alert,
)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def defs(clock):
    return build_dispatch_defs(PipelineSettings(), clock=clock, tuning=FAST)


def tick(defs, instance, mongo, cursor=None):
    context = dg.build_sensor_context(instance=instance, resources={"mongo": mongo}, cursor=cursor)
    return defs.sensor.evaluate_tick(context)


def insert_pending(db, count, start=T0 - timedelta(hours=1), **overrides):
    alerts = [make_alert(created_at=start + timedelta(seconds=i), **overrides) for i in range(count)]
    db[ALERT_COLLECTION].insert_many(alerts)
    return alerts


def keys(result):
    return [request.run_key for request in result.run_requests]


def settle(db, run_keys):
    """What each requested run ends with (the job tests show the job does this)."""
    from bson import ObjectId

    ids = [ObjectId(key) for key in run_keys]
    db[ALERT_COLLECTION].update_many(
        {"_id": {"$in": ids}}, {"$set": {"state": "dispatched", "processed": {"date": T0, "alerted": True}}}
    )


def test_sensor_settings(defs):
    assert defs.sensor.name == "alert_dispatch_sensor"
    assert defs.sensor.minimum_interval_seconds == 30
    assert defs.sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert defs.sensor.job_name == "dispatch_alert"
    other = build_dispatch_defs(PipelineSettings(sensor_interval_seconds=90), tuning=FAST)
    assert other.sensor.minimum_interval_seconds == 90


def test_first_tick_requests_each_pending_alert_and_the_second_none(defs, instance, mongo, db):
    alerts = insert_pending(db, 3)

    first = tick(defs, instance, mongo)

    assert keys(first) == [str(a["_id"]) for a in alerts]  # oldest first
    for request, alert in zip(first.run_requests, alerts, strict=True):
        assert request.run_config == {"alert_id": str(alert["_id"])}
        assert request.tags[ALERT_TAG] == str(alert["_id"])
        stored = db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})
        assert stored["dispatch"]["requested_at"] == T0
        assert stored["state"] == "pending"

    second = tick(defs, instance, mongo, cursor=first.cursor)

    assert keys(second) == []
    assert (
        "3 pending alert(s)" in second.skip_message
        and "already have a dispatch_alert run" in second.skip_message
    )


def test_nothing_pending_says_so(defs, instance, mongo, db):
    result = tick(defs, instance, mongo)

    assert keys(result) == []
    assert result.skip_message == f"no pending alerts in {mongo.database}.Alert"


def test_suppressed_and_settled_alerts_are_never_requested(defs, instance, mongo, db):
    insert_pending(db, 2, state="suppressed")
    insert_pending(db, 1, state="dispatched", processed={"date": T0, "alerted": True})
    insert_pending(db, 1, state="failed", processed={"date": T0, "alerted": True})
    [pending] = insert_pending(db, 1)

    assert keys(tick(defs, instance, mongo)) == [str(pending["_id"])]
    settle(db, [str(pending["_id"])])
    result = tick(defs, instance, mongo)
    assert keys(result) == []
    assert result.skip_message == f"no pending alerts in {mongo.database}.Alert"
    assert db[ALERT_COLLECTION].count_documents({"dispatch": {"$exists": True}}) == 1


def test_a_backlog_of_250_is_drained_over_several_ticks_each_alert_once(defs, instance, mongo, db):
    alerts = insert_pending(db, 250)
    requested: list[str] = []
    per_tick: list[int] = []
    cursor = None
    for _ in range(6):
        result = tick(defs, instance, mongo, cursor)
        cursor = result.cursor
        if not result.run_requests:
            break
        per_tick.append(len(result.run_requests))
        requested += keys(result)
        settle(db, keys(result))

    assert per_tick == [100, 100, 50]
    assert sorted(requested) == sorted(str(a["_id"]) for a in alerts)
    assert len(set(requested)) == 250
    assert result.skip_message == f"no pending alerts in {mongo.database}.Alert"


def test_a_restart_with_a_lost_cursor_requests_nothing_already_requested(defs, clock, instance, mongo, db):
    alerts = insert_pending(db, 3)
    first = tick(defs, instance, mongo)
    assert len(first.run_requests) == 3

    restarted = tick(defs, instance, mongo, cursor=None)

    assert keys(restarted) == []
    for alert in alerts:
        assert db[ALERT_COLLECTION].find_one({"_id": alert["_id"]})["dispatch"]["request_count"] == 1


def test_after_the_timeout_only_alerts_without_a_run_are_requested_again(defs, clock, instance, mongo, db):
    launched, lost = insert_pending(db, 2)
    first = tick(defs, instance, mongo)
    assert keys(first) == [str(launched["_id"]), str(lost["_id"])]
    # The daemon launched the first request (the run is queued, not started); the second was lost.
    instance.create_run_for_job(
        job_def=defs.job,
        run_config={"alert_id": str(launched["_id"])},
        tags={RUN_KEY_TAG: str(launched["_id"])},
    )

    clock.now = T0 + FAST.rerequest_after - timedelta(seconds=1)
    assert keys(tick(defs, instance, mongo)) == []

    clock.now = T0 + FAST.rerequest_after
    again = tick(defs, instance, mongo, cursor=None)
    assert keys(again) == [str(lost["_id"])]
    assert db[ALERT_COLLECTION].find_one({"_id": lost["_id"]})["dispatch"]["request_count"] == 2
    # The launched one is not looked at again before another timeout.
    assert db[ALERT_COLLECTION].find_one({"_id": launched["_id"]})["dispatch"]["next_check_at"] == (
        clock.now + FAST.rerequest_after
    )
    waiting = tick(defs, instance, mongo)
    assert keys(waiting) == []
    assert "2 pending alert(s)" in waiting.skip_message


def test_each_requested_run_settles_its_alert(defs, instance, mongo, db, secondary, twilio_emulator):
    alerts = insert_pending(db, 3)
    result = tick(defs, instance, mongo)

    for request in result.run_requests:
        run = defs.job.execute_in_process(
            run_config=request.run_config,
            tags={**request.tags, RUN_KEY_TAG: request.run_key},
            resources={
                "mongo": mongo,
                "sms": emulator_sms(twilio_emulator, ALICE),
                "secondary_mongo": secondary,
            },
            instance=instance,
        )
        assert run.success

    assert len(twilio_emulator.messages) == 3
    assert all(
        a["state"] == "dispatched"
        for a in db[ALERT_COLLECTION].find({"_id": {"$in": [a["_id"] for a in alerts]}})
    )
    assert tick(defs, instance, mongo).skip_message == f"no pending alerts in {mongo.database}.Alert"


def test_mongodb_unreachable_is_the_skip_reason(defs, instance):
    down = MongoResource(uri=closed_port_uri("reader:s3cret-primary"), timeout_ms=300)

    result = tick(defs, instance, down)

    assert keys(result) == []
    assert result.skip_message.startswith("primary MongoDB unreachable (MONGODB_URI, database Logging)")
    assert "s3cret-primary" not in result.skip_message


def test_a_tick_stops_at_its_time_budget(instance, mongo, db, clock):
    alerts = insert_pending(db, 10)
    tuning = DispatchTuning(tick_budget_s=3.5)
    seconds = itertools.count()  # every look at the time costs a second
    sensor = build_alert_dispatch_sensor(
        JOB, PipelineSettings(), clock=clock, tuning=tuning, monotonic=lambda: float(next(seconds))
    )
    context = dg.build_sensor_context(instance=instance, resources={"mongo": mongo})

    first = sensor.evaluate_tick(context)

    assert keys(first) == [str(a["_id"]) for a in alerts[:3]]
    second = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, resources={"mongo": mongo}))
    assert keys(second) == [str(a["_id"]) for a in alerts[3:6]]
