"""The Admin API logs query as the emulator answers it (specs/admin-api.md 5.1-5.5), without HTTP.

Quirks kept on purpose: `errors_only` filters by its presence alone (even `errors_only=false`),
`start_date` is exclusive and `end_date` inclusive, both on `started` at millisecond precision;
entries come newest first (`started` desc, `_id` desc); `nextEndDate` is the next entry's `started`
string verbatim and `nextSkip` counts the entries already read that share that timestamp; both keys
are absent (not null) on the last page.
"""

from __future__ import annotations

import bisect
import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from realm_alert_pipeline.constants import LOGS_PAGE_LIMIT
from realm_alert_pipeline.core.timeutil import parse_api_datetime

# The `type` enum of the current spec (S1), in its order.
LOG_TYPES = (
    "TRIGGER_FAILURE",
    "TRIGGER_ERROR_HANDLER",
    "DB_TRIGGER",
    "AUTH_TRIGGER",
    "SCHEDULED_TRIGGER",
    "FUNCTION",
    "SERVICE_FUNCTION",
    "STREAM_FUNCTION",
    "SERVICE_STREAM_FUNCTION",
    "AUTH",
    "WEBHOOK",
    "ENDPOINT",
    "PUSH",
    "API",
    "API_KEY",
    "GRAPHQL",
    "SYNC_CONNECTION_START",
    "SYNC_CONNECTION_END",
    "SYNC_SESSION_START",
    "SYNC_SESSION_END",
    "SYNC_CLIENT_WRITE",
    "SYNC_ERROR",
    "SYNC_OTHER",
    "SCHEMA_ADDITIVE_CHANGE",
    "SCHEMA_GENERATION",
    "SCHEMA_VALIDATION",
    "LOG_FORWARDER",
)
_LOG_TYPE_SET = frozenset(LOG_TYPES)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# What Go's strconv.Atoi takes (Python's int() would also take "1_0", " 5" and non-ASCII digits).
_INTEGER = re.compile(r"[+-]?[0-9]+")


class LogQueryError(ValueError):
    """A query parameter the server rejects with 400 InvalidParameter; the message is the `error` text."""


@dataclass(frozen=True)
class LogQuery:
    """The parsed query string of GET .../logs. Dates are epoch milliseconds (UTC)."""

    co_id: str | None = None
    errors_only: bool = False
    user_id: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    skip: int = 0
    limit: int = LOGS_PAGE_LIMIT
    types: frozenset[str] | None = None


class StoredLog:
    """One entry as given, with what a query needs parsed once when it is added."""

    __slots__ = ("entry", "log_id", "started_ms", "is_error", "json_text")

    def __init__(self, entry: dict, log_id: str, started_ms: int, is_error: bool) -> None:
        self.entry = entry
        self.log_id = log_id
        self.started_ms = started_ms
        self.is_error = is_error
        # Serialised once here (a page is then a join of strings), which also rejects what JSON cannot hold.
        try:
            self.json_text = json.dumps(entry, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"log entry {log_id} is not JSON-serialisable: {exc}") from None


def _sort_key(log: StoredLog) -> tuple[int, str]:
    return (log.started_ms, log.log_id)


def to_epoch_ms(value: datetime) -> int:
    """Whole milliseconds since the epoch of an aware datetime (floor, as the service keeps ms)."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def stored_log(entry: Mapping) -> StoredLog:
    """Validate one log entry and pre-parse it; a clear ValueError names what is wrong."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"log entry must be a JSON object, got {type(entry).__name__}")
    log_id = entry.get("_id")
    if not isinstance(log_id, str) or not log_id:
        raise ValueError(f"log entry needs a string `_id`, got {log_id!r}")
    started = entry.get("started")
    try:
        started_at = parse_api_datetime(started)
    except ValueError as exc:
        raise ValueError(f"log entry {log_id}: bad `started` ({exc})") from None
    error = entry.get("error")
    return StoredLog(
        entry=dict(entry),
        log_id=log_id,
        started_ms=to_epoch_ms(started_at),
        is_error=isinstance(error, str) and error != "",
    )


def parse_log_query(query: Mapping[str, Sequence[str]]) -> LogQuery:
    """Parse `urllib.parse.parse_qs(..., keep_blank_values=True)` output; LogQueryError on a bad value.

    A repeated parameter uses its first value (as Go's url.Values.Get), except `type`, whose repeats and
    comma lists are merged.
    """

    def first(name: str) -> str | None:
        values = query.get(name)
        return values[0] if values else None

    types = None
    if "type" in query:
        names = [name for value in query["type"] for name in value.split(",")]
        for name in names:
            if name not in _LOG_TYPE_SET:
                raise LogQueryError(f"invalid log type: '{name}'")
        types = frozenset(names)
    return LogQuery(
        co_id=first("co_id"),
        errors_only="errors_only" in query,
        user_id=first("user_id"),
        start_ms=_parse_date_param("start_date", first("start_date")),
        end_ms=_parse_date_param("end_date", first("end_date")),
        skip=_parse_int_param("skip", first("skip"), default=0, low=0, high=None),
        limit=_parse_int_param("limit", first("limit"), default=LOGS_PAGE_LIMIT, low=1, high=LOGS_PAGE_LIMIT),
        types=types,
    )


