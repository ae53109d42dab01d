"""The manager: keeps a pool of worker processes alive.

The manager forks WORKER_COUNT children, each running a Worker loop, and
restarts any child that exits, with a backoff that grows while children keep
dying young. SIGTERM or SIGINT stops the pool: each child finishes the job
in hand, then exits.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

from django.db import connections

from .worker import Worker, worker_name

logger = logging.getLogger("workers.pool")

# A child that lived at least this long (seconds) resets its slot's backoff.
HEALTHY_LIFETIME = 30.0
RESTART_DELAY_MIN = 0.5  # seconds
RESTART_DELAY_MAX = 30.0  # seconds
PR_SET_PDEATHSIG = 1


@dataclass
class Slot:
    """One place in the pool and the child process filling it."""

    number: int
    process: multiprocessing.process.BaseProcess | None = None
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float = 0.0
    done: bool = field(default=False)


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
        self._context = multiprocessing.get_context("fork")

    def run(self) -> int:
        """Supervise the children until stopped; return an exit status."""
        previous = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGTERM, signal.SIGINT)
        }
        logger.info(
            "Manager started",
            extra={"worker": worker_name(), "workers": self.count, "once": self.once},
        )
        try:
            self._supervise()
        finally:
            self._stop_children()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            logger.info("Manager stopped", extra={"worker": worker_name()})
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
            timeout = self._next_restart_in(now)
            multiprocessing.connection.wait(alive, timeout=timeout)
            for slot in self.slots:
                if slot.process is not None and not slot.process.is_alive():
                    self._reap(slot)

    def _next_restart_in(self, now: float) -> float:
        waiting = [
            s.restart_at - now for s in self.slots if s.process is None and not s.done
        ]
        return max(0.0, min(waiting)) if waiting else 1.0

    def _start(self, slot: Slot) -> None:
        # Forked children must not share the parent's database sockets.
        connections.close_all()
        process = self._context.Process(
            target=_child_main,
            args=(slot.number, self.poll_interval, self.once, self.queues),
            name=f"worker-{slot.number}",
            daemon=False,
        )
        process.start()
        slot.process = process
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
        if self.once and code == 0:
            slot.done = True
            return
        if self._stopping:
            return
        slot.quick_deaths = slot.quick_deaths + 1 if lifetime < HEALTHY_LIFETIME else 0
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
        children = [s.process for s in self.slots if s.process is not None]
        for process in children:
            if process.is_alive() and process.pid:
                os.kill(process.pid, signal.SIGTERM)
        for process in children:
            process.join()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        logger.info(
            "Manager received %s, stopping the pool", signal.Signals(signum).name
        )
        self.stop()


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"status {code}"


def _child_main(
    slot: int, poll_interval: float, once: bool, queues: list[str] | None = None
) -> None:
    """Entry point of a forked child: run a Worker, exit with its status."""
    _die_with_parent()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    worker = Worker(
        worker_name(slot), poll_interval=poll_interval, once=once, queues=queues
    )
    sys.exit(worker.run())


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM to this process when its parent dies."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
