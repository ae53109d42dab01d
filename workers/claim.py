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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

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
    connection = connections[DEFAULT_DB_ALIAS]
    quote = connection.ops.quote_name
    meta = WorkerJob._meta
    table = quote(meta.db_table)
    returning = ", ".join(quote(field.column) for field in meta.concrete_fields)
    in_queues = ""
    if queues:
        in_queues = f" AND queue IN ({', '.join(['%s'] * len(queues))})"
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
    with connection.cursor() as cursor:
        cursor.execute(claim_sql(queues), [now, worker, now, now, *(queues or [])])
        row = cursor.fetchone()
    if row is None:
        return None
    return _job_from_row(row)


def _job_from_row(row: Sequence[Any]) -> WorkerJob:
    """A WorkerJob from a row of all its columns, through the fields' converters."""
    connection = connections[DEFAULT_DB_ALIAS]
    meta = WorkerJob._meta
    values = []
    for field, value in zip(meta.concrete_fields, row, strict=True):
        column = field.get_col(meta.db_table)
        for convert in connection.ops.get_db_converters(
            column
        ) + column.get_db_converters(connection):
            value = convert(value, column, connection)
        values.append(value)
    attnames = [field.attname for field in meta.concrete_fields]
    return WorkerJob.from_db(DEFAULT_DB_ALIAS, attnames, values)


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
