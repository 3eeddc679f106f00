"""Knobs of the dispatch sensor and job: production defaults, small values in tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from realm_alert_pipeline import constants as c


@dataclass(frozen=True)
class DispatchTuning:
    """Retry, backoff and per-tick bounds of the dispatch side (no secrets, nothing per deployment)."""

    # Per recipient, within one op attempt: how often to call create() on 429 / connect errors /
    # unknown outcomes, and the exponential backoff between those calls.
    send_attempts: int = c.DISPATCH_SEND_ATTEMPTS
    send_backoff_s: float = c.DISPATCH_SEND_BACKOFF_SECONDS
    send_backoff_cap_s: float = c.DISPATCH_SEND_BACKOFF_CAP_SECONDS
    # After an ambiguous create(), look in the Messages list again after this long before re-sending.
    reconcile_recheck_s: float = c.DISPATCH_RECONCILE_RECHECK_SECONDS
    # Dagster RetryPolicy on each op (Backoff.EXPONENTIAL from this delay).
    op_max_retries: int = c.DISPATCH_OP_MAX_RETRIES
    op_retry_delay_s: float = c.DISPATCH_OP_RETRY_DELAY_SECONDS
    # Sensor: how often an alert with a run requested is looked at again; after an attempt's runs all
    # failed, the wait before the next attempt (the last entry repeats), and the attempts before the
    # alert is settled "failed".
    rerequest_after: timedelta = c.DISPATCH_REREQUEST_AFTER
    retry_backoff: tuple[timedelta, ...] = c.DISPATCH_RETRY_BACKOFF
    max_attempts: int = c.DISPATCH_MAX_ATTEMPTS
    tick_budget_s: float = c.SENSOR_TICK_BUDGET_SECONDS
    max_alerts_per_tick: int = c.SENSOR_MAX_ALERTS_PER_TICK
    # Job: how long a run holds an alert against a concurrent run of the same alert.
    lease: timedelta = c.DISPATCH_LEASE

    def __post_init__(self) -> None:
        problems = []
        if self.send_attempts < 1:
            problems.append(f"send_attempts={self.send_attempts} must be 1 or more")
        if self.op_max_retries < 0:
            problems.append(f"op_max_retries={self.op_max_retries} must be 0 or more")
        if not 0 < self.tick_budget_s < 60:
            problems.append(f"tick_budget_s={self.tick_budget_s} must be inside Dagster's 60 s sensor limit")
        if self.max_attempts < 1:
            problems.append(f"max_attempts={self.max_attempts} must be 1 or more")
        if any(wait < timedelta(0) for wait in self.retry_backoff):
            problems.append("retry_backoff must not hold a negative wait")
        if self.max_alerts_per_tick < 1:
            problems.append(f"max_alerts_per_tick={self.max_alerts_per_tick} must be 1 or more")
        for name in ("send_backoff_s", "send_backoff_cap_s", "reconcile_recheck_s", "op_retry_delay_s"):
            if getattr(self, name) < 0:
                problems.append(f"{name}={getattr(self, name)} must not be negative")
        if problems:
            raise ValueError("invalid DispatchTuning: " + "; ".join(problems))
