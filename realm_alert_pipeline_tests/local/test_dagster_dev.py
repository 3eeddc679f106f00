"""The user's path: `dagster dev` (webserver + daemon) on the local stack, asked through GraphQL as the UI asks.

A run launched from the UI ingests a window; the daemon's sensor then launches a dispatch run for the alerts
it produced, and the UI's queries show the job, the schedule, the sensor, a finished run of each job, and the
partitions of the log asset.
"""

import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import requests
from dagster_graphql import DagsterGraphQLClient

from realm_alert_pipeline import constants as c
from realm_alert_pipeline.local.stack import PROJECT_ROOT, LocalStack
from realm_alert_pipeline_tests.waiting import wait_until

pytestmark = pytest.mark.slow

STARTUP_DEADLINE_S = 180
RUN_DEADLINE_S = 240

UI_QUERY = """
{
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes {
        jobs { name }
        schedules { name scheduleState { status } }
        sensors { name sensorState { status } }
      }
    }
  }
  assetNodeOrError(assetKey: {path: ["app_services_error_logs"]}) {
    ... on AssetNode {
      partitionKeys
      partitionStats { numPartitions numFailed }
      assetPartitionStatuses { ... on TimePartitionStatuses { ranges { status startKey endKey } } }
      assetChecksOrError { ... on AssetChecks { checks { name } } }
    }
  }
}
"""

