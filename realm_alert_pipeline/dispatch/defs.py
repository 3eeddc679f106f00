"""The dispatch side's Dagster definitions: the `dispatch_alert` job and `alert_dispatch_sensor`.

Resources they need (bind them in definitions.py):
- `mongo`: MongoResource, the primary deployment holding `Alert` and `Error`;
- `sms`: SmsResource (Twilio; unconfigured -> texts recorded as skipped);
- `secondary_mongo`: SecondaryMongoResource (uri None -> the copy is recorded as skipped).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

import dagster as dg

from realm_alert_pipeline.core.timeutil import utc_now
from realm_alert_pipeline.dispatch.job import build_dispatch_job
from realm_alert_pipeline.dispatch.sensor import build_alert_dispatch_sensor
from realm_alert_pipeline.dispatch.tuning import DispatchTuning
from realm_alert_pipeline.settings import PipelineSettings


class DispatchDefs(NamedTuple):
    job: dg.JobDefinition
    sensor: dg.SensorDefinition


def build_dispatch_defs(
    settings: PipelineSettings,
    *,
    clock: Callable[[], datetime] = utc_now,
    tuning: DispatchTuning | None = None,
) -> DispatchDefs:
    """The job and its sensor, bound to `settings` (sensor interval, SMS segment budget).

    `clock` returns aware UTC datetimes (tests move time with it); `tuning` holds retries and backoff.
    """
    tuning = tuning or DispatchTuning()
    job = build_dispatch_job(settings, clock=clock, tuning=tuning)
    sensor = build_alert_dispatch_sensor(job, settings, clock=clock, tuning=tuning)
    return DispatchDefs(job=job, sensor=sensor)
