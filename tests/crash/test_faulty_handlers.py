"""Handlers that raise, exit, hang or bloat: the job fails, the pool goes on."""

from __future__ import annotations

import time

from workers.models import WorkerJob

from .conftest import job_of, wait_for


def finished(job: WorkerJob, timeout: float = 15) -> WorkerJob:
    return wait_for(
        lambda: job_of(job.pk).finished and job_of(job.pk), timeout, f"job {job.pk}"
    )


def assert_pool_goes_on(run_log) -> None:
    after = WorkerJob.objects.submit("crashSleep", {"log": str(run_log)})
    assert finished(after).status == "succeeded"


def test_a_handler_that_raises(manager, run_log):
    manager()
    job = finished(WorkerJob.objects.submit("crashRaise", {"log": str(run_log)}))
    assert job.status == "failed"
    assert job.result["error"] == "crashRaise always raises"
    assert job.result["exception"] == "builtins.ValueError"
    assert_pool_goes_on(run_log)


def test_a_handler_that_exits_the_process(manager, run_log):
    manager()
    job = finished(WorkerJob.objects.submit("crashExit", {"status": 3}))
    assert job.status == "failed"
    assert job.result["error"].startswith("worker lost:")
    assert "exited with status 3" in job.result["error"]
    assert_pool_goes_on(run_log)


def test_a_job_past_the_timeout_setting(manager, run_log):
    manager(WORKER_JOB_TIMEOUT="1")
    began = time.monotonic()
    job = finished(WorkerJob.objects.submit("crashSleep", {"seconds": 60}))
    assert time.monotonic() - began < 5
    assert job.status == "failed"
    assert job.result["error"].startswith("job timed out:")
    assert "timeout of 1 s" in job.result["error"]
    assert job.result["exception"] == "workers.supervision.JobTimeoutError"
    assert_pool_goes_on(run_log)


def test_a_job_past_its_type_timeout(manager, run_log):
    manager()  # no WORKER_JOB_TIMEOUT; crashHang's own timeout is 1 s
    job = finished(WorkerJob.objects.submit("crashHang", {}))
    assert job.status == "failed"
    assert "timeout of 1 s" in job.result["error"]
    assert_pool_goes_on(run_log)


def test_a_worker_past_the_memory_limit(manager, run_log):
    manager(WORKER_MAX_MEMORY_MB="250")
    job = finished(WorkerJob.objects.submit("crashLeak", {"mb": 400}))
    assert job.status == "failed"
    assert job.result["error"].startswith("memory limit exceeded:")
    assert "WORKER_MAX_MEMORY_MB=250" in job.result["error"]
    assert job.result["exception"] == "workers.supervision.MemoryLimitError"
    assert_pool_goes_on(run_log)
