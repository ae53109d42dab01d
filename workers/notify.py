"""Waking idle workers when jobs are submitted: PostgreSQL LISTEN/NOTIFY.

Submitting a job that is due now sends NOTIFY inside the submitting
transaction. PostgreSQL delivers it only when that transaction commits, once
however many jobs the transaction inserted, and never if it rolls back.

Each idle worker LISTENs on a connection of its own. When that connection is
lost, the worker falls back to polling every poll interval, and tries to
listen again every RECONNECT_INTERVAL seconds. Jobs whose due time comes
later are found by the polling, which always runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from . import conf

logger = logging.getLogger("workers.notify")

CHANNEL = "workers_job_submitted"
RECONNECT_INTERVAL = 5.0  # seconds
# Seconds a wait blocks before it checks whether the worker is stopping.
WAIT_SLICE = 0.1


def enabled(using: str = DEFAULT_DB_ALIAS) -> bool:
    """True when workers on this database are woken by notifications."""
    return connections[using].vendor == "postgresql" and bool(conf.get("WORKER_LISTEN"))


def announce(dues: Iterable[dt.datetime], using: str = DEFAULT_DB_ALIAS) -> None:
    """Notify listening workers, at commit, if any of `dues` has come."""
    if not enabled(using):
        return
    now = timezone.now()
    if not any(due <= now for due in dues):
        return
    with connections[using].cursor() as cursor:
        cursor.execute(f"NOTIFY {CHANNEL}")


class Listener:
    """A worker's LISTEN connection; nothing is opened until the first wait."""

    def __init__(
        self,
        using: str = DEFAULT_DB_ALIAS,
        *,
        worker: str = "",
        reconnect_interval: float = RECONNECT_INTERVAL,
    ) -> None:
        self.using = using
        self.worker = worker
        self.reconnect_interval = reconnect_interval
        self._connection: Any = None
        self._retry_at = 0.0

    @property
    def listening(self) -> bool:
        return self._connection is not None

    def wait(self, timeout: float, stop: threading.Event) -> bool:
        """Block until a notification, `timeout` seconds or `stop`.

        Returns False, at once, when it cannot listen (not PostgreSQL, or the
        connection is lost): the caller then sleeps and polls instead. Right
        after (re)connecting it returns True at once, since jobs submitted
        before LISTEN took effect sent their notification to no one.
        """
        if not enabled(self.using):
            return False
        import psycopg

        if self._connection is None:
            return self._connect()
        deadline = time.monotonic() + timeout
        try:
            while not stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                if self._receive(min(remaining, WAIT_SLICE)):
                    break
        except (psycopg.Error, OSError) as error:
            logger.warning(
                "Lost the listening connection, polling until it is back: %s",
                error,
                extra={"worker": self.worker},
            )
            self.close()
            self._retry_at = time.monotonic() + self.reconnect_interval
            return False
        return True

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _receive(self, timeout: float) -> bool:
        """True if at least one notification came within `timeout` seconds."""
        received = False
        for _ in self._connection.notifies(timeout=timeout, stop_after=1):
            received = True
        if received:
            # Several submissions may have queued notifications while the
            # worker was busy; one wake-up covers them all.
            for _ in self._connection.notifies(timeout=0):
                pass
        return received

    def _connect(self) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        import psycopg

        params = connections[self.using].get_connection_params()
        try:
            self._connection = psycopg.connect(**params, autocommit=True)
            self._connection.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as error:
            logger.warning(
                "Cannot listen for submitted jobs, polling instead: %s",
                error,
                extra={"worker": self.worker},
            )
            self.close()
            self._retry_at = time.monotonic() + self.reconnect_interval
            return False
        logger.debug("Listening for submitted jobs", extra={"worker": self.worker})
        return True
