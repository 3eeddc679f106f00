"""SmsResource must text the on-call numbers through the real twilio SDK and fail clearly, never silently.

Protects: bad settings are reported by variable and value (a number that lost its '+', has spaces or
is a landline; a malformed SID; two senders; a non-loopback base-URL override); sends go through the
SDK to the emulator over HTTP with a timeout on every request, unaffected by TWILIO_REGION or proxy
variables; errors reach the caller unchanged; an ambiguous send is found again in the Messages list
instead of being resent (paging back through a storm of texts to the same number, matching our body
inside a trial prefix or opt-out suffix, and calling the outcome unknown past a bound); and the auth
token / API key secret never show in repr, errors, logs or Dagster's event log.
"""

import logging
import socket
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import requests
from twilio.base.exceptions import TwilioRestException

from realm_alert_pipeline.core.send_errors import classify_send_error
from realm_alert_pipeline.local.twilio_emulator import (
    DEMO_ACCOUNT_SID,
    DEMO_AUTH_TOKEN,
    DEMO_FROM_NUMBER,
    TwilioEmulator,
    TwilioFault,
)
from realm_alert_pipeline.resources.sms import SentMessage, SmsConfigError, SmsLookupError, SmsResource
from realm_alert_pipeline_tests.waiting import wait_until

TO = "+14155550100"
API_KEY_SID = "SK" + "b" * 32
API_KEY_SECRET = "key-secret-do-not-print-7731"
MG = "MG" + "0123456789abcdef" * 2


def _sms(emulator: TwilioEmulator, **overrides) -> SmsResource:
    settings = {
        "account_sid": DEMO_ACCOUNT_SID,
        "auth_token": DEMO_AUTH_TOKEN,
        "from_number": DEMO_FROM_NUMBER,
        "recipients": TO,
        "api_base_url": emulator.base_url,
        "timeout_s": 5.0,
    }
    settings.update(overrides)
    return SmsResource(**settings)


def _wait_for(condition, timeout: float = 5.0):
    return wait_until(condition, timeout=timeout, what="the emulator to record the request")


# --- recipients -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "numbers"),
    [
        ("+14155550100", ["+14155550100"]),
        ("+14155550100,+447911123456", ["+14155550100", "+447911123456"]),
        (
            " +14155550100 , +819012345678 ,",
            ["+14155550100", "+819012345678"],
        ),  # spaces around commas, trailing comma
        ("+14155550100,+14155550100", ["+14155550100"]),  # texting one person twice helps no one
        ("+15005550006,+15005550009", ["+15005550006", "+15005550009"]),  # Twilio's magic test numbers
    ],
)
def test_recipients_are_parsed(raw, numbers):
    assert SmsResource(recipients=raw).recipient_numbers() == numbers


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("4155550100", "ALERT_SMS_TO: '4155550100' is not E.164 (missing '+')"),
        ("+1 415 555 0100", "ALERT_SMS_TO: '+1 415 555 0100' contains spaces"),
        (
            "+442071838750",
            "ALERT_SMS_TO: '+442071838750' is not a valid mobile number (it is a fixed-line number)",
        ),
        ("+15558675310", "ALERT_SMS_TO: '+15558675310' is not a valid mobile number"),
        ("+1415-555-0100", "ALERT_SMS_TO: '+1415-555-0100' is not E.164"),
        ("+0123456", "ALERT_SMS_TO: '+0123456' is not E.164"),
        ("", "ALERT_SMS_TO is empty"),
        (" , ", "ALERT_SMS_TO is empty"),
    ],
)
def test_bad_recipients_are_reported_by_value(raw, fragment):
    with pytest.raises(SmsConfigError) as caught:
        SmsResource(recipients=raw).recipient_numbers()
    assert fragment in str(caught.value)


def test_every_bad_recipient_is_named_at_once():
    with pytest.raises(SmsConfigError) as caught:
        SmsResource(recipients="+14155550123,4155550101,+44 7911 123456").recipient_numbers()
    message = str(caught.value)
    assert "'4155550101'" in message and "'+44 7911 123456'" in message
    assert "'+14155550123'" not in message


