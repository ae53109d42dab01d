"""runworkers as users run it: real child processes on the test database."""

from __future__ import annotations

import signal
import time
from datetime import timedelta

import pytest
from django.db.models import Count
from django.utils import timezone

from tests.testapp.models import JobRun
from workers.models import WorkerJob


def wait_for(condition, timeout: float = 30.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {condition}")
        time.sleep(interval)


def test_once_runs_due_jobs_and_exits(run_manage) -> None:
    jobs = [WorkerJob.objects.submit("sayHello", {"name": f"n{i}"}) for i in range(5)]
    later = WorkerJob.objects.submit(
        "sayHello", due=timezone.now() + timedelta(hours=1)
    )

    done = run_manage("runworkers", "--workers", "2", "--once", "--no-maintenance")

    assert done.returncode == 0, done.stderr
    for job in jobs:
        job.refresh_from_db()
        assert job.status == "succeeded"
        assert job.result == {"greeting": f"Hello, {job.data['name']}!"}
        assert job.worker
        assert job.remove_at == job.finished + timedelta(seconds=job.remove_delay)
    assert WorkerJob.objects.get(pk=later.pk).status == "pending"


def test_failing_job_reschedules_until_the_attempt_limit(run_manage) -> None:
    first = WorkerJob.objects.submit(
        "sayHello", auto_reschedule_on_failure=True, auto_reschedule_on_failure_delay=0
    )
    # test.fail allows 3 attempts; WORKER_MAX_ATTEMPTS governs other types.
    failing = WorkerJob.objects.submit(
        "test.fail", auto_reschedule_on_failure=True, auto_reschedule_on_failure_delay=0
    )

    done = run_manage("runworkers", "--once", "--no-maintenance")

    assert done.returncode == 0, done.stderr
    assert WorkerJob.objects.get(pk=first.pk).status == "succeeded"
    chain = list(WorkerJob.objects.filter(type="test.fail").order_by("id"))
    assert [job.attempt for job in chain] == [1, 2, 3]
    assert [job.status for job in chain] == ["failed"] * 3
    assert chain[0].pk == failing.pk
    assert [job.rescheduled_from_id for job in chain] == [
        None,
        chain[0].pk,
        chain[1].pk,
    ]
    error = chain[-1].result
    assert error["error"] == "failing on purpose, attempt 3"
    assert error["exception"] == "builtins.RuntimeError"
    assert "Traceback" in error["traceback"]
    assert JobRun.objects.count() == 3


def test_max_attempts_setting_applies_to_types_without_their_own(run_manage) -> None:
    WorkerJob.objects.submit(
        "flakyTask", auto_reschedule_on_failure=True, auto_reschedule_on_failure_delay=0
    )

    done = run_manage(
        "runworkers", "--once", "--no-maintenance", WORKER_MAX_ATTEMPTS="2"
    )

    assert done.returncode == 0, done.stderr
    assert sorted(WorkerJob.objects.values_list("attempt", flat=True)) == [1, 2]
    assert not WorkerJob.objects.pending().exists()


def test_unknown_type_and_rejected_data_fail_without_retries(run_manage) -> None:
    options = {
        "auto_reschedule_on_failure": True,
        "auto_reschedule_on_failure_delay": 0,
    }
    rejected = WorkerJob.objects.submit("test.reject", {"x": 1}, **options)
    gone = WorkerJob.objects.submit("sayHello", **options)
    WorkerJob.objects.filter(pk=gone.pk).update(type="removedType")
    not_json = WorkerJob.objects.submit("test.not_json", **options)

    done = run_manage("runworkers", "--once", "--no-maintenance")

    assert done.returncode == 0, done.stderr
    rejected.refresh_from_db()
    gone.refresh_from_db()
    assert rejected.status == gone.status == "failed"
    assert "is not accepted" in rejected.result["error"]
    assert "no handler is registered for job type 'removedType'" in gone.result["error"]
    assert (
        WorkerJob.objects.filter(type__in=["test.reject", "removedType"]).count() == 2
    )
    # A handler returning something that is not JSON is a failure that retries.
    assert WorkerJob.objects.filter(type="test.not_json").count() == 5
    assert "not JSON" in WorkerJob.objects.get(pk=not_json.pk).result["error"]


def test_a_handler_raising_a_base_exception_fails_once(run_manage) -> None:
    job = WorkerJob.objects.submit("test.interrupt")
    after = WorkerJob.objects.submit("test.record")

    done = run_manage("runworkers", "--once", "--no-maintenance")

    assert done.returncode == 0, done.stderr
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.result["exception"] == "asyncio.exceptions.CancelledError"
    assert JobRun.objects.filter(job_id=job.pk).count() == 1
    assert WorkerJob.objects.get(pk=after.pk).status == "succeeded"


def test_awkward_failures_fail_the_job_not_the_worker(run_manage) -> None:
    unprintable = WorkerJob.objects.submit("test.awkward", {"unprintable": True})
    bad_keys = WorkerJob.objects.submit("test.awkward", {"unprintable_key": True})
    too_deep = WorkerJob.objects.submit("test.awkward")
    after = WorkerJob.objects.submit("test.record")

    done = run_manage("runworkers", "--once", "--no-maintenance")

    assert done.returncode == 0, done.stderr
    unprintable.refresh_from_db()
    assert unprintable.status == "failed"
    assert unprintable.result["error"] == "_Unprintable"
    too_deep.refresh_from_db()
    assert too_deep.status == "failed"
    assert "is nested more than 200 levels deep" in too_deep.result["error"]
    bad_keys.refresh_from_db()
    assert bad_keys.status == "failed" and "not JSON" in bad_keys.result["error"]
    runs = JobRun.objects.filter(job_id__in=[unprintable.pk, bad_keys.pk, too_deep.pk])
    assert runs.count() == 3
    assert WorkerJob.objects.get(pk=after.pk).status == "succeeded"
    assert "worker lost" not in done.stderr


def test_jobs_run_exactly_once_across_four_children(run_manage) -> None:
    WorkerJob.objects.bulk_submit([{"type": "test.record"} for _ in range(2000)])

    done = run_manage(
        "runworkers", "--workers", "4", "--once", "--no-maintenance", timeout=300
    )

    assert done.returncode == 0, done.stderr
    assert JobRun.objects.count() == 2000
    assert JobRun.objects.values("job_id").distinct().count() == 2000
    assert WorkerJob.objects.succeeded().count() == 2000
    by_process = JobRun.objects.values("pid").annotate(n=Count("id"))
    assert len(by_process) == 4, list(by_process)


def test_sigterm_lets_the_job_in_hand_finish(start_manage) -> None:
    job = WorkerJob.objects.submit("test.sleep", {"seconds": 2})
    manager = start_manage("runworkers", "--no-maintenance", "--poll-interval", "0.1")
    wait_for(lambda: JobRun.objects.filter(job_id=job.pk).exists())

    manager.send_signal(signal.SIGTERM)
    output, _ = manager.communicate(timeout=30)

    assert manager.returncode == 0, output
    job.refresh_from_db()
    assert job.status == "succeeded", output
    assert "Manager stopped" in output


def test_a_child_that_dies_is_restarted(start_manage) -> None:
    manager = start_manage("runworkers", "--no-maintenance", "--poll-interval", "0.1")
    first = WorkerJob.objects.submit("test.record")
    wait_for(lambda: JobRun.objects.filter(job_id=first.pk).exists())
    child = JobRun.objects.get(job_id=first.pk).pid

    import os

    os.kill(child, signal.SIGKILL)
    second = WorkerJob.objects.submit("test.record")
    wait_for(lambda: JobRun.objects.filter(job_id=second.pk).exists())

    assert JobRun.objects.get(job_id=second.pk).pid != child
    assert manager.poll() is None
    manager.send_signal(signal.SIGTERM)
    output, _ = manager.communicate(timeout=30)
    assert "exited with signal SIGKILL, restarting" in output


def test_maintenance_jobs_are_scheduled_once_across_restarts(run_manage) -> None:
    for _ in range(2):
        done = run_manage("runworkers", "--once")
        assert done.returncode == 0, done.stderr

    cleanup = WorkerJob.objects.get(tag="cron:removeOldWorkerJobs")
    assert cleanup.type == "removeOldWorkerJobs"
    assert cleanup.cron_schedule == "0 2 * * *"
    assert cleanup.status == "pending"


def test_a_changed_schedule_replaces_the_pending_cron_job(run_manage) -> None:
    run_manage("runworkers", "--once")

    done = run_manage(
        "runworkers", "--once", WORKER_REMOVE_OLD_JOBS_SCHEDULE="30 3 * * *"
    )

    assert done.returncode == 0, done.stderr
    rows = WorkerJob.objects.filter(tag="cron:removeOldWorkerJobs").order_by("id")
    assert [(job.cron_schedule, job.status) for job in rows] == [
        ("0 2 * * *", "cancelled"),
        ("30 3 * * *", "pending"),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "many"], "--workers is 'many': give a whole number"),
        (["--workers", "-1"], "--workers is '-1'"),
        (["--poll-interval", "0"], "'0' is not a number of seconds above 0"),
        (["--poll-interval", "inf"], "'inf' is not a number of seconds above 0"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(
    run_manage, args, message
) -> None:
    done = run_manage("runworkers", "--once", *args)

    assert done.returncode != 0
    assert message in done.stderr


def test_worker_count_zero_starts_no_workers(run_manage) -> None:
    job = WorkerJob.objects.submit("sayHello")

    done = run_manage("runworkers", "--no-maintenance", WORKER_COUNT="0")

    assert done.returncode == 0
    assert "no workers started" in done.stderr
    assert WorkerJob.objects.get(pk=job.pk).status == "pending"


def test_json_log_lines_carry_the_job_keys(run_manage) -> None:
    import json

    job = WorkerJob.objects.submit("sayHello", tag="hello")

    done = run_manage(
        "runworkers", "--once", "--no-maintenance", WORKER_LOG_FORMAT="json"
    )

    lines = [json.loads(line) for line in done.stderr.splitlines() if line[:1] == "{"]
    finished = [line for line in lines if line["message"] == "Job succeeded"]
    assert len(finished) == 1
    entry = finished[0]
    assert entry["job"] == job.pk and entry["type"] == "sayHello"
    assert entry["tag"] == "hello" and entry["attempt"] == 1
    assert entry["outcome"] == "succeeded" and entry["duration_ms"] >= 0
    assert entry["worker"] and entry["level"] == "INFO"


@pytest.mark.django_db
def test_unsetting_the_rpc_url_cancels_the_scheduled_chain_jobs(settings) -> None:
    from workers.scheduling import ensure_maintenance_jobs

    settings.CHAIN_RPC_URL = "http://127.0.0.1:8545"
    ensure_maintenance_jobs()
    assert WorkerJob.objects.pending().filter(type="watchChain").exists()

    settings.CHAIN_RPC_URL = None
    ensure_maintenance_jobs()

    chain_jobs = WorkerJob.objects.filter(type__in=["watchChain", "deployMulticall3"])
    assert sorted(job.status for job in chain_jobs) == ["cancelled", "cancelled"]
    assert WorkerJob.objects.pending().get().type == "removeOldWorkerJobs"
