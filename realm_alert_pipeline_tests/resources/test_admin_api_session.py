"""The Admin API session (30-minute access token, refresh token) lives in MongoDB `Control`, so runs, processes
and resource instances share one login; an expired token costs one refresh (201), a refused refresh one login,
rejected keys a clear configuration error after one request, and nothing ever loops."""

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import pytest

from realm_alert_pipeline.constants import ACCESS_TOKEN_LIFETIME, CONTROL_COLLECTION
from realm_alert_pipeline.local.admin_api_emulator import (
    DEMO_APP_ID,
    DEMO_GROUP_ID,
    DEMO_PRIVATE_KEY,
    DEMO_PUBLIC_KEY,
    Fault,
)
from realm_alert_pipeline.resources.admin_api import AdminApiConfigError, AdminApiError
from realm_alert_pipeline_tests.resources.admin_api_helpers import (
    log_entry,
    logs_requests,
    make_resource,
    newest_first,
    recent,
)

CONTROL_ID = f"{DEMO_GROUP_ID}:{DEMO_APP_ID}"


@pytest.fixture
def control(mongo):
    return mongo.get_database()[CONTROL_COLLECTION]


@pytest.fixture
def window(admin_api_emulator):
    """(start, end, expected ids) of 250 errors: three pages."""
    end = recent(30)
    errors = [log_entry(end - timedelta(seconds=k)) for k in range(250)]
    admin_api_emulator.add_logs(errors)
    return end - timedelta(hours=1), end, [e["_id"] for e in newest_first(errors)]


def _read(resource, window) -> list[str]:
    start, end, _ = window
    return [entry["_id"] for entry in resource.iter_error_logs(start, end)]


def test_first_read_logs_in_and_stores_the_session_in_control(admin_api_emulator, mongo, control, window):
    before = datetime.now(UTC)
    assert _read(make_resource(admin_api_emulator, mongo), window) == window[2]

    assert admin_api_emulator.login_count == 1
    assert admin_api_emulator.refresh_count == 0
    login = next(
        r for r in admin_api_emulator.requests if r.path.endswith("/auth/providers/mongodb-cloud/login")
    )
    assert login.method == "POST"
    doc = control.find_one({"_id": CONTROL_ID})
    assert doc is not None
    assert doc["user_id"] == admin_api_emulator.user_id
    assert doc["device_id"] == "0" * 24
    assert doc["access_token"] and doc["refresh_token"] and doc["access_token"] != doc["refresh_token"]
    assert before - timedelta(seconds=1) <= doc["date"] <= datetime.now(UTC)
    assert doc["last_modified"] == doc["date"]
    assert doc["access_expires_at"] == doc["date"] + ACCESS_TOKEN_LIFETIME
    assert len(doc["key_fingerprint"]) == 32
    assert DEMO_PUBLIC_KEY not in str(doc) and DEMO_PRIVATE_KEY not in str(doc)
    # Every logs request carried the stored access token.
    assert {r.headers["Authorization"] for r in logs_requests(admin_api_emulator)} == {
        f"Bearer {doc['access_token']}"
    }


def test_a_second_resource_instance_reuses_the_stored_session(admin_api_emulator, mongo, window):
    assert make_resource(admin_api_emulator, mongo).ensure_session().action == "logged_in"

    second = make_resource(admin_api_emulator, mongo)
    status = second.ensure_session()
    assert _read(second, window) == window[2]

    assert status.action == "reused"
    assert status.user_id == admin_api_emulator.user_id
    assert admin_api_emulator.login_count == 1
    assert admin_api_emulator.refresh_count == 0


