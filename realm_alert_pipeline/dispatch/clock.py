"""The dispatch side's notion of now: aware UTC, cut to milliseconds as BSON dates keep it."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Now in UTC, at millisecond precision (so a value compares equal after a MongoDB round trip)."""
    return to_bson_precision(datetime.now(UTC))


def to_bson_precision(value: datetime) -> datetime:
    """`value` in UTC with microseconds cut to whole milliseconds; naive values are taken as UTC."""
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)
