"""The `Control` document of an app is shared by every process: a refresh must not overwrite a newer login made by
another process, a session made with other keys is not handed out, and pymongo's DEBUG command log (which echoes
documents) must not show the tokens."""

import logging
from datetime import UTC, datetime, timedelta

from realm_alert_pipeline.constants import (
    ACCESS_TOKEN_LIFETIME,
    ACCESS_TOKEN_REFRESH_MARGIN,
    CONTROL_COLLECTION,
)
from realm_alert_pipeline.resources.admin_session_store import AdminSessionStore, key_fingerprint

GROUP, APP = "6512a3f4c8e1b27d9a0f4c31", "6512a41bd3c5e8f01b7a2e90"
FINGERPRINT = key_fingerprint("public", "private")


def _store(mongo, fingerprint=FINGERPRINT) -> AdminSessionStore:
    return AdminSessionStore(mongo.get_database()[CONTROL_COLLECTION], GROUP, APP, fingerprint)


def _login(store, suffix: str, at: datetime):
    return store.save_login(
        access_token=f"access-{suffix}",
        refresh_token=f"refresh-{suffix}",
        user_id="u1",
        device_id="0" * 24,
        issued_at=at,
    )


def test_login_then_load_round_trips(mongo):
    store = _store(mongo)
    at = datetime(2026, 12, 3, 11, 0, 0, 123456, tzinfo=UTC)
    saved = _login(store, "a", at)

    loaded = store.load()

    assert loaded == saved
    assert loaded.logged_in_at == at.replace(microsecond=123000)
    assert loaded.access_expires_at == loaded.logged_in_at + ACCESS_TOKEN_LIFETIME
    assert "access-a" not in repr(loaded) and "refresh-a" not in repr(loaded)
    assert not loaded.needs_refresh(loaded.logged_in_at, ACCESS_TOKEN_REFRESH_MARGIN)
    assert loaded.needs_refresh(loaded.access_expires_at - timedelta(minutes=4), ACCESS_TOKEN_REFRESH_MARGIN)


def test_refresh_does_not_overwrite_a_newer_login_by_another_process(mongo):
    store = _store(mongo)
    now = datetime.now(UTC)
    old = _login(store, "old", now - timedelta(minutes=28))
    _login(_store(mongo), "new", now)  # another process logs in meanwhile

    ours = store.save_refresh(old, access_token="access-refreshed", issued_at=now)

    assert ours.access_token == "access-refreshed" and ours.refresh_token == "refresh-old"
    stored = store.load()
    assert (stored.access_token, stored.refresh_token) == ("access-new", "refresh-new")


def test_refresh_updates_the_session_it_came_from(mongo):
    store = _store(mongo)
    now = datetime.now(UTC)
    old = _login(store, "a", now - timedelta(minutes=28))

    store.save_refresh(old, access_token="access-b", issued_at=now)

    stored = store.load()
    assert (stored.access_token, stored.refresh_token) == ("access-b", "refresh-a")
    assert stored.logged_in_at == old.logged_in_at
    assert stored.refreshed_at > stored.logged_in_at


def test_refresh_of_a_deleted_document_stores_it_again(mongo):
    store = _store(mongo)
    old = _login(store, "a", datetime.now(UTC))
    mongo.get_database()[CONTROL_COLLECTION].delete_many({})

    store.save_refresh(old, access_token="access-b", issued_at=datetime.now(UTC))

    assert store.load().access_token == "access-b"


def test_a_session_of_other_keys_or_without_tokens_is_not_loaded(mongo):
    _login(_store(mongo), "a", datetime.now(UTC))
    assert _store(mongo, key_fingerprint("public", "other-private")).load() is None
    mongo.get_database()[CONTROL_COLLECTION].update_one({}, {"$unset": {"refresh_token": ""}})
    assert _store(mongo).load() is None
    assert _store(mongo).info().user_id == "u1"


def test_a_document_without_expiry_counts_as_expired(mongo):
    _login(_store(mongo), "a", datetime.now(UTC))
    mongo.get_database()[CONTROL_COLLECTION].update_one({}, {"$unset": {"access_expires_at": ""}})

    loaded = _store(mongo).load()

    assert loaded.needs_refresh(datetime.now(UTC), ACCESS_TOKEN_REFRESH_MARGIN)


def test_key_fingerprint_depends_on_both_keys_and_reveals_neither():
    fingerprint = key_fingerprint("abcdefgh", "0f1e2d3c-private")
    assert len(fingerprint) == 32
    assert fingerprint != key_fingerprint("abcdefgh", "0f1e2d3c-other")
    assert fingerprint != key_fingerprint("abcdefgi", "0f1e2d3c-private")
    assert "abcdefgh" not in fingerprint and "private" not in fingerprint


def test_pymongo_command_log_does_not_show_tokens(mongo, caplog):
    caplog.set_level(logging.DEBUG)
    store = _store(mongo)
    old = _login(store, "SECRET-LOGIN-TOKEN", datetime.now(UTC))
    store.save_refresh(old, access_token="SECRET-REFRESHED-TOKEN", issued_at=datetime.now(UTC))
    store.load()

    command_log = "\n".join(r.getMessage() for r in caplog.records if r.name == "pymongo.command")
    assert "Control" in command_log and "access_expires_at" in command_log  # the commands were logged...
    assert "[redacted]" in command_log
    assert "SECRET-" not in caplog.text  # ...without their tokens