def _parse_date_param(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    # A raw "+hh:mm" offset arrives as " hh:mm" (a query "+" decodes to a space): reject, don't guess.
    if value != value.strip() or " " in value.partition("T")[2]:
        raise LogQueryError(f"invalid {name}: '{value}' is not an ISO 8601 date (encode '+' as %2B)")
    try:
        return to_epoch_ms(parse_api_datetime(value))
    except ValueError:
        raise LogQueryError(f"invalid {name}: '{value}' is not an ISO 8601 date") from None


def _parse_int_param(name: str, value: str | None, *, default: int, low: int, high: int | None) -> int:
    if value is None:
        return default
    if not _INTEGER.fullmatch(value):
        raise LogQueryError(f"invalid {name}: '{value}' is not an integer")
    number = int(value)
    if number < low or (high is not None and number > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise LogQueryError(f"invalid {name}: {number} must be {bounds}")
    return number


class LogStore:
    """Entries sorted by (`started`, `_id`), swapped in whole on each add so readers need no lock.

    A query bisects to its date range and walks it newest first until it has skip + limit + 1 matches,
    so a page costs about skip + limit, not the size of the store.
    """

    def __init__(self, entries: Iterable[Mapping] = ()) -> None:
        self._write_lock = threading.Lock()
        self._logs: list[StoredLog] = []
        self._started: list[int] = []
        self._ids: set[str] = set()
        self.add(entries)

    def __len__(self) -> int:
        return len(self._logs)

    def add(self, entries: Iterable[Mapping]) -> int:
        """Add entries (an existing `_id` is replaced); returns how many were given. All-or-nothing."""
        new = [stored_log(entry) for entry in entries]
        if not new:
            return 0
        by_id = {log.log_id: log for log in new}  # the last copy of a repeated _id wins
        with self._write_lock:
            kept = self._logs
            if not self._ids.isdisjoint(by_id):
                kept = [log for log in kept if log.log_id not in by_id]
            # `kept` is already sorted, so this sort is mostly a merge of two runs.
            logs = sorted(kept + list(by_id.values()), key=_sort_key)
            self._ids.update(by_id)
            self._logs, self._started = logs, [log.started_ms for log in logs]
        return len(new)

    def count_older_than(self, cutoff_ms: int) -> int:
        """How many entries started before `cutoff_ms` (what a retention cutoff hides)."""
        return bisect.bisect_left(self._started, cutoff_ms)

    def query(
        self, query: LogQuery, *, not_before_ms: int | None = None, not_after_ms: int | None = None
    ) -> str:
        """The JSON body of one logs page. `not_before_ms` is the retention cutoff (older is not served);
        `not_after_ms` hides entries that have not happened yet."""
        logs, started = self._logs, self._started  # one consistent snapshot
        low = 0
        if query.start_ms is not None:
            low = bisect.bisect_right(started, query.start_ms)
        if not_before_ms is not None:
            low = max(low, bisect.bisect_left(started, not_before_ms))
        high = len(logs) if query.end_ms is None else bisect.bisect_right(started, query.end_ms)
        if not_after_ms is not None:
            high = min(high, bisect.bisect_right(started, not_after_ms))

        wanted = query.skip + query.limit + 1
        matches: list[StoredLog] = []
        for log in _newest_first(logs, low, high):
            if _matches(log, query):
                matches.append(log)
                if len(matches) == wanted:
                    break
        return page_body(matches, query.skip, query.limit)


def page_body(matches: list[StoredLog], skip: int, limit: int) -> str:
    """Render F[skip:skip+limit] plus nextEndDate/nextSkip from F[0:skip+limit+1] (sorted newest first)."""
    page = matches[skip : skip + limit]
    body = '{"logs":[' + ",".join(log.json_text for log in page) + "]"
    if len(matches) > skip + limit:
        following = matches[skip + limit]
        tied = 0
        for log in reversed(matches[: skip + limit]):
            if log.started_ms != following.started_ms:
                break
            tied += 1
        body += ',"nextEndDate":' + json.dumps(following.entry["started"])
        if tied:
            body += f',"nextSkip":{tied}'
    return body + "}"


def _newest_first(logs: list[StoredLog], low: int, high: int) -> Iterator[StoredLog]:
    for index in range(high - 1, low - 1, -1):
        yield logs[index]


def _matches(log: StoredLog, query: LogQuery) -> bool:
    if query.errors_only and not log.is_error:
        return False
    entry = log.entry
    if query.types is not None and entry.get("type") not in query.types:
        return False
    if query.co_id is not None and entry.get("co_id") != query.co_id:
        return False
    return query.user_id is None or entry.get("user_id") == query.user_id
