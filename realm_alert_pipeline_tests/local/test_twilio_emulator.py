"""The Twilio emulator must answer like Twilio's Messages API, so code tested against it works on Twilio.

Protects: the 201 Message JSON the SDK parses (RFC 2822 dates, string counters, SM sids), Basic auth
with the auth token or an API key, the legacy 4-key error JSON (which the SDK raises as
TwilioRestException with the right .status/.code; an RFC-9457 body would raise another class), the
validation order and magic test numbers, newest-first paged lists the SDK can follow, and the
injected faults that make a send ambiguous (stored by Twilio, yet an error for the client).
Checked both with raw HTTP (requests) and through the official twilio SDK.
"""

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from realm_alert_pipeline.local.twilio_emulator import (
    DEMO_ACCOUNT_SID,
    DEMO_AUTH_TOKEN,
    DEMO_FROM_NUMBER,
    TwilioEmulator,
    TwilioFault,
)
from realm_alert_pipeline.resources.sms import BaseUrlHttpClient
from realm_alert_pipeline_tests.waiting import wait_until

TO = "+14155550100"
OTHER_TO = "+14155550101"
API_KEY_SID = "SK" + "a" * 32
API_KEY_SECRET = "emulator-api-key-secret"
MESSAGE_KEYS = {
    "account_sid", "api_version", "body", "date_created", "date_sent", "date_updated", "direction",
    "error_code", "error_message", "from", "messaging_service_sid", "num_media", "num_segments", "price",
    "price_unit", "sid", "status", "subresource_uris", "to", "uri",
}  # fmt: skip
PAGE_META_KEYS = {
    "page",
    "page_size",
    "uri",
    "first_page_uri",
    "next_page_uri",
    "previous_page_uri",
    "start",
    "end",
}
RFC2822 = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$")
MG = "MG" + "0123456789abcdef" * 2


def _messages_url(emulator, account: str = DEMO_ACCOUNT_SID) -> str:
    return f"{emulator.base_url}/2010-04-01/Accounts/{account}/Messages.json"


def _post(emulator, data, auth=(DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN), **kwargs) -> requests.Response:
    return requests.post(_messages_url(emulator), data=data, auth=auth, timeout=5, **kwargs)


def _client(emulator, username=DEMO_ACCOUNT_SID, password=DEMO_AUTH_TOKEN, account_sid=None, timeout=5.0):
    http = BaseUrlHttpClient(emulator.base_url, timeout=timeout)
    http.session.trust_env = False
    return Client(username, password, account_sid, http_client=http, environment={"_": ""})


def _assert_legacy_error(response: requests.Response, status: int, code: int) -> dict:
    assert response.status_code == status
    payload = response.json()
    assert payload["code"] == code and payload["status"] == status
    assert payload["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert (
        {"code", "message", "more_info", "status"}
        <= set(payload)
        <= {"code", "message", "more_info", "status", "detail"}
    )
    assert "type" not in payload and "title" not in payload  # RFC-9457 would change the SDK's exception class
    return payload


def _wait_for(condition, timeout: float = 5.0):
    return wait_until(condition, timeout=timeout, what="the emulator to record the request")


# --- create ---------------------------------------------------------------------------------------


def test_create_answers_201_with_the_full_message_json(twilio_emulator):
    before = datetime.now(UTC).replace(microsecond=0)
    response = _post(twilio_emulator, {"To": TO, "From": DEMO_FROM_NUMBER, "Body": "disk full"})

    assert response.status_code == 201
    assert response.headers["Content-Type"].startswith("application/json")
    message = response.json()
    assert set(message) == MESSAGE_KEYS
    assert re.fullmatch(r"SM[0-9a-f]{32}", message["sid"])
    assert message["account_sid"] == DEMO_ACCOUNT_SID and message["api_version"] == "2010-04-01"
    assert (message["to"], message["from"], message["body"]) == (TO, DEMO_FROM_NUMBER, "disk full")
    assert (message["status"], message["direction"]) == ("queued", "outbound-api")
    assert (message["num_segments"], message["num_media"]) == ("1", "0")  # strings, as Twilio sends them
    assert message["price"] is None and message["price_unit"] is None
    assert message["error_code"] is None and message["error_message"] is None
    assert message["messaging_service_sid"] is None
    for field in ("date_created", "date_sent", "date_updated"):
        assert RFC2822.match(message[field]), message[field]
        assert parsedate_to_datetime(message[field]) >= before
    assert message["uri"] == f"/2010-04-01/Accounts/{DEMO_ACCOUNT_SID}/Messages/{message['sid']}.json"
    assert message["subresource_uris"]["media"] == message["uri"][: -len(".json")] + "/Media.json"
    assert twilio_emulator.messages == [message]
    assert twilio_emulator.post_count == 1


