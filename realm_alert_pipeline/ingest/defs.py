"""build_ingest_defs(): the ingest job's Dagster definitions for one set of settings and one clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from realm_alert_pipeline.constants import INGEST_JOB, MIN_OVERLAP_MINUTES, PARTITION_KEY_FORMAT
from realm_alert_pipeline.core.timeutil import utc_now
from realm_alert_pipeline.core.windows import partitions_cron, window_for_partition_key
from realm_alert_pipeline.ingest.assets import build_ingest_assets
from realm_alert_pipeline.ingest.schedule import build_ingest_schedule
from realm_alert_pipeline.settings import PipelineSettings


@dataclass(frozen=True)
class IngestDefs:
    """What the ingest side contributes to the project's Definitions.

    The asset checks ride on the assets (check_specs), so `asset_checks` is empty and needs no wiring.
    Resources expected: `admin_api` (AdminApiResource) and `mongo` (MongoResource, the primary).
    """

    partitions_def: dg.TimeWindowPartitionsDefinition
    admin_api_session: dg.AssetsDefinition
    app_services_error_logs: dg.AssetsDefinition
    alerts: dg.AssetsDefinition
    job: UnresolvedAssetJobDefinition
    schedule: dg.ScheduleDefinition
    asset_checks: tuple[dg.AssetChecksDefinition, ...] = ()

    @property
    def assets(self) -> list[dg.AssetsDefinition]:
        return [self.admin_api_session, self.app_services_error_logs, self.alerts]

    @property
    def jobs(self) -> list[UnresolvedAssetJobDefinition]:
        return [self.job]

    @property
    def schedules(self) -> list[dg.ScheduleDefinition]:
        return [self.schedule]

    def definitions(self, resources: Mapping[str, object] | None = None) -> dg.Definitions:
        """A Definitions of just the ingest side (tests; definitions.py merges the pieces itself)."""
        return dg.Definitions(
            assets=self.assets,
            asset_checks=list(self.asset_checks),
            jobs=self.jobs,
            schedules=self.schedules,
            resources=dict(resources or {}),
        )


def ingest_partitions_def(settings: PipelineSettings) -> dg.TimeWindowPartitionsDefinition:
    """UTC windows of settings.window_minutes from settings.partitions_start, keyed "%Y-%m-%d-%H:%M"."""
    window_for_partition_key(settings.partitions_start, settings.window_minutes)  # on the grid, or raise
    return dg.TimeWindowPartitionsDefinition(
        start=settings.partitions_start,
        fmt=PARTITION_KEY_FORMAT,
        cron_schedule=partitions_cron(settings.window_minutes),
        timezone="UTC",
    )


def build_ingest_defs(
    settings: PipelineSettings,
    *,
    clock: Callable[[], datetime] = utc_now,
    tags: dict[str, str] | None = None,
) -> IngestDefs:
    """The partitioned assets (with their checks), the `ingest_error_logs` job and `ingest_schedule`.

    `clock` is the pipeline's idea of now (alert age, realert interval, retention, timestamps);
    `tags` go on every run of the job.
    """
    if settings.overlap_minutes < MIN_OVERLAP_MINUTES:
        raise ValueError(
            f"overlap_minutes={settings.overlap_minutes} is below {MIN_OVERLAP_MINUTES}: late entries would be lost"
        )
    partitions_def = ingest_partitions_def(settings)
    session, logs, alerts = build_ingest_assets(settings, partitions_def, clock)
    job = dg.define_asset_job(
        name=INGEST_JOB,
        selection=dg.AssetSelection.assets(session, logs, alerts),
        partitions_def=partitions_def,
        tags=dict(tags or {}),
        description="Pull one window of App Services error logs, store them, and turn new errors into alerts.",
    )
    return IngestDefs(
        partitions_def=partitions_def,
        admin_api_session=session,
        app_services_error_logs=logs,
        alerts=alerts,
        job=job,
        schedule=build_ingest_schedule(settings, job, logs_asset_key=logs.key),
    )
