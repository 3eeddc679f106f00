"""How long to wait before retrying a transient failure: exponential backoff with jitter, or Retry-After."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_SECONDS = re.compile(r"^\d+(?:\.\d+)?$")


def backoff_delay(
    attempt: int, base_s: float, cap_s: float, rand: Callable[[], float] = random.random
) -> float:
    """Delay after failed attempt number `attempt` (1-based): base * 2^(attempt-1), capped, then jittered.

    "Equal jitter": a uniform draw in [d/2, d], so clients that failed together spread out but
    never retry sooner than half the nominal delay.
    """
    if attempt < 1:
        raise ValueError(f"attempt={attempt} must be 1 or more")
    nominal = min(cap_s, base_s * 2 ** (attempt - 1))
    return nominal / 2 + rand() * nominal / 2


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date; None when absent or unusable.

    A date in the past means "now" (0 s).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _SECONDS.match(text):
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def retry_delay(
    attempt: int,
    retry_after_s: float | None,
    *,
    base_s: float,
    cap_s: float,
    retry_after_cap_s: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """The server's Retry-After when given (capped, so a hostile value cannot stall a run), else backoff."""
    if retry_after_s is not None:
        return min(max(retry_after_s, 0.0), retry_after_cap_s)
    return backoff_delay(attempt, base_s, cap_s, rand)
