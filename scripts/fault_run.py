#!/usr/bin/env python
"""Run thousands of jobs while worker processes are SIGKILLed, and count.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        python scripts/fault_run.py --jobs 5000 --workers 4 --kill-every 1

It creates a fresh database beside the one DATABASE_URL names (an SQLite
file in a temporary directory when DATABASE_URL is unset), submits the jobs
(each notes every run of its handler in a file, sleeps a little, and is
retried at once when it fails), starts `runworkers`, and SIGKILLs the worker
running some job every --kill-every seconds until every job has succeeded.
It prints how many jobs ran, how many were lost (left pending or running,
or never succeeded), how many ran more than once (a row started twice, or a
job that succeeded twice), and how long a killed worker's job waited before
it was failed and its retry scheduled. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "tests.crash.settings"  # the project plus the crashSleep job type


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--kill-every", type=float, default=1.0, help="seconds between kills"
    )
    parser.add_argument(
        "--job-seconds", type=float, default=0.05, help="each job's sleep"
    )
    parser.add_argument(
        "--timeout", type=float, default=900, help="seconds before giving up"
    )
    parser.add_argument("--json", action="store_true", help="print JSON only")
    return parser.parse_args()


def fresh_database(workdir: Path) -> tuple[str, Any]:
    """A DATABASE_URL of a new, empty database, and a function that drops it."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        path = workdir / "fault_run.sqlite3"
        return f"sqlite:///{path}", lambda: None
    import psycopg

    name = f"workers_fault_run_{os.getpid()}"
    base, _, _ = url.rpartition("/")
    admin_url = f"{base}/postgres"

    def run(sql: str) -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql)

    run(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}", lambda: run(
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    )


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def submit(count: int, seconds: float, log: Path) -> list[int]:
    from workers.models import WorkerJob

    specs = [
        {
            "type": "crashSleep",
            "data": {"seconds": seconds, "log": str(log)},
            "auto_reschedule_on_failure": True,
            "auto_reschedule_on_failure_delay": 0,
        }
        for _ in range(count)
    ]
    ids: list[int] = []
    for start in range(0, count, 1000):
        ids += [
            job.pk for job in WorkerJob.objects.bulk_submit(specs[start : start + 1000])
        ]
    return ids


def start_manager(url: str, workers: int, output: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "WORKER_MAX_ATTEMPTS": "1000",
        "WORKER_HEARTBEAT_INTERVAL": "1",
        "WORKER_STALE_AFTER": "5",
        "WORKER_POLL_INTERVAL": "0.2",
        "WORKER_LOG_LEVEL": "warning",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "runworkers",
            "--workers",
            str(workers),
            "--no-maintenance",
        ],
        cwd=ROOT,
        env=env,
        stdout=output.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


class Killer(threading.Thread):
    """SIGKILLs the worker of a running job every `every` seconds."""

    def __init__(self, manager_pid: int, every: float) -> None:
        super().__init__(daemon=True)
        self.manager_pid = manager_pid
        self.every = every
        self.kills: dict[str, float] = {}  # worker name -> time.time() of kill
        self.done = threading.Event()

    def run(self) -> None:
        from django.db import connection

        from workers.models import WorkerJob

        while not self.done.wait(self.every):
            running = list(WorkerJob.objects.running().values_list("worker", flat=True))
            if not running:
                continue
            name = random.choice(running)
            pid = int(name.split(":")[1].split("/")[0])
            if pid not in children_of(self.manager_pid):
                continue
            os.kill(pid, signal.SIGKILL)
            self.kills[name] = time.time()
        connection.close()


def children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def wait_until_done(originals: int, timeout: float) -> float:
    from workers.models import WorkerJob

    began = time.monotonic()
    while time.monotonic() - began < timeout:
        unfinished = WorkerJob.objects.filter(finished__isnull=True).exists()
        succeeded = WorkerJob.objects.succeeded().count()
        if not unfinished and succeeded >= originals:
            break
        time.sleep(0.5)
    return time.monotonic() - began


def summarise(ids: list[int], log: Path, kills: dict[str, float]) -> dict[str, Any]:
    from workers.models import WorkerJob

    rows = {job.pk: job for job in WorkerJob.objects.all()}
    root_of: dict[int, int] = {}
    for pk in sorted(rows):
        parent = rows[pk].rescheduled_from_id
        root_of[pk] = root_of.get(parent, parent) if parent else pk
    succeeded = collections.Counter(
        root_of[pk] for pk, job in rows.items() if job.status == "succeeded"
    )
    starts = collections.Counter(int(line) for line in log.read_text().split())
    lost_rows = [job for job in rows.values() if "worker lost" in str(job.result or {})]
    waits, reruns = [], []
    for job in lost_rows:
        killed = kills.get(job.worker)
        if killed is None:
            continue
        waits.append(job.finished.timestamp() - killed)
        retry = next(
            (r for r in rows.values() if r.rescheduled_from_id == job.pk), None
        )
        if retry is not None and retry.started:
            reruns.append(retry.started.timestamp() - killed)
    return {
        "jobs_submitted": len(ids),
        "jobs_ran": sum(1 for pk in ids if succeeded[pk] >= 1),
        "jobs_lost": sum(1 for pk in ids if succeeded[pk] == 0)
        + sum(1 for job in rows.values() if job.finished is None),
        "jobs_succeeded_more_than_once": sum(1 for pk in ids if succeeded[pk] > 1),
        "rows_started_more_than_once": sum(1 for n in starts.values() if n > 1),
        "handler_runs": sum(starts.values()),
        "workers_killed": len(kills),
        "jobs_failed_as_worker_lost": len(lost_rows),
        "lost_job_failed_after_s": _spread(waits),
        "lost_job_rerun_after_s": _spread(reruns),
    }


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    values = sorted(values)
    return {
        "median": round(statistics.median(values), 3),
        "p95": round(values[int(0.95 * (len(values) - 1))], 3),
        "max": round(values[-1], 3),
    }


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="fault_run_") as tmp:
        workdir = Path(tmp)
        url, drop = fresh_database(workdir)
        try:
            setup_django(url)
            from django.db import connection

            log = workdir / "runs.log"
            ids = submit(args.jobs, args.job_seconds, log)
            connection.close()
            manager = start_manager(url, args.workers, workdir / "manager.log")
            killer = Killer(manager.pid, args.kill_every)
            killer.start()
            elapsed = wait_until_done(len(ids), args.timeout)
            killer.done.set()
            killer.join()
            os.kill(manager.pid, signal.SIGTERM)
            manager.wait(timeout=60)
            if elapsed >= args.timeout:
                print((workdir / "manager.log").read_text()[-3000:], file=sys.stderr)
            report = summarise(ids, log, killer.kills)
            report.update(
                seconds=round(elapsed, 1),
                workers=args.workers,
                kill_every_s=args.kill_every,
                job_seconds=args.job_seconds,
                database=connection.vendor,
                date=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                machine=f"{platform.node()} {platform.machine()}, "
                f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
            )
            connection.close()
        finally:
            drop()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:32} {value}")
    bad = report["jobs_lost"] or report["jobs_succeeded_more_than_once"]
    bad = bad or report["rows_started_more_than_once"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
