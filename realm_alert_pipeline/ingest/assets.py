"""The three time-partitioned ingest assets: admin_api_session -> app_services_error_logs -> alerts.

Each returns a MaterializeResult (metadata and check results only): the data lives in MongoDB, never
in Dagster's IO managers, and no token ever leaves the `Control` collection.

All three run in the `app_services_ingest` concurrency pool, whatever launched them (the ingest job, an
asset backfill's implicit job, a manual materialization): dagster.yaml's pool limit keeps two runs from
racing over the Admin API session or the alert grouping, which a run tag on one job cannot promise.
"""

from collections.abc import Callable
from datetime import datetime, timedelta

import dagster as dg

from realm_alert_pipeline.constants import INGEST_GROUP, INGEST_POOL, LOG_COLLECTION, LOG_RETENTION
from realm_alert_pipeline.core.windows import (
    is_beyond_retention,
    query_bounds,
    window_for_partition_key,
)
from realm_alert_pipeline.ingest.checks import ALERT_LOGS_CHECK, STORED_LOGS_CHECK, check_alert_log_ids
from realm_alert_pipeline.ingest.detect import detect_alerts
from realm_alert_pipeline.ingest.errors import error_document, record_errors
from realm_alert_pipeline.ingest.extract import (
    MALFORMED_ENTRY_CODE,
    ExtractStats,
    MalformedEntry,
    extract_window,
)
from realm_alert_pipeline.ingest.failures import EXPECTED_FAILURES, record_step_failure
from realm_alert_pipeline.ingest.summary import alerts_by_type_and_source, errors_by_type_and_source
from realm_alert_pipeline.resources.admin_api import AdminApiResource
from realm_alert_pipeline.resources.mongo import MongoResource
from realm_alert_pipeline.settings import PipelineSettings

RETENTION_WARNING = "window is older than the Admin API's 10-day log retention; nothing can be read"


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _failed(
    context: dg.AssetExecutionContext,
    exc: Exception,
    step: str,
    mongo: MongoResource,
    admin_api: AdminApiResource,
    now: datetime,
) -> Exception:
    """Record the failure in `Error`; what to raise: a clean dg.Failure, or a bug as it is (traceback kept)."""
    failure = record_step_failure(context, exc, step=step, mongo=mongo, admin_api=admin_api, now=now)
    return failure if isinstance(exc, EXPECTED_FAILURES) else exc


