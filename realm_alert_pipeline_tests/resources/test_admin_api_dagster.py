"""The Admin API resource inside real Dagster runs: keys bound through EnvVar, the session shared through Control
between runs (one login for two runs), and no key or token in the run's config or event log."""

from datetime import timedelta

import dagster as dg

from realm_alert_pipeline.constants import CONTROL_COLLECTION
from realm_alert_pipeline.local.admin_api_emulator import (
    DEMO_APP_ID,
    DEMO_GROUP_ID,
    DEMO_PRIVATE_KEY,
    DEMO_PUBLIC_KEY,
)
from realm_alert_pipeline.resources.admin_api import AdminApiResource
from realm_alert_pipeline_tests.resources.admin_api_helpers import log_entry, recent


@dg.asset
def recent_error_count(
    context: dg.AssetExecutionContext, admin_api: AdminApiResource
) -> dg.MaterializeResult:
    status = admin_api.ensure_session()
    end = recent(0)
    count = sum(1 for _ in admin_api.iter_error_logs(end - timedelta(hours=1), end))
    context.log.info(f"session {status.action}, {count} errors; resource {admin_api!r}")
    return dg.MaterializeResult(metadata={"errors": count, "session": status.action})


def test_two_runs_share_one_login_and_leak_nothing(admin_api_emulator, mongo, monkeypatch):
    end = recent(5)
    admin_api_emulator.add_logs([log_entry(end - timedelta(seconds=k)) for k in range(120)])
    monkeypatch.setenv("ATLAS_PUBLIC_KEY", DEMO_PUBLIC_KEY)
    monkeypatch.setenv("ATLAS_PRIVATE_KEY", DEMO_PRIVATE_KEY)
    resource = AdminApiResource(
        public_key=dg.EnvVar("ATLAS_PUBLIC_KEY"),
        private_key=dg.EnvVar("ATLAS_PRIVATE_KEY"),
        group_id=DEMO_GROUP_ID,
        app_id=DEMO_APP_ID,
        mongo=mongo,
        base_url=admin_api_emulator.base_url,
        backoff_base_s=0.01,
    )

    with dg.instance_for_test() as instance:
        results = [
            dg.materialize([recent_error_count], resources={"admin_api": resource}, instance=instance)
            for _ in range(2)
        ]
        records = instance.get_event_records(
            dg.EventRecordsFilter(event_type=dg.DagsterEventType.STEP_SUCCESS)
        )
        assert len(records) == 2
        runs = [instance.get_run_by_id(result.run_id) for result in results]
        event_logs = [instance.all_logs(result.run_id) for result in results]

    assert all(result.success for result in results)
    metadata = [
        result.asset_materializations_for_node("recent_error_count")[0].metadata for result in results
    ]
    assert [m["errors"].value for m in metadata] == [120, 120]
    assert [m["session"].value for m in metadata] == ["logged_in", "reused"]
    assert admin_api_emulator.login_count == 1

    doc = mongo.get_database()[CONTROL_COLLECTION].find_one()
    secrets = {DEMO_PUBLIC_KEY, DEMO_PRIVATE_KEY, doc["access_token"], doc["refresh_token"]}
    dumped = "\n".join(
        [str(run.run_config) for run in runs]
        + [repr(event) for events in event_logs for event in events]
        + [event.message or "" for events in event_logs for event in events]
    )
    assert "session logged_in, 120 errors" in dumped
    assert [secret[:8] for secret in secrets if secret in dumped] == []
