"""The loop each worker process runs: claim a due job, run it, record it."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
from collections.abc import Sequence
from types import FrameType

from django.db import DatabaseError, InterfaceError, close_old_connections, connection

from .claim import FollowingClaim, claim_next, persistent_connection
from .execution import run_and_report
from .models import WorkerJob
from .notify import Listener
from .supervision import JobBoard, release_unrun_claims

logger = logging.getLogger("workers.worker")

# Seconds to wait before trying again after the database failed us; doubles
# on each failure in a row, up to the maximum.
DB_RETRY_DELAY = 0.5
DB_RETRY_DELAY_MAX = 15.0


def worker_name(
    slot: int | None = None, pid: int | None = None, token: str = ""
) -> str:
    """`host:pid`, or `host:pid/slot` for a pool's child (default pid: ours),
    then `~token` if given.

    A pool names each process it starts with a new token: after a restart in
    a container, the same host name and pids come back, and a name alone
    would mistake a new process for the dead one it replaces.
    """
    name = f"{socket.gethostname()}:{pid or os.getpid()}"
    if slot is not None:
        name = f"{name}/{slot}"
    return f"{name}~{token}" if token else name


def new_token() -> str:
    """A random token that tells one process apart from an earlier namesake."""
    return secrets.token_hex(3)


class Worker:
    """Claims and runs due jobs until told to stop.

    With `once`, it stops as soon as no job is due (drain-and-exit mode).
    """

    def __init__(
        self,
        name: str,
        *,
        poll_interval: float = 1.0,
        once: bool = False,
        queues: Sequence[str] | None = None,
        board: JobBoard | None = None,
    ) -> None:
        self.name = name
        self.poll_interval = poll_interval
        self.once = once
        # Only jobs of these queues; None: every queue.
        self.queues = list(queues) if queues else None
        self._stop = threading.Event()
        self.jobs_run = 0
        # Tells the manager which job runs, for its timeout.
        self.board = board
        # A claim may have committed without our knowing; see run_next().
        self._claims_in_doubt = False
        # Claimed with the last outcome, to run next.
        self._next_job: WorkerJob | None = None
        self.listener = Listener(worker=name)

    def stop(self) -> None:
        """Finish the job in hand, then leave the loop."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> int:
        """Run the loop with SIGTERM and SIGINT bound to stop(); return 0."""
        previous = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGTERM, signal.SIGINT)
        }
        logger.info("Worker started", extra={"worker": self.name})
        try:
            with persistent_connection():
                self.loop()
                if self._next_job is not None:
                    # Stopped between claiming a job and starting it.
                    release_unrun_claims(self.name)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.listener.close()
            connection.close()
            logger.info(
                "Worker stopped", extra={"worker": self.name, "jobs_run": self.jobs_run}
            )
        return 0

    def loop(self) -> None:
        failures = 0
        while not self.stopping:
            try:
                ran = self.run_next()
            except (DatabaseError, InterfaceError) as error:
                self._claims_in_doubt = True
                failures += 1
                delay = min(DB_RETRY_DELAY * 2 ** (failures - 1), DB_RETRY_DELAY_MAX)
                logger.warning(
                    "Database unavailable, retrying in %.1f s: %s",
                    delay,
                    error,
                    extra={"worker": self.name},
                )
                connection.close()
                self._stop.wait(delay)
                continue
            failures = 0
            if not ran:
                if self.once:
                    return
                self.wait_for_jobs()

    def run_next(self) -> bool:
        """Claim and run one due job; False if none was due.

        While jobs keep coming, the next one is claimed in the transaction
        that records the last one's outcome: one commit a job, not two.
        """
        close_old_connections()
        if self._claims_in_doubt:
            self._next_job = None
            release_unrun_claims(self.name)
            self._claims_in_doubt = False
        job, self._next_job = self._next_job, None
        if job is None:
            job = claim_next(self.name, queues=self.queues)
        if job is None:
            return False
        if self.board is not None:
            self.board.begin(job)
        following = FollowingClaim(self.name, self.queues, self._stop)
        # Should anything escape, the job stays on the board: the process
        # dies with it, and the manager fails it as begun, never gives it back.
        _, outcome = run_and_report(job, self.name, then=following)
        if self.board is not None:
            self.board.end()
        self._next_job = following.job
        if outcome.record_failures:
            # A claim made in a failed attempt may have committed unseen.
            self._claims_in_doubt = True
        self.jobs_run += 1
        close_old_connections()
        return True

    def wait_for_jobs(self) -> None:
        """Sleep until a job is submitted, the next poll, or stop()."""
        if not self.listener.wait(self.poll_interval, self._stop):
            self._stop.wait(self.poll_interval)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        logger.info(
            "Worker received %s, stopping after the job in hand",
            signal.Signals(signum).name,
            extra={"worker": self.name},
        )
        self.stop()
