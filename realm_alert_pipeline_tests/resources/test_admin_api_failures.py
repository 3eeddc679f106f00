"""When the Admin API misbehaves: 429 (honouring Retry-After), 5xx with HTML or empty bodies, dropped connections
and slow answers are retried with bounded backoff and then reported in one clear line with the status; 400/403/404
are configuration errors raised at once; a body that is not a JSON object, or a pager that would loop forever,
is an error naming the problem, not a hang or a dump of the body."""

import json
import re
import time
from datetime import timedelta

import pytest

from realm_alert_pipeline.local.admin_api_emulator import DEMO_APP_ID, DEMO_GROUP_ID, Fault
from realm_alert_pipeline.resources.admin_api import AdminApiConfigError, AdminApiError
from realm_alert_pipeline_tests.resources.admin_api_helpers import (
    log_entry,
    logs_requests,
    make_resource,
    newest_first,
    recent,
)
from realm_alert_pipeline_tests.waiting import wait_until

LOGS_PATH = f"/groups/{DEMO_GROUP_ID}/apps/{DEMO_APP_ID}/logs"
HTML_503 = (
    "<html>\n<head><title>503 Service Temporarily Unavailable</title></head>\n<body>"
    + "x" * 5000
    + "</body></html>"
)


@pytest.fixture
def window(admin_api_emulator):
    end = recent(30)
    errors = [log_entry(end - timedelta(seconds=k)) for k in range(120)]
    admin_api_emulator.add_logs(errors)
    return end - timedelta(hours=1), end, [e["_id"] for e in newest_first(errors)]


def _read(resource, window) -> list[str]:
    start, end, _ = window
    return [entry["_id"] for entry in resource.iter_error_logs(start, end)]


def test_429_waits_as_long_as_retry_after_says(admin_api_emulator, mongo, window):
    resource = make_resource(admin_api_emulator, mongo)
    resource.ensure_session()
    body = json.dumps({"error": "too many requests", "error_code": "TooManyRequests"})
    admin_api_emulator.inject(
        Fault(kind="status", path="/logs", status=429, body=body, headers={"Retry-After": "1"})
    )

    began = time.monotonic()
    assert _read(resource, window) == window[2]
    elapsed = time.monotonic() - began

    assert elapsed >= 0.95  # the backoff alone would be ~0.01 s
    assert elapsed < 5
    assert [r.status for r in logs_requests(admin_api_emulator)] == [429, 200, 200]


def test_retry_after_beyond_the_cap_is_cut_to_the_cap(admin_api_emulator, mongo, window):
    resource = make_resource(admin_api_emulator, mongo, retry_after_cap_s=0.2)
    resource.ensure_session()
    admin_api_emulator.inject(Fault(kind="status", path="/logs", status=429, headers={"Retry-After": "3600"}))

    began = time.monotonic()
    assert _read(resource, window) == window[2]
    assert 0.15 <= time.monotonic() - began < 3


def test_503_with_html_is_retried_then_reported_clearly(admin_api_emulator, mongo, window):
    resource = make_resource(admin_api_emulator, mongo, max_attempts=3)
    resource.ensure_session()
    admin_api_emulator.inject(
        Fault(
            kind="status",
            path="/logs",
            status=503,
            body=HTML_503,
            headers={"Content-Type": "text/html"},
            times=10,
        )
    )

    with pytest.raises(AdminApiError) as raised:
        _read(resource, window)

    error = raised.value
    assert not isinstance(error, AdminApiConfigError)
    assert error.status == 503
    assert error.error_code is None
    assert str(error).startswith(
        f"Admin API GET {LOGS_PATH} failed after 3 attempts: HTTP 503 Service Unavailable (non-JSON body: <html> <head>"
    )
    assert str(error).endswith("…)")
    assert len(str(error)) < 300
    assert len(logs_requests(admin_api_emulator)) == 3


def test_a_transient_5xx_heals_on_retry(admin_api_emulator, mongo, window):
    resource = make_resource(admin_api_emulator, mongo)
    resource.ensure_session()
    admin_api_emulator.inject(Fault(kind="status", path="/logs", status=502, body="", after=1, times=2))

    assert _read(resource, window) == window[2]
    assert [r.status for r in logs_requests(admin_api_emulator)] == [200, 502, 502, 200]


def test_a_dropped_connection_is_retried(admin_api_emulator, mongo, window):
    resource = make_resource(admin_api_emulator, mongo)
    resource.ensure_session()
    admin_api_emulator.inject(Fault(kind="drop", path="/logs", times=1))

    assert _read(resource, window) == window[2]
    assert [r.status for r in logs_requests(admin_api_emulator)] == [0, 200, 200]


def test_connections_that_keep_dropping_end_in_a_network_error(admin_api_emulator, mongo, window):
    resource = make_resource(admin_api_emulator, mongo, max_attempts=2)
    resource.ensure_session()
    admin_api_emulator.inject(Fault(kind="drop", path="/logs", times=10))

    with pytest.raises(
        AdminApiError, match=f"Admin API GET {LOGS_PATH} failed after 2 attempts: ConnectionError"
    ) as raised:
        _read(resource, window)
    assert raised.value.status is None


