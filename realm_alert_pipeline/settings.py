"""Environment variables -> typed settings, validated once, every problem reported by variable name."""

from __future__ import annotations

import os
import re
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
        problems.append(
            f"INGEST_WINDOW_MINUTES={window} does not divide an hour (use 1, 2, 5, 10, 15, 20, 30, 60)"
        )
    raw_start = environ.get("INGEST_PARTITIONS_START", "").strip()
    if raw_start:
        try:
            start = datetime.strptime(raw_start, c.PARTITION_KEY_FORMAT)
        except ValueError:
            problems.append(f"INGEST_PARTITIONS_START={raw_start!r} is not of the form YYYY-MM-DD-HH:MM")
        else:
            if window and (start.hour * 60 + start.minute) % window:
                problems.append(
                    f"INGEST_PARTITIONS_START={raw_start!r} is not on the {window}-minute window grid"
                )
            values["partitions_start"] = raw_start
    if problems:
        raise SettingsError(problems)
    settings = PipelineSettings(**values)
    # An error is first seen up to a window, its overlap and the schedule lag after it happened.
    first_seen_within = (
        settings.window_minutes + settings.overlap_minutes + settings.schedule_lag_seconds / 60
    )
    if settings.alert_max_age_minutes <= first_seen_within:
        raise SettingsError(
            [
                f"ALERT_MAX_AGE_MINUTES={settings.alert_max_age_minutes} must exceed INGEST_WINDOW_MINUTES"
                f" + INGEST_OVERLAP_MINUTES + INGEST_SCHEDULE_LAG_SECONDS/60 = {first_seen_within:g} minutes,"
                " or fresh errors would be stored as suppressed and never texted"
            ]
        )
    return settings


_HEX24 = re.compile(r"^[0-9a-f]{24}$")


@dataclass(frozen=True)
class DeploymentSettings:
    """Which optional parts are configured; the values themselves reach resources through EnvVar."""

    twilio_configured: bool
    secondary_configured: bool


def load_deployment_settings(environ: Mapping[str, str] | None = None) -> DeploymentSettings:
    """Check the deployment's variables (section 6 of the design); raise SettingsError naming each problem.

    Secrets are only checked for presence; no value of a secret appears in a message.
    """
    environ = os.environ if environ is None else environ
    get = lambda name: environ.get(name, "").strip()  # noqa: E731
    problems: list[str] = []
    for name in (
        "ATLAS_PUBLIC_KEY",
        "ATLAS_PRIVATE_KEY",
        "APP_SERVICES_GROUP_ID",
        "APP_SERVICES_APP_ID",
        "MONGODB_URI",
    ):
        if not get(name):
            problems.append(f"{name} is not set")
    for name in ("APP_SERVICES_GROUP_ID", "APP_SERVICES_APP_ID"):
        value = get(name)
        if value and not _HEX24.match(value):
            hint = (
                " (use the app's internal 24-hex _id, not its client App ID)"
                if name.endswith("APP_ID")
                else ""
            )
            problems.append(f"{name}={value!r} is not a 24-character lower-case hex id{hint}")
    for name in ("MONGODB_URI", "SECONDARY_MONGODB_URI"):
        value = get(name)
        if value and not value.startswith(("mongodb://", "mongodb+srv://")):
            problems.append(f"{name} does not start with mongodb:// or mongodb+srv://")
    base_url = get("ADMIN_API_BASE_URL")
    if base_url and not base_url.startswith(("http://", "https://")):
        problems.append(f"ADMIN_API_BASE_URL={base_url!r} is not an http(s) URL")

    twilio_settings = sms_settings_from_env(environ)
    if twilio_settings:
        from realm_alert_pipeline.resources.sms import SmsResource

        try:
            problems += SmsResource(**twilio_settings).config_problems()
        except ValueError as exc:  # pydantic rejects a malformed TWILIO_TIMEOUT_S before any check runs
            problems.append(
                f"TWILIO_TIMEOUT_S={twilio_settings.get('timeout_s')!r} is not a number ({type(exc).__name__})"
            )
    if problems:
        raise SettingsError(problems)
    return DeploymentSettings(
        twilio_configured=bool(twilio_settings),
        secondary_configured=bool(get("SECONDARY_MONGODB_URI")),
    )


def sms_settings_from_env(environ: Mapping[str, str]) -> dict[str, str]:
    """SmsResource fields that the environment sets (empty: SMS is not configured)."""
    from realm_alert_pipeline.resources.sms import ENV_VARS

    return {field: environ[name].strip() for field, name in ENV_VARS.items() if environ.get(name, "").strip()}
