"""Realistic App Services logs around a given time, made from the entries in `data/sample_logs.json`.

Each hour of generated logs holds what a real post-EOL App Services app shows: a scheduled trigger that fails
every 15 minutes next to one that succeeds, a burst of database-trigger errors (two of them on the same
millisecond, and an error and a success sharing a timestamp), a TRIGGER_FAILURE with the run of its error
handler, and one-off errors of the other types (long stack traces, Unicode). The first hour holds every
log type of the sample file. `late_entries` are written late: their `started` lies early in the range,
but they reach the API only after it was first read (a function that ran close to the 300 s limit).
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

from realm_alert_pipeline.core.timeutil import format_go_datetime, parse_api_datetime

_FAILING_SCHEDULED = "6b105ca04e20d8b1c6d9cf25"  # getUnpausedClustersMetrics: Cannot access member 'db'
_OK_SCHEDULED = "6b18f1e4a3c91f0e7b37ae8b"  # purgeExpiredCarts every 15 minutes
_DB_TRIGGER_DUPLICATE = "6b1132eea3c91f0e7b37ae71"  # E11000 duplicate key in onOrderInserted
_DB_TRIGGER_TIE = ("6b1156bc4e20d8b1c6d9cf2e", "6b1156bc4e20d8b1c6d9cf2a")  # OK and error, same `started`
_TRIGGER_FAILURE = "6b126c079f7a3e5d022a23c0"
_ERROR_HANDLER = "6b126c079f7a3e5d022a23c3"
_LATE = "6b0f89b09f7a3e5d022a23b8"  # buildWeeklySalesReport: execution time limit exceeded after 300 s
_SCENARIO_IDS = {
    _FAILING_SCHEDULED,
    _OK_SCHEDULED,
    _DB_TRIGGER_DUPLICATE,
    *_DB_TRIGGER_TIE,
    _TRIGGER_FAILURE,
    _ERROR_HANDLER,
    _LATE,
}
_ONE_OFFS_PER_LATER_HOUR = 3


@dataclass(frozen=True)
class SampleLogs:
    """Generated entries, as the API returns them (strings, Go-style timestamps)."""

    entries: list[dict]
    late_entries: list[dict]


def load_sample_templates(path: str | Path | None = None) -> list[dict]:
    """The sample entries shipped with the package (or a JSON array at `path`)."""
    if path is None:
        text = (
            resources.files("realm_alert_pipeline.local").joinpath("data/sample_logs.json").read_text("utf-8")
        )
    else:
        text = Path(path).read_text("utf-8")
    entries = json.loads(text)
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError(f"{path or 'data/sample_logs.json'}: expected a JSON array of log entries")
    return entries


def generate_sample_logs(
    start: datetime,
    end: datetime,
    *,
    group_id: str,
    app_id: str,
    seed: int = 7,
    templates: list[dict] | None = None,
) -> SampleLogs:
    """Entries with `started` in [start, end), hour block by hour block, newest first."""
    factory = _EntryFactory(templates or load_sample_templates(), group_id, app_id, random.Random(seed))
    one_offs = [t for t in factory.templates.values() if t["_id"] not in _SCENARIO_IDS]
    entries: list[dict] = []
    late: list[dict] = []
    block = start
    hour = 0
    while block < end:
        entries += _quarter_hourly_triggers(factory, block, min(block + timedelta(hours=1), end))
        entries += _db_trigger_burst(factory, block + timedelta(minutes=25))
        entries += _trigger_failure_with_handler(factory, block + timedelta(minutes=41, seconds=17))
        if hour == 0:
            chosen = one_offs
            late.append(factory.make(_LATE, block + timedelta(minutes=33, seconds=5)))
        else:
            first = (hour * _ONE_OFFS_PER_LATER_HOUR) % len(one_offs)
            chosen = (one_offs * 2)[first : first + _ONE_OFFS_PER_LATER_HOUR]
        step = timedelta(minutes=60) / (len(chosen) + 1)
        for index, template in enumerate(chosen, start=1):
            jitter = timedelta(milliseconds=factory.rng.randint(0, 59_999))
            entries.append(factory.make(template["_id"], block + step * index + jitter))
        block += timedelta(hours=1)
        hour += 1
    in_range = [e for e in entries if start <= parse_api_datetime(e["started"]) < end]
    late_in_range = [e for e in late if start <= parse_api_datetime(e["started"]) < end]
    return SampleLogs(entries=_newest_first(in_range), late_entries=_newest_first(late_in_range))


def _quarter_hourly_triggers(factory: _EntryFactory, start: datetime, end: datetime) -> list[dict]:
    made = []
    quarter = start.replace(minute=(start.minute // 15) * 15, second=0, microsecond=0)
    while quarter < end:
        if quarter >= start:
            made.append(factory.make(_OK_SCHEDULED, quarter + timedelta(milliseconds=3)))
            made.append(
                factory.make(
                    _FAILING_SCHEDULED, quarter + timedelta(milliseconds=factory.rng.randint(10, 90))
                )
            )
        quarter += timedelta(minutes=15)
    return made


def _db_trigger_burst(factory: _EntryFactory, at: datetime, size: int = 30) -> list[dict]:
    made = []
    moment = at
    for number in range(size):
        entry = factory.make(_DB_TRIGGER_DUPLICATE, moment)
        order = f"A-{103100 + number}"
        entry["error"] = entry["error"].replace("A-102934", order)
        entry["messages"] = [f"creating invoice for order {order}"]
        made.append(entry)
        if number != 6:  # entries 6 and 7 share one millisecond
            moment += timedelta(milliseconds=factory.rng.randint(20, 400))
    tie = moment + timedelta(seconds=2)
    made += [factory.make(template_id, tie) for template_id in _DB_TRIGGER_TIE]
    return made


def _trigger_failure_with_handler(factory: _EntryFactory, at: datetime) -> list[dict]:
    failure = factory.make(_TRIGGER_FAILURE, at)
    handler = factory.make(_ERROR_HANDLER, at + timedelta(milliseconds=198))
    handler["parent_co_id"] = failure["co_id"]
    return [failure, handler]


def _newest_first(entries: list[dict]) -> list[dict]:
    return sorted(entries, key=lambda e: (parse_api_datetime(e["started"]), e["_id"]), reverse=True)


class _EntryFactory:
    """Copies a template to a new `started`, with fresh ids whose timestamp matches, duration kept."""

    def __init__(self, templates: list[dict], group_id: str, app_id: str, rng: random.Random) -> None:
        self.templates = {t["_id"]: t for t in templates}
        self.group_id = group_id
        self.app_id = app_id
        self.domain_id = f"{int(app_id, 16) + 1:024x}"
        self.rng = rng

    def make(self, template_id: str, started: datetime) -> dict:
        template = self.templates[template_id]
        entry = copy.deepcopy(template)
        duration = parse_api_datetime(template["completed"]) - parse_api_datetime(template["started"])
        started = started.replace(microsecond=(started.microsecond // 1000) * 1000)
        entry["_id"] = self._object_id(started)
        entry["co_id"] = f"{int(entry['_id'], 16) - self.rng.randint(1, 3):024x}"
        entry["group_id"] = self.group_id
        entry["app_id"] = self.app_id
        entry["domain_id"] = self.domain_id
        entry["started"] = format_go_datetime(started)
        entry["completed"] = format_go_datetime(started + duration)
        return entry

    def _object_id(self, at: datetime) -> str:
        return f"{int(at.timestamp()):08x}{self.rng.getrandbits(64):016x}"
