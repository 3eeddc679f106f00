"""Turning a failed ingest step into an `Error` document and a visible, secret-free Dagster failure."""

from __future__ import annotations

from datetime import datetime

import dagster as dg
from pymongo.errors import PyMongoError

from realm_alert_pipeline.ingest.detect import DetectError
from realm_alert_pipeline.ingest.errors import record_error, stored_session_secrets
from realm_alert_pipeline.ingest.extract import LogWriteError
from realm_alert_pipeline.resources.admin_api import AdminApiConfigError, AdminApiError, AdminApiResource
from realm_alert_pipeline.resources.mongo import MongoResource

# Failures we expect and describe ourselves; anything else is a bug and keeps its traceback.
EXPECTED_FAILURES = (AdminApiError, PyMongoError, LogWriteError, DetectError)


def failure_code(exc: BaseException) -> str:
    if isinstance(exc, AdminApiConfigError):
        return "admin_api_config_error"
    if isinstance(exc, AdminApiError):
        return "admin_api_error"
    if isinstance(exc, PyMongoError | LogWriteError):
        return "mongodb_error"
    if isinstance(exc, DetectError):
        return "detect_error"
    return "unexpected_error"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, AdminApiError | LogWriteError | DetectError):
        return str(exc)
    if isinstance(exc, PyMongoError):
        # str() of a bulk write error holds the documents it was writing: name the failure only.
        code = getattr(exc, "code", None)
        return f"MongoDB {type(exc).__name__}" + (f" (code {code})" if code is not None else "")
    return f"{type(exc).__name__}: {exc}"


def record_step_failure(
    context: dg.AssetExecutionContext,
    exc: BaseException,
    *,
    step: str,
    mongo: MongoResource,
    admin_api: AdminApiResource,
    now: datetime,
) -> dg.Failure:
    """Store the failure in `Error` (scrubbed) and return the dg.Failure to raise in its place."""
    secrets = [admin_api.public_key, admin_api.private_key]
    secrets += stored_session_secrets(admin_api.mongo.get_database(), admin_api.group_id, admin_api.app_id)
    http_status = exc.status if isinstance(exc, AdminApiError) else None
    # record_error never raises: with MongoDB itself down, the failure still reaches Dagster.
    doc = record_error(
        mongo.get_database(),
        date=now,
        code=failure_code(exc),
        message=_describe(exc),
        run_id=context.run_id,
        partition=context.partition_key if context.has_partition_key else None,
        http_status=http_status,
        step=step,
        app_id=admin_api.app_id,
        secrets=secrets,
    )
    metadata = {"code": doc["code"], "step": step}
    if http_status is not None:
        metadata["http_status"] = int(http_status)
    if isinstance(exc, AdminApiError) and exc.error_code:
        metadata["error_code"] = str(exc.error_code)
    context.log.error(f"{step} failed ({doc['code']}): {doc['message']}")
    return dg.Failure(description=f"{step} failed: {doc['message']}", metadata=metadata)