def test_create_through_the_sdk_parses_every_field(twilio_emulator):
    message = _client(twilio_emulator).messages.create(to=TO, from_=DEMO_FROM_NUMBER, body="a" * 161)

    assert message.sid.startswith("SM") and message.status == "queued"
    assert message.num_segments == "2"
    assert isinstance(message.date_created, datetime) and message.date_created.tzinfo is not None
    assert isinstance(message.date_sent, datetime)
    assert message.from_ == DEMO_FROM_NUMBER and message.to == TO
    assert message.error_code is None


def test_utf8_form_body_and_repeated_keys(twilio_emulator):
    body = "Fehler in “checkout” é 😜"
    response = _post(
        twilio_emulator,
        [("To", TO), ("From", DEMO_FROM_NUMBER), ("Body", body), ("MediaUrl", "https://a.example/1.png"),
         ("MediaUrl", "https://a.example/2.png")],
    )  # fmt: skip
    assert response.status_code == 201
    assert response.json()["body"] == body
    assert response.json()["num_segments"] == "1"  # UCS-2: 26 units


def test_messages_are_kept_oldest_first(twilio_emulator):
    client = _client(twilio_emulator)
    sids = [client.messages.create(to=TO, from_=DEMO_FROM_NUMBER, body=f"n{i}").sid for i in range(3)]
    assert [m["sid"] for m in twilio_emulator.messages] == sids


def test_messaging_service_send_is_accepted_without_a_sender(twilio_emulator):
    message = _client(twilio_emulator).messages.create(to=TO, messaging_service_sid=MG, body="hello")
    assert message.status == "accepted"
    assert message.num_segments == "0" and message.from_ is None
    assert message.messaging_service_sid == MG


# --- errors: the catalogue, the validation order and the magic numbers ------------------------------

ERRORS = [
    pytest.param({"From": DEMO_FROM_NUMBER, "Body": "x"}, 400, 21604, id="To missing"),
    pytest.param({"To": "123", "From": DEMO_FROM_NUMBER, "Body": "x"}, 400, 21211, id="To not E.164"),
    pytest.param({"To": "4155550100", "From": DEMO_FROM_NUMBER, "Body": "x"}, 400, 21211, id="To without +"),
    pytest.param({"To": DEMO_FROM_NUMBER, "From": DEMO_FROM_NUMBER, "Body": "x"}, 400, 21211, id="To == From"),
    pytest.param({"To": TO, "Body": "x"}, 400, 21603, id="sender missing"),
    pytest.param({"To": TO, "From": "+15005550001", "Body": "x"}, 400, 21212, id="From magic invalid"),
    pytest.param({"To": TO, "From": "not a number!", "Body": "x"}, 400, 21212, id="From malformed"),
    pytest.param({"To": TO, "From": "+15005550007", "Body": "x"}, 400, 21606, id="From magic not owned"),
    pytest.param({"To": TO, "From": "+14155550199", "Body": "x"}, 400, 21606, id="From not owned"),
    pytest.param({"To": TO, "MessagingServiceSid": "MG123", "Body": "x"}, 400, 21701, id="MG malformed"),
    pytest.param({"To": TO, "From": DEMO_FROM_NUMBER}, 400, 21602, id="Body missing"),
    pytest.param({"To": TO, "From": DEMO_FROM_NUMBER, "Body": ""}, 400, 21602, id="Body empty"),
    pytest.param({"To": TO, "From": DEMO_FROM_NUMBER, "Body": "a" * 1601}, 400, 21617, id="Body 1601"),
    pytest.param({"To": TO, "From": DEMO_FROM_NUMBER, "Body": "😜" * 801}, 400, 21617, id="1602 UTF-16 units"),
    pytest.param({"To": TO, "From": DEMO_FROM_NUMBER, "Body": "x", "ValidityPeriod": "0"}, 400, 90007, id="Validity"),
    pytest.param({"To": "+15005550001", "From": DEMO_FROM_NUMBER, "Body": "x"}, 400, 21211, id="To magic 01"),
    pytest.param({"To": "+15005550002", "From": DEMO_FROM_NUMBER, "Body": "x"}, 400, 21612, id="To magic 02"),
    pytest.param({"To": "+15005550003", "From": DEMO_FROM_NUMBER, "Body": "x"}, 400, 21408, id="To magic 03"),
    pytest.param({"To": "+15005550004", "From": DEMO_FROM_NUMBER, "Body": "x"}, 400, 21610, id="To magic 04"),
    pytest.param({"To": "+15005550009", "From": DEMO_FROM_NUMBER, "Body": "x"}, 400, 21614, id="To magic 09"),
    pytest.param({"To": TO, "From": "+15005550008", "Body": "x"}, 429, 21611, id="From magic 08 queue full"),
    # validation order: the earlier check wins
    pytest.param({"Body": "x"}, 400, 21604, id="order: To before sender"),
    pytest.param({"To": "123"}, 400, 21211, id="order: To format before sender and body"),
    pytest.param({"To": TO, "From": "+14155550199"}, 400, 21606, id="order: From before body"),
    pytest.param({"To": "+15005550004", "From": DEMO_FROM_NUMBER, "Body": "a" * 1601}, 400, 21617, id="order: length before recipient"),
    pytest.param({"To": "+15005550004", "From": "+15005550008", "Body": "x"}, 400, 21610, id="order: recipient before queue"),
]  # fmt: skip


