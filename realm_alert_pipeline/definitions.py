"""The project's single Definitions: wiring only.

Secrets and URIs reach the resources as EnvVar (resolved when a run starts, never shown as values in the UI
or run config). Which optional parts exist (Twilio, the secondary copy) and the tunables are read once at
load time, and a missing or malformed variable stops the load with a message naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

from realm_alert_pipeline import constants as c
from realm_alert_pipeline.dispatch.defs import build_dispatch_defs
from realm_alert_pipeline.ingest import build_ingest_defs
from realm_alert_pipeline.resources.admin_api import AdminApiResource
from realm_alert_pipeline.resources.mongo import MongoResource
from realm_alert_pipeline.resources.secondary_mongo import SecondaryMongoResource
from realm_alert_pipeline.resources.sms import ENV_VARS as SMS_ENV_VARS
from realm_alert_pipeline.resources.sms import SmsResource
from realm_alert_pipeline.settings import (
    load_deployment_settings,
    load_pipeline_settings,
    sms_settings_from_env,
)

INGEST_MAX_RUNTIME_S = 30 * 60
# Not secret, and needed before any run: read at load time. Everything else is an EnvVar.
_PLAIN_SMS_FIELDS = {"timeout_s"}


def build_definitions(environ: Mapping[str, str] | None = None) -> dg.Definitions:
    environ = os.environ if environ is None else environ
    settings = load_pipeline_settings(environ)
    deployment = load_deployment_settings(environ)
    ingest = build_ingest_defs(
        settings,
        tags={
            c.APP_TAG: environ["APP_SERVICES_APP_ID"].strip(),
            c.MAX_RUNTIME_TAG: str(INGEST_MAX_RUNTIME_S),
        },
    )
    dispatch = build_dispatch_defs(settings)

    mongo = MongoResource(
        uri=dg.EnvVar("MONGODB_URI"), database=environ.get("MONGODB_DATABASE") or c.DEFAULT_DATABASE
    )
    return dg.Definitions(
        assets=ingest.assets,
        asset_checks=list(ingest.asset_checks),
        jobs=[ingest.job, dispatch.job],
        schedules=[ingest.schedule],
        sensors=[dispatch.sensor],
        # Both jobs are short and I/O-bound: a process per step would cost more than the work.
        executor=dg.in_process_executor,
        resources={
            "mongo": mongo,
            "admin_api": AdminApiResource(
                public_key=dg.EnvVar("ATLAS_PUBLIC_KEY"),
                private_key=dg.EnvVar("ATLAS_PRIVATE_KEY"),
                group_id=dg.EnvVar("APP_SERVICES_GROUP_ID"),
                app_id=dg.EnvVar("APP_SERVICES_APP_ID"),
                base_url=environ.get("ADMIN_API_BASE_URL") or c.DEFAULT_ADMIN_API_BASE_URL,
                mongo=mongo,
            ),
            "secondary_mongo": SecondaryMongoResource(
                uri=dg.EnvVar("SECONDARY_MONGODB_URI") if deployment.secondary_configured else None,
                database=environ.get("SECONDARY_MONGODB_DATABASE") or c.DEFAULT_SECONDARY_DATABASE,
                collection=environ.get("SECONDARY_MONGODB_COLLECTION") or c.DEFAULT_SECONDARY_COLLECTION,
            ),
            "sms": SmsResource(**_sms_fields(environ)),
        },
    )


def _sms_fields(environ: Mapping[str, str]) -> dict:
    """Only the variables that are set: an unset optional field stays None (SMS then recorded as skipped)."""
    return {
        field: value if field in _PLAIN_SMS_FIELDS else dg.EnvVar(SMS_ENV_VARS[field])
        for field, value in sms_settings_from_env(environ).items()
    }


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