# --- settings ---------------------------------------------------------------------------------------


GOOD = {
    "account_sid": DEMO_ACCOUNT_SID,
    "auth_token": "tok",
    "from_number": DEMO_FROM_NUMBER,
    "recipients": TO,
}


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"account_sid": None}, "TWILIO_ACCOUNT_SID is not set"),
        (
            {"account_sid": "AC123"},
            "TWILIO_ACCOUNT_SID (got 5 characters starting 'AC12') is not 'AC' followed by 32 hex",
        ),
        ({"auth_token": None}, "TWILIO_AUTH_TOKEN is not set"),
        (
            {"api_key_sid": API_KEY_SID, "api_key_secret": "s"},
            "set either TWILIO_AUTH_TOKEN or TWILIO_API_KEY_SID",
        ),
        (
            {"auth_token": None, "api_key_sid": API_KEY_SID},
            "TWILIO_API_KEY_SID is set but TWILIO_API_KEY_SECRET is not",
        ),
        (
            {"auth_token": None, "api_key_secret": "s"},
            "TWILIO_API_KEY_SECRET is set but TWILIO_API_KEY_SID is not",
        ),
        (
            {"auth_token": None, "api_key_sid": "SKnope", "api_key_secret": "s"},
            "TWILIO_API_KEY_SID (got 6 characters",
        ),
        ({"from_number": None}, "neither TWILIO_FROM_NUMBER nor TWILIO_MESSAGING_SERVICE_SID is set"),
        (
            {"messaging_service_sid": MG},
            "set either TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID, not both",
        ),
        (
            {"from_number": None, "messaging_service_sid": "MG42"},
            "TWILIO_MESSAGING_SERVICE_SID: 'MG42' is not 'MG'",
        ),
        ({"from_number": "4155550100"}, "TWILIO_FROM_NUMBER: '4155550100' is not an E.164 number"),
        (
            {"api_base_url": "https://api.twilio.example"},
            "TWILIO_API_BASE_URL: 'https://api.twilio.example' is not a loopback",
        ),
        ({"api_base_url": "ftp://127.0.0.1"}, "is not an http(s) URL"),
        ({"timeout_s": 0}, "TWILIO_TIMEOUT_S=0"),
        ({"recipients": "4155550100"}, "ALERT_SMS_TO: '4155550100' is not E.164"),
    ],
)
def test_config_problems_name_the_variable(overrides, fragment):
    sms = SmsResource(**{**GOOD, **overrides})
    assert any(fragment in problem for problem in sms.config_problems()), sms.config_problems()
    with pytest.raises(SmsConfigError, match="TWILIO|ALERT_SMS_TO"):
        sms.validate_config()


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"auth_token": None, "api_key_sid": API_KEY_SID, "api_key_secret": "s"},
        {"from_number": None, "messaging_service_sid": MG},
        {"from_number": "ACME"},  # alphanumeric sender ID
        {"api_base_url": "http://localhost:8080"},
        {"api_base_url": "http://[::1]:8080"},
    ],
)
def test_valid_configurations_have_no_problems(overrides):
    assert SmsResource(**{**GOOD, **overrides}).config_problems() == []


def test_unconfigured_resource_says_so():
    assert SmsResource().is_configured() is False
    assert SmsResource(account_sid=" ", recipients="").is_configured() is False
    assert SmsResource(account_sid=DEMO_ACCOUNT_SID).is_configured() is True  # partial: fails loudly instead


def test_partial_configuration_fails_before_any_request(twilio_emulator):
    sms = SmsResource(account_sid=DEMO_ACCOUNT_SID, recipients=TO, api_base_url=twilio_emulator.base_url)
    with pytest.raises(SmsConfigError, match="TWILIO_AUTH_TOKEN is not set"):
        sms.send_sms(TO, "x")
    assert twilio_emulator.post_count == 0