def build_ingest_assets(
    settings: PipelineSettings,
    partitions_def: dg.PartitionsDefinition,
    clock: Callable[[], datetime],
) -> tuple[dg.AssetsDefinition, dg.AssetsDefinition, dg.AssetsDefinition]:
    """The token, extract and detect assets for `settings`' windows, reading time from `clock`."""
    overlap = timedelta(minutes=settings.overlap_minutes)
    realert = timedelta(minutes=settings.realert_minutes)
    max_age = timedelta(minutes=settings.alert_max_age_minutes)

    @dg.asset(
        name="admin_api_session",
        partitions_def=partitions_def,
        group_name=INGEST_GROUP,
        pool=INGEST_POOL,
        kinds={"mongodb"},
        description="A valid Admin API session in `Control` (reused, refreshed or new); no token leaves it.",
    )
    def admin_api_session(
        context: dg.AssetExecutionContext, admin_api: AdminApiResource, mongo: MongoResource
    ) -> dg.MaterializeResult:
        try:
            status = admin_api.ensure_session()
        except Exception as exc:
            raise _failed(context, exc, "session", mongo, admin_api, clock()) from None
        context.log.info(f"Admin API session {status.action}, valid until {_iso(status.access_expires_at)}")
        return dg.MaterializeResult(
            metadata={"action": status.action, "access_expires_at": _iso(status.access_expires_at)}
        )

    @dg.asset(
        name="app_services_error_logs",
        partitions_def=partitions_def,
        group_name=INGEST_GROUP,
        pool=INGEST_POOL,
        deps=[admin_api_session],
        kinds={"mongodb"},
        description=(
            "The window's App Services error log entries, stored in `Log` by their own `_id`"
            " (read with an overlap, so late entries land too)."
        ),
        check_specs=[
            dg.AssetCheckSpec(
                STORED_LOGS_CHECK,
                asset="app_services_error_logs",
                blocking=True,
                description=(
                    "`Log` holds exactly the entries read in this run's query bounds: as many documents"
                    " of the app with `started` in the bounds as distinct entries read."
                ),
            )
        ],
    )
    def app_services_error_logs(
        context: dg.AssetExecutionContext, admin_api: AdminApiResource, mongo: MongoResource
    ) -> dg.MaterializeResult:
        window = window_for_partition_key(context.partition_key, settings.window_minutes)
        bounds = query_bounds(window, overlap)
        now = clock()
        metadata: dict[str, object] = {
            "window_start": _iso(window.start),
            "window_end": _iso(window.end),
            "query_start_exclusive": _iso(bounds.start),
            "query_end_inclusive": _iso(bounds.end),
        }
        try:
            db = mongo.get_indexed_database()

            def on_malformed(problems: list[MalformedEntry]) -> None:
                for problem in problems:
                    context.log.warning(f"skipped {problem}")
                record_errors(
                    db,
                    [
                        error_document(
                            date=clock(),
                            code=MALFORMED_ENTRY_CODE,
                            message=str(problem),
                            run_id=context.run_id,
                            partition=context.partition_key,
                            step="extract",
                            app_id=admin_api.app_id,
                            entry_id=problem.entry_id,
                            secrets=[admin_api.public_key, admin_api.private_key],
                        )
                        for problem in problems
                    ],
                )

            if is_beyond_retention(window, now, LOG_RETENTION):
                # The API has deleted everything this old; asking would only cost a call.
                context.log.warning(RETENTION_WARNING)
                metadata["warning"] = RETENTION_WARNING
                stats = ExtractStats()
            else:
                stats = extract_window(
                    pages=admin_api.iter_log_pages(bounds.start, bounds.end, errors_only=True),
                    log_collection=db[LOG_COLLECTION],
                    bounds=bounds,
                    partition_key=context.partition_key,
                    group_id=admin_api.group_id,
                    app_id=admin_api.app_id,
                    clock=clock,
                    on_malformed=on_malformed,
                    retention_cutoff=now - LOG_RETENTION,
                )
        except Exception as exc:
            raise _failed(context, exc, "extract", mongo, admin_api, clock()) from None
        metadata.update(
            pages=stats.pages,
            entries_read=stats.entries_read,
            new=stats.new,
            already_seen=stats.already_seen,
            malformed=stats.malformed,
            errors_by_type_and_source=dg.MetadataValue.md(errors_by_type_and_source(stats.by_type_source)),
        )
        context.log.info(
            f"window {context.partition_key}: {stats.entries_read} entries in {stats.pages} pages,"
            f" {stats.new} new, {stats.already_seen} already seen, {stats.malformed} malformed"
        )
        # Every entry read must be stored. More stored than read loses nothing (entries stored by an earlier
        # read that the API no longer returns): it is reported, and must not silence the alerts.
        check = dg.AssetCheckResult(
            check_name=STORED_LOGS_CHECK,
            passed=stats.stored_in_bounds >= stats.distinct_read,
            metadata={
                "entries_read": stats.distinct_read,
                "stored_in_query_bounds": stats.stored_in_bounds,
                "stored_but_not_returned": max(stats.stored_in_bounds - stats.distinct_read, 0),
            },
        )
        return dg.MaterializeResult(metadata=metadata, check_results=[check])

    @dg.asset(
        name="alerts",
        partitions_def=partitions_def,
        group_name=INGEST_GROUP,
        pool=INGEST_POOL,
        deps=[app_services_error_logs],
        kinds={"mongodb"},
        description=(
            "New errors folded into `Alert` documents, one per fingerprint (pending, or suppressed when"
            " too old to text); re-occurrences update the open alert until the realert interval passes."
        ),
        check_specs=[
            dg.AssetCheckSpec(
                ALERT_LOGS_CHECK,
                asset="alerts",
                description="Every alert created or updated in this run names only log ids stored in `Log`.",
            )
        ],
    )
    def alerts(
        context: dg.AssetExecutionContext, admin_api: AdminApiResource, mongo: MongoResource
    ) -> dg.MaterializeResult:
        try:
            db = mongo.get_indexed_database()
            stats = detect_alerts(
                db,
                app_id=admin_api.app_id,
                partition_key=context.partition_key,
                now=clock(),
                realert=realert,
                max_age=max_age,
            )
            report = check_alert_log_ids(db, stats.touched)
        except Exception as exc:
            raise _failed(context, exc, "detect", mongo, admin_api, clock()) from None
        context.log.info(
            f"{stats.logs_detected} new errors: {stats.alerts_created} alerts created,"
            f" {stats.alerts_updated} updated, {stats.alerts_suppressed} suppressed"
        )
        check_metadata: dict[str, object] = {
            "alerts_checked": report.alerts_checked,
            "log_ids_checked": report.log_ids_checked,
            "missing_log_ids": report.missing,
        }
        if report.missing_sample:
            check_metadata["missing_sample"] = ", ".join(report.missing_sample)
        return dg.MaterializeResult(
            metadata={
                "logs_detected": stats.logs_detected,
                "batches": stats.batches,
                "alerts_created": stats.alerts_created,
                "alerts_updated": stats.alerts_updated,
                "alerts_suppressed": stats.alerts_suppressed,
                "batches_already_applied": stats.batches_already_applied,
                "alerts_by_type_and_source": dg.MetadataValue.md(alerts_by_type_and_source(stats.touched)),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=ALERT_LOGS_CHECK, passed=report.passed, metadata=check_metadata
                )
            ],
        )

    return admin_api_session, app_services_error_logs, alerts