@pytest.mark.parametrize(("form", "status", "code"), ERRORS)
def test_error_catalogue_over_raw_http(twilio_emulator, form, status, code):
    payload = _assert_legacy_error(_post(twilio_emulator, form), status, code)
    assert payload["message"]
    assert twilio_emulator.messages == []
    assert twilio_emulator.post_count == 1


@pytest.mark.parametrize(("form", "status", "code"), ERRORS)
def test_error_catalogue_through_the_sdk(twilio_emulator, form, status, code):
    kwargs = {"to": form.get("To"), "from_": form.get("From"), "body": form.get("Body")}
    kwargs["messaging_service_sid"] = form.get("MessagingServiceSid")
    kwargs["validity_period"] = int(form["ValidityPeriod"]) if "ValidityPeriod" in form else None
    with pytest.raises(TwilioRestException) as caught:
        _client(twilio_emulator).messages.create(**kwargs)
    assert (caught.value.status, caught.value.code) == (status, code)
    assert caught.value.method == "POST"


def test_magic_to_messages_name_the_numbers(twilio_emulator):
    payload = _post(twilio_emulator, {"To": "+15005550001", "From": DEMO_FROM_NUMBER, "Body": "x"}).json()
    assert payload["message"] == "The 'To' number +15005550001 is not a valid phone number."
    payload = _post(twilio_emulator, {"To": TO, "From": "+15005550008", "Body": "x"}).json()
    assert payload["message"] == "SMS queue is full."


def test_exactly_1600_characters_are_accepted(twilio_emulator):
    response = _post(twilio_emulator, {"To": TO, "From": DEMO_FROM_NUMBER, "Body": "a" * 1600})
    assert response.status_code == 201 and response.json()["num_segments"] == "11"


# --- authentication ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param(None, id="no Authorization header"),
        pytest.param((DEMO_ACCOUNT_SID, "wrong-token"), id="wrong token"),
        pytest.param(("AC" + "f" * 32, DEMO_AUTH_TOKEN), id="another account SID"),
        pytest.param((API_KEY_SID, API_KEY_SECRET), id="unregistered API key"),
    ],
)
def test_bad_credentials_get_401_20003_with_detail(twilio_emulator, auth):
    response = _post(twilio_emulator, {"To": TO, "From": DEMO_FROM_NUMBER, "Body": "x"}, auth=auth)
    payload = _assert_legacy_error(response, 401, 20003)
    assert payload["message"] == "Authenticate"
    assert payload["detail"] == "Your AccountSid or AuthToken was incorrect."
    assert twilio_emulator.messages == []