def test_non_loopback_override_never_sends_credentials():
    sms = SmsResource(**{**GOOD, "api_base_url": "http://203.0.113.7:8080"})
    with pytest.raises(SmsConfigError, match="loopback"):
        sms.send_sms(TO, "x")


# --- sending through the emulator -------------------------------------------------------------------


def test_send_sms_returns_the_created_message(twilio_emulator):
    started = datetime.now(UTC).replace(microsecond=0)
    sent = _sms(twilio_emulator).send_sms(TO, "FUNCTION checkoutCart failed #a1b2c3")

    assert isinstance(sent, SentMessage)
    assert sent.sid.startswith("SM") and sent.status == "queued" and sent.to == TO
    assert sent.num_segments == 1
    assert sent.date_created is not None and sent.date_created >= started
    stored = twilio_emulator.messages
    assert [(m["sid"], m["from"], m["body"]) for m in stored] == [
        (sent.sid, DEMO_FROM_NUMBER, "FUNCTION checkoutCart failed #a1b2c3")
    ]


def test_send_with_api_key_credentials():
    with TwilioEmulator(api_keys={API_KEY_SID: API_KEY_SECRET}) as emulator:
        sms = _sms(emulator, auth_token=None, api_key_sid=API_KEY_SID, api_key_secret=API_KEY_SECRET)
        assert sms.send_sms(TO, "via key").status == "queued"


def test_send_with_a_messaging_service(twilio_emulator):
    sent = _sms(twilio_emulator, from_number=None, messaging_service_sid=MG).send_sms(TO, "via service")
    assert (sent.status, sent.num_segments) == ("accepted", 0)


def test_client_is_built_once_per_resource(twilio_emulator):
    sms = _sms(twilio_emulator)
    sms.send_sms(TO, "one")
    client = sms._get_client()
    sms.send_sms(TO, "two")
    assert sms._get_client() is client


def test_region_edge_and_proxy_variables_do_not_leak_in(twilio_emulator, monkeypatch):
    """TWILIO_REGION would rewrite 127.0.0.1 into 127.ie1.0.1, and a proxy variable would send the
    request to a dead proxy; neither may affect the explicitly configured client."""
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "e" * 32)
    assert _sms(twilio_emulator).send_sms(TO, "hermetic").status == "queued"


@pytest.mark.parametrize(
    ("to", "code", "kind"),
    [
        ("+15005550001", 21211, "permanent"),
        ("+15005550004", 21610, "permanent"),
        ("+15005550009", 21614, "permanent"),
    ],
)
def test_twilio_errors_propagate_unchanged(twilio_emulator, to, code, kind):
    with pytest.raises(TwilioRestException) as caught:
        _sms(twilio_emulator).send_sms(to, "x")
    assert caught.value.code == code
    assert classify_send_error(caught.value) == kind


def test_queue_full_is_transient(twilio_emulator):
    with pytest.raises(TwilioRestException) as caught:
        _sms(twilio_emulator, from_number="+15005550008", recipients=TO).send_sms(TO, "x")
    assert (caught.value.status, caught.value.code) == (429, 21611)
    assert classify_send_error(caught.value) == "transient"


def test_timeout_bounds_a_slow_request(twilio_emulator):
    twilio_emulator.inject(TwilioFault("delay", delay_s=0.8))
    sms = _sms(twilio_emulator, timeout_s=0.2)
    started = datetime.now(UTC)
    clock = time.monotonic()
    with pytest.raises(requests.ReadTimeout) as caught:
        sms.send_sms(TO, "slow #c0ffee")
    assert time.monotonic() - clock < 0.7
    assert classify_send_error(caught.value) == "ambiguous"
    # Twilio finished the work after we gave up: reconciliation finds it instead of texting twice.
    _wait_for(lambda: twilio_emulator.messages)
    found = sms.find_sent(TO, "slow #c0ffee", since=started)
    assert found is not None and found.sid == twilio_emulator.messages[0]["sid"]


