"""One scheduled window, end to end (emulator over HTTP, SecantusDB over TCP, real Dagster runs): exactly
the window's error entries are stored once, each fingerprint becomes one alert with the contract's fields,
re-runs and overlapping windows add nothing, a late entry is caught by the next window's overlap, a broken
entry is recorded and skipped, and the asset checks tell when the data does not add up."""

from datetime import timedelta

from realm_alert_pipeline.constants import ALERT_LOG_IDS_LIMIT
from realm_alert_pipeline.core.fingerprint import entry_fingerprint
from realm_alert_pipeline.core.timeutil import parse_api_datetime
from realm_alert_pipeline.local.admin_api_emulator import DEMO_APP_ID, DEMO_GROUP_ID
from realm_alert_pipeline_tests.ingest.helpers import (
    TEMPLATES,
    check_results,
    log_entry,
    materialization_metadata,
    storm,
)


def snapshot(runner) -> tuple[list, list]:
    return (list(runner.logs.find({}, sort=[("_id", 1)])), list(runner.alerts.find({}, sort=[("_id", 1)])))


def test_a_window_stores_exactly_its_error_entries_and_one_alert_per_fingerprint(
    runner, admin_api_emulator, window
):
    overlap_start = window.start - timedelta(minutes=10)
    one_per_type = [
        log_entry(window.start + timedelta(minutes=1, seconds=i), kind=kind)
        for i, kind in enumerate(TEMPLATES)
    ]
    repeated = storm(window.start + timedelta(minutes=4), 7)
    in_bounds = [
        *one_per_type,
        *repeated,
        log_entry(
            overlap_start + timedelta(milliseconds=1), kind="TRIGGER_FAILURE"
        ),  # just after the exclusive start
        log_entry(window.start - timedelta(minutes=5), kind="SCHEDULED_TRIGGER"),  # inside the overlap
        log_entry(window.end, kind="FUNCTION"),  # the inclusive end
    ]
    out_of_bounds = [
        log_entry(overlap_start, kind="TRIGGER_FAILURE"),  # the exclusive start itself
        log_entry(overlap_start - timedelta(minutes=3), kind="AUTH"),
        log_entry(window.end + timedelta(milliseconds=1), kind="AUTH"),
    ]
    not_errors = [log_entry(window.start + timedelta(minutes=2 + i), ok=True) for i in range(3)]
    admin_api_emulator.add_logs(in_bounds + out_of_bounds + not_errors)

    result = runner.run(window)

    assert result.success
    assert {doc["_id"] for doc in runner.logs.find()} == {e["_id"] for e in in_bounds}
    stored = runner.logs.find_one({"_id": one_per_type[0]["_id"]})
    assert {k: stored[k] for k in one_per_type[0]} == one_per_type[0]  # the entry as the API returned it
    assert stored["started_at"] == parse_api_datetime(one_per_type[0]["started"])
    assert (stored["window"], stored["app_id"], stored["group_id"]) == (
        window.partition_key,
        DEMO_APP_ID,
        DEMO_GROUP_ID,
    )
    assert stored["ingested_at"] == runner.clock.now
    assert stored["fingerprint"] == entry_fingerprint(one_per_type[0], DEMO_APP_ID)
    assert runner.logs.count_documents({"detected": True}) == len(in_bounds)

    expected_counts: dict[str, int] = {}
    for entry in in_bounds:
        fingerprint = entry_fingerprint(entry, DEMO_APP_ID)
        expected_counts[fingerprint] = expected_counts.get(fingerprint, 0) + 1
    alerts = {a["fingerprint"]: a for a in runner.alerts.find()}
    assert {fp: a["count"] for fp, a in alerts.items()} == expected_counts

    storm_alert = alerts[entry_fingerprint(repeated[0], DEMO_APP_ID)]
    newest = repeated[-1]
    assert {
        k: storm_alert[k] for k in ("refId", "co_id", "app_id", "group_id", "started", "completed", "error")
    } == {
        "refId": newest["_id"],
        "co_id": newest["co_id"],
        "app_id": DEMO_APP_ID,
        "group_id": DEMO_GROUP_ID,
        "started": newest["started"],
        "completed": newest["completed"],
        "error": newest["error"],
    }
    assert storm_alert["processed"] == {"date": None, "alerted": False}
    assert (storm_alert["type"], storm_alert["error_code"], storm_alert["source"]) == (
        "DB_TRIGGER",
        "FunctionExecutionError",
        "orderInsertedTrigger",
    )
    assert storm_alert["log_ids"] == [e["_id"] for e in repeated]
    assert storm_alert["first_seen"] == parse_api_datetime(repeated[0]["started"])
    assert storm_alert["last_seen"] == parse_api_datetime(newest["started"])
    assert storm_alert["state"] == "pending"
    assert storm_alert["window"] == window.partition_key
    assert storm_alert["created_at"] == storm_alert["updated_at"] == runner.clock.now
    assert (storm_alert["since_last_alert"], storm_alert["covers_since_last_alert"]) == (0, 0)
    assert (storm_alert["deliveries"], storm_alert["secondary"]) == ([], None)
    no_code = alerts[entry_fingerprint(one_per_type[list(TEMPLATES).index("SCHEDULED_TRIGGER")], DEMO_APP_ID)]
    assert no_code["error_code"] is None  # the sample's scheduled-trigger error has no error_code key

    extract = materialization_metadata(result, "app_services_error_logs")
    assert extract["window_start"] == window.start.isoformat().replace("+00:00", "Z")
    assert extract["query_start_exclusive"] == overlap_start.isoformat().replace("+00:00", "Z")
    assert (
        extract["pages"],
        extract["entries_read"],
        extract["new"],
        extract["already_seen"],
        extract["malformed"],
    ) == (
        1,
        len(in_bounds),
        len(in_bounds),
        0,
        0,
    )
    assert "| DB_TRIGGER | orderInsertedTrigger | 8 | 8 |" in extract["errors_by_type_and_source"]
    detect = materialization_metadata(result, "alerts")
    assert (detect["alerts_created"], detect["alerts_updated"], detect["alerts_suppressed"]) == (
        len(expected_counts),
        0,
        0,
    )
    session = materialization_metadata(result, "admin_api_session")
    assert set(session) == {"action", "access_expires_at"} and session["action"] == "logged_in"
    assert check_results(result) == {"stored_logs_match_read": True, "alert_log_ids_exist": True}


