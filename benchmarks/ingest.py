"""Benchmark: the extract step against the floor of plain paging + insert_many, time and peak memory.

    python benchmarks/ingest.py [--entries 20000] [--entries 5000 20000] [--repeat 3]

A child process serves SecantusDB (local.mongo_server.EmbeddedMongo, in a temp dir) and the Admin API
emulator holding N error entries in one 10-minute window (N/100 pages), so this process measures only
the client side. For each N it runs, on fresh databases:

- ours: the real extract code path (AdminApiResource.iter_log_pages + ingest.extract.extract_window:
  validation, fingerprints, unordered insert_many per page into the indexed `Log`, the range count of
  the asset check);
- floor: `requests` paging the same window (nextEndDate/nextSkip) + insert_many of each page's entries,
  as returned, into a fresh collection;

timed without tracing (best of --repeat), then once more each under tracemalloc for the peak of Python
allocations. Target: ours / floor <= 1.3 and a peak that does not grow with N. A third, "indexed floor"
inserts into a collection with the secondary indexes of `Log` (ensure_indexes): on SecantusDB each index
costs about as much as the insert itself, which the plain floor does not pay.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realm_alert_pipeline.constants import LOG_COLLECTION, LOG_RETENTION  # noqa: E402
from realm_alert_pipeline.core.timeutil import (  # noqa: E402
    format_api_datetime,
    format_go_datetime,
    utc_now,  # noqa: E402
)
from realm_alert_pipeline.core.windows import query_bounds, window_containing  # noqa: E402
from realm_alert_pipeline.local.admin_api_emulator import (  # noqa: E402
    DEMO_APP_ID,
    DEMO_GROUP_ID,
    DEMO_PRIVATE_KEY,
    DEMO_PUBLIC_KEY,
)

OVERLAP = timedelta(minutes=10)


def bench_window():
    return window_containing(datetime.now(UTC) - timedelta(hours=2), 10)


def generate_entries(count: int, window) -> list[dict]:
    """`count` error entries spread over the window, shaped like the sample logs, with varying messages."""
    text = resources.files("realm_alert_pipeline.local").joinpath("data/sample_logs.json").read_text("utf-8")
    templates = [e for e in json.loads(text) if e.get("error")]
    spacing = (window.end - window.start) / (count + 1)
    entries = []
    for i in range(count):
        started = window.start + spacing * (i + 1)
        entry = copy.deepcopy(templates[i % len(templates)])
        prefix = f"{int(started.timestamp()):08x}"
        entry["_id"] = f"{prefix}{i:016x}"
        entry["co_id"] = f"{prefix}{i + 1:016x}"
        entry["started"] = format_go_datetime(started)
        entry["completed"] = format_go_datetime(started + timedelta(milliseconds=40 + i % 300))
        entry["error"] = f"{entry['error']} (request {i}, order A-{100000 + i})"
        entries.append(entry)
    return entries


def serve(conn, count: int, data_dir: str) -> None:
    """Child process: SecantusDB and the emulator, until the parent says stop."""
    from realm_alert_pipeline.local.admin_api_emulator import AdminApiEmulator
    from realm_alert_pipeline.local.mongo_server import EmbeddedMongo

    window = bench_window()
    with EmbeddedMongo(data_dir) as mongo, AdminApiEmulator(logs=generate_entries(count, window)) as emulator:
        conn.send((mongo.uri, emulator.base_url, window.partition_key))
        conn.recv()


def run_ours(mongo_uri: str, base_url: str, window, database: str) -> dict:
    from realm_alert_pipeline.ingest.extract import extract_window
    from realm_alert_pipeline.resources.admin_api import AdminApiResource
    from realm_alert_pipeline.resources.mongo import MongoResource

    mongo = MongoResource(uri=mongo_uri, database=database)
    db = mongo.get_indexed_database()
    admin_api = AdminApiResource(
        public_key=DEMO_PUBLIC_KEY,
        private_key=DEMO_PRIVATE_KEY,
        group_id=DEMO_GROUP_ID,
        app_id=DEMO_APP_ID,
        mongo=mongo,
        base_url=base_url,
    )
    admin_api.ensure_session()  # the token step is not part of extract
    bounds = query_bounds(window, OVERLAP)
    started = time.perf_counter()
    stats = extract_window(
        pages=admin_api.iter_log_pages(bounds.start, bounds.end, errors_only=True),
        log_collection=db[LOG_COLLECTION],
        bounds=bounds,
        partition_key=window.partition_key,
        group_id=DEMO_GROUP_ID,
        app_id=DEMO_APP_ID,
        clock=utc_now,
        on_malformed=lambda problems: None,
        retention_cutoff=utc_now() - LOG_RETENTION,
    )
    elapsed = time.perf_counter() - started
    admin_api.close()
    assert stats.new == stats.distinct_read == stats.stored_in_bounds, stats
    return {"seconds": elapsed, "pages": stats.pages, "stored": stats.new}


def run_floor(mongo_uri: str, base_url: str, window, database: str, indexed: bool = False) -> dict:
    from realm_alert_pipeline.resources.mongo import ensure_indexes, mongo_client

    db = mongo_client(mongo_uri)[database]
    if indexed:  # the same secondary indexes as `Log`: what storing costs in the pipeline's schema
        ensure_indexes(db)
    collection = db[LOG_COLLECTION]
    http = requests.Session()
    login = http.post(
        f"{base_url}/auth/providers/mongodb-cloud/login",
        json={"username": DEMO_PUBLIC_KEY, "apiKey": DEMO_PRIVATE_KEY},
        timeout=30,
    )
    login.raise_for_status()
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    bounds = query_bounds(window, OVERLAP)
    url = f"{base_url}/groups/{DEMO_GROUP_ID}/apps/{DEMO_APP_ID}/logs"
    params = {
        "start_date": format_api_datetime(bounds.start),
        "end_date": format_api_datetime(bounds.end),
        "errors_only": "true",
    }
    pages = stored = 0
    started = time.perf_counter()
    while True:
        response = http.get(url, params=params, headers=headers, timeout=30)
        response.raise_for_status()
        body = response.json()
        pages += 1
        if body.get("logs"):
            stored += len(collection.insert_many(body["logs"], ordered=False).inserted_ids)
        if "nextEndDate" not in body:
            break
        params["end_date"] = body["nextEndDate"]
        if "nextSkip" in body:
            params["skip"] = str(body["nextSkip"])
        else:
            params.pop("skip", None)
    elapsed = time.perf_counter() - started
    http.close()
    return {"seconds": elapsed, "pages": pages, "stored": stored}


def traced(run, *args) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        run(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def bench(count: int, repeat: int = 1) -> dict:
    receiver, sender = multiprocessing.Pipe()
    with tempfile.TemporaryDirectory(prefix="bench-secantus-") as data_dir:
        child = multiprocessing.get_context("spawn").Process(target=serve, args=(sender, count, data_dir))
        child.start()
        try:
            mongo_uri, base_url, key = receiver.recv()
            from realm_alert_pipeline.core.windows import window_for_partition_key

            window = window_for_partition_key(key, 10)
            floors, ourses, indexed_floors = [], [], []
            for i in range(repeat):  # interleaved, best of `repeat`: other load hits all three alike
                floors.append(run_floor(mongo_uri, base_url, window, f"bench_floor_{i}"))
                ourses.append(run_ours(mongo_uri, base_url, window, f"bench_ours_{i}"))
                indexed_floors.append(
                    run_floor(mongo_uri, base_url, window, f"bench_floor_indexed_{i}", True)
                )
            floor, ours, indexed_floor = (
                min(runs, key=lambda r: r["seconds"]) for runs in (floors, ourses, indexed_floors)
            )
            floor_peak = traced(run_floor, mongo_uri, base_url, window, "bench_floor_traced")
            ours_peak = traced(run_ours, mongo_uri, base_url, window, "bench_ours_traced")
        finally:
            receiver.send("stop")
            child.join(timeout=60)
    if floor["stored"] != count or ours["stored"] != count:
        raise SystemExit(f"expected {count} entries stored, floor {floor['stored']}, ours {ours['stored']}")
    return {
        "entries": count,
        "pages": ours["pages"],
        "ours_s": ours["seconds"],
        "floor_s": floor["seconds"],
        "ratio": ours["seconds"] / floor["seconds"],
        "indexed_floor_s": indexed_floor["seconds"],
        "indexed_ratio": ours["seconds"] / indexed_floor["seconds"],
        "ours_peak_mib": ours_peak / 2**20,
        "floor_peak_mib": floor_peak / 2**20,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, nargs="+", default=[20_000], help="window sizes to measure")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of each; the best counts")
    args = parser.parse_args(argv)
    results = [bench(count, args.repeat) for count in args.entries]
    print(
        f"{'entries':>8} {'pages':>6} {'ours s':>7} {'floor s':>8} {'ratio':>6}"
        f" {'idx floor s':>12} {'ratio':>6} {'ours peak':>10} {'floor peak':>11}"
    )
    for r in results:
        print(
            f"{r['entries']:>8} {r['pages']:>6} {r['ours_s']:>7.2f} {r['floor_s']:>8.2f} {r['ratio']:>6.2f}"
            f" {r['indexed_floor_s']:>12.2f} {r['indexed_ratio']:>6.2f}"
            f" {r['ours_peak_mib']:>6.2f} MiB {r['floor_peak_mib']:>7.2f} MiB"
        )
    print(
        "floor: paging + insert_many into a fresh collection; idx floor: the same into a collection with"
        " the indexes of `Log`"
    )
    worst = max(r["ratio"] for r in results)
    print(f"target ours/floor <= 1.3: {'met' if worst <= 1.3 else 'NOT met'} (worst {worst:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
