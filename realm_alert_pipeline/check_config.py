"""`realm-alerts check-config`: is the environment of a real deployment usable? One line per item, no secret."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TextIO

from realm_alert_pipeline import constants as c
from realm_alert_pipeline.settings import (
    SettingsError,
    load_deployment_settings,
    load_pipeline_settings,
    sms_settings_from_env,
)

OK, FAIL, SKIP = "ok", "FAIL", "skip"


def run_check_config(environ: Mapping[str, str] | None = None, out: TextIO = sys.stdout) -> int:
    """Print a verdict per item; exit status 1 when anything failed."""
    environ = dict(os.environ if environ is None else environ)
    results: list[tuple[str, str, str]] = []
    deployment = _check_settings(environ, results)
    if deployment is not None:
        _probe("Admin API", lambda: _check_admin_api(environ), results)
        _probe("primary MongoDB", lambda: _ping_mongo(environ["MONGODB_URI"], _primary_db(environ)), results)
        if deployment.secondary_configured:
            _probe(
                "secondary MongoDB",
                lambda: _ping_mongo(environ["SECONDARY_MONGODB_URI"], _secondary_db(environ)),
                results,
            )
        else:
            results.append((SKIP, "secondary MongoDB", "SECONDARY_MONGODB_URI is not set: no copy is made"))
        if deployment.twilio_configured:
            _probe("Twilio", lambda: _check_twilio(environ), results)
        else:
            results.append((SKIP, "Twilio", "no TWILIO_* variable is set: alerts are stored but not texted"))
    for verdict, item, detail in results:
        print(f"[{verdict:>4}] {item}: {detail}", file=out)
    failed = sum(verdict == FAIL for verdict, _, _ in results)
    print(f"{failed} problem(s) found" if failed else "configuration looks usable", file=out)
    return 1 if failed else 0


def _check_settings(environ: Mapping[str, str], results: list):
    deployment = None
    problems: list[str] = []
    try:
        load_pipeline_settings(environ)
    except SettingsError as exc:
        problems += exc.problems
    try:
        deployment = load_deployment_settings(environ)
    except SettingsError as exc:
        problems += exc.problems
    for problem in problems:
        results.append((FAIL, "environment", problem))
    if not problems:
        results.append((OK, "environment", "every variable is set and well-formed"))
    return deployment if not problems else None


def _probe(item: str, check: Callable[[], str], results: list) -> None:
    try:
        results.append((OK, item, check()))
    except Exception as exc:  # every failure becomes one line naming the item
        detail = str(exc).split(", Timeout:")[0]  # pymongo appends its whole topology description
        results.append((FAIL, item, f"{type(exc).__name__}: {detail[:300]}"))


def _primary_db(environ: Mapping[str, str]) -> str:
    return environ.get("MONGODB_DATABASE") or c.DEFAULT_DATABASE


def _secondary_db(environ: Mapping[str, str]) -> str:
    return environ.get("SECONDARY_MONGODB_DATABASE") or c.DEFAULT_SECONDARY_DATABASE


def _ping_mongo(uri: str, database: str) -> str:
    from realm_alert_pipeline.resources.mongo import mongo_client

    mongo_client(uri, timeout_ms=5_000)[database].command("ping")
    return f"answered ping (database {database})"


def _check_admin_api(environ: Mapping[str, str]) -> str:
    from realm_alert_pipeline.resources.admin_api import AdminApiResource
    from realm_alert_pipeline.resources.mongo import MongoResource

    resource = AdminApiResource(
        public_key=environ["ATLAS_PUBLIC_KEY"],
        private_key=environ["ATLAS_PRIVATE_KEY"],
        group_id=environ["APP_SERVICES_GROUP_ID"],
        app_id=environ["APP_SERVICES_APP_ID"],
        base_url=environ.get("ADMIN_API_BASE_URL") or c.DEFAULT_ADMIN_API_BASE_URL,
        mongo=MongoResource(uri=environ["MONGODB_URI"], database=_primary_db(environ)),
        max_attempts=2,
    )
    resource.check_login()
    now = datetime.now(UTC)
    next(resource.iter_log_pages(now - timedelta(minutes=10), now, errors_only=True), [])  # one page at most
    return f"login accepted; logs of app {environ['APP_SERVICES_APP_ID']} readable"


def _check_twilio(environ: Mapping[str, str]) -> str:
    from realm_alert_pipeline.resources.sms import SmsResource

    sms = SmsResource(**sms_settings_from_env(environ))
    numbers = sms.recipient_numbers()
    sms.check_account()
    return f"account {environ['TWILIO_ACCOUNT_SID']} answered; {len(numbers)} recipient(s) valid"
