"""Writing new job rows, with the fewest round trips each database allows.

On PostgreSQL one job is one statement: the INSERT and, when the job is due,
the NOTIFY that wakes idle workers (delivered when the statement's
transaction commits; in autocommit mode, at once). Many jobs are written with
COPY after their ids are drawn from the table's sequence in one query. Other
databases use the ORM's save() and bulk_create().
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.utils import timezone

from . import notify
from .models import WorkerJob


def insert_one(job: WorkerJob, using: str = DEFAULT_DB_ALIAS) -> None:
    """Insert `job` (unsaved) and wake listening workers if it is due."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        job.save(force_insert=True, using=using)
        notify.announce([job.due], using)
        return
    wake = notify.enabled(using) and job.due <= timezone.now()
    sql = _insert_sql(wake)
    params = _row(job, connection, with_id=False)
    if wake:
        params.append(notify.CHANNEL)
    with connection.wrap_database_errors, hot_cursor(using) as cursor:
        cursor.execute(sql, params, **hot_options(using))
        (job.pk,) = cursor.fetchone()[:1]
    _mark_saved(job, using)


def hot_cursor(using: str = DEFAULT_DB_ALIAS) -> Any:
    """A cursor for the statements run once per job, prepared on PostgreSQL.

    Django's own cursors bind parameters on the client, so the server parses
    and plans each statement anew. On PostgreSQL this is a psycopg cursor
    binding on the server, whose statements (see hot_options()) are prepared
    once per connection; elsewhere Django's cursor. Where Django logs queries
    (DEBUG, or a test capturing them), these are logged alike.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return connection.cursor()
    import psycopg

    connection.ensure_connection()
    cursor = psycopg.Cursor(connection.connection)
    if connection.queries_logged:
        return LoggedCursor(cursor, connection)
    return cursor


class LoggedCursor:
    """A raw cursor whose statements go to Django's query log."""

    def __init__(self, cursor: Any, connection: Any) -> None:
        self.cursor = cursor
        self.connection = connection

    def execute(self, sql: str, params: Any = None, **options: Any) -> Any:
        log_query(self.connection, sql)
        return self.cursor.execute(sql, params, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cursor, name)

    def __enter__(self) -> LoggedCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cursor.close()


def log_query(connection: Any, sql: str) -> None:
    """Add `sql` to Django's query log when the connection keeps one."""
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": "0.000"})


def hot_options(using: str = DEFAULT_DB_ALIAS) -> dict[str, Any]:
    """Keyword arguments for hot_cursor().execute()."""
    return {"prepare": True} if connections[using].vendor == "postgresql" else {}


def insert_many(jobs: Sequence[WorkerJob], using: str = DEFAULT_DB_ALIAS) -> None:
    """Insert unsaved `jobs` in one go; each gets its primary key."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        WorkerJob.objects.using(using).bulk_create(jobs)
        notify.announce((job.due for job in jobs), using)
        return
    quote = connection.ops.quote_name
    table = quote(WorkerJob._meta.db_table)
    # Django wraps execute() in its exceptions, not copy(): this does.
    with connection.wrap_database_errors, connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) "
            "FROM generate_series(1, %s)",
            [WorkerJob._meta.db_table, len(jobs)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        columns = ", ".join(quote(field.column) for field in _fields(with_id=True))
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for job, pk in zip(jobs, ids, strict=True):
                job.pk = pk
                copy.write_row(_row(job, connection, with_id=True))
    for job in jobs:
        _mark_saved(job, using)
    notify.announce((job.due for job in jobs), using)


@cache
def _fields(with_id: bool) -> tuple[Any, ...]:
    fields = WorkerJob._meta.concrete_fields
    return tuple(f for f in fields if with_id or not f.primary_key)


@cache
def _insert_sql(wake: bool) -> str:
    connection = connections[DEFAULT_DB_ALIAS]
    quote = connection.ops.quote_name
    fields = _fields(with_id=False)
    insert = (
        f"INSERT INTO {quote(WorkerJob._meta.db_table)} "
        f"({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING id"
    )
    if not wake:
        return insert
    return f"WITH inserted AS ({insert}) SELECT id, pg_notify(%s, '') FROM inserted"


def _row(job: WorkerJob, connection: Any, *, with_id: bool) -> list[Any]:
    """The job's column values, as psycopg takes them.

    The values submit() validated are plain ints, strings, booleans, aware
    datetimes and None, which psycopg adapts as they are; only the JSON
    columns need wrapping. This skips Django's per-field preparation, which
    costs more than the COPY itself for a large batch.
    """
    from psycopg.types.json import Jsonb

    now = timezone.now()
    if job.created is None:
        job.created = now
    job.updated = now
    return [
        Jsonb(value) if is_json and value is not None else value
        for value, is_json in zip(
            (getattr(job, field.attname) for field in _fields(with_id)),
            _json_columns(with_id),
            strict=True,
        )
    ]


@cache
def _json_columns(with_id: bool) -> tuple[bool, ...]:
    return tuple(isinstance(f, models.JSONField) for f in _fields(with_id))


def _mark_saved(job: WorkerJob, using: str) -> None:
    job._state.adding = False
    job._state.db = using
