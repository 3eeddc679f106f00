"""Each stored error is counted in exactly one alert once, even when a run dies between writing the alert
and marking the logs, dies right after claiming them, or races another run over the same pending logs;
memory stays bounded because pending logs are read in batches."""

import threading
from datetime import UTC, datetime, timedelta

import pytest

from realm_alert_pipeline.constants import ALERT_COLLECTION, LOG_COLLECTION
from realm_alert_pipeline.core.windows import QueryBounds
from realm_alert_pipeline.ingest.detect import DetectStats, _Folder, detect_alerts
from realm_alert_pipeline.ingest.extract import prepare_entry
from realm_alert_pipeline.local.admin_api_emulator import DEMO_APP_ID, DEMO_GROUP_ID
from realm_alert_pipeline.resources.mongo import ensure_indexes
from realm_alert_pipeline_tests.ingest.helpers import log_entry, storm

NOW = datetime.now(UTC).replace(microsecond=0)
START = NOW - timedelta(minutes=20)
KEY = "2026-12-09-06:10"


def store(db, entries):
    bounds = QueryBounds(START - timedelta(days=1), NOW)
    docs = [
        prepare_entry(
            e, group_id=DEMO_GROUP_ID, app_id=DEMO_APP_ID, bounds=bounds, partition_key=KEY, ingested_at=NOW
        )
        for e in entries
    ]
    db[LOG_COLLECTION].insert_many(docs)
    return docs


def detect(db, **overrides):
    options = dict(
        app_id=DEMO_APP_ID,
        partition_key=KEY,
        now=NOW,
        realert=timedelta(minutes=60),
        max_age=timedelta(minutes=60),
    )
    options.update(overrides)
    return detect_alerts(db, **options)


def counts(db) -> dict[str, int]:
    return {a["fingerprint"]: a["count"] for a in db[ALERT_COLLECTION].find()}


@pytest.fixture
def entries():
    return (
        storm(START, 30)
        + [log_entry(START + timedelta(seconds=i), kind="TRIGGER_FAILURE") for i in range(4)]
        + [log_entry(START - timedelta(hours=3), kind="AUTH")]  # too old: a suppressed alert
    )


def test_a_crash_between_the_alert_write_and_the_marking_does_not_double_count(db, entries):
    store(db, entries)
    detect(db)
    expected = counts(db)
    # As if the run died before `detected: True` reached the logs.
    db[LOG_COLLECTION].update_many({}, {"$set": {"detected": False}})

    stats = detect(db)

    assert counts(db) == expected
    assert (stats.alerts_created, stats.alerts_updated, stats.batches_already_applied) == (0, 0, 3)
    assert db[LOG_COLLECTION].count_documents({"detected": False}) == 0


def test_a_crash_between_the_alert_write_and_the_marking_is_safe_even_after_realert(db, entries):
    store(db, entries)
    detect(db)
    expected = counts(db)
    db[LOG_COLLECTION].update_many({}, {"$set": {"detected": False}})

    detect(db, now=NOW + timedelta(hours=3))  # the open alerts have expired meanwhile

    assert counts(db) == expected
    assert db[ALERT_COLLECTION].count_documents({}) == 3


def test_logs_claimed_by_a_run_that_died_are_alerted_once_by_the_next(db, entries):
    store(db, entries)
    # A run claimed the first ten storm logs and died before touching any alert.
    claimed = [e["_id"] for e in entries[:10]]
    db[LOG_COLLECTION].update_many(
        {"_id": {"$in": claimed}}, {"$set": {"detect_batch": "dead-run-batch", "detect_suppressed": False}}
    )

    stats = detect(db)

    assert sorted(counts(db).values()) == [1, 4, 30]
    assert stats.logs_detected == len(entries)
    storm_alert = db[ALERT_COLLECTION].find_one({"count": 30})
    assert "dead-run-batch" in storm_alert["applied_batches"]


