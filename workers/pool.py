"""The manager: keeps a pool of worker processes alive.

The manager forks WORKER_COUNT children, each running a Worker loop, and
restarts any child that exits, with a backoff that grows while children keep
dying young. SIGTERM or SIGINT stops the pool: each child finishes the job
in hand within WORKER_SHUTDOWN_TIMEOUT, then exits; a child still busy then,
or when a second signal comes, is killed.

A job is never left running by a child that is gone: when a child exits
mid-job, or is killed for its job's timeout or for its memory, the manager
fails the job as lost at once. Every manager also looks for processes of
any host whose heartbeat went stale, and does the same for their jobs.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

from django.db import connection, connections, transaction
from django.utils import timezone

from . import conf
from .heartbeat import DATABASE_ERRORS, Heartbeat, mark_stopped, register
from .models import CHILD, MANAGER, WorkerProcess
from .supervision import (
    JobBoard,
    JobTimeoutError,
    MemoryLimitError,
    WorkerLostError,
    fail_running_jobs,
    reap_stale,
    release_unrun_claims,
    rss_mb,
    stale_since,
)
from .worker import Worker, new_token, worker_name

logger = logging.getLogger("workers.pool")

# A child that lived at least this long (seconds) resets its slot's backoff.
HEALTHY_LIFETIME = 30.0
RESTART_DELAY_MIN = 0.5  # seconds
RESTART_DELAY_MAX = 30.0  # seconds
PR_SET_PDEATHSIG = 1
# Seconds between two looks at the children's timeouts and memory.
TICK = 0.5
# Exit statuses of a child that stops on its own to stay safe.
EXIT_PRESUMED_DEAD = 70  # another manager failed its jobs as lost
EXIT_ORPHANED = 71  # its manager is gone


@dataclass
class Slot:
    """One place in the pool and the child process filling it."""

    number: int
    process: multiprocessing.process.BaseProcess | None = None
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float = 0.0
    done: bool = field(default=False)
    name: str = ""
    board: JobBoard | None = None
    # Why the manager killed the child; its running job fails with it.
    kill_reason: WorkerLostError | None = None


@dataclass
class LostWorker:
    """A child gone while its running jobs, if any, are not yet failed."""

    name: str
    error: WorkerLostError
    reason: str
    # The job its board showed: the only one it may have started. Its other
    # running rows are claims it never began (see Worker.run_next).
    job_id: int | None = None


class WorkerPool:
    """Start with run(); nothing is forked or bound before that."""

    def __init__(
        self,
        count: int,
        *,
        poll_interval: float = 1.0,
        once: bool = False,
        queues: Sequence[str] | None = None,
    ) -> None:
        if count < 1:
            raise ValueError(f"a pool needs at least one worker, not {count}")
        self.count = count
        self.poll_interval = poll_interval
        self.once = once
        self.queues = list(queues) if queues else None
        self.slots = [Slot(n) for n in range(count)]
        self._stopping = False
        self._forced = False
        self._context = multiprocessing.get_context("fork")
        self._lost: list[LostWorker] = []
        self._process: WorkerProcess | None = None
        self._heartbeat: Heartbeat | None = None
        self._fork_lock = threading.Lock()
        self._fenced = threading.Event()
        self._next_stale_check = 0.0
        # time.monotonic() of the last database error the manager met.
        self._db_failed_at = 0.0
        self.name = ""

    def run(self) -> int:
        """Supervise the children until stopped; return an exit status."""
        previous = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGTERM, signal.SIGINT)
        }
        self.name = worker_name(token=new_token())
        self._register()
        logger.info(
            "Manager started",
            extra={"worker": self.name, "workers": self.count, "once": self.once},
        )
        try:
            self._supervise()
        finally:
            self._stop_children()
            self._unregister()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            logger.info("Manager stopped", extra={"worker": self.name})
        return 0

    def stop(self) -> None:
        self._stopping = True

    def _supervise(self) -> None:
        while not self._stopping:
            now = time.monotonic()
            for slot in self.slots:
                if slot.process is None and not slot.done and now >= slot.restart_at:
                    self._start(slot)
            alive = [s.process.sentinel for s in self.slots if s.process is not None]
            if not alive and all(s.done for s in self.slots):
                return
            timeout = min(self._next_restart_in(now), TICK)
            multiprocessing.connection.wait(alive, timeout=timeout)
            for slot in self.slots:
                if slot.process is not None and not slot.process.is_alive():
                    self._reap(slot)
            self._police()
            self._maintain()

    def _next_restart_in(self, now: float) -> float:
        waiting = [
            s.restart_at - now for s in self.slots if s.process is None and not s.done
        ]
        return max(0.0, min(waiting)) if waiting else 1.0

    def _start(self, slot: Slot) -> None:
        slot.board = JobBoard(self._context)
        slot.kill_reason = None
        token = new_token()
        parent_id = self._process.pk if self._process else None
        process = self._context.Process(
            target=_child_main,
            args=(slot.number, self.poll_interval, self.once, self.queues),
            kwargs={
                "board": slot.board,
                "parent": (os.getpid(), parent_id),
                "token": token,
            },
            name=f"worker-{slot.number}",
            daemon=False,
        )
        # Forked children must not share the parent's database sockets, the
        # heartbeat thread's included: it holds the lock while it has one.
        with self._fork_lock:
            connections.close_all()
            process.start()
        slot.process = process
        slot.name = worker_name(slot.number, pid=process.pid, token=token)
        slot.started_at = time.monotonic()
        logger.info(
            "Worker process started",
            extra={"pid": process.pid, "slot": slot.number},
        )

    def _reap(self, slot: Slot) -> None:
        process = slot.process
        assert process is not None
        process.join()
        code = process.exitcode
        lifetime = time.monotonic() - slot.started_at
        slot.process = None
        error = slot.kill_reason or WorkerLostError(
            f"worker lost: {slot.name} exited with {_describe_exit(code)} "
            "while running the job"
        )
        current = slot.board.current() if slot.board else None
        self._lost.append(
            LostWorker(
                slot.name,
                error,
                _describe_exit(code),
                current.job_id if current else None,
            )
        )
        self._fail_lost_jobs()
        if self.once and code == 0:
            slot.done = True
            return
        if self._stopping:
            return
        # A child that ran jobs to the end was not crash-looping, however
        # short its life (it may have been killed from outside).
        progressed = slot.board is not None and slot.board.jobs_finished > 0
        healthy = lifetime >= HEALTHY_LIFETIME or progressed
        slot.quick_deaths = 0 if healthy else slot.quick_deaths + 1
        delay = min(
            RESTART_DELAY_MIN * 2 ** max(slot.quick_deaths - 1, 0), RESTART_DELAY_MAX
        )
        slot.restart_at = time.monotonic() + delay
        logger.warning(
            "Worker process exited with %s, restarting in %.1f s",
            _describe_exit(code),
            delay,
            extra={"pid": process.pid, "slot": slot.number, "exit_code": code},
        )

    def _stop_children(self) -> None:
        """Ask each child to stop; kill those still busy after the timeout."""
        for slot in self._busy_slots():
            os.kill(slot.process.pid, signal.SIGTERM)
        timeout = float(conf.get("WORKER_SHUTDOWN_TIMEOUT"))
        deadline = time.monotonic() + timeout
        while (busy := self._busy_slots()) and not self._forced:
            left = deadline - time.monotonic()
            if left <= 0:
                for slot in busy:
                    self._kill(
                        slot,
                        WorkerLostError(
                            f"worker stopped: {slot.name} did not finish the job "
                            f"within WORKER_SHUTDOWN_TIMEOUT ({timeout:g} s)"
                        ),
                    )
                break
            sentinels = [slot.process.sentinel for slot in busy]
            multiprocessing.connection.wait(sentinels, timeout=min(left, TICK))
        for slot in self.slots:
            if slot.process is not None:
                self._reap(slot)

    def _busy_slots(self) -> list[Slot]:
        return [
            slot
            for slot in self.slots
            if slot.process is not None and slot.process.is_alive()
        ]

    def _kill(self, slot: Slot, error: WorkerLostError) -> None:
        """Kill a child at once; its running job will fail with `error`."""
        if slot.process is None or slot.process.pid is None:
            return
        slot.kill_reason = error
        logger.error("Killing worker process: %s", error, extra={"worker": slot.name})
        with contextlib.suppress(ProcessLookupError):
            os.kill(slot.process.pid, signal.SIGKILL)

    def _police(self) -> None:
        """Kill the children whose job is overdue or whose memory is too big."""
        limit = conf.get("WORKER_MAX_MEMORY_MB")
        for slot in self._busy_slots():
            if slot.kill_reason is not None:
                continue
            current = slot.board.current() if slot.board else None
            if current is not None and current.overdue:
                self._kill(
                    slot,
                    JobTimeoutError(
                        f"job timed out: job {current.job_id} ran past its "
                        f"timeout of {current.timeout:g} s; worker {slot.name} "
                        "was killed"
                    ),
                )
                continue
            rss = rss_mb(slot.process.pid) if limit else None
            if rss is not None and rss > float(limit):
                self._kill(
                    slot,
                    MemoryLimitError(
                        f"memory limit exceeded: worker {slot.name} used "
                        f"{rss:.0f} MB, over WORKER_MAX_MEMORY_MB={float(limit):g}; "
                        "it was killed"
                    ),
                )

    def _maintain(self) -> None:
        """Now and then: fail the jobs of stale processes, re-register if fenced."""
        if self._lost:
            self._fail_lost_jobs()
        if self._fenced.is_set():
            self._next_stale_check = 0.0
        if time.monotonic() < self._next_stale_check:
            return
        self._next_stale_check = time.monotonic() + max(
            float(conf.get("WORKER_HEARTBEAT_INTERVAL")), 1.0
        )
        own = {slot.name: slot for slot in self._busy_slots()}
        try:
            if self._fenced.is_set():
                self._reregister()
            if self._database_steady():
                # Own children first, by a read alone: one that is stopped
                # (SIGSTOP, a frozen cgroup) may hold locks the clean-up
                # would wait on; killed, it lets them go.
                self._kill_silent(own)
                reap_stale(exclude=[self.name, *own])
        except DATABASE_ERRORS as error:
            logger.warning("Database unavailable, clean-up postponed: %s", error)
            self._db_failed_at = time.monotonic()
            return
        finally:
            connection.close()

    def _kill_silent(self, own: dict[str, Slot]) -> None:
        """Kill the children whose heartbeat has gone stale.

        On SQLite only a stopped one: there every heartbeat is a write, and
        all of them wait while any worker holds the lock, so a stale
        heartbeat alone does not tell a frozen child from one that waits
        its turn.
        """
        silent = (
            WorkerProcess.objects.stale(stale_since())
            .filter(name__in=list(own))
            .values_list("name", flat=True)
        )
        for name in silent:
            slot = own[name]
            if slot.kill_reason is None and (
                connection.vendor != "sqlite" or _is_stopped(slot.process.pid)
            ):
                self._kill(
                    slot, WorkerLostError(f"worker lost: {name} stopped beating")
                )

    def _database_steady(self) -> bool:
        """True when the database has answered us for WORKER_STALE_AFTER seconds.

        After an outage every process's heartbeat looks stale, though they
        all live: declaring them dead would fail jobs that are running well.
        Waiting as long as a heartbeat may be silent gives them time to beat.
        """
        failures = [self._db_failed_at]
        if self._heartbeat is not None:
            failures.append(self._heartbeat.last_failure)
        quiet = time.monotonic() - max(failures)
        return not max(failures) or quiet > float(conf.get("WORKER_STALE_AFTER"))

    def _fail_lost_jobs(self) -> None:
        """Fail the running jobs of the children that are gone."""
        while self._lost:
            lost = self._lost[0]
            try:
                with transaction.atomic():
                    release_unrun_claims(lost.name, keep=lost.job_id)
                    fail_running_jobs(lost.name, lost.error)
                    mark_stopped(lost.name, lost.reason, kind=CHILD)
            except DATABASE_ERRORS as error:
                logger.warning(
                    "Database unavailable, the jobs of a lost worker will be "
                    "failed later: %s",
                    error,
                    extra={"worker": lost.name},
                )
                self._db_failed_at = time.monotonic()
                connection.close()
                return
            self._lost.pop(0)

    def _register(self) -> None:
        self._process = register(MANAGER, self.name)
        connection.close()
        self._heartbeat = Heartbeat(
            self._process.pk,
            float(conf.get("WORKER_HEARTBEAT_INTERVAL")),
            name=self.name,
            on_fenced=self._fenced.set,
            lock=self._fork_lock,
        )
        self._heartbeat.start()

    def _reregister(self) -> None:
        """Our row was marked stopped by another manager: start a new one."""
        self._process = register(MANAGER, self.name)
        if self._heartbeat is not None:
            self._heartbeat.process_id = self._process.pk
        self._fenced.clear()

    def _unregister(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat.join()
        if self._process is None:
            return
        try:
            WorkerProcess.objects.filter(pk=self._process.pk).update(
                stopped=timezone.now(), stop_reason="stopped"
            )
        except DATABASE_ERRORS as error:
            logger.warning("Could not mark the manager stopped: %s", error)
        finally:
            connection.close()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if not self._stopping:
            logger.info("Manager received %s, stopping the pool", name)
            self.stop()
            return
        logger.warning("Manager received %s again, killing the workers now", name)
        self._forced = True
        for slot in self._busy_slots():
            self._kill(
                slot,
                WorkerLostError(
                    f"worker killed: the manager received {name} a second time "
                    "while the job ran"
                ),
            )


def _is_stopped(pid: int) -> bool:
    """True if process `pid` is stopped (SIGSTOP, a frozen cgroup) or, where
    /proc cannot tell, if it cannot be known to be running."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return not sys.platform.startswith("linux")
    if state in ("T", "t"):
        return True
    return _is_frozen(pid)


