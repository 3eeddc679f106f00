"""Paging through the Admin API logs endpoint (specs/admin-api.md 5.1-5.5).

The endpoint pages backwards in time, newest first. A page that has a successor carries
`nextEndDate` (the `started` of the next page's first entry) and, when that entry shares its
timestamp with entries already returned, `nextSkip`. The next request is the same query with
`end_date = nextEndDate` (verbatim) and `skip = nextSkip`; the last page has no `nextEndDate`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from realm_alert_pipeline.constants import LOGS_PAGE_LIMIT
from realm_alert_pipeline.core.timeutil import format_api_datetime, parse_api_datetime


class PagingError(ValueError):
    """The server's paging cursor is malformed or would make the client loop forever."""


def _require_aware(name: str, value: datetime) -> None:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}={value.isoformat()} is a naive datetime: give a timezone (e.g. UTC)")


def build_log_query(
    start: datetime | None,
    end: datetime | None,
    *,
    errors_only: bool = False,
    types: Sequence[str] | None = None,
    user_id: str | None = None,
    co_id: str | None = None,
    limit: int = LOGS_PAGE_LIMIT,
) -> dict[str, str]:
    """Query parameters of the first page: `start` exclusive, `end` inclusive, both sent as UTC `.mmmZ`.

    `errors_only` is sent as "true" only when wanted: the server treats the parameter's mere
    presence as "errors only", so `errors_only=false` would silently drop every non-error entry.
    Parameters without a value are left out rather than sent empty.
    """
    params: dict[str, str] = {}
    if start is not None:
        _require_aware("start", start)
        params["start_date"] = format_api_datetime(start)
    if end is not None:
        _require_aware("end", end)
        params["end_date"] = format_api_datetime(end)
    if start is not None and end is not None and start >= end:
        raise ValueError(f"empty window: start {params['start_date']} is not before end {params['end_date']}")
    if errors_only:
        params["errors_only"] = "true"
    if types:
        if isinstance(types, str):
            types = [types]
        bad = [t for t in types if not isinstance(t, str) or not t.strip() or "," in t]
        if bad:
            raise ValueError(f"invalid log type(s) {bad!r}: give non-empty names such as 'DB_TRIGGER'")
        params["type"] = ",".join(t.strip() for t in types)
    if user_id:
        params["user_id"] = user_id
    if co_id:
        params["co_id"] = co_id
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= LOGS_PAGE_LIMIT:
        raise ValueError(f"limit={limit!r} is outside 1..{LOGS_PAGE_LIMIT} (the server's page ceiling)")
    params["limit"] = str(limit)
    return params


def page_entries(body: Mapping) -> list:
    """The entries of one page, as returned. A missing or null `logs` means an empty page.

    `logs` must be a list (anything else breaks the page as a whole), but its items are passed on
    unchecked: one item that is not an object is one bad entry, which the caller reports and skips,
    not a reason to lose the rest of the page.
    """
    logs = body.get("logs")
    if logs is None:
        return []
    if not isinstance(logs, list):
        raise PagingError(f"'logs' is a {type(logs).__name__}, expected a list of entries")
    return logs


def next_page_params(params: Mapping[str, str], body: Mapping) -> dict[str, str] | None:
    """The next page's query: `params` with `end_date` = nextEndDate verbatim and `skip` = nextSkip.

    Returns None on the last page (no `nextEndDate`; a null one is read the same way so that a
    server sending `null` cannot make us loop). Every other parameter is kept unchanged.
    """
    next_end = body.get("nextEndDate")
    if next_end is None:
        return None
    if not isinstance(next_end, str) or not next_end.strip():
        raise PagingError(f"nextEndDate {_short(next_end)} is not a timestamp string")
    next_skip = body.get("nextSkip")
    if next_skip is not None and (
        isinstance(next_skip, bool) or not isinstance(next_skip, int) or next_skip < 0
    ):
        raise PagingError(f"nextSkip {_short(next_skip)} is not a non-negative integer")
    following = {key: value for key, value in params.items() if key not in ("end_date", "skip")}
    following["end_date"] = next_end
    if next_skip:
        following["skip"] = str(next_skip)
    return following


@dataclass(frozen=True)
class PageCursor:
    """Where a page request starts: its `end_date` (None = now) and `skip`."""

    end: datetime | None
    skip: int

    @classmethod
    def of(cls, params: Mapping[str, str]) -> PageCursor:
        raw_end = params.get("end_date")
        try:
            end = parse_api_datetime(raw_end) if raw_end is not None else None
        except ValueError as exc:
            raise PagingError(f"end_date {_short(raw_end)} is not an ISO 8601 timestamp") from exc
        return cls(end=end, skip=int(params.get("skip", "0")))

    def is_after(self, other: PageCursor) -> bool:
        """True when this cursor lies strictly further back in the newest-first order than `other`."""
        if other.end is None:
            return True
        if self.end is None:
            return False
        return self.end < other.end or (self.end == other.end and self.skip > other.skip)

    def describe(self) -> str:
        end = format_api_datetime(self.end) if self.end is not None else "now"
        return f"end_date={end} skip={self.skip}"


class PagingGuard:
    """Stops a server that would keep the client paging forever.

    Each next page must start strictly further back than the one before (an older `nextEndDate`,
    or the same one with a larger `nextSkip`), and a page that announces a successor must hold
    entries. A repeated cursor, or any cycle, breaks that order. Holds one cursor, so memory
    stays flat however many pages are read.
    """

    def __init__(self, first_params: Mapping[str, str]) -> None:
        self._cursor = PageCursor.of(first_params)
        self.pages = 0

    def check(self, entries: Sequence, following: Mapping[str, str] | None) -> None:
        """Call once per page with its entries and the next page's params (None on the last page)."""
        self.pages += 1
        if following is None:
            return
        if not entries:
            raise PagingError(
                f"page {self.pages} ({self._cursor.describe()}) is empty but announces a next page"
                f" at end_date={following['end_date']}: the server makes no progress"
            )
        cursor = PageCursor.of(following)
        if not cursor.is_after(self._cursor):
            raise PagingError(
                f"page {self.pages} points to {cursor.describe()}, not further back than"
                f" {self._cursor.describe()}: the server repeats a page cursor (or moves forward),"
                " so paging would never end"
            )
        self._cursor = cursor


def _string_id(entry: object) -> str | None:
    """The entry's `_id` when the entry is an object with a string `_id` (items that are not are kept as is)."""
    if isinstance(entry, dict) and isinstance(entry.get("_id"), str):
        return entry["_id"]
    return None


def drop_repeated(entries: list, previous_ids: set[str]) -> list:
    """Entries minus those already yielded on the previous page.

    An entry written while we page (newer than the first page) shifts every later entry by one,
    so the previous page's last entry can come back at the top of the next page.
    """
    if not previous_ids:
        return entries
    return [entry for entry in entries if _string_id(entry) not in previous_ids]


def entry_ids(entries: Sequence) -> set[str]:
    """The string `_id`s of a page (what drop_repeated remembers between pages)."""
    return {entry_id for entry_id in map(_string_id, entries) if entry_id is not None}


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
