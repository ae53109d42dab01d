"""Fixtures of the crash tests: managers started with fast heartbeats.

The job types of tests/crash/jobs.py are registered here for this process;
the managers load them through tests.crash.settings.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.utils import timezone

import tests.crash.jobs  # noqa: F401  (registers the job types)
from workers.models import WorkerJob, WorkerProcess

# Fast clocks, so that a lost worker shows within a few seconds.
FAST = {
    "DJANGO_SETTINGS_MODULE": "tests.crash.settings",
    "WORKER_HEARTBEAT_INTERVAL": "0.5",
    "WORKER_STALE_AFTER": "3",
    "WORKER_POLL_INTERVAL": "0.2",
    "WORKER_SHUTDOWN_TIMEOUT": "10",
}


def wait_for(
    condition: Callable[[], object], timeout: float, what: str, step: float = 0.1
) -> object:
    """Poll `condition` until it returns something true; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    pytest.fail(f"gave up after {timeout:g} s waiting for {what}")


def wait_until_no_heartbeat_is_live(what: str, timeout: float = 10) -> None:
    """Wait until every process's heartbeat is older than FAST's stale time."""
    stale_after = float(FAST["WORKER_STALE_AFTER"])
    wait_for(
        lambda: (
            not WorkerProcess.objects.live(
                timezone.now() - dt.timedelta(seconds=stale_after)
            ).exists()
        ),
        timeout,
        what,
    )


def children_of(pid: int) -> list[int]:
    """The pids of a process's children, from /proc."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except FileNotFoundError:
        return []


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def runs(log: Path) -> collections.Counter:
    """How many times each job id ran, from a run log."""
    if not log.exists():
        return collections.Counter()
    return collections.Counter(int(line) for line in log.read_text().split())


def job_of(pk: int) -> WorkerJob:
    return WorkerJob.objects.get(pk=pk)


def running_job_pid(job: WorkerJob) -> int:
    """The pid of the worker running `job`, once its handler has begun.

    A claimed row alone is not enough: a worker killed between its claim and
    the handler's start gives the job back instead of failing it. When the
    job's data names a run log, wait for the handler's note there too.
    """
    job = wait_for(
        lambda: WorkerJob.objects.running().filter(pk=job.pk).first(),
        15,
        f"job {job.pk} to start",
    )
    log = job.data.get("log") if isinstance(job.data, dict) else None
    if log:
        wait_for(lambda: runs(Path(log))[job.pk], 15, f"job {job.pk}'s handler")
    return int(job.worker.split(":")[1].split("/")[0])


@pytest.fixture
def manager(start_manage) -> Callable[..., subprocess.Popen]:
    """Start `runworkers` with the crash job types and fast heartbeats."""

    def start(*args: str, workers: int = 1, **env: str) -> subprocess.Popen:
        process = start_manage(
            "runworkers",
            "--workers",
            str(workers),
            "--no-maintenance",
            *args,
            **{**FAST, **env},
        )
        drain(process)
        wait_for(
            lambda: (
                WorkerProcess.objects.running()
                .filter(kind="child", parent__pid=process.pid)
                .count()
                >= workers
                or process.poll() is not None
            ),
            30,
            f"manager {process.pid} to start its workers",
        )
        assert process.poll() is None, output(process)
        return process

    return start


def drain(process: subprocess.Popen) -> None:
    """Read the process's output as it comes, so that a full pipe never blocks it."""
    lines: list[str] = []

    def read() -> None:
        with contextlib.suppress(ValueError, OSError):
            lines.extend(process.stdout)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    process.lines, process.reader = lines, reader


def output(process: subprocess.Popen) -> str:
    """What a manager wrote; a manager still running is killed first."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    process.reader.join(timeout=10)
    return "".join(process.lines)


@pytest.fixture
def run_log(tmp_path: Path) -> Path:
    return tmp_path / "runs.log"
