"""The Admin API emulator answers like the real service (specs/admin-api.md 2-5, 9), over real HTTP.

Protects what the pipeline's client depends on: login/refresh status codes and error bodies (with and
without `error_code`), expiry on the emulator clock, `errors_only` by presence, start exclusive / end
inclusive, newest-first paging where nextEndDate/nextSkip return every entry exactly once even across
long runs of equal timestamps, the 10-day retention, exactly `Content-Type: application/json`, and the
injected faults the client's retry logic is tested with.
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from realm_alert_pipeline.core.timeutil import format_api_datetime, format_go_datetime, parse_api_datetime
from realm_alert_pipeline.local.admin_api_emulator import (
    DEMO_APP_ID,
    DEMO_GROUP_ID,
    DEMO_PRIVATE_KEY,
    DEMO_PUBLIC_KEY,
    AdminApiEmulator,
    Fault,
)

LOGIN = "/auth/providers/mongodb-cloud/login"
LOGS = f"/groups/{DEMO_GROUP_ID}/apps/{DEMO_APP_ID}/logs"
BAD_KEYS_BODY = {
    "error": "failed to authenticate with MongoDB Cloud API: You are not authorized for this resource."
}
EXPIRED_LINK = re.compile(
    rf"https://services\.cloud\.mongodb\.com/groups/{DEMO_GROUP_ID}/apps/{DEMO_APP_ID}/logs\?co_id=[0-9a-f]{{24}}"
)


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


@pytest.fixture
def emulator(admin_api_emulator):
    return admin_api_emulator


@pytest.fixture
def tokens(emulator, http):
    return login(emulator, http)


def login(emulator: AdminApiEmulator, http: requests.Session) -> dict:
    response = http.post(
        emulator.base_url + LOGIN, json={"username": DEMO_PUBLIC_KEY, "apiKey": DEMO_PRIVATE_KEY}, timeout=5
    )
    assert response.status_code == 200, response.text
    return response.json()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def get_logs(emulator, http, token, params=None) -> requests.Response:
    return http.get(emulator.base_url + LOGS, headers=bearer(token), params=params, timeout=5)


def entry(number: int, started: datetime | str, **fields) -> dict:
    """A log entry with a deterministic 24-hex `_id` (higher number = higher id)."""
    started_text = started if isinstance(started, str) else format_go_datetime(started)
    return {
        "_id": f"{number:024x}",
        "co_id": f"{number:023x}0",
        "type": "SCHEDULED_TRIGGER",
        "group_id": DEMO_GROUP_ID,
        "app_id": DEMO_APP_ID,
        "started": started_text,
        "completed": started_text,
        **fields,
    }


def read_all_pages(emulator, http, token, params: dict, max_pages: int = 1000) -> tuple[list[dict], int]:
    """Follow nextEndDate/nextSkip as the docs say: same query, only end_date and skip replaced."""
    params = dict(params)
    collected: list[dict] = []
    for pages in range(1, max_pages + 1):
        response = get_logs(emulator, http, token, params)
        assert response.status_code == 200, response.text
        page = response.json()
        collected.extend(page["logs"])
        if "nextEndDate" not in page:
            return collected, pages
        params["end_date"] = page["nextEndDate"]
        params.pop("skip", None)
        if "nextSkip" in page:
            params["skip"] = page["nextSkip"]
    raise AssertionError(f"paging did not end after {max_pages} pages")


def newest_first(entries: list[dict]) -> list[str]:
    ordered = sorted(entries, key=lambda e: (parse_api_datetime(e["started"]), e["_id"]), reverse=True)
    return [e["_id"] for e in ordered]


# --- login -----------------------------------------------------------------------------------------------


def test_login_returns_the_four_fields_with_opaque_distinct_tokens(emulator, http):
    response = http.post(
        emulator.base_url + LOGIN, json={"username": DEMO_PUBLIC_KEY, "apiKey": DEMO_PRIVATE_KEY}
    )

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "user_id", "device_id"}
    assert body["device_id"] == "000000000000000000000000"
    assert re.fullmatch(r"[0-9a-f]{24}", body["user_id"])
    assert body["access_token"] != body["refresh_token"]
    assert emulator.login_count == 1


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": DEMO_PUBLIC_KEY, "apiKey": "wrong-private"},
        {"username": "wrong-public", "apiKey": DEMO_PRIVATE_KEY},
        {"username": "", "apiKey": ""},
    ],
    ids=["wrong-private", "wrong-public", "empty"],
)
def test_login_with_wrong_keys_is_401_without_error_code(emulator, http, credentials):
    response = http.post(emulator.base_url + LOGIN, json=credentials)

    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == BAD_KEYS_BODY


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[1, 2]", b'{"username": "emulator-public-key"}', b'{"username": "a", "apiKey": 5}'],
    ids=["empty", "not-json", "array", "missing-apiKey", "apiKey-not-string"],
)
def test_login_with_malformed_body_is_400_invalid_parameter(emulator, http, body):
    response = http.post(emulator.base_url + LOGIN, data=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json()["error_code"] == "InvalidParameter"
    assert response.json()["error"]


def test_custom_keys_are_the_only_ones_accepted(http):
    with AdminApiEmulator(public_key="pub-1", private_key="priv-1") as custom:
        ok = http.post(custom.base_url + LOGIN, json={"username": "pub-1", "apiKey": "priv-1"})
        demo = http.post(
            custom.base_url + LOGIN, json={"username": DEMO_PUBLIC_KEY, "apiKey": DEMO_PRIVATE_KEY}
        )

    assert ok.status_code == 200
    assert demo.status_code == 401
    assert "priv-1" not in repr(custom)


# --- refresh ---------------------------------------------------------------------------------------------


def test_refresh_answers_201_with_a_new_working_access_token(emulator, http, tokens):
    response = http.post(emulator.base_url + "/auth/session", headers=bearer(tokens["refresh_token"]))

    assert response.status_code == 201
    assert list(response.json()) == ["access_token"]
    new_access = response.json()["access_token"]
    assert new_access != tokens["access_token"]
    assert get_logs(emulator, http, new_access).status_code == 200
    assert emulator.refresh_count == 1


def test_refresh_with_the_access_token_is_incorrect_token_type_without_code(emulator, http, tokens):
    response = http.post(emulator.base_url + "/auth/session", headers=bearer(tokens["access_token"]))

    assert response.status_code == 401
    assert response.json() == {"error": "invalid refresh token: incorrect token type"}


@pytest.mark.parametrize("case", ["revoked", "unknown", "expired"])
def test_refresh_with_a_dead_refresh_token_is_invalid_session(emulator, http, tokens, case):
    refresh_token = tokens["refresh_token"]
    if case == "revoked":
        emulator.revoke_refresh_tokens()
    elif case == "unknown":
        refresh_token = "not-a-token"
    else:
        emulator.advance_clock(timedelta(days=61))

    response = http.post(emulator.base_url + "/auth/session", headers=bearer(refresh_token))

    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid session: failed to find refresh token",
        "error_code": "InvalidSession",
    }


def test_logout_revokes_the_refresh_token(emulator, http, tokens):
    response = http.delete(emulator.base_url + "/auth/session", headers=bearer(tokens["refresh_token"]))
    again = http.post(emulator.base_url + "/auth/session", headers=bearer(tokens["refresh_token"]))

    assert response.status_code == 204
    assert again.status_code == 401


# --- access tokens on the logs endpoint ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, {"error": "invalid session: missing Authorization header", "error_code": "InvalidSession"}),
        (
            bearer("garbage"),
            {"error": "invalid session: signature is invalid", "error_code": "InvalidSession"},
        ),
        ("refresh", {"error": "invalid session: valid Issuer required"}),
    ],
    ids=["missing", "garbage", "refresh-token"],
)
def test_logs_without_a_valid_access_token_is_401(emulator, http, tokens, headers, expected):
    if headers == "refresh":
        headers = bearer(tokens["refresh_token"])
    response = http.get(emulator.base_url + LOGS, headers=headers)

    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == expected


def test_access_token_expires_after_30_minutes_on_the_emulator_clock(emulator, http, tokens):
    emulator.advance_clock(timedelta(minutes=29))
    assert get_logs(emulator, http, tokens["access_token"]).status_code == 200

    emulator.advance_clock(timedelta(minutes=1, seconds=1))
    response = get_logs(emulator, http, tokens["access_token"])

    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid session: access token expired"
    assert body["error_code"] == "InvalidSession"
    assert EXPIRED_LINK.fullmatch(body["link"])
    refreshed = http.post(emulator.base_url + "/auth/session", headers=bearer(tokens["refresh_token"]))
    assert get_logs(emulator, http, refreshed.json()["access_token"]).status_code == 200


def test_expire_access_tokens_expires_issued_tokens_only(emulator, http, tokens):
    emulator.expire_access_tokens()
    fresh = login(emulator, http)

    assert (
        get_logs(emulator, http, tokens["access_token"]).json()["error"]
        == "invalid session: access token expired"
    )
    assert get_logs(emulator, http, fresh["access_token"]).status_code == 200


@pytest.mark.parametrize(
    "path", [f"/groups/{'0' * 24}/apps/{DEMO_APP_ID}/logs", f"/groups/{DEMO_GROUP_ID}/apps/x/logs"]
)
def test_unknown_group_or_app_is_404_app_not_found(emulator, http, tokens, path):
    response = http.get(emulator.base_url + path, headers=bearer(tokens["access_token"]))

    assert response.status_code == 404
    assert response.json() == {"error": "app not found", "error_code": "AppNotFound"}


# --- filters ---------------------------------------------------------------------------------------------


@pytest.fixture
def filter_logs(emulator):
    base = emulator.now() - timedelta(hours=1)
    logs = [
        entry(1, base, type="SCHEDULED_TRIGGER", error="FunctionError: boom"),
        entry(2, base + timedelta(seconds=1), type="DB_TRIGGER", error=""),
        entry(3, base + timedelta(seconds=2), type="AUTH", error="invalid API key", user_id="u1"),
        entry(4, base + timedelta(seconds=3), type="AUTH", user_id="u1"),
        entry(5, base + timedelta(seconds=4), type="TRIGGER_FAILURE", error="x", error_code=None),
        entry(6, base + timedelta(seconds=5), type="DB_TRIGGER", error=None),
    ]
    emulator.add_logs(logs)
    return {log["_id"][-1]: log for log in logs}


def ids_of(response: requests.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [int(log["_id"], 16) for log in response.json()["logs"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, [6, 5, 4, 3, 2, 1]),
        ({"errors_only": "true"}, [5, 3, 1]),
        ({"errors_only": "false"}, [5, 3, 1]),
        ({"errors_only": ""}, [5, 3, 1]),
        ({"type": "DB_TRIGGER"}, [6, 2]),
        ({"type": "AUTH,TRIGGER_FAILURE"}, [5, 4, 3]),
        ({"type": ["AUTH", "SCHEDULED_TRIGGER"]}, [4, 3, 1]),
        ({"type": "AUTH", "errors_only": "false"}, [3]),
        ({"user_id": "u1"}, [4, 3]),
        ({"co_id": f"{5:023x}0"}, [5]),
        ({"user_id": "nobody"}, []),
    ],
    ids=lambda value: json.dumps(value) if isinstance(value, dict) else None,
)
def test_filters(emulator, http, tokens, filter_logs, params, expected):
    assert ids_of(get_logs(emulator, http, tokens["access_token"], params)) == expected


def test_entries_are_served_exactly_as_given(emulator, http, tokens, filter_logs):
    logs = get_logs(emulator, http, tokens["access_token"], {"co_id": f"{5:023x}0"}).json()["logs"]

    assert logs == [filter_logs["5"]]
    assert logs[0]["error_code"] is None


def test_empty_result_is_an_empty_logs_array_without_paging_keys(emulator, http, tokens):
    response = get_logs(emulator, http, tokens["access_token"], {"errors_only": "true"})

    assert response.status_code == 200
    assert response.json() == {"logs": []}


T0 = datetime(2026, 12, 2, 10, 0, 0, 500_000, tzinfo=UTC)


@pytest.fixture
def boundary_logs(emulator):
    """Entries at T0 - 1 ms, T0, T0 + 1 ms, with retention off (fixed dates)."""
    emulator.retention = None
    emulator.add_logs(
        [
            entry(1, T0 - timedelta(milliseconds=1)),
            entry(2, T0),
            entry(3, T0 + timedelta(milliseconds=1)),
        ]
    )


@pytest.mark.parametrize(
    "t0_text",
    [
        "2026-12-02T10:00:00.500Z",
        "2026-12-02T10:00:00.5Z",
        "2026-12-02T10:00:00.500999999Z",
        "2026-12-02T11:00:00.500+01:00",
        "2026-12-02T09:30:00.500-00:30",
    ],
)
def test_start_date_is_exclusive_and_end_date_inclusive_on_started(
    emulator, http, tokens, boundary_logs, t0_text
):
    token = tokens["access_token"]

    assert ids_of(get_logs(emulator, http, token, {"start_date": t0_text})) == [3]
    assert ids_of(get_logs(emulator, http, token, {"end_date": t0_text})) == [2, 1]
    assert ids_of(get_logs(emulator, http, token, {"start_date": t0_text, "end_date": t0_text})) == []


def test_date_only_means_midnight_utc(emulator, http, tokens, boundary_logs):
    token = tokens["access_token"]

    assert ids_of(
        get_logs(emulator, http, token, {"start_date": "2026-12-02", "end_date": "2026-12-03"})
    ) == [3, 2, 1]
    assert ids_of(get_logs(emulator, http, token, {"end_date": "2026-12-02"})) == []


def test_a_raw_plus_offset_decodes_to_a_space_and_is_rejected(emulator, http, tokens):
    url = emulator.base_url + LOGS + "?end_date=2026-12-02T11:00:00.500+01:00"

    response = http.get(url, headers=bearer(tokens["access_token"]))

    assert response.status_code == 400
    assert response.json()["error_code"] == "InvalidParameter"


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"type": "FOO"}, "invalid log type: 'FOO'"),
        ({"type": "AUTH,FOO"}, "invalid log type: 'FOO'"),
        ({"type": "auth"}, "invalid log type: 'auth'"),
        ({"limit": "0"}, None),
        ({"limit": "101"}, None),
        ({"limit": "ten"}, None),
        ({"limit": ""}, None),
        ({"skip": "-1"}, None),
        ({"skip": "1_0"}, None),
        ({"start_date": "yesterday"}, None),
        ({"end_date": "2026-13-01T00:00:00Z"}, None),
        ({"end_date": "2026-12-01T00:00Z"}, None),
    ],
    ids=lambda value: json.dumps(value) if isinstance(value, dict) else None,
)
def test_bad_parameters_are_400_invalid_parameter(emulator, http, tokens, params, error):
    response = get_logs(emulator, http, tokens["access_token"], params)

    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "InvalidParameter"
    if error is not None:
        assert body["error"] == error


@pytest.mark.parametrize(("limit", "expected"), [("1", 1), ("100", 100), (None, 100), ("37", 37)])
def test_limit_is_1_to_100_with_default_100(emulator, http, tokens, limit, expected):
    base = emulator.now() - timedelta(hours=2)
    emulator.add_logs([entry(n, base + timedelta(seconds=n)) for n in range(1, 151)])

    page = get_logs(emulator, http, tokens["access_token"], {"limit": limit} if limit else None).json()

    assert len(page["logs"]) == expected
    assert page["nextEndDate"] == format_go_datetime(base + timedelta(seconds=150 - expected))
    assert [int(log["_id"], 16) for log in page["logs"]] == list(range(150, 150 - expected, -1))


# --- paging ----------------------------------------------------------------------------------------------


def test_next_page_starts_at_the_next_entry_and_ties_carry_next_skip(emulator, http, tokens):
    base = emulator.now() - timedelta(hours=1)
    tie = base + timedelta(milliseconds=250)
    emulator.add_logs(
        [entry(1, base), entry(2, tie), entry(3, tie), entry(4, tie), entry(5, base + timedelta(seconds=1))]
    )
    token = tokens["access_token"]

    first = get_logs(emulator, http, token, {"limit": 2}).json()
    assert [int(log["_id"], 16) for log in first["logs"]] == [5, 4]
    assert first["nextEndDate"] == format_go_datetime(tie)  # the next entry's `started`, verbatim
    assert first["nextSkip"] == 1  # entry 4 was already read at that timestamp

    second = get_logs(emulator, http, token, {"limit": 2, "end_date": first["nextEndDate"], "skip": 1}).json()
    assert [int(log["_id"], 16) for log in second["logs"]] == [3, 2]
    assert second["nextEndDate"] == format_go_datetime(base)
    assert "nextSkip" not in second  # no entry read so far shares the next entry's timestamp

    last = get_logs(emulator, http, token, {"limit": 2, "end_date": second["nextEndDate"]}).json()
    assert last == {"logs": [entry(1, base)]}


def test_next_end_date_is_the_entry_string_verbatim_and_compared_at_ms(emulator, http, tokens):
    started = "2026-12-02T10:00:00.04Z"
    emulator.retention = None
    emulator.add_logs(
        [entry(1, started), entry(2, "2026-12-02T10:00:00.040Z"), entry(3, "2026-12-02T10:00:01Z")]
    )

    page = get_logs(emulator, http, tokens["access_token"], {"limit": 2}).json()

    assert page["nextEndDate"] == started
    assert page["nextSkip"] == 1  # "…00.040Z" and "…00.04Z" are the same millisecond


@pytest.mark.parametrize("limit", [100, 7, 1])
def test_a_run_of_150_equal_timestamps_pages_every_entry_exactly_once(emulator, http, tokens, limit):
    now = emulator.now()
    tie = now - timedelta(minutes=30)
    logs = (
        [entry(n, now - timedelta(minutes=10, seconds=n)) for n in range(1, 6)]
        + [entry(n, tie, error="tied") for n in range(100, 250)]
        + [entry(n, tie - timedelta(milliseconds=1)) for n in range(300, 305)]
    )
    emulator.add_logs(logs)

    collected, pages = read_all_pages(emulator, http, tokens["access_token"], {"limit": limit})

    assert [log["_id"] for log in collected] == newest_first(logs)
    assert pages == -(-len(logs) // limit)


def test_paging_keeps_filters_and_start_date_fixed(emulator, http, tokens):
    now = emulator.now()
    start = now - timedelta(minutes=6, seconds=5)
    logs = [entry(n, now - timedelta(minutes=5), error="e" if n % 2 else "") for n in range(1, 41)]
    logs += [entry(n, now - timedelta(minutes=6, seconds=n - 50), error="older") for n in range(50, 60)]
    emulator.add_logs(logs)
    params = {"limit": 3, "errors_only": "true", "start_date": format_api_datetime(start)}

    collected, _ = read_all_pages(emulator, http, tokens["access_token"], params)

    # 20 errors in the tie, then entries 50-54; entry 55 started exactly at start_date (exclusive).
    wanted = [
        log
        for log in logs
        if log["error"] and parse_api_datetime(log["started"]) > parse_api_datetime(params["start_date"])
    ]
    assert len(wanted) == 25
    assert [log["_id"] for log in collected] == newest_first(wanted)


def test_last_page_has_no_next_end_date(emulator, http, tokens):
    base = emulator.now() - timedelta(hours=1)
    emulator.add_logs([entry(n, base + timedelta(seconds=n)) for n in range(1, 6)])

    page = get_logs(emulator, http, tokens["access_token"], {"limit": 5}).json()

    assert len(page["logs"]) == 5
    assert set(page) == {"logs"}


def test_late_arrivals_added_while_running_are_served(emulator, http, tokens):
    now = emulator.now()
    emulator.add_logs([entry(1, now - timedelta(minutes=1))])
    window = {
        "start_date": format_api_datetime(now - timedelta(minutes=10)),
        "end_date": format_api_datetime(now),
    }
    assert ids_of(get_logs(emulator, http, tokens["access_token"], window)) == [1]

    emulator.add_logs([entry(2, now - timedelta(minutes=8))])  # started earlier, written later

    assert ids_of(get_logs(emulator, http, tokens["access_token"], window)) == [1, 2]


# --- retention -------------------------------------------------------------------------------------------


def test_entries_older_than_the_retention_are_not_served(emulator, http, tokens):
    now = emulator.now()
    emulator.add_logs(
        [entry(1, now - timedelta(days=10, minutes=1)), entry(2, now - timedelta(days=9, hours=23))]
    )
    token = tokens["access_token"]
    assert ids_of(get_logs(emulator, http, token)) == [2]

    emulator.advance_clock(timedelta(hours=2))
    assert ids_of(get_logs(emulator, http, login(emulator, http)["access_token"])) == []

    emulator.retention = None
    assert ids_of(get_logs(emulator, http, login(emulator, http)["access_token"])) == [2, 1]


# --- faults ----------------------------------------------------------------------------------------------


def test_status_fault_sends_its_body_and_headers_as_given(emulator, http, tokens):
    html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    emulator.inject(
        Fault("status", path="/logs", status=502, body=html, headers={"Content-Type": "text/html"})
    )

    response = get_logs(emulator, http, tokens["access_token"])

    assert response.status_code == 502
    assert response.headers["Content-Type"] == "text/html"
    assert response.text == html
    assert get_logs(emulator, http, tokens["access_token"]).status_code == 200


def test_status_fault_with_empty_body_and_retry_after(emulator, http, tokens):
    emulator.inject(Fault("status", status=429, headers={"Retry-After": "1"}))

    response = get_logs(emulator, http, tokens["access_token"])

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert response.headers["Content-Type"] == "application/json"
    assert response.content == b""


def test_fault_lets_after_requests_through_then_fires_times(emulator, http, tokens):
    emulator.inject(Fault("status", path="/logs", status=503, after=1, times=2))

    statuses = [get_logs(emulator, http, tokens["access_token"]).status_code for _ in range(4)]

    assert statuses == [200, 503, 503, 200]
    assert [r.status for r in emulator.requests if r.path.endswith("/logs")] == statuses


def test_fault_path_filter_spares_other_paths(emulator, http):
    emulator.inject(Fault("status", path="/auth/session", status=500, times=5))

    tokens = login(emulator, http)
    refresh = http.post(emulator.base_url + "/auth/session", headers=bearer(tokens["refresh_token"]))

    assert refresh.status_code == 500
    assert emulator.refresh_count == 0  # answered by the fault, not by the emulator


def test_expire_session_fault_gives_the_real_expired_answer(emulator, http, tokens):
    emulator.inject(Fault("expire_session", path="/logs"))

    response = get_logs(emulator, http, tokens["access_token"])

    assert response.status_code == 401
    assert response.json()["error"] == "invalid session: access token expired"
    assert response.json()["error_code"] == "InvalidSession"


def test_delay_fault_answers_normally_after_the_delay(emulator, http, tokens):
    emulator.inject(Fault("delay", path="/logs", delay_s=0.3))

    started = time.perf_counter()
    response = get_logs(emulator, http, tokens["access_token"])
    elapsed = time.perf_counter() - started

    assert response.status_code == 200
    assert elapsed >= 0.3
    emulator.inject(Fault("delay", delay_s=1.0))
    with pytest.raises(requests.Timeout):
        http.get(emulator.base_url + LOGS, headers=bearer(tokens["access_token"]), timeout=0.2)


def test_drop_fault_closes_the_connection_without_an_answer(emulator, http, tokens):
    emulator.inject(Fault("drop", path="/logs"))

    with pytest.raises(requests.ConnectionError):
        get_logs(emulator, http, tokens["access_token"])

    assert emulator.requests[-1].status == 0
    assert get_logs(emulator, http, tokens["access_token"]).status_code == 200


def test_clear_faults_and_bad_faults(emulator, http, tokens):
    emulator.inject(Fault("status", status=500, times=10))
    emulator.clear_faults()
    assert get_logs(emulator, http, tokens["access_token"]).status_code == 200
    with pytest.raises(ValueError, match="unknown fault kind"):
        emulator.inject(Fault("explode"))
    with pytest.raises(ValueError, match="times >= 1"):
        emulator.inject(Fault("status", times=0))


# --- observation and headers -----------------------------------------------------------------------------


def test_requests_are_recorded_with_query_headers_and_status(emulator, http, tokens):
    http.get(
        emulator.base_url + LOGS,
        headers={**bearer(tokens["access_token"]), "X-BAAS-Request-Origin": "mongodb-baas-cli"},
        params={"errors_only": "true", "type": "AUTH,API_KEY"},
    )

    recorded = emulator.requests
    assert [(r.method, r.path.removeprefix("/api/admin/v3.0"), r.status) for r in recorded] == [
        ("POST", LOGIN, 200),
        ("GET", LOGS, 200),
    ]
    assert recorded[1].query == {"errors_only": ["true"], "type": ["AUTH,API_KEY"]}
    assert recorded[1].headers["X-BAAS-Request-Origin"] == "mongodb-baas-cli"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", LOGIN, 200),
        ("POST", LOGIN + "x", 404),
        ("GET", LOGIN, 405),
        ("POST", "/auth/session", 401),
        ("GET", LOGS, 200),
        ("GET", LOGS + "?limit=0", 400),
        ("GET", "/groups/x/apps/y/logs", 404),
        ("GET", "/nowhere", 404),
    ],
)
def test_every_answer_is_exactly_application_json(emulator, http, tokens, method, path, status):
    response = http.request(
        method,
        emulator.base_url + path,
        headers=bearer(tokens["access_token"]),
        json={"username": DEMO_PUBLIC_KEY, "apiKey": DEMO_PRIVATE_KEY} if method == "POST" else None,
    )

    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    json.loads(response.text)


def test_add_logs_rejects_bad_entries_and_adds_nothing(emulator):
    good = entry(1, emulator.now())
    with pytest.raises(ValueError, match="`started`"):
        emulator.add_logs([good, {"_id": "x", "started": "soon"}])
    with pytest.raises(ValueError, match="`_id`"):
        emulator.add_logs([{"started": "2026-12-01T00:00:00Z"}])
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        emulator.add_logs([{**good, "when": datetime.now(UTC)}])
    assert emulator.log_count == 0


def test_start_stop_and_base_url(http):
    emulator = AdminApiEmulator()
    with pytest.raises(RuntimeError):
        _ = emulator.base_url
    with emulator:
        url = emulator.base_url
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/admin/v3\.0", url)
        login(emulator, http)  # leaves a keep-alive connection open
    with pytest.raises(requests.ConnectionError):
        http.post(url + LOGIN, json={}, timeout=2)


# --- throughput ------------------------------------------------------------------------------------------


def test_reading_20000_entries_in_200_pages_is_fast(emulator, http, tokens):
    now = emulator.now()
    logs = [entry(n, now - timedelta(seconds=n // 3 * 7), error="boom") for n in range(20_000)]
    emulator.add_logs(logs)

    started = time.perf_counter()
    collected, pages = read_all_pages(emulator, http, tokens["access_token"], {"errors_only": "true"})
    elapsed = time.perf_counter() - started

    assert pages == 200
    assert len({log["_id"] for log in collected}) == 20_000
    assert elapsed < 5, f"200 pages took {elapsed:.2f} s"  # measured ~0.6 s; ~40 ms per page if Nagle bites


# --- `realm-alerts emulate admin-api` --------------------------------------------------------------------


def test_serve_forever_prints_its_url_serves_and_stops_on_sigterm(tmp_path, http):
    now = datetime.now(UTC)
    sample = [entry(n, now - timedelta(minutes=n), error="boom") for n in range(1, 4)]
    logs_file = tmp_path / "logs.json"
    logs_file.write_text(json.dumps(sample), encoding="utf-8")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "realm_alert_pipeline.cli",
            "emulate",
            "admin-api",
            "--port",
            "0",
            "--logs",
            str(logs_file),
            "--public-key",
            "pub",
            "--private-key",
            "priv",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    try:
        first_line = lines.get(timeout=20)
        match = re.fullmatch(r"Admin API emulator: (http://127\.0\.0\.1:\d+/api/admin/v3\.0)\n", first_line)
        assert match, first_line
        base_url = match.group(1)

        response = http.post(base_url + LOGIN, json={"username": "pub", "apiKey": "priv"}, timeout=5)
        page = http.get(base_url + LOGS, headers=bearer(response.json()["access_token"]), timeout=5).json()
        assert page == {"logs": sample}
    finally:
        process.terminate()
        returncode = process.wait(timeout=10)
        process.stderr.close()
    assert returncode == 0
