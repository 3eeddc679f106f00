"""Window arithmetic: a partition [t0, t1) reads the Admin API from t0 - overlap (exclusive) to t1
(inclusive), so entries written late still land; the schedule ingests a window only once it has closed
plus a lag."""

from datetime import UTC, datetime, timedelta

import pytest

from realm_alert_pipeline.core.windows import (
    QueryBounds,
    Window,
    catch_up_candidates,
    floor_to_window,
    is_beyond_retention,
    latest_closed_window,
    partitions_cron,
    query_bounds,
    schedule_cron,
    window_containing,
    window_for_partition_key,
)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("key", "minutes", "start", "end"),
    [
        ("2026-12-09-06:10", 10, utc(2026, 12, 9, 6, 10), utc(2026, 12, 9, 6, 20)),
        ("2026-12-09-06:50", 10, utc(2026, 12, 9, 6, 50), utc(2026, 12, 9, 7, 0)),
        ("2026-12-31-23:50", 10, utc(2026, 12, 31, 23, 50), utc(2027, 1, 1, 0, 0)),
        ("2026-12-09-06:00", 60, utc(2026, 12, 9, 6, 0), utc(2026, 12, 9, 7, 0)),
        ("2026-12-09-06:07", 1, utc(2026, 12, 9, 6, 7), utc(2026, 12, 9, 6, 8)),
        ("2026-12-09-06:45", 15, utc(2026, 12, 9, 6, 45), utc(2026, 12, 9, 7, 0)),
    ],
)
def test_partition_key_maps_to_its_window(key, minutes, start, end):
    window = window_for_partition_key(key, minutes)
    assert window == Window(start, end)
    assert window.partition_key == key


@pytest.mark.parametrize(
    ("key", "minutes", "problem"),
    [
        ("2026-12-09-06:15", 10, "boundary"),
        ("2026-12-09-06:10", 60, "boundary"),
        ("2026-12-09T06:10", 10, "YYYY-MM-DD-HH:MM"),
        ("", 10, "YYYY-MM-DD-HH:MM"),
        ("2026-12-09-06:10", 7, "divide 60"),
    ],
)
def test_bad_partition_keys_are_rejected_with_the_reason(key, minutes, problem):
    with pytest.raises(ValueError, match=problem):
        window_for_partition_key(key, minutes)


@pytest.mark.parametrize(
    ("overlap", "start", "end"),
    [
        (timedelta(minutes=10), utc(2026, 12, 9, 6, 0), utc(2026, 12, 9, 6, 20)),
        (timedelta(minutes=5), utc(2026, 12, 9, 6, 5), utc(2026, 12, 9, 6, 20)),
        (timedelta(0), utc(2026, 12, 9, 6, 10), utc(2026, 12, 9, 6, 20)),
    ],
)
def test_query_bounds_reach_back_by_the_overlap(overlap, start, end):
    window = window_for_partition_key("2026-12-09-06:10", 10)
    assert query_bounds(window, overlap) == QueryBounds(start, end)


def test_negative_overlap_is_refused():
    with pytest.raises(ValueError, match="negative"):
        query_bounds(window_for_partition_key("2026-12-09-06:10", 10), timedelta(minutes=-1))


def test_consecutive_windows_with_overlap_cover_every_instant():
    """The query of window n+1 starts before window n ends: nothing between windows can be missed."""
    first = window_for_partition_key("2026-12-09-06:10", 10)
    second = first.shifted(1)
    assert second.start == first.end
    assert query_bounds(second, timedelta(minutes=10)).start < first.end


@pytest.mark.parametrize(
    ("moment", "minutes", "start"),
    [
        (utc(2026, 12, 9, 6, 19, 59, 999000), 10, utc(2026, 12, 9, 6, 10)),
        (utc(2026, 12, 9, 6, 20), 10, utc(2026, 12, 9, 6, 20)),
        (datetime(2026, 12, 9, 8, 20, tzinfo=UTC) + timedelta(hours=0), 60, utc(2026, 12, 9, 8, 0)),
        (datetime.fromisoformat("2026-12-09T07:25:00+01:00"), 10, utc(2026, 12, 9, 6, 20)),
    ],
)
def test_window_containing_floors_in_utc(moment, minutes, start):
    assert floor_to_window(moment, minutes) == start
    assert window_containing(moment, minutes).start == start


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="naive"):
        floor_to_window(datetime(2026, 12, 9, 6, 0), 10)


