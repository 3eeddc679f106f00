"""The `Error` collection must never hold a key, a token or a whole raw response, whatever a failing
server echoed back."""

from datetime import UTC, datetime

import pytest

from realm_alert_pipeline.constants import CONTROL_COLLECTION, ERROR_COLLECTION
from realm_alert_pipeline.ingest.errors import (
    ERROR_MESSAGE_MAX_CHARS,
    REDACTED,
    record_error,
    scrub_message,
    stored_session_secrets,
)

JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.mark.parametrize(
    ("message", "leaked"),
    [
        ("server said: Authorization: Bearer abc.def-123456", "abc.def-123456"),
        (f"echoed {JWT} back", JWT),
        ('{"access_token": "opaque-access-0987654321", "x": 1}', "opaque-access-0987654321"),
        ("refresh_token=opaque-refresh-1234567&z=1", "opaque-refresh-1234567"),
        ("login body {'username': 'k', 'apiKey': 'priv-key-zzzzzzzz'}", "priv-key-zzzzzzzz"),
        ("the key my-private-key-value was rejected", "my-private-key-value"),
    ],
)
def test_token_like_values_and_known_secrets_are_scrubbed(message, leaked):
    scrubbed = scrub_message(message, secrets=["my-private-key-value"])
    assert leaked not in scrubbed
    assert REDACTED in scrubbed


def test_long_messages_are_cut():
    assert len(scrub_message("<html>" + "x" * 10_000)) == ERROR_MESSAGE_MAX_CHARS


def test_short_secrets_do_not_garble_messages():
    assert scrub_message("an error occurred", secrets=["a", "or", None]) == "an error occurred"


def test_record_error_stores_the_documented_fields_scrubbed(db):
    db[CONTROL_COLLECTION].insert_one(
        {"_id": "g:a", "access_token": "stored-access-tok-1", "refresh_token": "stored-refresh-tok-2"}
    )
    secrets = stored_session_secrets(db, "g", "a")
    assert set(secrets) == {"stored-access-tok-1", "stored-refresh-tok-2"}
    when = datetime(2026, 12, 9, 6, 21, tzinfo=UTC)
    record_error(
        db,
        date=when,
        code="admin_api_error",
        message="got stored-access-tok-1 and stored-refresh-tok-2",
        run_id="r1",
        partition="2026-12-09-06:10",
        http_status=503,
        step="extract",
        secrets=secrets,
    )
    doc = db[ERROR_COLLECTION].find_one({}, {"_id": 0})
    assert doc == {
        "date": when,
        "code": "admin_api_error",
        "message": f"got {REDACTED} and {REDACTED}",
        "http_status": 503,
        "run_id": "r1",
        "partition": "2026-12-09-06:10",
        "step": "extract",
        "app_id": None,
    }
