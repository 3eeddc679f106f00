"""Twilio's create() is not idempotent: only a failure that provably did not reach Twilio may be resent.

429s and connections that were never established are "transient" (resend after backoff); 5xx, read
timeouts and connections dropped after the request went out are "ambiguous" (reconcile first, or
someone is texted twice); other 4xx are "permanent". The first test classifies real exception
objects as the SDK and requests build them; the last ones produce them for real against the
Twilio emulator and a closed port.
"""

import socket
from http.client import RemoteDisconnected

import pytest
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from urllib3.connection import HTTPConnection
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from realm_alert_pipeline.core.send_errors import classify_http_status, classify_send_error
from realm_alert_pipeline.local.twilio_emulator import (
    DEMO_ACCOUNT_SID,
    DEMO_AUTH_TOKEN,
    DEMO_FROM_NUMBER,
    TwilioFault,
)
from realm_alert_pipeline.resources.sms import SmsConfigError, SmsResource

URI = f"/Accounts/{DEMO_ACCOUNT_SID}/Messages.json"


def _rest(status: int, code: int | None = None) -> TwilioRestException:
    return TwilioRestException(status, URI, msg="Unable to create record", code=code or status, method="POST")


def _refused() -> requests.ConnectionError:
    conn = HTTPConnection("127.0.0.1", 9)
    reason = NewConnectionError(conn, "Failed to establish a new connection: [Errno 111] Connection refused")
    return requests.ConnectionError(MaxRetryError(None, URI, reason))


def _aborted() -> requests.ConnectionError:
    cause = RemoteDisconnected("Remote end closed connection without response")
    return requests.ConnectionError(ProtocolError("Connection aborted.", cause))


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        pytest.param(_rest(400, 21211), "permanent", id="400 21211 invalid To"),
        pytest.param(_rest(400, 21610), "permanent", id="400 21610 opted out"),
        pytest.param(_rest(400, 21614), "permanent", id="400 21614 not a mobile"),
        pytest.param(_rest(401, 20003), "permanent", id="401 20003 bad credentials"),
        pytest.param(_rest(403), "permanent", id="403"),
        pytest.param(_rest(404, 20404), "permanent", id="404 20404"),
        pytest.param(_rest(429, 20429), "transient", id="429 20429 too many requests"),
        pytest.param(_rest(429, 21611), "transient", id="429 21611 queue full"),
        pytest.param(_rest(500, 20500), "ambiguous", id="500 20500"),
        pytest.param(_rest(502), "ambiguous", id="502 HTML"),
        pytest.param(_rest(503, 20503), "ambiguous", id="503"),
        pytest.param(_rest(504), "ambiguous", id="504"),
        pytest.param(
            TwilioServiceException(
                type_uri="t", title="Too Many", status=429, code=20429, method="POST", uri=URI
            ),
            "transient",
            id="RFC-9457 429",
        ),
        pytest.param(
            TwilioServiceException(type_uri="t", title="Bad", status=400, code=21211, method="POST", uri=URI),
            "permanent",
            id="RFC-9457 400",
        ),
        pytest.param(requests.ConnectTimeout("connect timed out"), "transient", id="connect timeout"),
        pytest.param(_refused(), "transient", id="connection refused"),
        pytest.param(requests.ReadTimeout("read timed out"), "ambiguous", id="read timeout"),
        pytest.param(_aborted(), "ambiguous", id="connection aborted after sending"),
        pytest.param(requests.exceptions.ChunkedEncodingError("reset"), "ambiguous", id="truncated response"),
        pytest.param(requests.exceptions.SSLError("handshake failed"), "transient", id="TLS handshake"),
        pytest.param(requests.exceptions.ProxyError("proxy dropped"), "ambiguous", id="proxy error"),
        pytest.param(requests.exceptions.InvalidURL("bad url"), "permanent", id="invalid URL"),
        pytest.param(TwilioException("Unable to fetch page"), "ambiguous", id="plain TwilioException"),
        pytest.param(SmsConfigError("TWILIO_FROM_NUMBER is not set"), "permanent", id="our config error"),
        pytest.param(RuntimeError("unexpected"), "ambiguous", id="unknown: reconcile to be safe"),
    ],
)
def test_classify_send_error(exc, kind):
    assert classify_send_error(exc) == kind


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "permanent"),
        (422, "permanent"),
        (429, "transient"),
        (500, "ambiguous"),
        (599, "ambiguous"),
        (302, "ambiguous"),
    ],
)
def test_classify_http_status(status, kind):
    assert classify_http_status(status) == kind


def _sms(base_url: str, timeout_s: float = 5) -> SmsResource:
    return SmsResource(
        account_sid=DEMO_ACCOUNT_SID,
        auth_token=DEMO_AUTH_TOKEN,
        from_number=DEMO_FROM_NUMBER,
        recipients="+14155550100",
        api_base_url=base_url,
        timeout_s=timeout_s,
    )


def _send_error(sms: SmsResource, to: str = "+14155550100") -> BaseException:
    with pytest.raises(Exception) as caught:
        sms.send_sms(to, "probe")
    return caught.value


def test_real_connection_refused_is_transient():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exc = _send_error(_sms(f"http://127.0.0.1:{port}"))
    assert isinstance(exc, requests.ConnectionError)
    assert classify_send_error(exc) == "transient"


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        pytest.param(TwilioFault("status", status=429, retry_after=1), "transient", id="429"),
        pytest.param(TwilioFault("status", status=503), "ambiguous", id="503"),
        pytest.param(TwilioFault("status", status=502, html=True), "ambiguous", id="502 HTML"),
        pytest.param(TwilioFault("accept_then_status", status=500), "ambiguous", id="accepted then 500"),
        pytest.param(TwilioFault("accept_then_drop"), "ambiguous", id="accepted then dropped"),
        pytest.param(TwilioFault("drop"), "ambiguous", id="dropped"),
        pytest.param(TwilioFault("delay", delay_s=1.0), "ambiguous", id="read timeout"),
    ],
)
def test_real_failures_from_the_emulator(twilio_emulator, fault, kind):
    twilio_emulator.inject(fault)
    exc = _send_error(_sms(twilio_emulator.base_url, timeout_s=0.3))
    assert classify_send_error(exc) == kind


def test_real_permanent_error_from_a_magic_number(twilio_emulator):
    exc = _send_error(_sms(twilio_emulator.base_url), to="+15005550004")
    assert isinstance(exc, TwilioRestException) and exc.code == 21610
    assert classify_send_error(exc) == "permanent"
