"""Time-window arithmetic of the ingest partitions (pure, no Dagster).

A partition is a UTC window [start, end) of `window_minutes`, keyed by its start in
constants.PARTITION_KEY_FORMAT. The Admin API filters on `started` with `start_date` EXCLUSIVE and
`end_date` INCLUSIVE (specs/admin-api.md 5.1), and entries are written when their operation
finishes, so a window reads (start - overlap, end]: the overlap catches late writes and the
`_id`-keyed store makes the re-read entries free of duplicates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from realm_alert_pipeline.constants import PARTITION_KEY_FORMAT


@dataclass(frozen=True)
class Window:
    """One partition: [start, end) in UTC."""

    start: datetime
    end: datetime

    @property
    def partition_key(self) -> str:
        return self.start.strftime(PARTITION_KEY_FORMAT)

    def shifted(self, windows: int) -> Window:
        """The window `windows` steps later (negative: earlier)."""
        step = (self.end - self.start) * windows
        return Window(self.start + step, self.end + step)


@dataclass(frozen=True)
class QueryBounds:
    """What to ask the Admin API for one window: `start` exclusive, `end` inclusive."""

    start: datetime
    end: datetime


def check_window_minutes(window_minutes: int) -> None:
    """Windows must tile an hour, so every window starts on a cron-expressible minute."""
    if not isinstance(window_minutes, int) or window_minutes < 1 or 60 % window_minutes:
        raise ValueError(f"window_minutes={window_minutes!r} must divide 60 (1, 2, 5, 10, 15, 20, 30 or 60)")


def floor_to_window(moment: datetime, window_minutes: int) -> datetime:
    """The start of the window holding `moment` (aware; converted to UTC)."""
    check_window_minutes(window_minutes)
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: give a timezone")
    utc = moment.astimezone(UTC)
    return utc.replace(minute=utc.minute - utc.minute % window_minutes, second=0, microsecond=0)


def window_starting_at(start: datetime, window_minutes: int) -> Window:
    """The window that starts at `start`, which must lie on a window boundary."""
    if floor_to_window(start, window_minutes) != start.astimezone(UTC):
        raise ValueError(f"{start.isoformat()} is not on a {window_minutes}-minute window boundary")
    start = start.astimezone(UTC)
    return Window(start, start + timedelta(minutes=window_minutes))


def window_for_partition_key(partition_key: str, window_minutes: int) -> Window:
    """Parse a partition key ("2026-12-09-06:10") into its window; reject keys off the window grid."""
    try:
        start = datetime.strptime(partition_key, PARTITION_KEY_FORMAT).replace(tzinfo=UTC)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"partition key {partition_key!r} is not of the form YYYY-MM-DD-HH:MM") from exc
    return window_starting_at(start, window_minutes)


def window_containing(moment: datetime, window_minutes: int) -> Window:
    """The window that holds `moment`."""
    return window_starting_at(floor_to_window(moment, window_minutes), window_minutes)


def query_bounds(window: Window, overlap: timedelta) -> QueryBounds:
    """Admin API bounds for a window: (start - overlap, end]."""
    if overlap < timedelta(0):
        raise ValueError(f"overlap {overlap} is negative")
    return QueryBounds(start=window.start - overlap, end=window.end)


def latest_closed_window(now: datetime, window_minutes: int, lag: timedelta) -> Window:
    """The newest window whose end + lag is at or before `now`: what a schedule tick should ingest."""
    return window_containing(now - lag, window_minutes).shifted(-1)


def is_beyond_retention(window: Window, now: datetime, retention: timedelta) -> bool:
    """True when the whole window is older than the API keeps logs, so nothing in it can be read."""
    return window.end <= now - retention


def catch_up_candidates(
    newest: Window, *, first: Window, now: datetime, lookback: timedelta, retention: timedelta
) -> list[Window]:
    """The closed windows before `newest` that a catch-up may still ask for, oldest first.

    A window qualifies when it starts within `lookback` of `now`, is not before the `first`
    partition, and is not beyond the API's `retention` (asking for it would read nothing).
    """
    if lookback < timedelta(0):
        raise ValueError(f"lookback {lookback} is negative")
    earliest = max(first.start, now - lookback)
    windows: list[Window] = []
    window = newest.shifted(-1)
    while window.start >= earliest and not is_beyond_retention(window, now, retention):
        windows.append(window)
        window = window.shifted(-1)
    return windows[::-1]


def schedule_cron(window_minutes: int, lag_seconds: int) -> str:
    """A UTC cron that ticks once per window, `lag_seconds` (rounded up to a minute) after each boundary.

    The tick's evaluation still picks the window with latest_closed_window(), so any lag works.
    """
    check_window_minutes(window_minutes)
    if lag_seconds < 0:
        raise ValueError(f"lag_seconds={lag_seconds} is negative")
    offset = math.ceil(lag_seconds / 60) % window_minutes
    if window_minutes == 60:
        return f"{offset} * * * *"
    if offset == 0:
        return f"*/{window_minutes} * * * *"
    return f"{offset}-59/{window_minutes} * * * *"


def partitions_cron(window_minutes: int) -> str:
    """The cron of the window boundaries, as Dagster's time-window partitions want it."""
    check_window_minutes(window_minutes)
    return "0 * * * *" if window_minutes == 60 else f"*/{window_minutes} * * * *"