def test_sdk_with_wrong_token_raises_401(twilio_emulator):
    with pytest.raises(TwilioRestException) as caught:
        _client(twilio_emulator, password="wrong").messages.create(to=TO, from_=DEMO_FROM_NUMBER, body="x")
    assert (caught.value.status, caught.value.code) == (401, 20003)


def test_sdk_without_credentials_is_rejected(twilio_emulator):
    """With no credentials the SDK sends no Authorization and puts "None" in the path."""
    with pytest.raises(TwilioRestException) as caught:
        _client(twilio_emulator, username=None, password=None).messages.create(
            to=TO, from_=DEMO_FROM_NUMBER, body="x"
        )
    assert caught.value.status == 401


def test_api_key_authenticates_for_its_account():
    with TwilioEmulator(api_keys={API_KEY_SID: API_KEY_SECRET}) as emulator:
        client = _client(emulator, API_KEY_SID, API_KEY_SECRET, DEMO_ACCOUNT_SID)
        message = client.messages.create(to=TO, from_=DEMO_FROM_NUMBER, body="via key")
        assert message.account_sid == DEMO_ACCOUNT_SID
        with pytest.raises(TwilioRestException) as caught:
            _client(emulator, API_KEY_SID, "wrong", DEMO_ACCOUNT_SID).messages.create(
                to=TO, from_=DEMO_FROM_NUMBER, body="x"
            )
        assert caught.value.code == 20003


# --- routes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"/2010-04-01/Accounts/{DEMO_ACCOUNT_SID}/Calls.json",
        "/2010-04-01/Accounts/invalid_sid/Messages.json",
        "/v1/Services",
        "/",
    ],
)
def test_unknown_paths_are_404_20404(twilio_emulator, path):
    response = requests.get(
        twilio_emulator.base_url + path, auth=(DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN), timeout=5
    )
    payload = _assert_legacy_error(response, 404, 20404)
    assert payload["message"] == f"The requested resource {path} was not found"


def test_fetch_redact_and_delete_a_message(twilio_emulator):
    client = _client(twilio_emulator)
    sid = client.messages.create(to=TO, from_=DEMO_FROM_NUMBER, body="secret-ish").sid

    fetched = client.messages(sid).fetch()
    assert (fetched.sid, fetched.body) == (sid, "secret-ish")
    assert client.messages(sid).update(body="").body == ""
    assert twilio_emulator.messages[0]["body"] == ""
    assert client.messages(sid).delete() is True
    with pytest.raises(TwilioRestException) as caught:
        client.messages(sid).fetch()
    assert (caught.value.status, caught.value.code) == (404, 20404)


def test_wrong_method_is_405(twilio_emulator):
    response = requests.delete(
        _messages_url(twilio_emulator), auth=(DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN), timeout=5
    )
    _assert_legacy_error(response, 405, 20004)


def test_status_can_be_advanced_for_tests(twilio_emulator):
    client = _client(twilio_emulator)
    sid = client.messages.create(to=TO, from_=DEMO_FROM_NUMBER, body="x").sid
    twilio_emulator.set_status(
        sid, "undelivered", error_code=30003, error_message="Unreachable destination handset"
    )
    fetched = client.messages(sid).fetch()
    assert (fetched.status, fetched.error_code) == ("undelivered", 30003)


# --- list -----------------------------------------------------------------------------------------------


def _send_batch(emulator) -> list[str]:
    client = _client(emulator)
    bodies = ["a1", "b1", "a2", "b2", "a3"]
    for body in bodies:
        client.messages.create(to=TO if body.startswith("a") else OTHER_TO, from_=DEMO_FROM_NUMBER, body=body)
    client.messages.create(to=TO, messaging_service_sid=MG, body="via service")  # date_sent is null
    return bodies


def test_list_page_has_only_messages_and_meta_keys(twilio_emulator):
    _send_batch(twilio_emulator)
    response = requests.get(
        _messages_url(twilio_emulator),
        params={"PageSize": 2},
        auth=(DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN),
        timeout=5,
    )
    assert response.status_code == 200
    page = response.json()
    assert set(page) == {"messages"} | PAGE_META_KEYS
    assert [m["body"] for m in page["messages"]] == ["via service", "a3"]  # newest first
    assert (page["page"], page["page_size"], page["start"], page["end"]) == (0, 2, 0, 1)
    assert page["previous_page_uri"] is None
    assert page["next_page_uri"].startswith(f"/2010-04-01/Accounts/{DEMO_ACCOUNT_SID}/Messages.json?")
    assert "Page=1" in page["next_page_uri"] and "PageToken=PA" in page["next_page_uri"]
    assert page["first_page_uri"].startswith("/2010-04-01/")

    last = requests.get(
        twilio_emulator.base_url + page["next_page_uri"].replace("Page=1", "Page=2").split("&PageToken")[0],
        auth=(DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN),
        timeout=5,
    ).json()
    assert [m["body"] for m in last["messages"]] == ["b1", "a1"]
    assert last["next_page_uri"] is None and last["previous_page_uri"] is not None


