"""Two ingest runs never run their steps at the same time, whichever way they were launched: the three
assets share the `app_services_ingest` concurrency pool, so a run of an asset backfill (Dagster's
implicit asset job, which carries none of the ingest job's run tags) waits for a free slot too."""

import threading
from datetime import timedelta

import dagster as dg

from realm_alert_pipeline.constants import INGEST_POOL
from realm_alert_pipeline.ingest import build_ingest_defs
from realm_alert_pipeline.local.admin_api_emulator import DEMO_APP_ID, DEMO_GROUP_ID
from realm_alert_pipeline.resources.admin_api import AdminApiResource
from realm_alert_pipeline.resources.mongo import MongoResource
from realm_alert_pipeline.settings import PipelineSettings
from realm_alert_pipeline_tests.ingest.helpers import IngestRunner, storm
from realm_alert_pipeline_tests.waiting import wait_until


def test_every_ingest_step_is_in_the_pool_in_the_job_and_in_a_backfills_implicit_job():
    ingest = build_ingest_defs(PipelineSettings())
    for asset in ingest.assets:
        assert asset.op.pool == INGEST_POOL
    mongo = MongoResource(uri="mongodb://127.0.0.1:9")  # never contacted: only the definitions are built
    admin_api = AdminApiResource(
        public_key="pk", private_key="sk", group_id=DEMO_GROUP_ID, app_id=DEMO_APP_ID, mongo=mongo
    )
    definitions = ingest.definitions({"admin_api": admin_api, "mongo": mongo})
    for job in (
        definitions.resolve_job_def(ingest.job.name),
        definitions.resolve_implicit_global_asset_job_def(),
    ):
        assert {node.name: node.definition.pool for node in job.nodes} == {
            "admin_api_session": INGEST_POOL,
            "app_services_error_logs": INGEST_POOL,
            "alerts": INGEST_POOL,
        }


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    wait_until(condition, timeout=timeout, what=what)


def test_an_ingest_run_waits_while_another_run_holds_the_pool(admin_api_emulator, mongo, window, clock):
    with dg.instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 1}}}) as instance:
        runner = IngestRunner(admin_api_emulator, mongo, instance, clock)
        admin_api_emulator.add_logs(storm(window.start + timedelta(minutes=1), 3))
        storage = instance.event_log_storage
        storage.set_concurrency_slots(INGEST_POOL, 1)
        assert storage.claim_concurrency_slot(INGEST_POOL, "other-run", "alerts").is_claimed
        results = []
        run = threading.Thread(target=lambda: results.append(runner.run(window)), daemon=True)
        run.start()

        wait_for(lambda: storage.get_concurrency_info(INGEST_POOL).pending_step_count == 1, "a waiting step")
        assert run.is_alive() and runner.logs.count_documents({}) == 0

        storage.free_concurrency_slot_for_step("other-run", "alerts")
        run.join(timeout=60)

        assert not run.is_alive() and results[0].success
        assert runner.logs.count_documents({}) == 3
        assert storage.get_concurrency_info(INGEST_POOL).active_slot_count == 0
