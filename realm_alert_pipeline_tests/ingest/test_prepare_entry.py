"""A log entry the API returns broken (not an object, no `_id`, no usable `started`, another app's, not
an error, outside the asked bounds) is named precisely and skipped; a good one is stored as returned plus
the pipeline's fields."""

from datetime import UTC, datetime, timedelta

import pytest

from realm_alert_pipeline.core.windows import QueryBounds
from realm_alert_pipeline.ingest.extract import MalformedEntry, prepare_entry
from realm_alert_pipeline.local.admin_api_emulator import DEMO_APP_ID, DEMO_GROUP_ID
from realm_alert_pipeline_tests.ingest.helpers import log_entry

START = datetime(2026, 12, 9, 6, 0, tzinfo=UTC)
BOUNDS = QueryBounds(START, START + timedelta(minutes=20))
NOW = START + timedelta(minutes=21)


def prepare(entry):
    return prepare_entry(
        entry,
        group_id=DEMO_GROUP_ID,
        app_id=DEMO_APP_ID,
        bounds=BOUNDS,
        partition_key="2026-12-09-06:10",
        ingested_at=NOW,
    )


def test_a_good_entry_keeps_its_fields_and_gains_the_pipeline_fields():
    entry = log_entry(START + timedelta(minutes=12, milliseconds=500), kind="SCHEDULED_TRIGGER")
    doc = prepare(entry)
    assert {k: doc[k] for k in entry} == entry
    assert doc["started_at"] == START + timedelta(minutes=12, milliseconds=500)
    assert doc["window"] == "2026-12-09-06:10"
    assert doc["ingested_at"] == NOW
    assert doc["detected"] is False
    assert len(doc["fingerprint"]) == 32
    assert (doc["app_id"], doc["group_id"]) == (DEMO_APP_ID, DEMO_GROUP_ID)


def test_missing_app_and_group_ids_are_filled_in():
    entry = log_entry(START + timedelta(minutes=5))
    del entry["app_id"], entry["group_id"]
    doc = prepare(entry)
    assert (doc["app_id"], doc["group_id"]) == (DEMO_APP_ID, DEMO_GROUP_ID)


def _without(field):
    entry = log_entry(START + timedelta(minutes=5))
    del entry[field]
    return entry


@pytest.mark.parametrize(
    ("entry", "reason", "entry_id"),
    [
        (["not", "an", "object"], "not a JSON object but a list", None),
        ("6b18f1e4a3c91f0e7b37ae8b", "not a JSON object but a str", None),
        (_without("_id"), "`_id` is missing or empty", None),
        (log_entry(START + timedelta(minutes=5), _id=""), "`_id` is missing or empty", None),
        (log_entry(START + timedelta(minutes=5), _id=12345), "`_id` is missing or empty", None),
        (
            log_entry(START + timedelta(minutes=5), _id="6b18f1e4a3c91f0e7b37ae8b") | {"started": None},
            "`started` is missing",
            "6b18f1e4a3c91f0e7b37ae8b",
        ),
        (
            log_entry(START + timedelta(minutes=5), _id="6b18f1e4a3c91f0e7b37ae8c")
            | {"started": "yesterday"},
            "`started` is not a timestamp: 'yesterday'",
            "6b18f1e4a3c91f0e7b37ae8c",
        ),
        (
            log_entry(START + timedelta(minutes=5), _id="6b18f1e4a3c91f0e7b37ae8d") | {"started": 1733700000},
            "`started` is not a timestamp",
            "6b18f1e4a3c91f0e7b37ae8d",
        ),
        (
            log_entry(
                START + timedelta(minutes=5),
                _id="6b18f1e4a3c91f0e7b37ae8e",
                app_id="6512a41bd3c5e8f01b7a2e99",
            ),
            "`app_id` is '6512a41bd3c5e8f01b7a2e99', not the monitored",
            "6b18f1e4a3c91f0e7b37ae8e",
        ),
        (
            log_entry(
                START + timedelta(minutes=5),
                _id="6b18f1e4a3c91f0e7b37ae8f",
                group_id="000000000000000000000000",
            ),
            "`group_id` is '000000000000000000000000'",
            "6b18f1e4a3c91f0e7b37ae8f",
        ),
        (
            log_entry(START + timedelta(minutes=5), _id="6b18f1e4a3c91f0e7b37ae90", ok=True),
            "not an error entry",
            "6b18f1e4a3c91f0e7b37ae90",
        ),
        (
            log_entry(START, _id="6b18f1e4a3c91f0e7b37ae91"),
            "outside the query bounds",
            "6b18f1e4a3c91f0e7b37ae91",
        ),
        (
            log_entry(START + timedelta(minutes=20, milliseconds=1), _id="6b18f1e4a3c91f0e7b37ae92"),
            "outside the query bounds",
            "6b18f1e4a3c91f0e7b37ae92",
        ),
        (
            # A valid timestamp whose UTC instant is past year 9999 (datetime raises OverflowError).
            log_entry(START, _id="6b18f1e4a3c91f0e7b37ae93") | {"started": "9999-12-31T23:30:00-01:00"},
            "`started` is out of range in UTC",
            "6b18f1e4a3c91f0e7b37ae93",
        ),
        (
            log_entry(START, _id="6b18f1e4a3c91f0e7b37ae94") | {"started": "0001-01-01T00:30:00+01:00"},
            "`started` is out of range in UTC",
            "6b18f1e4a3c91f0e7b37ae94",
        ),
        (
            # A lone surrogate (JSON "\udc80") is escaped, so the problem can be logged and stored.
            log_entry(START, _id="6b18f1e4a3c91f0e7b37ae9\udc80"),
            "outside the query bounds",
            "6b18f1e4a3c91f0e7b37ae9\\udc80",
        ),
    ],
)
def test_malformed_entries_are_named(entry, reason, entry_id):
    with pytest.raises(MalformedEntry) as caught:
        prepare(entry)
    assert reason in caught.value.reason
    assert caught.value.entry_id == entry_id
    assert (entry_id or "without an _id") in str(caught.value)


def test_bounds_are_start_exclusive_end_inclusive():
    assert prepare(log_entry(BOUNDS.end))["started_at"] == BOUNDS.end
    with pytest.raises(MalformedEntry):
        prepare(log_entry(BOUNDS.start))


def test_the_problem_never_quotes_the_whole_entry():
    entry = log_entry(START + timedelta(minutes=5), error="secret-looking payload " * 50)
    entry["started"] = "x" * 500
    with pytest.raises(MalformedEntry) as caught:
        prepare(entry)
    assert len(str(caught.value)) < 200
    assert "payload" not in str(caught.value)


def test_a_lone_surrogate_in_the_message_still_gets_a_fingerprint():
    # BSON cannot hold it (the insert reports it as malformed), but preparing must not raise.
    doc = prepare(log_entry(START + timedelta(minutes=5), error="FunctionError: bad \ud83d char"))
    assert len(doc["fingerprint"]) == 32
