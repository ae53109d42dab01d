"""SIGTERM finishes the job in hand; a timeout or a second signal kills."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from workers.models import WorkerJob, WorkerProcess

from .conftest import job_of, output, running_job_pid, runs


def stopped_within(process: subprocess.Popen, seconds: float) -> float:
    began = time.monotonic()
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        message = f"still running after {seconds} s:\n{output(process)}"
        raise AssertionError(message) from None
    return time.monotonic() - began


def test_sigterm_finishes_the_job_in_hand(manager, run_log):
    pool = manager(workers=1)
    job = WorkerJob.objects.submit("crashSleep", {"seconds": 2, "log": str(run_log)})
    running_job_pid(job)

    os.kill(pool.pid, signal.SIGTERM)

    stopped_within(pool, 10)
    assert pool.returncode == 0
    assert job_of(job.pk).status == "succeeded"
    assert runs(run_log) == {job.pk: 1}
    assert not WorkerProcess.objects.running().exists()


def test_a_job_still_running_at_the_shutdown_timeout_fails(manager, run_log):
    pool = manager(workers=1, WORKER_SHUTDOWN_TIMEOUT="1")
    job = WorkerJob.objects.submit("crashSleep", {"seconds": 60, "log": str(run_log)})
    running_job_pid(job)

    os.kill(pool.pid, signal.SIGTERM)

    assert stopped_within(pool, 10) < 4
    job = job_of(job.pk)
    assert job.status == "failed"
    assert "within WORKER_SHUTDOWN_TIMEOUT (1 s)" in job.result["error"]


def test_a_second_signal_stops_at_once(manager, run_log):
    pool = manager(workers=2, WORKER_SHUTDOWN_TIMEOUT="60")
    jobs = [
        WorkerJob.objects.submit("crashSleep", {"seconds": 60, "log": str(run_log)})
        for _ in range(2)
    ]
    for job in jobs:
        running_job_pid(job)

    os.kill(pool.pid, signal.SIGTERM)
    time.sleep(0.5)
    os.kill(pool.pid, signal.SIGINT)

    assert stopped_within(pool, 10) < 2
    for job in jobs:
        job = job_of(job.pk)
        assert job.status == "failed", job.result
        assert "received SIGINT a second time" in job.result["error"]
    assert not WorkerJob.objects.running().exists()
