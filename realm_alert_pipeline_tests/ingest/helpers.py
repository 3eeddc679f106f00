"""Builders for the ingest tests: realistic log entries (copied from the sample logs), a clock the test
moves, resources pointed at the emulator and SecantusDB, and a one-call partition run."""

from __future__ import annotations

import copy
import itertools
import json
import secrets
from datetime import UTC, datetime, timedelta
from importlib import resources as importlib_resources

import dagster as dg

from realm_alert_pipeline.constants import ALERT_COLLECTION, ERROR_COLLECTION, LOG_COLLECTION
from realm_alert_pipeline.core.timeutil import format_go_datetime
from realm_alert_pipeline.core.windows import Window, window_containing
from realm_alert_pipeline.ingest import IngestDefs, build_ingest_defs
from realm_alert_pipeline.local.admin_api_emulator import (
    AdminApiEmulator,
)
from realm_alert_pipeline.resources.admin_api import AdminApiResource
from realm_alert_pipeline.resources.mongo import MongoResource
from realm_alert_pipeline.settings import PipelineSettings
from realm_alert_pipeline_tests.resources.admin_api_helpers import make_resource

_sequence = itertools.count(1)


def _sample_logs() -> list[dict]:
    text = (
        importlib_resources.files("realm_alert_pipeline.local").joinpath("data/sample_logs.json").read_text()
    )
    return json.loads(text)


SAMPLE_LOGS = _sample_logs()
# One error template per type, first occurrence in the sample file (the sample ids belong to the demo app).
TEMPLATES = {}
for _entry in SAMPLE_LOGS:
    if _entry.get("error"):
        TEMPLATES.setdefault(_entry["type"], _entry)
OK_TEMPLATE = next(e for e in SAMPLE_LOGS if not e.get("error") and e["type"] == "DB_TRIGGER")


def object_id_at(moment: datetime) -> str:
    """A 24-hex ObjectId string whose timestamp prefix is `moment`, unique within the test session."""
    return f"{int(moment.timestamp()):08x}{secrets.token_hex(4)}{next(_sequence):08x}"


def log_entry(
    started: datetime, *, kind: str = "DB_TRIGGER", error: str | None = None, ok: bool = False, **fields
):
    """An entry as the API returns it, copied from the sample log of that type, with fresh ids and times."""
    entry = copy.deepcopy(OK_TEMPLATE if ok else TEMPLATES[kind])
    entry["_id"] = object_id_at(started)
    entry["co_id"] = object_id_at(started)
    entry["started"] = format_go_datetime(started)
    entry["completed"] = format_go_datetime(started + timedelta(milliseconds=87))
    if error is not None:
        entry["error"] = error
    entry.update(fields)
    return entry


def storm(started: datetime, count: int, spacing: timedelta = timedelta(milliseconds=700)) -> list[dict]:
    """`count` occurrences of one error (DB_TRIGGER) with different ids, numbers, times and quoted values."""
    return [
        log_entry(
            started + spacing * i,
            error=f"FunctionError: (DuplicateKey) E11000 duplicate key error collection: shop.invoices index:"
            f' orderNumber_1 dup key: {{ orderNumber: "A-{100000 + i}" }} at {format_go_datetime(started)}',
        )
        for i in range(count)
    ]


class FakeClock:
    """The pipeline's `now`, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def past_window(hours_ago: float, window_minutes: int = 10) -> Window:
    """A closed window some hours back in real time (Dagster and the emulator both use real time)."""
    return window_containing(datetime.now(UTC) - timedelta(hours=hours_ago), window_minutes)


def admin_api_resource(emulator: AdminApiEmulator, mongo: MongoResource, **overrides) -> AdminApiResource:
    return make_resource(emulator, mongo, **{"max_attempts": 3, **overrides})


TEST_SETTINGS = PipelineSettings(
    window_minutes=10,
    overlap_minutes=10,
    schedule_lag_seconds=60,
    realert_minutes=30,
    alert_max_age_minutes=60,
    partitions_start="2026-01-01-00:00",
)


class IngestRunner:
    """Runs ingest partitions through real Dagster execution against one instance."""

    def __init__(
        self,
        emulator: AdminApiEmulator,
        mongo: MongoResource,
        instance: dg.DagsterInstance,
        clock: FakeClock,
        settings: PipelineSettings = TEST_SETTINGS,
        **admin_api_overrides,
    ) -> None:
        self.defs: IngestDefs = build_ingest_defs(settings, clock=clock, tags={"test": "ingest"})
        self.resources = {
            "admin_api": admin_api_resource(emulator, mongo, **admin_api_overrides),
            "mongo": mongo,
        }
        self.instance = instance
        self.clock = clock
        self.db = mongo.get_database()

    def run(
        self, window: Window, *, raise_on_error: bool = True, tags: dict[str, str] | None = None
    ) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            self.defs.assets,
            resources=self.resources,
            partition_key=window.partition_key,
            instance=self.instance,
            raise_on_error=raise_on_error,
            tags={"test": "ingest", **(tags or {})},
        )

    @property
    def logs(self):
        return self.db[LOG_COLLECTION]

    @property
    def alerts(self):
        return self.db[ALERT_COLLECTION]

    @property
    def errors(self):
        return self.db[ERROR_COLLECTION]


def materialization_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    """The metadata of `asset`'s materialization in `result`, as plain values."""
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    assert len(events) == 1, f"{asset}: {len(events)} materializations"
    return {key: value.value for key, value in events[0].materialization.metadata.items()}


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    """check name -> passed, for the asset checks evaluated in `result`."""
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