@pytest.mark.parametrize(
    ("now", "lag_s", "expected_key"),
    [
        # A tick at window end + lag takes the window that just closed.
        (utc(2026, 12, 9, 6, 21), 60, "2026-12-09-06:10"),
        # Slightly before end + lag: that window is not yet due, the previous one is.
        (utc(2026, 12, 9, 6, 20, 59), 60, "2026-12-09-06:00"),
        (utc(2026, 12, 9, 6, 20), 0, "2026-12-09-06:10"),
        (utc(2026, 12, 9, 6, 29, 59), 0, "2026-12-09-06:10"),
        # A lag longer than a window.
        (utc(2026, 12, 9, 6, 35), 900, "2026-12-09-06:10"),
    ],
)
def test_latest_closed_window_respects_the_lag(now, lag_s, expected_key):
    window = latest_closed_window(now, 10, timedelta(seconds=lag_s))
    assert window.partition_key == expected_key
    assert window.end + timedelta(seconds=lag_s) <= now


@pytest.mark.parametrize(
    ("minutes", "lag_s", "cron"),
    [
        (10, 0, "*/10 * * * *"),
        (10, 60, "1-59/10 * * * *"),
        (10, 61, "2-59/10 * * * *"),
        (10, 600, "*/10 * * * *"),
        (15, 120, "2-59/15 * * * *"),
        (60, 60, "1 * * * *"),
        (60, 0, "0 * * * *"),
    ],
)
def test_schedule_cron_ticks_once_per_window_after_the_lag(minutes, lag_s, cron):
    assert schedule_cron(minutes, lag_s) == cron


@pytest.mark.parametrize(("minutes", "cron"), [(10, "*/10 * * * *"), (1, "*/1 * * * *"), (60, "0 * * * *")])
def test_partitions_cron_is_the_window_grid(minutes, cron):
    assert partitions_cron(minutes) == cron


@pytest.mark.parametrize(
    ("window_end", "expected"),
    [
        (utc(2026, 11, 29, 0, 0), True),  # ends exactly at now - 10 days
        (utc(2026, 11, 29, 0, 10), False),  # partly inside the retention
        (utc(2026, 12, 8, 0, 0), False),
    ],
)
def test_windows_entirely_older_than_retention_are_flagged(window_end, expected):
    window = Window(window_end - timedelta(minutes=10), window_end)
    assert is_beyond_retention(window, utc(2026, 12, 9, 0, 0), timedelta(days=10)) is expected


def _keys(windows):
    return [w.partition_key for w in windows]


@pytest.mark.parametrize(
    ("first", "lookback", "retention", "expected"),
    [
        # Everything in the lookback, oldest first, the newest window itself excluded.
        (utc(2026, 11, 1), timedelta(minutes=40), timedelta(days=10), ["11:30", "11:40"]),
        # A window starting exactly at now - lookback is in.
        (utc(2026, 11, 1), timedelta(minutes=51), timedelta(days=10), ["11:10", "11:20", "11:30", "11:40"]),
        # Never before the first partition.
        (utc(2026, 12, 9, 11, 20), timedelta(hours=24), timedelta(days=10), ["11:20", "11:30", "11:40"]),
        # Never a window the API no longer holds (ends at or before now - retention).
        (utc(2026, 11, 1), timedelta(days=30), timedelta(minutes=40), ["11:20", "11:30", "11:40"]),
        (utc(2026, 11, 1), timedelta(0), timedelta(days=10), []),
        # The first partition is the newest window: nothing earlier.
        (utc(2026, 12, 9, 11, 50), timedelta(hours=24), timedelta(days=10), []),
    ],
)
def test_catch_up_candidates_are_bounded_by_lookback_first_partition_and_retention(
    first, lookback, retention, expected
):
    now = utc(2026, 12, 9, 12, 1)
    newest = Window(utc(2026, 12, 9, 11, 50), utc(2026, 12, 9, 12, 0))
    windows = catch_up_candidates(
        newest,
        first=Window(first, first + timedelta(minutes=10)),
        now=now,
        lookback=lookback,
        retention=retention,
    )
    assert [k[-5:] for k in _keys(windows)] == expected
    assert all(w.partition_key.startswith("2026-12-09") for w in windows)


def test_catch_up_candidates_span_a_day_of_windows():
    now = utc(2026, 12, 9, 12, 1)
    newest = Window(utc(2026, 12, 9, 11, 50), utc(2026, 12, 9, 12, 0))
    windows = catch_up_candidates(
        newest,
        first=Window(utc(2026, 11, 1), utc(2026, 11, 1, 0, 10)),
        now=now,
        lookback=timedelta(hours=24),
        retention=timedelta(days=10),
    )
    assert len(windows) == 142
    assert (windows[0].partition_key, windows[-1].partition_key) == ("2026-12-08-12:10", "2026-12-09-11:40")


def test_catch_up_candidates_reject_a_negative_lookback():
    newest = Window(utc(2026, 12, 9, 11, 50), utc(2026, 12, 9, 12, 0))
    with pytest.raises(ValueError, match="negative"):
        catch_up_candidates(
            newest,
            first=newest,
            now=utc(2026, 12, 9, 12, 1),
            lookback=timedelta(-1),
            retention=timedelta(days=10),
        )