def test_running_the_same_partition_again_changes_nothing(runner, admin_api_emulator, window):
    admin_api_emulator.add_logs(
        storm(window.start + timedelta(minutes=1), 120) + [log_entry(window.start, kind="AUTH")]
    )
    runner.run(window)
    before = snapshot(runner)

    runner.clock.advance(timedelta(minutes=3))
    again = runner.run(window)

    assert snapshot(runner) == before
    extract = materialization_metadata(again, "app_services_error_logs")
    assert (extract["pages"], extract["new"], extract["already_seen"]) == (2, 0, 121)
    detect = materialization_metadata(again, "alerts")
    assert (detect["logs_detected"], detect["alerts_created"], detect["alerts_updated"]) == (0, 0, 0)
    assert check_results(again) == {"stored_logs_match_read": True, "alert_log_ids_exist": True}


def test_a_late_entry_is_stored_and_alerted_once_by_the_next_windows_overlap(
    runner, admin_api_emulator, window
):
    admin_api_emulator.add_logs([log_entry(window.start + timedelta(minutes=2), kind="TRIGGER_FAILURE")])
    runner.run(window)
    # Written after the window's run, though it started inside the window (a 5-minute function).
    late = log_entry(window.start + timedelta(minutes=8), kind="SCHEDULED_TRIGGER")
    admin_api_emulator.add_logs([late])

    following = window.shifted(1)
    runner.clock.advance(timedelta(minutes=10))
    result = runner.run(following)

    stored = runner.logs.find_one({"_id": late["_id"]})
    assert stored is not None and stored["window"] == following.partition_key
    assert (
        materialization_metadata(result, "app_services_error_logs")["already_seen"] == 1
    )  # the overlap re-read
    late_alerts = list(runner.alerts.find({"fingerprint": entry_fingerprint(late, DEMO_APP_ID)}))
    assert [(a["count"], a["log_ids"], a["window"]) for a in late_alerts] == [
        (1, [late["_id"]], following.partition_key)
    ]

    before = snapshot(runner)
    runner.run(following)
    runner.run(window)
    assert snapshot(runner) == before
    assert runner.logs.count_documents({}) == 2


