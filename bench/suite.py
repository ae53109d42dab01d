"""One benchmark run against one database: `python -m bench.suite OUT.json`.

Run by `python -m bench` with DATABASE_URL naming the benchmark's database;
writes the figures as JSON to OUT.json.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from typing import Any

import django

# Jobs drained in the throughput runs (fewer on SQLite, whose writes queue
# on one lock, to keep the run within minutes), and workers per run.
THROUGHPUT_JOBS = 20_000
SQLITE_THROUGHPUT_JOBS = 5_000
WORKER_COUNTS = (2, 4)
LATENCY_JOBS = 500
LATENCY_GAP = (0.005, 0.025)  # seconds between two submissions, uniform
SINGLE_SUBMITS = 2_000
HISTORY_FINISHED = 1_000_000
HISTORY_FUTURE = 200_000
ADMIN_REPEATS = 5
DRAIN_TIMEOUT = 120.0  # seconds


def main(out: str, depth: bool = True) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    jobs = SQLITE_THROUGHPUT_JOBS if connection.vendor == "sqlite" else THROUGHPUT_JOBS
    figures: dict[str, Any] = {"vendor": connection.vendor, "server": _server()}
    figures["throughput_jobs"] = jobs
    figures["floor"] = commit_floor()
    figures["submit"] = submit_rates()
    figures["throughput"] = {n: drain(n, jobs) for n in WORKER_COUNTS}
    figures["latency"] = pickup_latency()
    if depth:
        figures["depth"] = deep_table()
        figures["admin"] = admin_pages()
    with open(out, "w") as file:
        json.dump(figures, file, indent=2, default=str)


def commit_floor() -> dict[str, float]:
    """Durable one-row INSERTs a second from one connection, each committed.

    No job system can submit one job at a time faster than this on the same
    server and disk: it is the cost of a round trip and a durable commit,
    and the yardstick for "submit one at a time".
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_floor (id integer PRIMARY KEY)")
    try:
        began = time.perf_counter()
        for pk in range(SINGLE_SUBMITS):
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO bench_floor (id) VALUES (%s)", [pk])
        per_s = SINGLE_SUBMITS / (time.perf_counter() - began)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE bench_floor")
    return {"insert_commits_per_s": round(per_s)}


def submit_rates() -> dict[str, float]:
    """Jobs per second through submit() one at a time, and bulk_submit()."""
    from workers.models import WorkerJob

    from . import rows
    from .jobs import NOOP

    rows.empty()
    began = time.perf_counter()
    for _ in range(SINGLE_SUBMITS):
        WorkerJob.objects.submit(NOOP)
    single = SINGLE_SUBMITS / (time.perf_counter() - began)
    rows.empty()
    began = time.perf_counter()
    WorkerJob.objects.bulk_submit([{"type": NOOP}] * THROUGHPUT_JOBS)
    bulk = THROUGHPUT_JOBS / (time.perf_counter() - began)
    rows.empty()
    return {"single_per_s": round(single), "bulk_per_s": round(bulk)}


def drain(workers: int, jobs: int, explain: bool = False) -> dict[str, Any]:
    """Bulk-submit `jobs` no-op jobs and drain them with `workers`.

    Jobs per second from the first start to the last finish, read from the
    rows. With `explain`, also the claim's plan before the drain.
    """
    from django.db.models import Count, Max, Min, Q

    from workers.models import WorkerJob

    from .jobs import NOOP
    from .processes import MemoryWatch, start_pool

    after = _max_id()
    WorkerJob.objects.bulk_submit([{"type": NOOP}] * jobs)
    plan = explain_claim() if explain else None
    pool = start_pool(workers, once=True)
    watch = MemoryWatch(pool.pid)
    watch.wait(pool, DRAIN_TIMEOUT)
    stats = WorkerJob.objects.filter(id__gt=after, type=NOOP).aggregate(
        first=Min("started"),
        last=Max("finished"),
        done=Count("id", filter=Q(success=True)),
    )
    seconds = (stats["last"] - stats["first"]).total_seconds()
    figures = {
        "jobs": stats["done"],
        "seconds": round(seconds, 2),
        "jobs_per_s": round(stats["done"] / seconds),
        "memory": watch.figures(),
    }
    if explain:
        figures["explain"] = plan
    return figures