def test_sdk_follows_pages_and_filters(twilio_emulator):
    _send_batch(twilio_emulator)
    client = _client(twilio_emulator)

    assert [m.body for m in client.messages.list(page_size=2)] == [
        "via service",
        "a3",
        "b2",
        "a2",
        "b1",
        "a1",
    ]
    assert [m.body for m in client.messages.list(to=TO, page_size=1)] == ["via service", "a3", "a2", "a1"]
    assert [m.body for m in client.messages.list(from_=DEMO_FROM_NUMBER, to=OTHER_TO)] == ["b2", "b1"]
    assert [m.body for m in client.messages.list(limit=3)] == ["via service", "a3", "b2"]


def test_sdk_date_sent_filters(twilio_emulator):
    _send_batch(twilio_emulator)
    client = _client(twilio_emulator)
    now = datetime.now(UTC)

    recent = client.messages.list(date_sent_after=now - timedelta(minutes=5))
    assert [m.body for m in recent] == [
        "a3",
        "b2",
        "a2",
        "b1",
        "a1",
    ]  # the queued-by-service one has no date_sent
    assert client.messages.list(date_sent_before=now - timedelta(days=1)) == []
    assert len(client.messages.list(date_sent=now.date())) == 5


def test_list_errors_surface_as_twilio_exception(twilio_emulator):
    """A list that fails is a plain TwilioException ("Unable to fetch page"), not a TwilioRestException."""
    twilio_emulator.inject(TwilioFault("status", method="GET", status=503))
    with pytest.raises(TwilioException) as caught:
        _client(twilio_emulator).messages.list(to=TO)
    assert not isinstance(caught.value, TwilioRestException)
    assert caught.value.args[1].status_code == 503


# --- faults -----------------------------------------------------------------------------------------


def test_429_fault_with_retry_after_is_not_stored(twilio_emulator):
    twilio_emulator.inject(TwilioFault("status", status=429, retry_after=7))
    response = _post(twilio_emulator, {"To": TO, "From": DEMO_FROM_NUMBER, "Body": "x"})
    _assert_legacy_error(response, 429, 20429)
    assert response.headers["Retry-After"] == "7"
    assert twilio_emulator.messages == [] and twilio_emulator.post_count == 1


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        pytest.param(TwilioFault("status", status=429), 429, 20429, id="429"),
        pytest.param(TwilioFault("status", status=500), 500, 20500, id="500 JSON"),
        pytest.param(TwilioFault("status", status=503), 503, 20503, id="503"),
        pytest.param(
            TwilioFault("status", status=502, html=True), 502, 502, id="502 HTML: code is the status"
        ),
        pytest.param(
            TwilioFault("status", status=400, code=21608, message="unverified"), 400, 21608, id="21608"
        ),
    ],
)
def test_status_faults_raise_without_storing(twilio_emulator, fault, status, code):
    twilio_emulator.inject(fault)
    with pytest.raises(TwilioRestException) as caught:
        _client(twilio_emulator).messages.create(to=TO, from_=DEMO_FROM_NUMBER, body="x")
    assert (caught.value.status, caught.value.code) == (status, code)
    assert twilio_emulator.messages == []


def test_502_html_body(twilio_emulator):
    twilio_emulator.inject(TwilioFault("status", status=502, html=True))
    response = _post(twilio_emulator, {"To": TO, "From": DEMO_FROM_NUMBER, "Body": "x"})
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<html>" in response.text