def test_connection_refused_is_transient():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sms = SmsResource(**{**GOOD, "api_base_url": f"http://127.0.0.1:{port}", "timeout_s": 2})
    with pytest.raises(requests.ConnectionError) as caught:
        sms.send_sms(TO, "x")
    assert classify_send_error(caught.value) == "transient"


# --- reconciliation ---------------------------------------------------------------------------------


def test_find_sent_reconciles_an_ambiguous_send(twilio_emulator):
    sms = _sms(twilio_emulator)
    body = "FUNCTION checkoutCart FunctionExecutionError (3x) #a1b2c3"
    sms.send_sms("+14155550101", body)  # same body to someone else: must not match
    sms.send_sms(TO, "an older alert #ffffff")
    twilio_emulator.inject(TwilioFault("accept_then_status", status=500))
    attempt_started = datetime.now(UTC)

    with pytest.raises(TwilioRestException) as caught:
        sms.send_sms(TO, body)
    assert classify_send_error(caught.value) == "ambiguous"

    found = sms.find_sent(TO, body, since=attempt_started)
    stored = twilio_emulator.messages[-1]
    assert found == SentMessage(
        sid=stored["sid"], status="queued", to=TO, num_segments=1, date_created=found.date_created
    )
    assert sms.find_sent(TO, body + " (edited)", since=attempt_started) is None
    assert sms.find_sent("+14155550102", body, since=attempt_started) is None
    assert sms.find_sent(TO, body, since=attempt_started + timedelta(minutes=2)) is None  # beyond the skew
    assert twilio_emulator.post_count == 3  # reconciling never sends


def test_find_sent_when_nothing_went_out(twilio_emulator):
    twilio_emulator.inject(TwilioFault("status", status=503))
    sms = _sms(twilio_emulator)
    with pytest.raises(TwilioRestException):
        sms.send_sms(TO, "not sent #000001")
    assert sms.find_sent(TO, "not sent #000001", since=datetime.now(UTC)) is None


def test_find_sent_failure_is_reported_not_mistaken_for_not_sent(twilio_emulator):
    twilio_emulator.inject(TwilioFault("status", method="GET", status=500))
    with pytest.raises(SmsLookupError, match="HTTP 500"):
        _sms(twilio_emulator).find_sent(TO, "x", since=datetime.now(UTC))


def test_find_sent_pages_back_through_an_alert_storm_to_the_same_number(twilio_emulator):
    sms = _sms(twilio_emulator, reconcile_page_size=5)
    body = "FUNCTION checkoutCart FunctionExecutionError (3x) #a1b2c3"
    attempt_started = datetime.now(UTC)
    sent = sms.send_sms(TO, body)
    for i in range(23):  # other alerts of the storm, texted to the same on-call number meanwhile
        sms.send_sms(TO, f"another alert {i} #{i:06d}")

    found = sms.find_sent(TO, body, since=attempt_started)

    assert found is not None and found.sid == sent.sid


def test_find_sent_stops_paging_once_messages_predate_the_attempt(twilio_emulator):
    sms = _sms(twilio_emulator, reconcile_page_size=1)
    for i in range(3):
        sms.send_sms(TO, f"an older alert #{i:06d}")
    # A second page request would fail: reading it would make the lookup raise.
    twilio_emulator.inject(TwilioFault("status", method="GET", status=500, after=1))

    assert sms.find_sent(TO, "not sent #000009", since=datetime.now(UTC) + timedelta(minutes=5)) is None


def test_find_sent_beyond_its_scan_limit_says_the_outcome_is_unknown(twilio_emulator):
    sms = _sms(twilio_emulator, reconcile_page_size=4, reconcile_scan_limit=6)
    body = "FUNCTION checkoutCart FunctionExecutionError (3x) #d4e5f6"
    attempt_started = datetime.now(UTC)
    sms.send_sms(TO, body)
    for i in range(10):
        sms.send_sms(TO, f"another alert {i} #{i:06d}")

    with pytest.raises(SmsLookupError, match="read 6 messages to .* whether the text went out is unknown"):
        sms.find_sent(TO, body, since=attempt_started)


