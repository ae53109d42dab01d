"""Process records and heartbeats: which managers and workers are alive.

Each manager and each worker process has a WorkerProcess row. A Heartbeat
thread writes its last_heartbeat every WORKER_HEARTBEAT_INTERVAL seconds,
on a database connection of its own (Django's connections are per thread),
so that a long job never stops the beat. A process whose row another
manager has marked stopped was presumed dead and its jobs were failed: the
thread then calls `on_fenced`, which for a worker means exiting at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from django.db import DatabaseError, InterfaceError, connection
from django.utils import timezone

from .models import WorkerProcess

logger = logging.getLogger("workers.heartbeat")

# Seconds between two looks at whether the parent process is still there.
PARENT_CHECK_INTERVAL = 0.5
DATABASE_ERRORS = (DatabaseError, InterfaceError)


def register(kind: str, name: str, parent_id: int | None = None) -> WorkerProcess:
    """Insert the row of the calling process and return it."""
    now = timezone.now()
    return WorkerProcess.objects.create(
        kind=kind,
        name=name,
        host=socket.gethostname(),
        pid=os.getpid(),
        parent_id=parent_id,
        started=now,
        last_heartbeat=now,
    )


def mark_stopped(name: str, reason: str, kind: str | None = None) -> int:
    """Mark the running process rows named `name` stopped; return how many."""
    rows = WorkerProcess.objects.running().filter(name=name)
    if kind is not None:
        rows = rows.filter(kind=kind)
    return rows.update(stopped=timezone.now(), stop_reason=reason[:255])


class Heartbeat(threading.Thread):
    """Beats for one process row until stop() is called.

    With `parent_pid`, it also watches the parent: when the parent is gone,
    `on_orphaned` is called (a worker must not outlive its manager).
    """

    def __init__(
        self,
        process_id: int,
        interval: float,
        *,
        name: str = "",
        on_fenced: Callable[[], None],
        parent_pid: int | None = None,
        on_orphaned: Callable[[], None] | None = None,
        lock: threading.Lock | None = None,
    ) -> None:
        super().__init__(name=f"heartbeat-{process_id}", daemon=True)
        self.process_id = process_id
        self.worker = name
        self.interval = interval
        self.on_fenced = on_fenced
        self.parent_pid = parent_pid
        self.on_orphaned = on_orphaned
        # Held while the thread has a database connection open; a manager
        # takes it to fork, so no child inherits a live socket of this thread.
        self.lock = lock
        self._stopped = threading.Event()
        # time.monotonic() of the last beat the database refused; 0: none.
        self.last_failure = 0.0

    def stop(self) -> None:
        self._stopped.set()

    def run(self) -> None:
        step = min(self.interval, PARENT_CHECK_INTERVAL)
        waited = 0.0
        try:
            while not self._stopped.wait(step):
                if self._orphaned():
                    return
                waited += step
                if waited >= self.interval:
                    waited = 0.0
                    self.beat()
        finally:
            connection.close()

    def beat(self) -> bool:
        """Write the heartbeat; False when the database could not be reached."""
        with self.lock or contextlib.nullcontext():
            try:
                alive = (
                    WorkerProcess.objects.running()
                    .filter(pk=self.process_id)
                    .update(last_heartbeat=timezone.now())
                )
            except DATABASE_ERRORS as error:
                logger.warning(
                    "Heartbeat not written: %s", error, extra={"worker": self.worker}
                )
                self.last_failure = time.monotonic()
                connection.close()
                return False
            finally:
                if self.lock is not None:
                    connection.close()
        if not alive:
            logger.error(
                "This process was presumed dead by another manager",
                extra={"worker": self.worker},
            )
            self.on_fenced()
        return True

    def _orphaned(self) -> bool:
        if self.parent_pid is None or os.getppid() == self.parent_pid:
            return False
        logger.error(
            "The manager process %s is gone; exiting",
            self.parent_pid,
            extra={"worker": self.worker},
        )
        if self.on_orphaned is not None:
            self.on_orphaned()
        return True