def test_accept_then_status_stores_and_raises(twilio_emulator):
    """The ambiguous send: Twilio has the message, the client sees a 500."""
    twilio_emulator.inject(TwilioFault("accept_then_status", status=500))
    with pytest.raises(TwilioRestException) as caught:
        _client(twilio_emulator).messages.create(to=TO, from_=DEMO_FROM_NUMBER, body="did it go?")
    assert caught.value.status == 500
    assert [m["body"] for m in twilio_emulator.messages] == ["did it go?"]


def test_accept_then_drop_stores_and_drops(twilio_emulator):
    twilio_emulator.inject(TwilioFault("accept_then_drop"))
    with pytest.raises(requests.ConnectionError):
        _client(twilio_emulator).messages.create(to=TO, from_=DEMO_FROM_NUMBER, body="dropped after store")
    assert [m["body"] for m in twilio_emulator.messages] == ["dropped after store"]


def test_drop_stores_nothing(twilio_emulator):
    twilio_emulator.inject(TwilioFault("drop"))
    with pytest.raises(requests.ConnectionError):
        _client(twilio_emulator).messages.create(to=TO, from_=DEMO_FROM_NUMBER, body="x")
    assert twilio_emulator.messages == [] and twilio_emulator.post_count == 1


def test_delay_fault_times_out_the_client_then_stores(twilio_emulator):
    twilio_emulator.inject(TwilioFault("delay", delay_s=0.6))
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        _client(twilio_emulator, timeout=0.2).messages.create(to=TO, from_=DEMO_FROM_NUMBER, body="slow")
    assert time.monotonic() - started < 0.5
    _wait_for(lambda: twilio_emulator.messages)  # the server finished the work after the client gave up
    assert twilio_emulator.messages[0]["body"] == "slow"


def test_after_and_times_select_which_requests_fail(twilio_emulator):
    twilio_emulator.inject(TwilioFault("status", status=503, after=1, times=2))
    client = _client(twilio_emulator)
    outcomes = []
    for i in range(4):
        try:
            client.messages.create(to=TO, from_=DEMO_FROM_NUMBER, body=f"n{i}")
            outcomes.append("ok")
        except TwilioRestException as exc:
            outcomes.append(exc.status)
    assert outcomes == ["ok", 503, 503, "ok"]
    assert twilio_emulator.post_count == 4


def test_post_faults_ignore_lists_and_can_be_cleared(twilio_emulator):
    client = _client(twilio_emulator)
    twilio_emulator.inject(TwilioFault("status", status=500))
    assert client.messages.list(to=TO) == []  # a GET does not consume the create fault
    twilio_emulator.clear_faults()
    assert client.messages.create(to=TO, from_=DEMO_FROM_NUMBER, body="x").status == "queued"


def test_unknown_fault_kind_is_rejected():
    with pytest.raises(ValueError, match="kind"):
        TwilioFault("explode")


def test_stopped_emulator_refuses_connections():
    emulator = TwilioEmulator().start()
    client = _client(emulator)
    client.messages.create(to=TO, from_=DEMO_FROM_NUMBER, body="x")  # leaves a keep-alive connection open
    emulator.stop()
    with pytest.raises(requests.ConnectionError):
        client.messages.create(to=TO, from_=DEMO_FROM_NUMBER, body="y")
    emulator.stop()  # idempotent


# --- serve_forever (the `realm-alerts emulate twilio` command) ------------------------------------------


def test_serve_forever_runs_until_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "realm_alert_pipeline.cli", "emulate", "twilio", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()

    def next_line(timeout: float = 20.0) -> str:
        return lines.get(timeout=timeout)

    try:
        banner = next_line()
        match = re.match(
            r"Twilio emulator: (http://127\.0\.0\.1:\d+) \(account (AC\w+), from (\+\d+)\)", banner
        )
        assert match, banner
        base_url = match.group(1)
        assert (match.group(2), match.group(3)) == (DEMO_ACCOUNT_SID, DEMO_FROM_NUMBER)
        assert "TWILIO_API_BASE_URL" in next_line()

        response = requests.post(
            f"{base_url}/2010-04-01/Accounts/{DEMO_ACCOUNT_SID}/Messages.json",
            data={"To": TO, "From": DEMO_FROM_NUMBER, "Body": "hello from the CLI"},
            auth=(DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN),
            timeout=5,
        )
        assert response.status_code == 201
        assert "hello from the CLI" in next_line()  # the user sees what was "sent"

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert DEMO_AUTH_TOKEN not in banner
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