def pickup_latency() -> dict[str, Any]:
    """Submit LATENCY_JOBS one at a time to idle workers; created-to-started."""
    from workers.models import WorkerJob

    from .jobs import NOOP
    from .processes import MemoryWatch, start_pool, stop_pool

    after = _max_id()
    pool = start_pool(2, once=False)
    watch = MemoryWatch(pool.pid)
    try:
        time.sleep(2.0)  # the children start, find nothing, and wait
        randomness = random.Random(5)
        for _ in range(LATENCY_JOBS):
            time.sleep(randomness.uniform(*LATENCY_GAP))
            WorkerJob.objects.submit(NOOP)
        deadline = time.monotonic() + 30
        pending = WorkerJob.objects.filter(id__gt=after, finished__isnull=True)
        while pending.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        watch.sample()
    finally:
        stop_pool(pool)
    delays = sorted(
        (job["started"] - job["created"]).total_seconds() * 1000
        for job in WorkerJob.objects.filter(id__gt=after, started__isnull=False).values(
            "started", "created"
        )
    )
    return {
        "jobs": len(delays),
        "p50_ms": round(_percentile(delays, 50), 2),
        "p95_ms": round(_percentile(delays, 95), 2),
        "p99_ms": round(_percentile(delays, 99), 2),
        "max_ms": round(delays[-1], 2),
        "mean_ms": round(statistics.fmean(delays), 2),
        "memory": watch.figures(),
    }


def deep_table() -> dict[str, Any]:
    """Throughput again with a million finished rows and many future ones."""
    from . import rows

    rows.empty()
    began = time.perf_counter()
    rows.add_history(HISTORY_FINISHED, HISTORY_FUTURE)
    loaded = time.perf_counter() - began
    throughput = {
        n: drain(n, THROUGHPUT_JOBS, explain=n == WORKER_COUNTS[0])
        for n in WORKER_COUNTS
    }
    return {
        "finished_rows": HISTORY_FINISHED,
        "future_rows": HISTORY_FUTURE,
        "load_seconds": round(loaded, 1),
        "explain": throughput[WORKER_COUNTS[0]].pop("explain"),
        "throughput": throughput,
    }


def explain_claim() -> str:
    """The plan of the claim statement with the table as it is now."""
    from django.db import connection

    from workers.claim import claim_sql

    now = _now()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("EXPLAIN " + claim_sql(), [now, "explain", now, now])
        else:
            from workers.claim import CLAIM_ORDER
            from workers.models import WorkerJob

            query = WorkerJob.objects.due(now).order_by(*CLAIM_ORDER)[:1]
            sql, params = query.query.sql_with_params()
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return "\n".join(" ".join(str(part) for part in row) for row in cursor)


def admin_pages() -> dict[str, Any]:
    """Milliseconds to render the admin change list, via the test Client."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from workers.models import WorkerJob

    user = get_user_model().objects.create_superuser("bench", "bench@example.com")
    client = Client()
    client.force_login(user)
    pages = {
        "first_page": "/admin/workers/workerjob/",
        "failed": "/admin/workers/workerjob/?status=failed",
    }
    timings: dict[str, Any] = {"rows": WorkerJob.objects.count()}
    for name, url in pages.items():
        samples = []
        for _ in range(ADMIN_REPEATS + 1):
            began = time.perf_counter()
            response = client.get(url)
            samples.append((time.perf_counter() - began) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}")
        timings[f"{name}_ms"] = round(statistics.median(samples[1:]), 1)
        timings[f"{name}_cold_ms"] = round(samples[0], 1)
    return timings


def _server() -> str:
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            return cursor.fetchone()[0]
    import sqlite3

    return sqlite3.sqlite_version


def _max_id() -> int:
    from . import rows

    return rows.max_id()


def _now() -> Any:
    from django.utils import timezone

    return timezone.now()


def _percentile(values: list[float], percent: float) -> float:
    index = min(len(values) - 1, max(0, round(percent / 100 * len(values)) - 1))
    return values[index]


if __name__ == "__main__":
    main(sys.argv[1], depth="--no-depth" not in sys.argv)
