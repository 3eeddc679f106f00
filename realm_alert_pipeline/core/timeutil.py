"""Admin API timestamps: Go-style RFC 3339 in, UTC with milliseconds and `Z` out."""

import re
from datetime import UTC, date, datetime

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})?)?$"
)


def parse_api_datetime(value: str) -> datetime:
    """Parse an Admin API timestamp (0-9 fraction digits, `Z` or `±hh:mm`, or a bare date) to aware UTC.

    Precision is cut to milliseconds, as the service keeps it.
    """
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp string: {value!r}")
    match = _RFC3339.match(value.strip())
    if not match:
        raise ValueError(f"not an ISO 8601 timestamp: {value!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if hour is None:
        return datetime(int(year), int(month), int(day), tzinfo=UTC)
    millis = int((fraction or "0").ljust(3, "0")[:3])
    naive = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), millis * 1000)
    if zone is None or zone == "Z":
        return naive.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(naive.isoformat() + zone)
    return parsed.astimezone(UTC)


def format_api_datetime(value: datetime | date) -> str:
    """UTC with exactly three fraction digits and `Z`: the form the client sends (specs 5.2)."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: give a timezone")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def format_go_datetime(value: datetime) -> str:
    """How the service writes `started`: milliseconds with trailing zeros trimmed, none on a whole second."""
    utc = value.astimezone(UTC)
    base = utc.strftime("%Y-%m-%dT%H:%M:%S")
    millis = utc.microsecond // 1000
    if millis == 0:
        return base + "Z"
    return base + "." + f"{millis:03d}".rstrip("0") + "Z"


def ensure_utc(value: datetime) -> datetime:
    """An aware datetime in UTC; naive values (as pymongo returns without tz_aware) are taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def utc_now() -> datetime:
    """The pipeline's clock: aware UTC now at millisecond precision, so a value compares equal after a
    MongoDB round trip (BSON dates keep milliseconds)."""
    return to_bson_precision(datetime.now(UTC))


def to_bson_precision(value: datetime) -> datetime:
    """`value` in UTC with microseconds cut to whole milliseconds; naive values are taken as UTC."""
    utc = ensure_utc(value)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)
