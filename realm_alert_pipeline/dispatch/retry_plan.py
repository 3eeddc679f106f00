"""What the dispatch sensor does next for one pending alert, from what it knows of the alert's runs.

Plain functions, no Dagster: the sensor summarises the alert's runs into `RunsSeen` and acts on the
`Plan`. The rules:
- never requested: request attempt 1 with run_key = the alert's id;
- a run is open (queued, running, or failed with a Dagster run retry on its way): wait, one open run
  per alert;
- no run carries the current attempt's run_key: the request was lost between the tick and the launch,
  request the same run_key again (the daemon launches a run_key once, so this cannot double a run);
- every run finished and none succeeded: after a backoff, request the next attempt with a new run_key
  (`"<id>:<n>"`, as Dagster refuses a run_key it has launched before), up to `max_attempts`, then
  give up (the sensor settles the alert as "failed" and records an Error);
- a run succeeded but the alert is still pending (someone reset it by hand): wait, and say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

REQUEST = "request"
WAIT = "wait"
GIVE_UP = "give up"

# Why an alert waits, for the sensor's skip message.
IN_FLIGHT = "in flight"
BACKING_OFF = "waiting to retry a failed run"
SUCCEEDED_UNSETTLED = "a run succeeded without settling it"


@dataclass(frozen=True)
class RunsSeen:
    """The Dagster runs of one alert, as the sensor found them in the instance."""

    open: int = 0  # not finished, or failed with a run retry coming
    succeeded: int = 0
    failed: int = 0  # FAILURE or CANCELED, no run retry coming
    with_current_key: int = 0  # runs of any status carrying the current attempt's run_key
    last_failed_run_id: str | None = None
    last_failed_status: str | None = None


@dataclass(frozen=True)
class Plan:
    action: str  # REQUEST | WAIT | GIVE_UP
    run_key: str | None = None
    attempt: int = 0  # the attempt the request is for (1-based)
    new_attempt: bool = False  # False: re-issuing a lost request of the current attempt
    check_at: datetime | None = None  # dispatch.next_check_at
    retry_at: datetime | None = None  # dispatch.retry_at to store (the backoff's end)
    reason: str = ""


def run_key_for(alert_id: str, attempt: int) -> str:
    """The first attempt's run_key is the alert's id (the design's contract); later ones `"<id>:<n>"`."""
    return alert_id if attempt <= 1 else f"{alert_id}:{attempt - 1}"


def alert_id_of_run_key(run_key: str) -> str:
    return run_key.split(":", 1)[0]


def attempts_made(dispatch: Mapping | None) -> int:
    """Dispatch attempts requested so far (an alert requested before attempts were counted: 1)."""
    if not isinstance(dispatch, Mapping):
        return 0
    attempts = dispatch.get("attempts")
    if isinstance(attempts, int) and not isinstance(attempts, bool) and attempts > 0:
        return attempts
    return 1 if dispatch.get("requested_at") else 0


def current_run_key(alert_id: str, dispatch: Mapping | None) -> str | None:
    attempts = attempts_made(dispatch)
    if attempts == 0:
        return None
    stored = dispatch.get("run_key") if isinstance(dispatch, Mapping) else None
    return stored if isinstance(stored, str) and stored else run_key_for(alert_id, attempts)


def run_keys_so_far(alert_id: str, dispatch: Mapping | None) -> list[str]:
    """Every run_key this alert's attempts have used."""
    keys = [run_key_for(alert_id, n) for n in range(1, attempts_made(dispatch) + 1)]
    current = current_run_key(alert_id, dispatch)
    if current and current not in keys:
        keys.append(current)
    return keys


def backoff_after(failed_attempts: int, backoff: Sequence[timedelta]) -> timedelta:
    """The wait after the `failed_attempts`-th failed attempt: the schedule's entry, its last one beyond."""
    if not backoff:
        return timedelta(0)
    return backoff[min(max(failed_attempts, 1), len(backoff)) - 1]


def plan_dispatch(
    alert_id: str,
    dispatch: Mapping | None,
    runs: RunsSeen,
    now: datetime,
    *,
    check_after: timedelta,
    backoff: Sequence[timedelta],
    max_attempts: int,
) -> Plan:
    """The next step for a pending alert that is due for a look at `now`."""
    attempts = attempts_made(dispatch)
    check_at = now + check_after
    if attempts == 0:
        return Plan(REQUEST, run_key_for(alert_id, 1), attempt=1, new_attempt=True, check_at=check_at)
    if runs.open:
        return Plan(WAIT, check_at=check_at, reason=IN_FLIGHT)
    if runs.succeeded:
        return Plan(WAIT, check_at=check_at, reason=SUCCEEDED_UNSETTLED)
    if runs.with_current_key == 0:
        key = current_run_key(alert_id, dispatch)
        return Plan(REQUEST, key, attempt=attempts, new_attempt=False, check_at=check_at)
    if attempts >= max_attempts:
        return Plan(GIVE_UP, attempt=attempts, reason=f"{attempts} dispatch attempt(s) failed")
    stored = dispatch.get("retry_at") if isinstance(dispatch, Mapping) else None
    retry_at = stored if isinstance(stored, datetime) else now + backoff_after(attempts, backoff)
    if now < retry_at:
        return Plan(WAIT, check_at=retry_at, retry_at=retry_at, reason=BACKING_OFF)
    next_attempt = attempts + 1
    return Plan(
        REQUEST,
        run_key_for(alert_id, next_attempt),
        attempt=next_attempt,
        new_attempt=True,
        check_at=check_at,
    )
