"""What a manager does about workers that die, hang, bloat or go silent.

A job is never left running by a worker that is gone. When a worker exits
mid-job, is killed for a timeout or its memory, or stops beating (its whole
host died), its running jobs are failed through execution.record, fenced on
the worker's name and the job's start, so that the job's reschedule rule
and its cron schedule apply as after any other failure, and so that a
worker that was only paused cannot overwrite that outcome when it wakes.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing.context
import os
import time
from collections.abc import Collection
from dataclasses import dataclass

from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from . import conf
from .execution import Outcome, record
from .log import log_job_finished
from .models import WorkerJob, WorkerProcess
from .registry import registry

logger = logging.getLogger("workers.supervision")

# Stale processes one manager looks at in one round.
STALE_BATCH = 50
# Milliseconds reap_stale() waits for a row another process holds locked.
LOCK_TIMEOUT_MS = 2000
# Seconds a stopped process's row is kept for the admin and workerstatus.
PROCESS_RETENTION = 7 * 24 * 3600
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class WorkerLostError(RuntimeError):
    """The worker running the job died or went silent before recording it."""


class JobTimeoutError(WorkerLostError):
    """The job ran past its timeout; its worker was killed."""


class MemoryLimitError(WorkerLostError):
    """The worker's memory grew past WORKER_MAX_MEMORY_MB; it was killed."""


def lost_result(error: WorkerLostError) -> dict[str, str]:
    kind = type(error)
    return {"error": str(error), "exception": f"{kind.__module__}.{kind.__name__}"}


def job_timeout(job_type: str) -> float | None:
    """Seconds a job of this type may run: its type's timeout, or the setting."""
    if job_type in registry:
        timeout = registry.get(job_type).timeout
        if timeout is not None:
            return float(timeout)
    default = conf.get("WORKER_JOB_TIMEOUT")
    return float(default) if default else None


def fail_running_jobs(
    worker: str, error: WorkerLostError, since: dt.datetime | None = None
) -> list[WorkerJob]:
    """Fail every job `worker` left running; return the jobs failed."""
    jobs = WorkerJob.objects.running().filter(worker=worker)
    if since is not None:
        jobs = jobs.filter(started__gte=since)
    failed = []
    for job in jobs.order_by("id"):
        outcome = Outcome(False, lost_result(error))
        label = record(job, worker, outcome)
        waited_ms = (timezone.now() - job.started).total_seconds() * 1000
        log_job_finished(job, worker, label, waited_ms, outcome.error)
        if label != "discarded":
            failed.append(job)
    return failed


def stale_since(now: dt.datetime | None = None) -> dt.datetime:
    """Heartbeats older than this are stale (WORKER_STALE_AFTER ago)."""
    now = now or timezone.now()
    return now - dt.timedelta(seconds=float(conf.get("WORKER_STALE_AFTER")))


def reap_stale(
    now: dt.datetime | None = None, exclude: Collection[str] = ()
) -> list[WorkerProcess]:
    """Declare dead the processes silent past WORKER_STALE_AFTER; fail their jobs.

    Each process is handled in a transaction of its own, its row locked with
    SKIP LOCKED, so that of several managers looking at once one handles it.
    `exclude` names the processes the caller deals with itself (a manager,
    and its own children). On PostgreSQL a row lock held by a process that
    is stopped, not dead, is waited for at most LOCK_TIMEOUT_MS: that
    process is left for a later look, and the others are handled.
    """
    now = now or timezone.now()
    stale = WorkerProcess.objects.stale(stale_since(now)).exclude(
        name__in=list(exclude)
    )
    expired = WorkerProcess.objects.filter(
        stopped__lt=now - dt.timedelta(seconds=PROCESS_RETENTION)
    )
    # Looked for first, by reads: on SQLite a write waits for the database's
    # lock, which a worker's long transaction may hold.
    clock = time.monotonic()
    for pk in [pk for pk, until in _postponed.items() if until <= clock]:
        del _postponed[pk]
    candidates = list(
        stale.exclude(pk__in=list(_postponed))
        .order_by("id")
        .values_list("pk", flat=True)[:STALE_BATCH]
    )
    dead = []
    for pk in candidates:
        try:
            process = _declare_dead(stale.filter(pk=pk), now)
        except OperationalError as error:
            if not is_lock_conflict(error):
                raise
            # Left for a later round, which goes on with the others first:
            # each round waits on one such lock at most.
            _postponed[pk] = time.monotonic() + float(conf.get("WORKER_STALE_AFTER"))
            logger.warning(
                "A stale process may still hold a lock: looking again later (%s)",
                error,
            )
            break
        if process is not None:
            dead.append(process)
    if expired.exists():
        expired.delete()
    return dead


