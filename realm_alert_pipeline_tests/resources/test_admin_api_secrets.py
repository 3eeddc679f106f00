"""Atlas API keys and Admin API tokens must never leak: not in a log line (even at DEBUG, including urllib3's),
not on stdout/stderr, not in an exception message or traceback, not in the repr of the resource or of what it
returns, even when the server echoes a token back in an error."""

import json
import logging
import traceback
from datetime import timedelta

import pytest

from realm_alert_pipeline.constants import CONTROL_COLLECTION
from realm_alert_pipeline.local.admin_api_emulator import (
    DEMO_APP_ID,
    DEMO_GROUP_ID,
    DEMO_PRIVATE_KEY,
    DEMO_PUBLIC_KEY,
    Fault,
)
from realm_alert_pipeline.resources.admin_api import AdminApiConfigError, AdminApiError
from realm_alert_pipeline_tests.resources.admin_api_helpers import log_entry, make_resource, recent

BAD_PRIVATE_KEY = "a-wrong-private-key-0123"


def _secrets(emulator, mongo) -> set[str]:
    """Both keys, every token the emulator saw in use, and the tokens stored in Control."""
    found = {DEMO_PUBLIC_KEY, DEMO_PRIVATE_KEY, BAD_PRIVATE_KEY}
    for request in emulator.requests:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            found.add(auth.removeprefix("Bearer "))
    for doc in mongo.get_database()[CONTROL_COLLECTION].find():
        found.update({doc["access_token"], doc["refresh_token"]})
    return found


def _exception_text(error: BaseException) -> str:
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


def _assert_clean(texts: dict[str, str], secrets: set[str]) -> None:
    leaks = [
        (where, secret[:8] + "…") for where, text in texts.items() for secret in secrets if secret in text
    ]
    assert leaks == []


def test_no_secret_in_logs_output_reprs_or_errors(admin_api_emulator, mongo, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    end = recent(30)
    start = end - timedelta(hours=1)
    admin_api_emulator.add_logs([log_entry(end - timedelta(seconds=k)) for k in range(150)])
    resource = make_resource(admin_api_emulator, mongo)

    # A successful read through login, a mid-read expiry (refresh), a 503 and a 429.
    admin_api_emulator.inject(Fault(kind="expire_session", path="/logs", after=1))
    admin_api_emulator.inject(Fault(kind="status", path="/logs", status=503, body="<html>busy</html>"))
    admin_api_emulator.inject(Fault(kind="status", path="/logs", status=429, headers={"Retry-After": "0"}))
    assert len(list(resource.iter_error_logs(start, end))) == 150
    assert admin_api_emulator.refresh_count == 1
    status = resource.ensure_session()

    errors: list[BaseException] = []
    # Failed reads: rejected keys, a 503 that never heals, a server echoing the token and key back.
    with pytest.raises(AdminApiConfigError) as bad_keys:
        list(
            make_resource(admin_api_emulator, mongo, private_key=BAD_PRIVATE_KEY).iter_error_logs(start, end)
        )
    errors.append(bad_keys.value)
    admin_api_emulator.inject(Fault(kind="status", path="/logs", status=503, body="", times=10))
    with pytest.raises(AdminApiError) as unavailable:
        list(make_resource(admin_api_emulator, mongo, max_attempts=2).iter_error_logs(start, end))
    errors.append(unavailable.value)
    admin_api_emulator.clear_faults()
    access_token = mongo.get_database()[CONTROL_COLLECTION].find_one()["access_token"]
    echo = json.dumps({"error": f"bad token {access_token} for key {DEMO_PRIVATE_KEY}"})
    admin_api_emulator.inject(Fault(kind="status", path="/logs", status=400, body=echo))
    with pytest.raises(AdminApiConfigError, match=r"bad token \[redacted\] for key \[redacted\]") as echoed:
        list(resource.iter_error_logs(start, end))
    errors.append(echoed.value)

    secrets = _secrets(admin_api_emulator, mongo)
    assert len(secrets) >= 6  # keys plus at least two access tokens and a refresh token
    captured = capfd.readouterr()
    texts = {
        "caplog": caplog.text,
        "messages": "\n".join(record.getMessage() for record in caplog.records),
        "stdout": captured.out,
        "stderr": captured.err,
        "repr(resource)": repr(resource),
        "str(resource)": str(resource),
        "repr(status)": repr(status),
        "repr(session_info)": repr(resource.session_info()),
        **{f"error {i}": _exception_text(error) for i, error in enumerate(errors)},
    }
    _assert_clean(texts, secrets)
    # The logs really did cover the requests (so the check above looked at something).
    assert (
        f"Admin API GET /groups/{DEMO_GROUP_ID}/apps/{DEMO_APP_ID}/logs -> 401 (attempt 2/4)" in caplog.text
    )
    assert 'access_token\\": \\"[redacted]' in caplog.text  # pymongo's command log, token cut out
    assert "Admin API POST /auth/session -> 201" in caplog.text
    assert "Admin API POST /auth/providers/mongodb-cloud/login -> 401" in caplog.text


def test_repr_shows_which_app_but_no_key_nor_mongo_credentials(admin_api_emulator, mongo):
    from realm_alert_pipeline.resources.mongo import MongoResource

    secret_uri = mongo.uri.replace("mongodb://", "mongodb://reader:Sup3rS3cret@")
    resource = make_resource(admin_api_emulator, MongoResource(uri=secret_uri, database="Logging"))

    for text in (repr(resource), str(resource), f"{resource!r}"):
        assert DEMO_GROUP_ID in text and DEMO_APP_ID in text
        assert DEMO_PUBLIC_KEY not in text
        assert DEMO_PRIVATE_KEY not in text
        assert "Sup3rS3cret" not in text


def test_a_refusal_echoing_the_stored_refresh_token_is_redacted_in_a_new_process(
    admin_api_emulator, mongo, caplog
):
    make_resource(admin_api_emulator, mongo).ensure_session()  # an earlier run logged in
    control = mongo.get_database()[CONTROL_COLLECTION]
    stored = control.find_one()
    # Thirty minutes later another process finds the stored access token due for refresh.
    control.update_one({"_id": stored["_id"]}, {"$set": {"access_expires_at": recent(1)}})
    admin_api_emulator.inject(
        Fault(
            kind="status",
            path="/auth/session",
            status=401,
            body=json.dumps(
                {
                    "error": f"invalid session: failed to find refresh token {stored['refresh_token']}",
                    "error_code": "InvalidSession",
                }
            ),
            headers={"Content-Type": "application/json"},
        )
    )
    caplog.set_level(logging.DEBUG)

    status = make_resource(admin_api_emulator, mongo).ensure_session()

    assert status.action == "logged_in"
    assert "refresh refused" in caplog.text
    assert stored["refresh_token"] not in caplog.text
    assert stored["access_token"] not in caplog.text