@pytest.mark.parametrize(
    "delivered",
    [
        "Sent from your Twilio trial account - {body}",
        "{body}\n\nReply STOP to unsubscribe.",
        "{body}",
    ],
    ids=["trial-prefix", "opt-out-suffix", "exact"],
)
def test_find_sent_matches_our_body_inside_what_twilio_stored(twilio_emulator, delivered):
    sms = _sms(twilio_emulator)
    body = "DB_TRIGGER orderInserted DuplicateKey (2x) #0a1b2c"
    attempt_started = datetime.now(UTC)
    sms.send_sms(TO, body[:-3])  # a different, truncated text is not ours
    stored = sms.send_sms(TO, delivered.format(body=body))

    found = sms.find_sent(TO, body, since=attempt_started)

    assert found is not None and found.sid == stored.sid
    assert sms.find_sent(TO, body + " more", since=attempt_started) is None


# --- secrets ------------------------------------------------------------------------------------------


TOKEN = "auth-token-do-not-print-4411"


def test_secrets_are_not_in_repr_or_str():
    sms = SmsResource(**{**GOOD, "auth_token": TOKEN, "api_key_secret": API_KEY_SECRET})
    for text in (repr(sms), str(sms)):
        assert TOKEN not in text and API_KEY_SECRET not in text
    assert DEMO_ACCOUNT_SID in repr(sms)  # the non-secret settings stay visible for debugging


def test_secrets_are_not_in_config_errors():
    # A token pasted into the SID variable by mistake is not echoed back either.
    sms = SmsResource(account_sid=TOKEN, auth_token=TOKEN, api_key_secret=API_KEY_SECRET, recipients="bad")
    problems = " ".join(sms.config_problems())
    assert TOKEN not in problems and API_KEY_SECRET not in problems
    assert "TWILIO_ACCOUNT_SID" in problems


def test_secrets_are_not_logged(caplog):
    with TwilioEmulator(auth_token=TOKEN) as emulator, caplog.at_level(logging.DEBUG):
        sms = _sms(emulator, auth_token=TOKEN)
        sms.send_sms(TO, "logged?")
        sms.find_sent(TO, "logged?", since=datetime.now(UTC) - timedelta(minutes=1))
        with pytest.raises(TwilioRestException) as caught:
            _sms(emulator, auth_token=TOKEN + "-wrong").send_sms(TO, "x")
    assert any("twilio" in record.name for record in caplog.records)  # the SDK did log its requests
    assert TOKEN not in caplog.text
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)


def test_secrets_stay_out_of_the_dagster_event_log(twilio_emulator, monkeypatch):
    monkeypatch.setenv("TEST_TWILIO_AUTH_TOKEN", DEMO_AUTH_TOKEN)

    @dg.op
    def text_on_call(context: dg.OpExecutionContext, sms: SmsResource) -> str:
        context.log.info(f"using {sms!r}")
        return sms.send_sms(sms.recipient_numbers()[0], "from a Dagster run").sid

    @dg.job
    def send_job():
        text_on_call()

    resource = SmsResource(
        account_sid=DEMO_ACCOUNT_SID,
        auth_token=dg.EnvVar("TEST_TWILIO_AUTH_TOKEN"),
        from_number=DEMO_FROM_NUMBER,
        recipients=TO,
        api_base_url=twilio_emulator.base_url,
    )
    defs = dg.Definitions(jobs=[send_job], resources={"sms": resource})
    with dg.instance_for_test() as instance:
        result = defs.get_job_def("send_job").execute_in_process(instance=instance)
        assert result.success
        assert result.output_for_node("text_on_call") == twilio_emulator.messages[0]["sid"]
        events = " ".join(str(record) for record in instance.all_logs(result.run_id))
        run = instance.get_run_by_id(result.run_id)
    assert "using SmsResource(" in events
    assert DEMO_AUTH_TOKEN not in events
    assert DEMO_AUTH_TOKEN not in str(run.run_config)
