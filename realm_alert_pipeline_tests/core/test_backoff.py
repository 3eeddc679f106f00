"""Retries of a rate-limited or failing Admin API wait longer each time, spread out by jitter, never beyond a cap;
a server's Retry-After (seconds or HTTP date) is honoured but bounded, so one answer cannot stall a run."""

from datetime import UTC, datetime

import pytest

from realm_alert_pipeline.core.backoff import backoff_delay, parse_retry_after, retry_delay

NOW = datetime(2026, 12, 3, 11, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [
        (1, 0.0, 0.5),
        (1, 1.0, 1.0),
        (2, 0.0, 1.0),
        (3, 1.0, 4.0),
        (4, 0.5, 6.0),
        # Capped at 10 s: half of it at least, all of it at most.
        (10, 0.0, 5.0),
        (10, 1.0, 10.0),
    ],
)
def test_backoff_delay_grows_and_is_capped(attempt, rand, expected):
    assert backoff_delay(attempt, 1.0, 10.0, rand=lambda: rand) == pytest.approx(expected)


def test_backoff_delay_rejects_attempt_zero():
    with pytest.raises(ValueError, match="attempt=0"):
        backoff_delay(0, 1.0, 10.0)


def test_backoff_delay_jitter_stays_in_range():
    delays = {round(backoff_delay(3, 0.1, 10.0), 6) for _ in range(50)}
    assert all(0.2 <= d <= 0.4 for d in delays)
    assert len(delays) > 1


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("1", 1.0),
        (" 120 ", 120.0),
        ("0.5", 0.5),
        ("Thu, 03 Dec 2026 11:00:30 GMT", 30.0),
        ("Thu, 03 Dec 2026 10:59:00 GMT", 0.0),
        ("-5", None),
        ("soon", None),
    ],
)
def test_parse_retry_after(header, expected):
    assert parse_retry_after(header, now=NOW) == expected


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(1.0, 1.0), (0.0, 0.0), (3600.0, 60.0), (None, 2.0)],
)
def test_retry_delay_prefers_retry_after_within_its_cap(retry_after, expected):
    delay = retry_delay(2, retry_after, base_s=1.0, cap_s=30.0, retry_after_cap_s=60.0, rand=lambda: 1.0)
    assert delay == expected