def test_a_foreign_entry_is_recorded_in_error_and_skipped_while_the_rest_lands(
    runner, admin_api_emulator, window
):
    good = [log_entry(window.start + timedelta(minutes=1, seconds=i), kind="DB_TRIGGER") for i in range(5)]
    foreign = log_entry(
        window.start + timedelta(minutes=3), kind="FUNCTION", app_id="65aaaaaaaaaaaaaaaaaaaaaa"
    )
    admin_api_emulator.add_logs(good + [foreign])

    result = runner.run(window)

    assert result.success
    assert {d["_id"] for d in runner.logs.find()} == {e["_id"] for e in good}
    errors = list(runner.errors.find())
    assert len(errors) == 1
    error = errors[0]
    assert error["code"] == "malformed_log_entry"
    assert foreign["_id"] in error["message"] and "`app_id`" in error["message"]
    assert foreign["error"] not in error["message"]  # never the raw entry
    assert (error["partition"], error["run_id"], error["entry_id"]) == (
        window.partition_key,
        result.run_id,
        foreign["_id"],
    )
    assert materialization_metadata(result, "app_services_error_logs")["malformed"] == 1
    assert runner.alerts.find_one({"log_ids": foreign["_id"]}) is None


def test_a_storm_of_500_identical_errors_makes_one_alert_counting_500(runner, admin_api_emulator, window):
    errors = storm(window.start + timedelta(seconds=5), 500, spacing=timedelta(milliseconds=1100))
    admin_api_emulator.add_logs(errors)

    result = runner.run(window)

    alerts = list(runner.alerts.find())
    assert len(alerts) == 1
    assert alerts[0]["count"] == 500
    assert alerts[0]["log_ids"] == [e["_id"] for e in errors[-ALERT_LOG_IDS_LIMIT:]]
    assert alerts[0]["refId"] == errors[-1]["_id"]
    assert materialization_metadata(result, "app_services_error_logs")["pages"] == 5


def test_the_alert_check_fails_when_an_alert_names_a_log_that_is_gone(runner, admin_api_emulator, window):
    first = storm(window.start + timedelta(minutes=1), 3)
    admin_api_emulator.add_logs(first)
    assert check_results(runner.run(window))["alert_log_ids_exist"] is True
    runner.logs.delete_one({"_id": first[0]["_id"]})  # someone removed a log the open alert points to

    later = window.shifted(2)  # its overlap does not reach back to the deleted log
    admin_api_emulator.add_logs(storm(later.start + timedelta(minutes=1), 2))
    runner.clock.advance(timedelta(minutes=20))
    result = runner.run(later)

    assert result.success  # the check reports; it does not block the alert
    assert check_results(result) == {"stored_logs_match_read": True, "alert_log_ids_exist": False}
    evaluation = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "alert_log_ids_exist"
    )
    assert evaluation.metadata["missing_log_ids"].value == 1


def test_the_log_check_reports_stored_entries_the_api_no_longer_returns_without_silencing_alerts(
    runner, admin_api_emulator, window
):
    admin_api_emulator.add_logs(storm(window.start + timedelta(minutes=1), 2))
    stray = log_entry(window.start + timedelta(minutes=4), kind="AUTH")  # in Log, unknown to the API
    runner.logs.insert_one(
        dict(stray, started_at=parse_api_datetime(stray["started"]), app_id=DEMO_APP_ID, detected=True)
    )

    result = runner.run(window)

    evaluation = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "stored_logs_match_read"
    )
    assert evaluation.passed  # nothing read was lost
    assert (
        evaluation.metadata["entries_read"].value,
        evaluation.metadata["stored_in_query_bounds"].value,
        evaluation.metadata["stored_but_not_returned"].value,
    ) == (2, 3, 1)
    assert runner.alerts.count_documents({"state": "pending"}) == 1  # the storm still alerts


def test_a_mongodb_write_error_other_than_already_stored_fails_the_run_and_is_recorded(
    runner, admin_api_emulator, window
):
    runner.logs.create_index("co_id", unique=True)  # a clash that is not "this _id is stored already"
    first = log_entry(window.start + timedelta(minutes=1), kind="AUTH")
    clash = log_entry(window.start + timedelta(minutes=2), kind="AUTH", co_id=first["co_id"])
    admin_api_emulator.add_logs([first, clash])

    result = runner.run(window, raise_on_error=False)

    assert not result.success
    error = runner.errors.find_one()
    assert (error["code"], error["step"], error["partition"]) == (
        "mongodb_error",
        "extract",
        window.partition_key,
    )
    assert "11000" in error["message"] and clash["error"] not in error["message"]
    assert runner.alerts.count_documents({}) == 0
