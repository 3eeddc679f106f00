"""Alert documents and resources for the dispatch tests."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

from bson import ObjectId

from realm_alert_pipeline.core.timeutil import to_bson_precision
from realm_alert_pipeline.dispatch.defs import build_dispatch_defs
from realm_alert_pipeline.dispatch.tuning import DispatchTuning
from realm_alert_pipeline.local.twilio_emulator import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, DEMO_FROM_NUMBER
from realm_alert_pipeline.resources.sms import SmsResource
from realm_alert_pipeline.settings import PipelineSettings

# Valid mobile numbers (phonenumbers agrees) that the emulator accepts, and the magic failing ones.
ALICE = "+14155550100"
BOB = "+447911123456"
CAROL = "+4915112345678"
INVALID_TO = "+15005550001"  # 21211
UNSUBSCRIBED_TO = "+15005550004"  # 21610
NOT_MOBILE_TO = "+15005550009"  # 21614

# Small delays so retries cost milliseconds; the production defaults are in DispatchTuning().
FAST = DispatchTuning(
    send_attempts=3,
    send_backoff_s=0.01,
    send_backoff_cap_s=0.05,
    reconcile_recheck_s=0.05,
    op_max_retries=2,
    op_retry_delay_s=0.01,
)


def make_alert(created_at: datetime | None = None, **overrides) -> dict:
    """An Alert document as the ingest detect step writes it (the team brief's contract)."""
    created = to_bson_precision(created_at or datetime.now(UTC))
    started = created - timedelta(minutes=2)
    doc = {
        "_id": ObjectId(),
        "refId": "6750f1a2b3c4d5e6f7a8b9c0",
        "co_id": "6750f1a2b3c4d5e6f7a8b9c1",
        "app_id": "6512a41b2c3d4e5f6a7b8c9d",
        "group_id": "5f1e2d3c4b5a697887766554",
        "started": started.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "completed": started.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "error": "TypeError: Cannot access member 'total' of undefined",
        "processed": {"date": None, "alerted": False},
        "type": "FUNCTION",
        "error_code": "FunctionExecutionError",
        "source": "checkoutCart",
        "fingerprint": "9f2c4e1a7b3d5f60",
        "count": 3,
        "first_seen": started,
        "last_seen": started,
        "log_ids": ["6750f1a2b3c4d5e6f7a8b9c0"],
        "state": "pending",
        "window": started.strftime("%Y-%m-%d-%H:00"),
        "created_at": created,
        "updated_at": created,
        "since_last_alert": 0,
        "covers_since_last_alert": 0,
        "deliveries": [],
        "secondary": None,
    }
    doc.update(overrides)
    return doc


def emulator_sms(emulator, recipients: str, **overrides) -> SmsResource:
    """An SmsResource with the emulator's demo account, talking to it over HTTP."""
    fields = dict(
        account_sid=DEMO_ACCOUNT_SID,
        auth_token=DEMO_AUTH_TOKEN,
        from_number=DEMO_FROM_NUMBER,
        recipients=recipients,
        api_base_url=emulator.base_url,
        timeout_s=2.0,
    )
    fields.update(overrides)
    return SmsResource(**fields)


def closed_port_uri(credentials: str = "") -> str:
    """A MongoDB URI on a local port nothing listens on (connection refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    userinfo = f"{credentials}@" if credentials else ""
    return f"mongodb://{userinfo}127.0.0.1:{port}/?serverSelectionTimeoutMS=300&connectTimeoutMS=300"


# The dispatch job with test tuning, and one real run of it for an alert.
JOB = build_dispatch_defs(PipelineSettings(), tuning=FAST).job


def dispatch(instance, mongo, sms, secondary, alert_id, *, job=JOB, raise_on_error=True):
    return job.execute_in_process(
        run_config={"alert_id": str(alert_id)},
        resources={"mongo": mongo, "sms": sms, "secondary_mongo": secondary},
        instance=instance,
        raise_on_error=raise_on_error,
    )


T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


class Clock:
    """The dispatch side's notion of now, moved by the test."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