RUNS_QUERY = """
query Runs($job: String!) {
  runsOrError(filter: {pipelineName: $job, statuses: [SUCCESS]}) {
    ... on Runs { results { runId status tags { key value } } }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(condition, deadline_s: float, what: str):
    return wait_until(condition, timeout=deadline_s, what=what, poll=1.0)


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory):
    """The local stack and `dagster dev` on a free port, as `make dev` starts them."""
    local_dir = tmp_path_factory.mktemp("local")
    port = _free_port()
    with LocalStack(local_dir, future=timedelta(0)) as stack:
        env = {**os.environ, **stack.env(), "ALERT_SENSOR_INTERVAL_SECONDS": "5"}
        log_path = local_dir / "dagster-dev.log"
        with open(log_path, "w") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "dagster", "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"),
                 "-h", "127.0.0.1", "-p", str(port)],
                env=env, cwd=stack.dagster_home, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            try:
                _wait_for(
                    lambda: _ui_ready(url, process, log_path), STARTUP_DEADLINE_S, "dagster dev to serve"
                )
                yield stack, url, env
            finally:
                os.killpg(process.pid, signal.SIGINT)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def _ui_ready(url: str, process: subprocess.Popen, log_path) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"dagster dev exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
    try:
        answer = _graphql(url, "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }")
    except requests.RequestException:
        return False
    return bool(answer.get("repositoriesOrError", {}).get("nodes"))


def _graphql(url: str, query: str, variables: dict | None = None) -> dict:
    response = requests.post(
        f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30
    )
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def _successful_runs(url: str, job: str) -> list[dict]:
    return _graphql(url, RUNS_QUERY, {"job": job})["runsOrError"]["results"]


def test_ui_launched_ingest_run_leads_to_a_dispatch_run_by_the_daemon(dagster_dev):
    stack, url, _ = dagster_dev
    burst = next(e for e in stack.sample.entries if e["type"] == "DB_TRIGGER" and e.get("error"))
    host, port = url.removeprefix("http://").split(":")
    client = DagsterGraphQLClient(host, port_number=int(port))
    partition = _partition_of(burst["started"])

    run_id = client.submit_job_execution(c.INGEST_JOB, tags={"dagster/partition": partition})
    _wait_for(
        lambda: any(run["runId"] == run_id for run in _successful_runs(url, c.INGEST_JOB)),
        RUN_DEADLINE_S,
        f"ingest run {run_id} to succeed",
    )
    dispatch_runs = _wait_for(
        lambda: _successful_runs(url, c.DISPATCH_JOB), RUN_DEADLINE_S, "the sensor's first dispatch run"
    )

    run_keys = {
        tag["value"] for run in dispatch_runs for tag in run["tags"] if tag["key"] == "dagster/run_key"
    }
    assert run_keys, "dispatch runs carry the alert id as run key"
    assert stack.twilio.messages, "the dispatch run texted through the Twilio emulator"


def test_ui_shows_job_schedule_sensor_and_log_partitions(dagster_dev):
    _, url, _ = dagster_dev
    runs = _wait_for(lambda: _successful_runs(url, c.INGEST_JOB), RUN_DEADLINE_S, "a finished ingest run")
    ingested = {tag["value"] for run in runs for tag in run["tags"] if tag["key"] == "dagster/partition"}

    def materialized_in_partition_bar():
        answer = _graphql(url, UI_QUERY)
        ranges = answer["assetNodeOrError"]["assetPartitionStatuses"]["ranges"]
        shown = {r["startKey"] for r in ranges if r["status"] == "MATERIALIZED"}
        return ingested & shown and answer

    data = _wait_for(materialized_in_partition_bar, RUN_DEADLINE_S, f"the UI to show {ingested} materialized")

    repository = data["repositoriesOrError"]["nodes"][0]
    assert {c.INGEST_JOB, c.DISPATCH_JOB} <= {job["name"] for job in repository["jobs"]}
    assert {"name": "ingest_schedule", "scheduleState": {"status": "RUNNING"}} in repository["schedules"]
    assert {"name": "alert_dispatch_sensor", "sensorState": {"status": "RUNNING"}} in repository["sensors"]
    logs = data["assetNodeOrError"]
    assert logs["partitionKeys"][0] == "2026-11-01-00:00"
    assert logs["partitionStats"]["numPartitions"] == len(logs["partitionKeys"])
    assert logs["partitionStats"]["numFailed"] == 0
    assert logs["assetChecksOrError"]["checks"], "the log asset's checks are listed"


BACKFILLS_QUERY = """
{
  partitionBackfillsOrError {
    ... on PartitionBackfills { results { id status partitionNames } }
  }
}
"""


def test_a_cli_backfill_of_windows_from_three_days_ago_is_run_by_the_daemon(dagster_dev):
    _, url, env = dagster_dev
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=3)
    partitions = [(start + timedelta(minutes=10 * i)).strftime(c.PARTITION_KEY_FORMAT) for i in range(2)]

    subprocess.run(
        [sys.executable, "-m", "dagster", "job", "backfill", "-w", str(PROJECT_ROOT / "workspace.yaml"),
         "-j", c.INGEST_JOB, "--partitions", ",".join(partitions), "--noprompt"],
        env=env, cwd=PROJECT_ROOT, check=True, capture_output=True, timeout=120,
    )  # fmt: skip

    def completed():
        backfills = _graphql(url, BACKFILLS_QUERY)["partitionBackfillsOrError"]["results"]
        ours = [b for b in backfills if sorted(b["partitionNames"] or []) == partitions]
        assert not ours or ours[0]["status"] not in ("FAILED", "COMPLETED_FAILED", "CANCELED"), ours
        return ours and ours[0]["status"] in ("COMPLETED", "COMPLETED_SUCCESS")

    def partitions_ingested():
        tags = [{"key": "dagster/partition", "value": key} for key in partitions]
        runs = _successful_runs(url, c.INGEST_JOB)
        return all(any(tag in run["tags"] for run in runs) for tag in tags)

    _wait_for(completed, RUN_DEADLINE_S, f"the backfill of {partitions} to be launched")
    _wait_for(partitions_ingested, RUN_DEADLINE_S, f"a successful run of each of {partitions}")


def _partition_of(started: str) -> str:
    from realm_alert_pipeline.core.timeutil import parse_api_datetime

    moment = parse_api_datetime(started)
    return moment.replace(minute=moment.minute - moment.minute % 10, second=0, microsecond=0).strftime(
        c.PARTITION_KEY_FORMAT
    )