def test_another_process_reuses_the_stored_session(admin_api_emulator, mongo):
    make_resource(admin_api_emulator, mongo).ensure_session()
    script = textwrap.dedent(
        f"""
        from realm_alert_pipeline.resources.mongo import MongoResource
        from realm_alert_pipeline.resources.admin_api import AdminApiResource
        from realm_alert_pipeline.local.admin_api_emulator import DEMO_PUBLIC_KEY, DEMO_PRIVATE_KEY
        resource = AdminApiResource(
            public_key=DEMO_PUBLIC_KEY, private_key=DEMO_PRIVATE_KEY, group_id={DEMO_GROUP_ID!r},
            app_id={DEMO_APP_ID!r}, base_url={admin_api_emulator.base_url!r},
            mongo=MongoResource(uri={mongo.uri!r}, database={mongo.database!r}),
        )
        print(resource.ensure_session().action)
        print(sum(1 for page in resource.iter_log_pages(None, None) for _ in page))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=dict(os.environ)
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["reused", "0"]
    assert admin_api_emulator.login_count == 1


def test_token_expiring_in_the_middle_of_paging_costs_one_refresh(admin_api_emulator, mongo, control, window):
    resource = make_resource(admin_api_emulator, mongo)
    resource.ensure_session()
    old_access = control.find_one({"_id": CONTROL_ID})["access_token"]
    admin_api_emulator.inject(Fault(kind="expire_session", path="/logs", after=1))

    assert _read(resource, window) == window[2]

    assert admin_api_emulator.refresh_count == 1
    assert admin_api_emulator.login_count == 1
    statuses = [r.status for r in logs_requests(admin_api_emulator)]
    assert statuses == [200, 401, 200, 200]
    queries = [r.query for r in logs_requests(admin_api_emulator)]
    assert queries[2] == queries[1]  # the failed page is asked again, not page 1
    refresh = next(r for r in admin_api_emulator.requests if r.path.endswith("/auth/session"))
    assert refresh.method == "POST"
    assert (
        refresh.headers["Authorization"] == f"Bearer {control.find_one({'_id': CONTROL_ID})['refresh_token']}"
    )
    doc = control.find_one({"_id": CONTROL_ID})
    assert doc["access_token"] != old_access
    assert doc["last_modified"] > doc["date"]


def test_a_revoked_refresh_token_costs_one_login(admin_api_emulator, mongo, control, window):
    resource = make_resource(admin_api_emulator, mongo)
    resource.ensure_session()
    first = control.find_one({"_id": CONTROL_ID})
    admin_api_emulator.expire_access_tokens()
    admin_api_emulator.revoke_refresh_tokens()

    assert _read(make_resource(admin_api_emulator, mongo), window) == window[2]

    assert admin_api_emulator.refresh_count == 1
    assert admin_api_emulator.login_count == 2
    doc = control.find_one({"_id": CONTROL_ID})
    assert doc["refresh_token"] != first["refresh_token"]
    assert doc["date"] > first["date"]


def test_a_token_about_to_expire_is_refreshed_before_use(admin_api_emulator, mongo, control):
    make_resource(admin_api_emulator, mongo).ensure_session()
    first = control.find_one({"_id": CONTROL_ID})
    soon = datetime.now(UTC) + timedelta(minutes=2)  # inside the 5-minute margin
    control.update_one({"_id": CONTROL_ID}, {"$set": {"access_expires_at": soon}})

    status = make_resource(admin_api_emulator, mongo).ensure_session()

    assert status.action == "refreshed"
    assert status.access_expires_at > datetime.now(UTC) + timedelta(minutes=29)
    assert admin_api_emulator.refresh_count == 1
    assert admin_api_emulator.login_count == 1
    doc = control.find_one({"_id": CONTROL_ID})
    assert doc["access_token"] != first["access_token"]
    assert doc["refresh_token"] == first["refresh_token"]
    assert doc["date"] == first["date"]


def test_server_clock_past_expiry_is_cured_by_one_refresh(admin_api_emulator, mongo, window):
    resource = make_resource(admin_api_emulator, mongo)
    resource.ensure_session()
    admin_api_emulator.advance_clock(timedelta(minutes=31))

    assert _read(resource, window) == window[2]
    assert (admin_api_emulator.refresh_count, admin_api_emulator.login_count) == (1, 1)


def test_a_refresh_token_stored_as_access_token_is_cured_by_one_refresh(
    admin_api_emulator, mongo, control, window
):
    # "invalid session: valid Issuer required" has no error_code; we refresh on the prefix (bounded).
    make_resource(admin_api_emulator, mongo).ensure_session()
    doc = control.find_one({"_id": CONTROL_ID})
    control.update_one({"_id": CONTROL_ID}, {"$set": {"access_token": doc["refresh_token"]}})

    assert _read(make_resource(admin_api_emulator, mongo), window) == window[2]
    assert (admin_api_emulator.refresh_count, admin_api_emulator.login_count) == (1, 1)


def test_a_server_that_keeps_refusing_the_session_does_not_loop(admin_api_emulator, mongo, window):
    make_resource(admin_api_emulator, mongo).ensure_session()
    refusal = json.dumps({"error": "invalid session: access token expired", "error_code": "InvalidSession"})
    admin_api_emulator.inject(Fault(kind="status", path="/logs", status=401, body=refusal, times=100))

    with pytest.raises(AdminApiError) as raised:
        _read(make_resource(admin_api_emulator, mongo), window)

    assert not isinstance(raised.value, AdminApiConfigError)
    assert raised.value.status == 401
    assert raised.value.error_code == "InvalidSession"
    assert "invalid session: access token expired" in str(raised.value)
    assert len(logs_requests(admin_api_emulator)) == 2
    assert (admin_api_emulator.refresh_count, admin_api_emulator.login_count) == (1, 1)


def test_refresh_refused_and_fresh_login_refused_again_stops_after_one_of_each(
    admin_api_emulator, mongo, window
):
    make_resource(admin_api_emulator, mongo).ensure_session()
    admin_api_emulator.expire_access_tokens()
    admin_api_emulator.revoke_refresh_tokens()
    refusal = json.dumps({"error": "invalid session: access token expired", "error_code": "InvalidSession"})
    admin_api_emulator.inject(
        Fault(kind="status", path="/logs", status=401, body=refusal, after=1, times=100)
    )

    with pytest.raises(AdminApiError, match="invalid session"):
        _read(make_resource(admin_api_emulator, mongo), window)

    # logs 401 (expired) -> refresh refused -> login -> logs 401 again -> stop.
    assert [r.status for r in logs_requests(admin_api_emulator)] == [401, 401]
    assert (admin_api_emulator.refresh_count, admin_api_emulator.login_count) == (1, 2)


def test_bad_keys_give_a_clear_config_error_after_one_request(admin_api_emulator, mongo, window):
    resource = make_resource(admin_api_emulator, mongo, private_key="not-the-private-key")

    with pytest.raises(AdminApiConfigError) as raised:
        _read(resource, window)

    assert str(raised.value) == (
        "Admin API login rejected the API key pair (HTTP 401): failed to authenticate with MongoDB Cloud API:"
        " You are not authorized for this resource.; check ATLAS_PUBLIC_KEY / ATLAS_PRIVATE_KEY"
    )
    assert raised.value.status == 401
    assert raised.value.error_code is None
    assert len(admin_api_emulator.requests) == 1
    assert admin_api_emulator.login_count == 1


def test_a_session_of_another_key_pair_is_not_reused(admin_api_emulator, mongo, control, window):
    make_resource(admin_api_emulator, mongo).ensure_session()

    with pytest.raises(AdminApiConfigError, match="rejected the API key pair"):
        _read(make_resource(admin_api_emulator, mongo, private_key="rotated-private-key"), window)
    assert admin_api_emulator.login_count == 2
    assert logs_requests(admin_api_emulator) == []
    # A document written by another tool (no fingerprint) is not trusted either.
    control.update_one({"_id": CONTROL_ID}, {"$unset": {"key_fingerprint": ""}})
    assert make_resource(admin_api_emulator, mongo).ensure_session().action == "logged_in"
    assert admin_api_emulator.login_count == 3


def test_check_login_proves_the_keys_with_a_fresh_login(admin_api_emulator, mongo, control):
    resource = make_resource(admin_api_emulator, mongo)
    resource.ensure_session()

    status = resource.check_login()

    assert status.action == "logged_in"
    assert admin_api_emulator.login_count == 2
    assert control.find_one({"_id": CONTROL_ID})["date"] <= datetime.now(UTC)
    with pytest.raises(AdminApiConfigError, match="rejected the API key pair"):
        make_resource(admin_api_emulator, mongo, public_key="wrong-public-key").check_login()
    assert admin_api_emulator.login_count == 3


def test_session_info_tells_the_state_without_tokens(admin_api_emulator, mongo, control):
    resource = make_resource(admin_api_emulator, mongo)
    assert resource.session_info() is None
    resource.ensure_session()

    info = resource.session_info()

    doc = control.find_one({"_id": CONTROL_ID})
    assert info.control_id == CONTROL_ID
    assert info.user_id == admin_api_emulator.user_id
    assert info.access_expires_at == doc["access_expires_at"]
    assert info.logged_in_at == doc["date"]
    assert doc["access_token"] not in repr(info) and doc["refresh_token"] not in repr(info)


def test_a_transient_login_failure_is_retried(admin_api_emulator, mongo):
    admin_api_emulator.inject(Fault(kind="status", path="/login", status=503, body="", times=1))

    status = make_resource(admin_api_emulator, mongo).ensure_session()

    assert status.action == "logged_in"
    assert [r.status for r in admin_api_emulator.requests] == [503, 200]


def test_a_wrong_base_url_is_a_config_error_naming_it(admin_api_emulator, mongo):
    base_url = admin_api_emulator.base_url.replace("/v3.0", "/v2.0")

    with pytest.raises(
        AdminApiConfigError, match="login failed \\(HTTP 404\\): not found; check ADMIN_API_BASE_URL"
    ):
        make_resource(admin_api_emulator, mongo, base_url=base_url).ensure_session()
    assert len(admin_api_emulator.requests) == 1


def test_a_login_rate_limited_to_the_end_is_not_blamed_on_the_keys(admin_api_emulator, mongo):
    admin_api_emulator.inject(Fault(kind="status", path="/login", status=429, body="", times=10))

    with pytest.raises(AdminApiError) as raised:
        make_resource(admin_api_emulator, mongo, max_attempts=2).ensure_session()

    assert not isinstance(raised.value, AdminApiConfigError)
    assert str(raised.value) == (
        "Admin API POST /auth/providers/mongodb-cloud/login failed after 2 attempts:"
        " HTTP 429 Too Many Requests (empty body)"
    )
