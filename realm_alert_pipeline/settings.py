"""Environment variables -> typed settings, validated once, every problem reported by variable name."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from realm_alert_pipeline import constants as c


class SettingsError(ValueError):
    """One or more environment variables are missing or malformed; `problems` names each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class PipelineSettings:
    """The tunables that shape the Dagster definitions (no secrets here)."""

    window_minutes: int = c.DEFAULT_WINDOW_MINUTES
    overlap_minutes: int = c.DEFAULT_OVERLAP_MINUTES
    schedule_lag_seconds: int = c.DEFAULT_SCHEDULE_LAG_SECONDS
    realert_minutes: int = c.DEFAULT_REALERT_MINUTES
    alert_max_age_minutes: int = c.DEFAULT_ALERT_MAX_AGE_MINUTES
    partitions_start: str = c.DEFAULT_PARTITIONS_START
    sensor_interval_seconds: int = c.DEFAULT_SENSOR_INTERVAL_SECONDS
    sms_max_segments: int = c.DEFAULT_SMS_MAX_SEGMENTS


# variable -> (field, minimum, maximum)
_INT_SETTINGS = {
    "INGEST_WINDOW_MINUTES": ("window_minutes", 1, 60),
    "INGEST_OVERLAP_MINUTES": ("overlap_minutes", c.MIN_OVERLAP_MINUTES, 24 * 60),
    "INGEST_SCHEDULE_LAG_SECONDS": ("schedule_lag_seconds", 0, 3600),
    "REALERT_MINUTES": ("realert_minutes", 0, 7 * 24 * 60),
    "ALERT_MAX_AGE_MINUTES": ("alert_max_age_minutes", 1, 30 * 24 * 60),
    "ALERT_SENSOR_INTERVAL_SECONDS": ("sensor_interval_seconds", 5, 3600),
    "SMS_MAX_SEGMENTS": ("sms_max_segments", 1, 10),
}


def load_pipeline_settings(environ: Mapping[str, str] | None = None) -> PipelineSettings:
    """Read the tunables; raise SettingsError naming every malformed variable."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    problems: list[str] = []
    for name, (field, low, high) in _INT_SETTINGS.items():
        raw = environ.get(name, "").strip()
        if not raw:
            continue
        try:
            number = int(raw)
        except ValueError:
            problems.append(f"{name}={raw!r} is not a whole number")
            continue
        if not low <= number <= high:
            problems.append(f"{name}={number} is outside {low}..{high}")
            continue
        values[field] = number
    window = values.get("window_minutes", c.DEFAULT_WINDOW_MINUTES)
    if 60 % window:
        problems.append(f"INGEST_WINDOW_MINUTES={window} does not divide an hour (use 1, 2, 5, 10, 15, 20, 30, 60)")
    raw_start = environ.get("INGEST_PARTITIONS_START", "").strip()
    if raw_start:
        try:
            datetime.strptime(raw_start, c.PARTITION_KEY_FORMAT)
            values["partitions_start"] = raw_start
        except ValueError:
            problems.append(f"INGEST_PARTITIONS_START={raw_start!r} is not of the form YYYY-MM-DD-HH:MM")
    if problems:
        raise SettingsError(problems)
    return PipelineSettings(**values)
