"""A dispatch that failed is tried again later, with a new run_key, a growing backoff and a cap.

Dagster launches a run_key once, so a later attempt needs a new one; an alert never has two open
runs; a request lost between the tick and the launch is made again with the same run_key; after the
last allowed attempt fails the sensor gives up (and settles the alert "failed"). Pure rules, no
Dagster or MongoDB.
"""

from datetime import UTC, datetime, timedelta

import pytest

from realm_alert_pipeline.dispatch.retry_plan import (
    BACKING_OFF,
    GIVE_UP,
    IN_FLIGHT,
    REQUEST,
    SUCCEEDED_UNSETTLED,
    WAIT,
    RunsSeen,
    attempts_made,
    backoff_after,
    current_run_key,
    plan_dispatch,
    run_key_for,
    run_keys_so_far,
)

ID = "6750f1a2b3c4d5e6f7a8b9c0"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
CHECK = timedelta(minutes=1)
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15))
MINUTE = timedelta(minutes=1)


NO_RUNS = RunsSeen()


def plan(dispatch, runs=NO_RUNS, now=NOW, max_attempts=4):
    return plan_dispatch(
        ID, dispatch, runs, now, check_after=CHECK, backoff=BACKOFF, max_attempts=max_attempts
    )


def requested(attempts, **extra):
    return {
        "requested_at": NOW - 2 * MINUTE,
        "attempts": attempts,
        "run_key": run_key_for(ID, attempts),
        **extra,
    }


FAILED_CURRENT = RunsSeen(failed=1, with_current_key=1, last_failed_run_id="r1", last_failed_status="FAILURE")


@pytest.mark.parametrize(
    ("attempt", "key"),
    [(1, ID), (2, f"{ID}:1"), (3, f"{ID}:2"), (7, f"{ID}:6")],
    ids=["first", "2", "3", "7"],
)
def test_the_first_run_key_is_the_alert_id_and_later_ones_are_numbered(attempt, key):
    assert run_key_for(ID, attempt) == key


@pytest.mark.parametrize(
    ("dispatch", "attempts", "current"),
    [
        (None, 0, None),
        ({}, 0, None),
        ({"requested_at": NOW}, 1, ID),  # requested before attempts were counted
        ({"requested_at": NOW, "attempts": 3}, 3, f"{ID}:2"),
        ({"requested_at": NOW, "attempts": 2, "run_key": "custom"}, 2, "custom"),
    ],
)
def test_attempts_and_current_run_key_from_the_alert(dispatch, attempts, current):
    assert attempts_made(dispatch) == attempts
    assert current_run_key(ID, dispatch) == current


def test_every_run_key_used_so_far():
    assert run_keys_so_far(ID, requested(3)) == [ID, f"{ID}:1", f"{ID}:2"]
    assert run_keys_so_far(ID, None) == []


@pytest.mark.parametrize(
    ("failed_attempts", "wait"), [(0, 1), (1, 1), (2, 5), (3, 15), (4, 15), (9, 15)], ids=lambda v: str(v)
)
def test_the_backoff_grows_then_repeats_its_last_step(failed_attempts, wait):
    assert backoff_after(failed_attempts, BACKOFF) == timedelta(minutes=wait)


@pytest.mark.parametrize(
    ("dispatch", "runs", "now", "expected"),
    [
        # never requested -> attempt 1 with the alert's id
        (None, RunsSeen(), NOW, (REQUEST, ID, 1, True, NOW + CHECK, None, "")),
        # a run is open (queued, running, or failed with a run retry coming) -> wait, one open run only
        (requested(1), RunsSeen(open=1, with_current_key=1), NOW, (WAIT, None, 0, False, NOW + CHECK, None, IN_FLIGHT)),
        (requested(2), RunsSeen(open=1, failed=1), NOW, (WAIT, None, 0, False, NOW + CHECK, None, IN_FLIGHT)),
        # the request was lost before launch -> the same run_key again (the daemon launches it once)
        (requested(1), RunsSeen(), NOW, (REQUEST, ID, 1, False, NOW + CHECK, None, "")),
        (requested(2), RunsSeen(failed=1), NOW, (REQUEST, f"{ID}:1", 2, False, NOW + CHECK, None, "")),
        # a run succeeded but the alert is still pending (reset by hand) -> wait and say so
        (requested(1), RunsSeen(succeeded=1, with_current_key=1), NOW,
         (WAIT, None, 0, False, NOW + CHECK, None, SUCCEEDED_UNSETTLED)),
        # every run failed: first the backoff starts ...
        (requested(1), FAILED_CURRENT, NOW, (WAIT, None, 0, False, NOW + MINUTE, NOW + MINUTE, BACKING_OFF)),
        (requested(2), FAILED_CURRENT, NOW,
         (WAIT, None, 0, False, NOW + 5 * MINUTE, NOW + 5 * MINUTE, BACKING_OFF)),
        # ... and runs its course, then the next attempt gets a new run_key
        (requested(1, retry_at=NOW + MINUTE), FAILED_CURRENT, NOW + 30 * timedelta(seconds=1),
         (WAIT, None, 0, False, NOW + MINUTE, NOW + MINUTE, BACKING_OFF)),
        (requested(1, retry_at=NOW), FAILED_CURRENT, NOW, (REQUEST, f"{ID}:1", 2, True, NOW + CHECK, None, "")),
        (requested(3, retry_at=NOW - MINUTE), FAILED_CURRENT, NOW,
         (REQUEST, f"{ID}:3", 4, True, NOW + CHECK, None, "")),
        # the last allowed attempt failed -> give up at once
        (requested(4), FAILED_CURRENT, NOW, (GIVE_UP, None, 4, False, None, None, "4 dispatch attempt(s) failed")),
    ],
    ids=[
        "new",
        "open",
        "open-after-failures",
        "lost",
        "lost-retry",
        "succeeded-unsettled",
        "backoff-starts",
        "backoff-grows",
        "backoff-running",
        "backoff-over",
        "fourth-attempt",
        "cap",
    ],
)  # fmt: skip
def test_next_step_for_a_due_alert(dispatch, runs, now, expected):
    result = plan(dispatch, runs, now)
    got = (
        result.action,
        result.run_key,
        result.attempt,
        result.new_attempt,
        result.check_at,
        result.retry_at,
        result.reason,
    )
    assert got == expected
