"""`make demo`: the whole pipeline once on the local default, through a real DagsterInstance.

Starts the local stack, ingests the closed windows of the last hour (a late entry arrives in between and is
caught by the next window's overlap), evaluates the dispatch sensor and executes every run it requests, then
prints what happened.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from contextlib import redirect_stderr
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import dagster as dg

from realm_alert_pipeline import constants as c
from realm_alert_pipeline.core.timeutil import parse_api_datetime
from realm_alert_pipeline.local.stack import DEFAULT_LOCAL_DIR, LocalStack
from realm_alert_pipeline.resources.mongo import mongo_client

DISPATCH_SENSOR = "alert_dispatch_sensor"
MAX_SENSOR_TICKS = 20


def run_demo(local_dir=DEFAULT_LOCAL_DIR, out: TextIO = sys.stdout) -> int:
    now = datetime.now(UTC)
    with LocalStack(local_dir, now=now, future=timedelta(0)) as stack:
        os.environ.update(stack.env())  # resources read their EnvVars from the process environment
        from realm_alert_pipeline.definitions import build_definitions

        defs = build_definitions()
        run_log = Path(local_dir) / "demo-runs.log"
        # The runs' event logs go to a file (and to the Dagster UI); the terminal gets the story.
        with dg.DagsterInstance.get() as instance, open(run_log, "a") as log_file, redirect_stderr(log_file):
            windows, late = _ingest_last_hour(defs, instance, stack, now, out)
            dispatched = _dispatch_pending_alerts(defs, instance, out)
        _print_summary(stack, windows, late, dispatched, out)
        print(f"\nrun event logs: {run_log}; see the runs in the UI with `make dev`", file=out)
    failed_windows = [key for key, ok in windows if not ok]
    if failed_windows or dispatched.failed:
        print(
            f"FAILED: windows {failed_windows}, {dispatched.failed} dispatch run(s); see {run_log}", file=out
        )
        return 1
    return 0


def _ingest_last_hour(
    defs: dg.Definitions, instance, stack: LocalStack, now: datetime, out: TextIO
) -> tuple[list, list[dict]]:
    job = defs.resolve_job_def(c.INGEST_JOB)
    partitions = job.partitions_def
    windows_per_hour = 60 // _window_minutes(partitions)
    keys = partitions.get_partition_keys(current_time=now)[-windows_per_hour:]
    late = replayable_late_entries(
        stack.sample.late_entries, [partitions.time_window_for_partition_key(k) for k in keys]
    )
    results = []
    late_written: list[dict] = []
    for key in keys:
        result = job.execute_in_process(partition_key=key, instance=instance, raise_on_error=False)
        status = "ok" if result.success else "FAILED"
        print(f"ingest window {key}: {status} (run {result.run_id[:8]})", file=out)
        results.append((key, result.success))
        window = partitions.time_window_for_partition_key(key)
        arrived = [e for e in late if parse_api_datetime(e["started"]) < window.end]
        if arrived:
            stack.admin_api.add_logs(arrived)
            late_written += arrived
            late = [e for e in late if e not in arrived]
            print(f"  {len(arrived)} late entry written now, started inside window {key};"
                  " the next window's overlap must catch it", file=out)  # fmt: skip
    return results, late_written


def replayable_late_entries(late_entries: list[dict], windows: list) -> list[dict]:
    """The late entries the demo can show being caught: written once their window was read, they must
    start in a window that has a next one in the run, whose overlap then reads them."""
    first, last = windows[0].start, windows[-1].start
    return [e for e in late_entries if first <= parse_api_datetime(e["started"]) < last]


@dataclass
class DispatchRuns:
    total: int = 0
    failed: int = 0


def _dispatch_pending_alerts(defs: dg.Definitions, instance, out: TextIO) -> DispatchRuns:
    sensor = defs.resolve_sensor_def(DISPATCH_SENSOR)
    job = defs.resolve_job_def(c.DISPATCH_JOB)
    launched = DispatchRuns()
    for _ in range(MAX_SENSOR_TICKS):
        with dg.build_sensor_context(instance=instance, resources=defs.resources) as context:
            tick = sensor.evaluate_tick(context)
        if not tick.run_requests:
            reason = tick.skip_message or "no run requested"
            print(f"dispatch sensor: {reason}", file=out)
            break
        for request in tick.run_requests:
            tags = {**(request.tags or {}), "dagster/run_key": request.run_key}
            result = job.execute_in_process(
                run_config=request.run_config, tags=tags, instance=instance, raise_on_error=False
            )
            launched.total += 1
            launched.failed += not result.success
            status = "ok" if result.success else "FAILED"
            print(f"dispatch alert {request.run_key}: {status} (run {result.run_id[:8]})", file=out)
    return launched


def _print_summary(
    stack: LocalStack, windows: list, late: list[dict], dispatched: DispatchRuns, out: TextIO
) -> None:
    env = stack.env()
    primary = mongo_client(env["MONGODB_URI"])[env["MONGODB_DATABASE"]]
    secondary = mongo_client(env["SECONDARY_MONGODB_URI"])[env["SECONDARY_MONGODB_DATABASE"]]
    alerts = list(primary[c.ALERT_COLLECTION].find({}, sort=[("created_at", 1)]))
    states = Counter(alert.get("state") for alert in alerts)
    copies = secondary[env["SECONDARY_MONGODB_COLLECTION"]].count_documents({})
    late_ids = [entry["_id"] for entry in late]
    late_stored = primary[c.LOG_COLLECTION].count_documents({"_id": {"$in": late_ids}})
    lines = [
        "",
        "=== realm-alert-pipeline demo summary ===",
        "this demo:",
        f"  windows ingested: {sum(ok for _, ok in windows)} of {len(windows)}",
        f"  late entries caught by the next window: {late_stored} of {len(late_ids)}",
        f"  dispatch runs: {dispatched.total} ({dispatched.failed} failed)",
        "in store (every demo so far; `make clean` resets):",
        f"  logs in {env['MONGODB_DATABASE']}.{c.LOG_COLLECTION}: {primary[c.LOG_COLLECTION].count_documents({})}",
        f"  alerts: {len(alerts)} ({', '.join(f'{n} {state}' for state, n in sorted(states.items()))})",
        f"  pipeline errors recorded: {primary[c.ERROR_COLLECTION].count_documents({})}",
        f"  secondary copies in {env['SECONDARY_MONGODB_DATABASE']}.{env['SECONDARY_MONGODB_COLLECTION']}: {copies}",
        "",
        f"SMS received by the Twilio emulator in this demo ({len(stack.twilio.messages)}):",
    ]
    if not stack.twilio.messages and alerts:
        lines.append(
            "  none: every error in these windows was alerted by an earlier run (nobody is texted twice)"
        )
    for message in stack.twilio.messages:
        segments = message.get("num_segments")
        lines.append(f"--- to {message['to']} ({segments} segment(s), {message['sid']})")
        lines.append(message["body"])
    print("\n".join(lines), file=out)


def _window_minutes(partitions) -> int:
    first = partitions.time_window_for_partition_key(partitions.get_first_partition_key())
    return int((first.end - first.start).total_seconds() // 60)