def _declare_dead(stale: QuerySet, now: dt.datetime) -> WorkerProcess | None:
    """Mark one stale process stopped and fail its running jobs; None if
    another manager has it. OperationalError if a lock held elsewhere (on
    PostgreSQL, past LOCK_TIMEOUT_MS) or a deadlock stopped it."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")
        process = stale.select_for_update(skip_locked=True).first()
        if process is None:
            return None
        silent = (now - process.last_heartbeat).total_seconds()
        reason = f"no heartbeat for {silent:.0f} s"
        WorkerProcess.objects.filter(pk=process.pk).update(
            stopped=now, stop_reason=reason
        )
        error = WorkerLostError(f"worker lost: {process.name} sent {reason}")
        fail_running_jobs(process.name, error, since=process.started)
    logger.error(
        "Process presumed dead: %s",
        reason,
        extra={"worker": process.name, "kind": process.kind},
    )
    return process


def is_lock_conflict(error: Exception) -> bool:
    """True for PostgreSQL's lock_timeout (55P03) or a deadlock (40P01)."""
    return getattr(error.__cause__, "sqlstate", None) in ("55P03", "40P01")


# Stale processes whose clean-up met a lock: primary key -> time.monotonic()
# before which they are not looked at again.
_postponed: dict[int, float] = {}


def release_unrun_claims(worker: str, keep: int | None = None) -> int:
    """Give back the jobs `worker` claimed but never ran; return how many.

    A claim whose commit reached the database but whose answer was lost (the
    connection dropped) leaves a job marked running by a worker that does
    not know it. The worker calls this while it runs no job, so every such
    row is one it never started. The manager calls it for a worker that
    died, with `keep` the job it was running: a job claimed with the last
    outcome and never begun goes back to the queue instead of failing.
    """
    released = 0
    for job in WorkerJob.objects.running().filter(worker=worker).exclude(pk=keep):
        try:
            with transaction.atomic():
                released += WorkerJob.objects.filter(
                    pk=job.pk, worker=worker, started=job.started
                ).update(started=None, worker="", updated=timezone.now())
        except IntegrityError:
            # Its tag has a newer pending job: this one is superseded.
            error = WorkerLostError("the claim was lost; a newer job has its tag")
            record(job, worker, Outcome(False, lost_result(error), permanent=True))
    if released:
        logger.warning(
            "Released %d job(s) claimed during a database outage",
            released,
            extra={"worker": worker},
        )
    return released


def rss_mb(pid: int) -> float | None:
    """Resident memory of process `pid` in megabytes; None if unknown."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * PAGE_SIZE / 2**20


@dataclass(frozen=True)
class CurrentJob:
    job_id: int
    deadline: float  # time.time() seconds; 0: none
    timeout: float  # seconds; 0: none

    @property
    def overdue(self) -> bool:
        return bool(self.deadline) and time.time() > self.deadline


class JobBoard:
    """The job a worker runs, shared with its manager in shared memory.

    Lock-free on purpose: a worker killed mid-write must not leave a lock
    held that the manager would then wait on. The job id is written last on
    begin() and first on end(), so the manager never pairs it with another
    job's deadline.
    """

    def __init__(self, context: multiprocessing.context.BaseContext) -> None:
        # job id, deadline, timeout, jobs finished
        self._cells = context.RawArray("d", 4)

    def begin(self, job: WorkerJob) -> None:
        timeout = job_timeout(job.type) or 0.0
        self._cells[1] = time.time() + timeout if timeout else 0.0
        self._cells[2] = timeout
        self._cells[0] = float(job.pk)

    def end(self) -> None:
        self._cells[0] = 0.0
        self._cells[1] = self._cells[2] = 0.0
        self._cells[3] += 1

    @property
    def jobs_finished(self) -> int:
        """Jobs the worker has run to the end: it was making progress."""
        return int(self._cells[3])

    def current(self) -> CurrentJob | None:
        job_id = int(self._cells[0])
        if not job_id:
            return None
        return CurrentJob(job_id, self._cells[1], self._cells[2])
