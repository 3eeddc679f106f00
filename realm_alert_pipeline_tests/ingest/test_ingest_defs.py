"""The ingest definitions the lead wires into definitions.py: three partitioned assets in lineage with
their checks, the `ingest_error_logs` job with its tags, the schedule, and clear errors for bad settings."""

import dagster as dg
import pytest

from realm_alert_pipeline.constants import INGEST_GROUP, INGEST_JOB
from realm_alert_pipeline.ingest import IngestDefs, build_ingest_defs
from realm_alert_pipeline.local.admin_api_emulator import DEMO_APP_ID, DEMO_GROUP_ID
from realm_alert_pipeline.resources.admin_api import AdminApiResource
from realm_alert_pipeline.resources.mongo import MongoResource
from realm_alert_pipeline.settings import PipelineSettings


@pytest.fixture(scope="module")
def ingest() -> IngestDefs:
    return build_ingest_defs(PipelineSettings(), tags={"realm_alert_pipeline/app": "demo"})


def test_three_partitioned_assets_in_lineage_with_their_checks(ingest):
    keys = [a.key for a in ingest.assets]
    assert keys == [
        dg.AssetKey("admin_api_session"),
        dg.AssetKey("app_services_error_logs"),
        dg.AssetKey("alerts"),
    ]
    assert ingest.app_services_error_logs.asset_deps[keys[1]] == {keys[0]}
    assert ingest.alerts.asset_deps[keys[2]] == {keys[1]}
    for asset in ingest.assets:
        assert asset.group_names_by_key[asset.key] == INGEST_GROUP
        assert asset.partitions_def == ingest.partitions_def
        assert {"admin_api", "mongo"} <= asset.required_resource_keys
    checks = {(k.asset_key.path[-1], k.name) for a in ingest.assets for k in a.check_keys}
    assert checks == {
        ("app_services_error_logs", "stored_logs_match_read"),
        ("alerts", "alert_log_ids_exist"),
    }


def test_partitions_are_ten_minute_utc_windows_from_the_configured_start(ingest):
    partitions = ingest.partitions_def
    assert partitions.fmt == "%Y-%m-%d-%H:%M"
    assert partitions.timezone == "UTC"
    assert partitions.cron_schedule == "*/10 * * * *"
    assert partitions.get_first_partition_key() == "2026-11-01-00:00"


def test_the_job_and_schedule_load_in_definitions_with_real_resources(ingest, mongo):
    resources = {
        "admin_api": AdminApiResource(
            public_key="pk", private_key="sk", group_id=DEMO_GROUP_ID, app_id=DEMO_APP_ID, mongo=mongo
        ),
        "mongo": mongo,
    }
    defs = ingest.definitions(resources)
    job = defs.resolve_job_def(INGEST_JOB)
    assert job.tags["realm_alert_pipeline/app"] == "demo"
    assert {n.name for n in job.nodes} == {"admin_api_session", "app_services_error_logs", "alerts"}
    assert defs.resolve_schedule_def("ingest_schedule").job_name == INGEST_JOB
    assert isinstance(resources["mongo"], MongoResource)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        (PipelineSettings(overlap_minutes=4), "overlap_minutes=4 is below 5"),
        (PipelineSettings(window_minutes=7), "divide 60"),
        (PipelineSettings(partitions_start="2026-11-01-00:05"), "boundary"),
        (PipelineSettings(partitions_start="yesterday"), "YYYY-MM-DD-HH:MM"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(settings, problem):
    with pytest.raises(ValueError, match=problem):
        build_ingest_defs(settings)


@pytest.mark.parametrize(("minutes", "cron"), [(60, "0 * * * *"), (5, "*/5 * * * *")])
def test_other_window_sizes(minutes, cron):
    ingest = build_ingest_defs(PipelineSettings(window_minutes=minutes, partitions_start="2026-11-01-00:00"))
    assert ingest.partitions_def.cron_schedule == cron
