"""Workers that die mid-job: killed children, dead hosts, orphans, fencing."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import time

import pytest
from django.db import connection
from django.utils import timezone

from workers import execution
from workers.models import WorkerJob, WorkerProcess

from .conftest import (
    alive,
    children_of,
    job_of,
    output,
    running_job_pid,
    runs,
    wait_for,
    wait_until_no_heartbeat_is_live,
)


def test_sigkilled_child_fails_its_job_at_once_and_is_replaced(manager, run_log):
    pool = manager(workers=1)
    job = WorkerJob.objects.submit(
        "crashSleep",
        {"seconds": 60, "log": str(run_log)},
        auto_reschedule_on_failure=True,
        auto_reschedule_on_failure_delay=3600,
    )
    pid = running_job_pid(job)

    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()

    job = wait_for(lambda: job_of(job.pk).finished and job_of(job.pk), 5, "failure")
    assert time.monotonic() - killed < 2
    assert job.status == "failed"
    assert job.result["error"].startswith("worker lost:")
    assert "signal SIGKILL" in job.result["error"]
    retry = WorkerJob.objects.get(rescheduled_from=job)
    assert (retry.status, retry.attempt) == ("pending", 2)
    wait_for(lambda: any(p != pid for p in children_of(pool.pid)), 10, "a new child")
    assert WorkerProcess.objects.get(pid=pid, kind="child").stopped is not None


def test_a_claim_never_begun_goes_back_when_its_worker_dies(manager, run_log):
    manager(workers=1)
    job = WorkerJob.objects.submit("crashSleep", {"seconds": 60, "log": str(run_log)})
    pid = running_job_pid(job)
    worker = job_of(job.pk).worker
    # What a job claimed with the last outcome, not yet begun, looks like.
    later = timezone.now() + dt.timedelta(hours=1)
    claimed = WorkerJob.objects.submit("crashSleep", due=later)
    WorkerJob.objects.filter(pk=claimed.pk).update(
        started=timezone.now(), worker=worker
    )

    os.kill(pid, signal.SIGKILL)

    wait_for(lambda: job_of(job.pk).finished, 5, "the running job to fail")
    assert job_of(job.pk).status == "failed"
    claimed = job_of(claimed.pk)
    assert (claimed.status, claimed.worker, claimed.result) == ("pending", "", None)


def test_sigkilled_cron_job_gets_its_next_run(manager, run_log):
    manager(workers=1)
    job = WorkerJob.objects.submit(
        "crashSleep",
        {"seconds": 60, "log": str(run_log)},
        tag="cron:sleepy",
        cron_schedule="0 3 * * *",
        due=timezone.now(),
    )
    os.kill(running_job_pid(job), signal.SIGKILL)

    wait_for(lambda: job_of(job.pk).finished, 5, "the job to fail")
    follow = WorkerJob.objects.get(rescheduled_from=job)
    assert follow.status == "pending"
    assert follow.cron_schedule == "0 3 * * *"
    assert follow.due > timezone.now()


@pytest.mark.slow
def test_dead_host_is_found_stale_by_another_manager(manager, run_log):
    doomed = manager(workers=1)
    job = WorkerJob.objects.submit(
        "crashSleep",
        {"seconds": 60, "log": str(run_log)},
        auto_reschedule_on_failure=True,
        auto_reschedule_on_failure_delay=0,
    )
    child = running_job_pid(job)
    survivor = manager(workers=1)

    os.killpg(doomed.pid, signal.SIGKILL)  # the manager and its children
    died = time.monotonic()

    failed = wait_for(lambda: job_of(job.pk).finished and job_of(job.pk), 15, "fail")
    waited = time.monotonic() - died
    assert waited < 8, waited  # WORKER_STALE_AFTER=3 plus a check
    assert failed.result["error"].startswith(f"worker lost: {failed.worker} sent")
    # Each stale process is declared dead on its own: the manager's row may
    # go stale, and be reaped, a moment after its worker's.
    stale = WorkerProcess.objects.filter(pid__in=[doomed.pid, child])
    wait_for(
        lambda: all(
            p.stopped and p.stop_reason.startswith("no heartbeat") for p in stale.all()
        ),
        8,
        "both processes of the dead host to be declared dead",
    )
    # Declared dead no sooner than WORKER_STALE_AFTER after its last beat
    # (which came up to one heartbeat interval before the kill).
    silence = failed.finished - stale.get(pid=child).last_heartbeat
    assert silence.total_seconds() >= 3, silence
    retry = wait_for(
        lambda: WorkerJob.objects.running().filter(rescheduled_from=job).first(),
        10,
        "the retry to run",
    )
    assert retry.worker.split(":")[1].split("/")[0] in map(
        str, children_of(survivor.pid)
    )


def test_children_never_outlive_their_manager(manager):
    pool = manager(workers=2)
    children = children_of(pool.pid)
    assert len(children) == 2

    os.kill(pool.pid, signal.SIGKILL)  # the manager alone

    wait_for(lambda: not any(alive(pid) for pid in children), 3, "children to die")


def test_a_worker_presumed_dead_cannot_overwrite_the_outcome(manager, run_log):
    paused = manager(workers=1, WORKER_STALE_AFTER="2")
    job = WorkerJob.objects.submit("crashSleep", {"seconds": 3, "log": str(run_log)})
    running_job_pid(job)
    other = manager(workers=1, WORKER_STALE_AFTER="2")
    os.killpg(paused.pid, signal.SIGSTOP)
    try:
        failed = wait_for(lambda: job_of(job.pk).finished and job_of(job.pk), 10, "x")
        assert failed.result["error"].startswith("worker lost:")
    finally:
        os.killpg(paused.pid, signal.SIGCONT)
    # The paused worker wakes with its handler done; its record is fenced off,
    # or it sees that it was presumed dead and exits first.
    time.sleep(4)
    job.refresh_from_db()
    assert job.success is False
    assert job.result == failed.result
    assert runs(run_log)[job.pk] == 1
    assert paused.poll() is None and other.poll() is None
    log = output(paused)
    assert "outcome=discarded" in log or "presumed dead" in log, log


@pytest.mark.django_db(transaction=True)
def test_record_is_fenced_on_the_worker_and_start():
    job = WorkerJob.objects.submit("crashSleep", {})
    now = timezone.now()
    WorkerJob.objects.filter(pk=job.pk).update(started=now, worker="h:1/0")
    job.refresh_from_db()
    lost = execution.Outcome(False, {"error": "worker lost: test"})
    assert execution.record(job, "h:1/0", lost) == "failed"
    late = execution.Outcome(True, {"late": True})
    assert execution.record(job, "h:1/0", late) == "discarded"
    job.refresh_from_db()
    assert job.result == {"error": "worker lost: test"}


@pytest.mark.slow
def test_a_long_job_that_keeps_beating_is_never_taken(manager, run_log):
    manager(workers=1, WORKER_STALE_AFTER="1.5")
    job = WorkerJob.objects.submit("crashSleep", {"seconds": 6, "log": str(run_log)})
    running_job_pid(job)
    manager(workers=1, WORKER_STALE_AFTER="1.5")

    done = wait_for(lambda: job_of(job.pk).finished and job_of(job.pk), 15, "job")

    assert done.status == "succeeded"
    assert runs(run_log) == {job.pk: 1}
    assert not WorkerJob.objects.filter(rescheduled_from=job).exists()


def test_a_worker_killed_after_finishing_jobs_restarts_at_once(manager, run_log):
    # The restart backoff is for crash loops; these workers made progress.
    pool = manager(workers=1)
    for _ in range(3):
        job = WorkerJob.objects.submit("crashSleep", {"log": str(run_log)})
        wait_for(lambda: job_of(job.pk).finished, 10, "the job to finish")  # noqa: B023
        old = children_of(pool.pid)
        os.kill(old[0], signal.SIGKILL)
        killed = time.monotonic()
        wait_for(
            lambda: set(children_of(pool.pid)) - set(old),  # noqa: B023
            5,
            "a new worker",
            step=0.05,
        )
        assert time.monotonic() - killed < 1.5


def unshared(manage_args: list[str]) -> list[str] | None:
    """The command to run manage.py in a new PID namespace, or None if denied."""
    probe = subprocess.run(
        ["unshare", "-fp", "--mount-proc", "true"], capture_output=True, timeout=10
    )
    if probe.returncode != 0:
        return None
    return ["unshare", "-fp", "--mount-proc", *manage_args]


def test_a_restarted_container_does_not_mistake_its_new_workers_for_dead_ones(
    start_manage, run_log, monkeypatch
):
    """A container restart brings back the host name and the pids: the new
    manager must fail the dead incarnation's job, not its own worker's."""
    import tests.conftest as root_conftest

    command = unshared(root_conftest.manage_command())
    if command is None:
        pytest.skip("unshare cannot make a PID namespace here (needs root)")
    monkeypatch.setattr(
        root_conftest, "manage_command", lambda *args: [*command, *args]
    )
    args = ("runworkers", "--workers", "1", "--no-maintenance")
    from .conftest import FAST, drain

    first = start_manage(*args, **FAST)
    drain(first)
    lost = WorkerJob.objects.submit("crashSleep", {"seconds": 60, "log": str(run_log)})
    running_job_pid(lost)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)

    second = start_manage(*args, **FAST)
    drain(second)
    kept = WorkerJob.objects.submit("crashSleep", {"seconds": 8, "log": str(run_log)})
    running_job_pid(kept)
    old, new = (job_of(job.pk).worker for job in (lost, kept))
    # Same host, same pids: only the token tells the two workers apart.
    assert old.split("~")[0] == new.split("~")[0], (old, new)

    lost = wait_for(lambda: job_of(lost.pk).finished and job_of(lost.pk), 15, "lost")
    assert lost.status == "failed" and "sent no heartbeat" in lost.result["error"]
    kept = wait_for(lambda: job_of(kept.pk).finished and job_of(kept.pk), 30, "kept")
    assert kept.status == "succeeded", (kept.result, output(second))
    assert runs(run_log)[kept.pk] == 1


def test_a_worker_stopped_inside_a_transaction_is_killed_and_the_pool_goes_on(
    manager, run_log
):
    pool = manager(workers=2)
    held = WorkerJob.objects.submit("crashHoldLock", {"log": str(run_log)})
    pid = running_job_pid(held)

    os.kill(pid, signal.SIGSTOP)  # frozen, locks held, heartbeat silent
    try:
        held = wait_for(
            lambda: job_of(held.pk).finished and job_of(held.pk), 20, "the failure"
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    assert held.status == "failed"
    assert "stopped beating" in held.result["error"], held.result
    assert not alive(pid)

    after = WorkerJob.objects.submit("crashSleep", {"log": str(run_log)})
    after = wait_for(lambda: job_of(after.pk).finished and job_of(after.pk), 20, "next")
    assert after.status == "succeeded"
    assert pool.poll() is None


def test_a_long_sqlite_transaction_gets_no_worker_killed(manager, run_log):
    """On SQLite every heartbeat waits while a worker holds the write lock:
    stale heartbeats alone must not get a running worker killed."""
    manager(workers=2)
    holder = WorkerJob.objects.submit(
        "crashHoldLock", {"seconds": 6, "log": str(run_log)}
    )
    running_job_pid(holder)
    sibling = WorkerJob.objects.submit("crashSleep", {"seconds": 8})

    for job in (holder, sibling):
        done = wait_for(lambda j=job: job_of(j.pk).finished and job_of(j.pk), 40, "end")
        assert done.status == "succeeded", done.result


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="one SQLite writer at a time"
)
def test_a_frozen_host_holding_locks_does_not_stop_the_reaping_of_others(
    manager, run_log
):
    frozen = manager(workers=1)
    held = WorkerJob.objects.submit("crashHoldLock", {"log": str(run_log)})
    running_job_pid(held)
    os.killpg(frozen.pid, signal.SIGSTOP)  # the whole host, locks held
    try:
        wait_until_no_heartbeat_is_live("the frozen host's heartbeats to go stale")
        old = timezone.now() - dt.timedelta(minutes=1)
        WorkerProcess.objects.create(
            kind="child",
            name="gone:1/0~0",
            host="gone",
            pid=1,
            started=old,
            last_heartbeat=old,
        )
        orphan = WorkerJob.objects.submit("crashSleep")
        WorkerJob.objects.filter(pk=orphan.pk).update(started=old, worker="gone:1/0~0")

        manager(workers=1)
        failed = wait_for(
            lambda: job_of(orphan.pk).finished and job_of(orphan.pk), 20, "reaping"
        )
        assert failed.status == "failed"
        assert "gone:1/0~0 sent no heartbeat" in failed.result["error"]
        assert job_of(held.pk).status == "running"  # its lock is still held
    finally:
        os.killpg(frozen.pid, signal.SIGKILL)
        os.killpg(frozen.pid, signal.SIGCONT)
