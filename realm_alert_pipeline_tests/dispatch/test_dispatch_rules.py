"""The rules that decide whether a recipient may be texted again and how an alert settles.

A delivery with a sid is sent whatever its status and is never texted again; one left "sending" or
"unknown" must be looked up first; a refusal about our account (bad credentials, From not ours) is
not the recipient's fault; an alert fails only when every recipient refused the text for good. Also:
the definitions load with the resources the lead binds, and no resource repr shows a secret.
"""

from datetime import UTC, datetime

import dagster as dg
import pytest
import requests
from twilio.base.exceptions import TwilioRestException

from realm_alert_pipeline.core.timeutil import to_bson_precision
from realm_alert_pipeline.dispatch import DispatchTuning, build_dispatch_defs
from realm_alert_pipeline.dispatch.deliveries import (
    error_details,
    final_alert_state,
    is_sender_error,
    is_sent,
    needs_reconciliation,
    sms_outcome,
)
from realm_alert_pipeline.resources.mongo import MongoResource
from realm_alert_pipeline.resources.secondary_mongo import SecondaryMongoResource
from realm_alert_pipeline.resources.sms import SmsConfigError, SmsResource
from realm_alert_pipeline.settings import PipelineSettings

SID = "SM" + "a" * 32


def rest_error(status, code):
    return TwilioRestException(status, "/Accounts/AC1/Messages.json", msg="refused", code=code, method="POST")


@pytest.mark.parametrize(
    ("delivery", "sent", "look_up_first"),
    [
        (None, False, False),
        ({"to": "+1", "sid": None, "status": None}, False, False),
        ({"to": "+1", "sid": SID, "status": "queued"}, True, False),
        ({"to": "+1", "sid": SID, "status": "accepted"}, True, False),
        ({"to": "+1", "sid": SID, "status": "delivered"}, True, False),
        ({"to": "+1", "sid": SID, "status": "undelivered"}, True, False),  # texted: never again
        ({"to": "+1", "sid": None, "status": "sending"}, False, True),  # crashed mid-create
        ({"to": "+1", "sid": None, "status": "unknown"}, False, True),  # 5xx / dropped connection
        ({"to": "+1", "sid": None, "status": "retrying"}, False, False),  # 429: Twilio did nothing
        ({"to": "+1", "sid": None, "status": "failed"}, False, False),
        ({"to": "+1", "sid": None, "status": "blocked"}, False, False),
    ],
)
def test_sent_and_uncertain_deliveries(delivery, sent, look_up_first):
    assert is_sent(delivery) is sent
    assert needs_reconciliation(delivery) is look_up_first


def d(status, sid=None):
    return {"to": "+1", "sid": sid, "status": status}


@pytest.mark.parametrize(
    ("deliveries", "outcome", "alert_state"),
    [
        ([d("queued", SID), d("queued", SID)], "sent", "dispatched"),
        ([d("queued", SID), d("failed")], "partial", "dispatched"),
        ([d("failed"), d("failed")], "failed", "failed"),
        ([d("failed")], "failed", "failed"),
    ],
)
def test_sms_outcome_and_final_state(deliveries, outcome, alert_state):
    assert sms_outcome(deliveries) == outcome
    assert final_alert_state({"sms": {"state": outcome}}) == alert_state


@pytest.mark.parametrize("sms", [None, {"state": "skipped", "reason": "TWILIO_* not set"}])
def test_an_alert_with_texting_skipped_is_dispatched(sms):
    assert final_alert_state({"sms": sms}) == "dispatched"


@pytest.mark.parametrize(
    ("exc", "sender_error"),
    [
        (rest_error(401, 20003), True),  # wrong auth token
        (rest_error(400, 21606), True),  # From not an SMS-capable number of ours
        (rest_error(400, 21212), True),  # invalid From
        (rest_error(404, 20404), True),  # unknown account in the URL
        (rest_error(400, 21211), False),  # the recipient's number
        (rest_error(400, 21610), False),  # the recipient unsubscribed
        (rest_error(429, 20429), False),
        (rest_error(500, 20500), False),
        (SmsConfigError("TWILIO_AUTH_TOKEN is not set"), True),
        (requests.exceptions.ConnectionError("refused"), False),
    ],
)
def test_refusals_about_our_account_are_told_apart(exc, sender_error):
    assert is_sender_error(exc) is sender_error


def test_error_details_keep_code_message_and_status():
    assert error_details(rest_error(400, 21211)) == (21211, "refused", 400)
    code, message, status = error_details(requests.exceptions.ReadTimeout("read timed out"))
    assert (code, status) == (None, None)
    assert message == "ReadTimeout: read timed out"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
            datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        ),
        (datetime(2026, 1, 2, 3, 4, 5, 999999), datetime(2026, 1, 2, 3, 4, 5, 999000, tzinfo=UTC)),
    ],
)
def test_times_are_cut_to_what_bson_keeps(value, expected):
    assert to_bson_precision(value) == expected


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"send_attempts": 0}, "send_attempts=0"),
        ({"tick_budget_s": 60}, "tick_budget_s=60"),
        ({"max_alerts_per_tick": 0}, "max_alerts_per_tick=0"),
        ({"op_retry_delay_s": -1}, "op_retry_delay_s=-1"),
    ],
)
def test_bad_tuning_is_named(fields, problem):
    with pytest.raises(ValueError, match=problem):
        DispatchTuning(**fields)


def test_definitions_load_with_the_three_resources():
    dispatch = build_dispatch_defs(PipelineSettings())
    defs = dg.Definitions(
        jobs=[dispatch.job],
        sensors=[dispatch.sensor],
        resources={
            "mongo": MongoResource(uri="mongodb://127.0.0.1:1"),
            "sms": SmsResource(),
            "secondary_mongo": SecondaryMongoResource(),
        },
    )
    dg.Definitions.validate_loadable(defs)
    assert defs.get_job_def("dispatch_alert").name == "dispatch_alert"
    assert defs.get_sensor_def("alert_dispatch_sensor").job_name == "dispatch_alert"


def test_the_secondary_resource_never_shows_its_uri():
    resource = SecondaryMongoResource(uri="mongodb://audit:s3cret@db.example.net/", database="Audit")
    assert resource.is_configured()
    assert resource.target == "Audit.Alert"
    assert "s3cret" not in repr(resource) and "s3cret" not in str(resource)
    assert not SecondaryMongoResource(uri="  ").is_configured()