def _is_frozen(pid: int) -> bool:
    """True if `pid`'s cgroup (v2) is frozen: its threads sleep, but none runs."""
    try:
        with open(f"/proc/{pid}/cgroup") as cgroup:
            path = cgroup.read().strip().rsplit(":", 1)[1]
        with open(f"/sys/fs/cgroup{path}/cgroup.events") as events:
            return "frozen 1" in events.read()
    except (OSError, IndexError):
        return False


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"status {code}"


def _child_main(
    slot: int,
    poll_interval: float,
    once: bool,
    queues: list[str] | None = None,
    *,
    board: JobBoard | None = None,
    parent: tuple[int, int | None] = (0, None),
    token: str = "",
) -> None:
    """Entry point of a forked child: run a Worker, exit with its status."""
    parent_pid, parent_id = parent
    _die_with_parent()
    if parent_pid and os.getppid() != parent_pid:
        os._exit(EXIT_ORPHANED)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    name = worker_name(slot, token=token)
    process = register(CHILD, name, parent_id)
    heartbeat = Heartbeat(
        process.pk,
        float(conf.get("WORKER_HEARTBEAT_INTERVAL")),
        name=name,
        on_fenced=lambda: os._exit(EXIT_PRESUMED_DEAD),
        parent_pid=parent_pid or None,
        on_orphaned=lambda: os._exit(EXIT_ORPHANED),
    )
    heartbeat.start()
    worker = Worker(
        name, poll_interval=poll_interval, once=once, queues=queues, board=board
    )
    status = worker.run()
    heartbeat.stop()
    heartbeat.join()
    with contextlib.suppress(*DATABASE_ERRORS):
        WorkerProcess.objects.filter(pk=process.pk, stopped__isnull=True).update(
            stopped=timezone.now(), stop_reason="stopped"
        )
    sys.exit(status)


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies.

    SIGKILL, not SIGTERM: a child must not outlive its manager even while a
    handler hangs. Its running job is failed when its heartbeat goes stale.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