def test_a_slow_answer_times_out_and_is_retried(admin_api_emulator, mongo, window):
    resource = make_resource(admin_api_emulator, mongo, timeout_s=0.3)
    resource.ensure_session()
    admin_api_emulator.inject(Fault(kind="delay", path="/logs", delay_s=1.0))

    began = time.monotonic()
    assert _read(resource, window) == window[2]
    assert time.monotonic() - began < 1.0  # did not wait for the slow answer
    # The emulator records the slow request once its delay is over: three requests for two pages.
    wait_until(
        lambda: len(logs_requests(admin_api_emulator)) >= 3, timeout=5, what="the slow request's record"
    )
    assert len(logs_requests(admin_api_emulator)) == 3


def test_an_unknown_app_is_a_config_error_without_retry(admin_api_emulator, mongo, window):
    resource = make_resource(admin_api_emulator, mongo, app_id="0123456789abcdef01234567")

    with pytest.raises(AdminApiConfigError) as raised:
        _read(resource, window)

    assert raised.value.status == 404
    assert raised.value.error_code == "AppNotFound"
    assert str(raised.value) == (
        "Admin API GET /groups/6512a3f4c8e1b27d9a0f4c31/apps/0123456789abcdef01234567/logs failed:"
        " HTTP 404 Not Found: app not found [AppNotFound]"
    )
    assert len(logs_requests(admin_api_emulator)) == 1


@pytest.mark.parametrize("status", [400, 403])
def test_400_and_403_are_config_errors_without_retry(admin_api_emulator, mongo, window, status):
    resource = make_resource(admin_api_emulator, mongo)
    link = "https://services.cloud.mongodb.com/groups/g/apps/a/logs?co_id=671d2e2010733ecbaa2bab8d"
    body = json.dumps({"error": "no access to this project", "error_code": "Forbidden", "link": link})
    admin_api_emulator.inject(Fault(kind="status", path="/logs", status=status, body=body, times=10))

    with pytest.raises(AdminApiConfigError, match="no access to this project") as raised:
        _read(resource, window)

    assert (raised.value.status, raised.value.error_code, raised.value.link) == (status, "Forbidden", link)
    assert len(logs_requests(admin_api_emulator)) == 1


def test_a_401_that_is_not_about_the_session_is_a_config_error(admin_api_emulator, mongo, window):
    resource = make_resource(admin_api_emulator, mongo)
    resource.ensure_session()
    body = json.dumps({"error": "user does not have permission to access this project"})
    admin_api_emulator.inject(Fault(kind="status", path="/logs", status=401, body=body))

    with pytest.raises(AdminApiConfigError, match="HTTP 401 Unauthorized: user does not have permission"):
        _read(resource, window)
    assert admin_api_emulator.refresh_count == 0


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (
            "<html><body>maintenance</body></html>",
            {"Content-Type": "text/html"},
            "answered HTTP 200 with a non-JSON body (text/html): <html><body>maintenance</body></html>",
        ),
        ("", {}, "answered HTTP 200 with a non-JSON body (application/json): (empty)"),
        ("[]", {}, "answered HTTP 200 with a JSON list where an object was expected"),
        ('{"logs": {"_id": "x"}}', {}, "'logs' is a dict, expected a list of entries"),
        ('{"logs": [], "nextEndDate": "2020-01-01T00:00:00Z"}', {}, "is empty but announces a next page"),
    ],
)
def test_a_malformed_page_is_an_error_naming_the_problem(
    admin_api_emulator, mongo, window, body, headers, message
):
    resource = make_resource(admin_api_emulator, mongo)
    admin_api_emulator.inject(Fault(kind="status", path="/logs", status=200, body=body, headers=headers))

    with pytest.raises(AdminApiError, match=re.escape(message)) as raised:
        _read(resource, window)
    assert raised.value.status == 200
    assert len(logs_requests(admin_api_emulator)) == 1


@pytest.mark.parametrize("body", ['{"logs": null}', "{}"])
def test_a_missing_or_null_logs_key_is_an_empty_page(admin_api_emulator, mongo, window, body):
    resource = make_resource(admin_api_emulator, mongo)
    admin_api_emulator.inject(Fault(kind="status", path="/logs", status=200, body=body))

    start, end, _ = window
    assert list(resource.iter_log_pages(start, end)) == [[]]


def test_a_server_repeating_its_page_cursor_is_stopped(admin_api_emulator, mongo, window):
    start, end, _ = window
    resource = make_resource(admin_api_emulator, mongo)
    entry = log_entry(end - timedelta(minutes=1))
    repeating = json.dumps({"logs": [entry], "nextEndDate": entry["started"], "nextSkip": 1})
    admin_api_emulator.inject(Fault(kind="status", path="/logs", status=200, body=repeating, times=50))

    pages = resource.iter_log_pages(start, end)
    assert next(pages) == [entry]
    with pytest.raises(AdminApiError, match="repeats a page cursor"):
        next(pages)
    assert len(logs_requests(admin_api_emulator)) == 2