def test_two_runs_racing_over_the_same_pending_logs_count_each_once(db, entries):
    store(db, entries)
    barrier = threading.Barrier(2)
    failures = []

    def race():
        try:
            barrier.wait(timeout=10)
            detect(db)
        except Exception as exc:  # surfaced below
            failures.append(exc)

    threads = [threading.Thread(target=race) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not failures
    assert sorted(counts(db).values()) == [1, 4, 30]
    assert db[ALERT_COLLECTION].count_documents({"state": "pending"}) == 2
    assert db[LOG_COLLECTION].count_documents({"detected": False}) == 0


def test_pending_logs_are_processed_in_bounded_batches(db):
    entries = storm(START, 250)
    store(db, entries)

    stats = detect(db, batch_size=100)

    assert stats.batches == 3
    assert (stats.alerts_created, stats.alerts_updated) == (1, 2)
    assert counts(db) == {entries and db[ALERT_COLLECTION].find_one()["fingerprint"]: 250}


def test_a_late_occurrence_does_not_replace_the_newest_fields(db):
    newest = store(db, storm(START + timedelta(minutes=5), 1))[0]
    detect(db)
    store(db, storm(START, 1))  # started earlier, read later

    detect(db)

    alert = db[ALERT_COLLECTION].find_one()
    assert (alert["count"], alert["refId"], alert["last_seen"]) == (2, newest["_id"], newest["started_at"])
    assert alert["first_seen"] == START


@pytest.mark.parametrize("first", ["open_alert_run", "expired_alert_run"])
def test_runs_whose_clocks_straddle_the_realert_boundary_count_a_batch_once(db, first):
    # Run A folds batch X into the open alert P while run B, which found X unfinished (A has not marked
    # it yet) and not in any alert, sees P expired by its own clock and would open a new alert with X.
    store(db, storm(START, 3))
    detect(db)  # alert P, created at NOW
    later = store(db, storm(START + timedelta(minutes=1), 2))
    db[LOG_COLLECTION].update_many(
        {"_id": {"$in": [d["_id"] for d in later]}},
        {"$set": {"detect_batch": "X", "detect_suppressed": False}},
    )
    members = list(db[LOG_COLLECTION].find({"detect_batch": "X"}))
    realert = timedelta(minutes=60)
    runs = {
        "open_alert_run": _Folder(
            db,
            app_id=DEMO_APP_ID,
            partition_key=KEY,
            now=NOW + realert - timedelta(seconds=1),
            realert=realert,
            stats=DetectStats(),
        ),
        "expired_alert_run": _Folder(
            db,
            app_id=DEMO_APP_ID,
            partition_key=KEY,
            now=NOW + realert + timedelta(seconds=1),
            realert=realert,
            stats=DetectStats(),
        ),
    }
    second = next(name for name in runs if name != first)

    folded_by_first = runs[first]._fold("X", [dict(m) for m in members])
    folded_by_second = runs[second]._fold("X", [dict(m) for m in members])

    assert folded_by_second == folded_by_first
    assert db[ALERT_COLLECTION].count_documents({"applied_batches": "X"}) == 1
    assert sum(a["count"] for a in db[ALERT_COLLECTION].find()) == 5


def test_an_older_plain_applied_batches_index_is_replaced_by_the_unique_guard(mongo):
    db = mongo.get_database()
    db[ALERT_COLLECTION].create_index("applied_batches")  # what earlier versions created
    db[ALERT_COLLECTION].insert_many([{"applied_batches": ["a"]}, {"applied_batches": ["b"]}, {"other": 1}])

    ensure_indexes(db)
    ensure_indexes(db)  # idempotent

    index = db[ALERT_COLLECTION].index_information()["applied_batches_1"]
    assert (index.get("unique"), index.get("sparse")) == (True, True)


def test_alerts_already_sharing_a_batch_keep_a_plain_index_and_a_warning(mongo, caplog):
    db = mongo.get_database()
    db[ALERT_COLLECTION].create_index("applied_batches")
    db[ALERT_COLLECTION].insert_many([{"applied_batches": ["a"]}, {"applied_batches": ["a", "b"]}])

    ensure_indexes(db)  # does not stop the pipeline over an old double count

    assert db[ALERT_COLLECTION].index_information()["applied_batches_1"].get("unique") is not True
    assert "share a detect batch" in caplog.text
