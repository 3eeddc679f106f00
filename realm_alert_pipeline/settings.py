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
            datetime.strptime(raw_start, c.PARTITION_KEY_FORMAT)
            values["partitions_start"] = raw_start
        except ValueError:
            problems.append(f"INGEST_PARTITIONS_START={raw_start!r} is not of the form YYYY-MM-DD-HH:MM")
    if problems:
        raise SettingsError(problems)
    return PipelineSettings(**values)


_HEX24 = re.compile(r"^[0-9a-f]{24}$")
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_API_KEY_SID = re.compile(r"^SK[0-9a-fA-F]{32}$")
_MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")


@dataclass(frozen=True)
class DeploymentSettings:
    """Which optional parts are configured; the values themselves reach resources through EnvVar."""

    twilio_configured: bool
    twilio_uses_api_key: bool
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
    for name in ("ADMIN_API_BASE_URL", "TWILIO_API_BASE_URL"):
        value = get(name)
        if value and not value.startswith(("http://", "https://")):
            problems.append(f"{name}={value!r} is not an http(s) URL")

    twilio_names = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY_SID", "TWILIO_API_KEY_SECRET",
                    "TWILIO_FROM_NUMBER", "TWILIO_MESSAGING_SERVICE_SID", "ALERT_SMS_TO")  # fmt: skip
    twilio_configured = any(get(name) for name in twilio_names)
    uses_api_key = bool(get("TWILIO_API_KEY_SID"))
    if twilio_configured:
        problems += _twilio_problems(get, uses_api_key)
    if problems:
        raise SettingsError(problems)
    return DeploymentSettings(
        twilio_configured=twilio_configured,
        twilio_uses_api_key=uses_api_key,
        secondary_configured=bool(get("SECONDARY_MONGODB_URI")),
    )


def _twilio_problems(get, uses_api_key: bool) -> list[str]:
    problems = []
    sid = get("TWILIO_ACCOUNT_SID")
    if not sid:
        problems.append("TWILIO_ACCOUNT_SID is not set (needed once any TWILIO_* or ALERT_SMS_TO is set)")
    elif not _ACCOUNT_SID.match(sid):
        problems.append(f"TWILIO_ACCOUNT_SID={sid!r} is not 'AC' followed by 32 hex digits")
    if uses_api_key:
        if not _API_KEY_SID.match(get("TWILIO_API_KEY_SID")):
            problems.append("TWILIO_API_KEY_SID is not 'SK' followed by 32 hex digits")
        if not get("TWILIO_API_KEY_SECRET"):
            problems.append("TWILIO_API_KEY_SECRET is not set (needed with TWILIO_API_KEY_SID)")
    elif not get("TWILIO_AUTH_TOKEN"):
        problems.append("TWILIO_AUTH_TOKEN is not set (or use TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET)")
    sender, service = get("TWILIO_FROM_NUMBER"), get("TWILIO_MESSAGING_SERVICE_SID")
    if bool(sender) == bool(service):
        problems.append("set exactly one of TWILIO_FROM_NUMBER and TWILIO_MESSAGING_SERVICE_SID")
    if service and not _MESSAGING_SERVICE_SID.match(service):
        problems.append(f"TWILIO_MESSAGING_SERVICE_SID={service!r} is not 'MG' followed by 32 hex digits")
    recipients = get("ALERT_SMS_TO")
    if not recipients:
        problems.append("ALERT_SMS_TO is not set (comma-separated E.164 numbers, e.g. +14155550100)")
    else:
        from realm_alert_pipeline.resources.sms import SmsConfigError, validate_recipients

        try:
            validate_recipients(recipients)
        except SmsConfigError as exc:
            problems.append(str(exc))
    return problems
