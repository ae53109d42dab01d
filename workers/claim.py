"""Claiming the next due job, so that no two workers run the same one.

On PostgreSQL the claim is one statement: an UPDATE of the first due row,
found with FOR UPDATE SKIP LOCKED so that workers on any number of hosts skip
the rows others are claiming, returning the claimed row. Its order (priority,
due, id) is that of the partial index on unstarted jobs, so the claim stays
an index lookup however many finished rows the table holds.

SQLite has no row locks; there the settings open every transaction with
BEGIN IMMEDIATE, which takes the database's write lock first, so claims
queue; the ORM does the same work in two statements.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from .inserts import hot_cursor, hot_options
from .models import WorkerJob

CLAIM_ORDER = ("-priority", "due", "id")


def claim_next(
    worker: str,
    now: dt.datetime | None = None,
    queues: Sequence[str] | None = None,
) -> WorkerJob | None:
    """Mark the next due job as started by `worker` and return it, or None.

    With `queues`, only jobs of those queues; higher priorities first.
    """
    now = now or timezone.now()
    if connections[DEFAULT_DB_ALIAS].vendor == "postgresql":
        return _claim_with_sql(worker, now, queues)
    with transaction.atomic():
        job = (
            WorkerJob.objects.due(now)
            .in_queues(queues)
            .select_for_update(skip_locked=True)
            .order_by(*CLAIM_ORDER)
            .first()
        )
        if job is None:
            return None
        job.started = now
        job.worker = worker
        job.updated = now
        job.save(update_fields=["started", "worker", "updated"])
    return job


def claim_sql(queues: Sequence[str] | None = None) -> str:
    """The PostgreSQL claim statement; parameters: started, worker, updated,
    now, then the queues."""
    return _claim_sql(len(queues or ()))


def claim_params(
    worker: str, now: dt.datetime, queues: Sequence[str] | None = None
) -> list[Any]:
    """The parameters of claim_sql()."""
    return [now, worker, now, now, *(queues or ())]


@cache
def _claim_sql(queue_count: int) -> str:
    connection = connections[DEFAULT_DB_ALIAS]
    quote = connection.ops.quote_name
    meta = WorkerJob._meta
    table = quote(meta.db_table)
    returning = ", ".join(quote(field.column) for field in meta.concrete_fields)
    in_queues = ""
    if queue_count:
        in_queues = f" AND queue IN ({', '.join(['%s'] * queue_count)})"
    return (
        f"UPDATE {table} SET started = %s, worker = %s, updated = %s "
        f"WHERE id = (SELECT id FROM {table} "
        f"WHERE started IS NULL AND finished IS NULL AND due <= %s{in_queues} "
        "ORDER BY priority DESC, due, id LIMIT 1 FOR UPDATE SKIP LOCKED) "
        f"RETURNING {returning}"
    )


def _claim_with_sql(
    worker: str, now: dt.datetime, queues: Sequence[str] | None
) -> WorkerJob | None:
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.wrap_database_errors, hot_cursor() as cursor:
        cursor.execute(
            claim_sql(queues), claim_params(worker, now, queues), **hot_options()
        )
        return job_from_row(cursor.fetchone())


def job_from_row(row: Sequence[Any] | None) -> WorkerJob | None:
    """A WorkerJob from a row of all its columns, through the fields' converters."""
    if row is None:
        return None
    connection = connections[DEFAULT_DB_ALIAS]
    values = []
    for (column, converters), value in zip(_converters(), row, strict=True):
        for convert in converters:
            value = convert(value, column, connection)
        values.append(value)
    return WorkerJob.from_db(DEFAULT_DB_ALIAS, _attnames(), values)


@cache
def _converters() -> list[tuple[Any, list[Any]]]:
    connection = connections[DEFAULT_DB_ALIAS]
    meta = WorkerJob._meta
    pairs = []
    for field in meta.concrete_fields:
        column = field.get_col(meta.db_table)
        converters = connection.ops.get_db_converters(
            column
        ) + column.get_db_converters(connection)
        pairs.append((column, converters))
    return pairs


@cache
def _attnames() -> list[str]:
    return [field.attname for field in WorkerJob._meta.concrete_fields]


class FollowingClaim:
    """A worker's claim of its next job, made where its last one is recorded.

    Called, it claims through claim_next(). On PostgreSQL the recording
    instead sends statement() in its own pipeline and hands the row to
    accept(). Nothing is claimed once `stop` is set.
    """

    def __init__(
        self, worker: str, queues: Sequence[str] | None, stop: threading.Event
    ) -> None:
        self.worker = worker
        self.queues = queues
        self.stop = stop
        self.job: WorkerJob | None = None

    @property
    def wanted(self) -> bool:
        return not self.stop.is_set()

    def __call__(self) -> None:
        if self.wanted:
            self.job = claim_next(self.worker, queues=self.queues)

    def statement(self, now: dt.datetime) -> tuple[str, list[Any]]:
        return claim_sql(self.queues), claim_params(self.worker, now, self.queues)

    def accept(self, row: Sequence[Any] | None) -> None:
        self.job = job_from_row(row)


@contextmanager
def persistent_connection(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Keep a worker's database connection open from job to job.

    A worker runs one job after another, so CONN_MAX_AGE=0 (the default)
    would open a connection per job. Inside this block the connection lives
    on (close_old_connections() still closes it after an error) and skips
    the per-job health check: a broken connection raises DatabaseError,
    which the worker loop handles by closing it and retrying.
    """
    connection = connections[using]
    saved = {
        key: connection.settings_dict.get(key)
        for key in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS")
    }
    connection.settings_dict.update(CONN_MAX_AGE=None, CONN_HEALTH_CHECKS=False)
    connection.close_at = None
    connection.health_check_enabled = False
    try:
        yield
    finally:
        connection.settings_dict.update(saved)
        connection.health_check_enabled = bool(saved["CONN_HEALTH_CHECKS"])
