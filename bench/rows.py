"""Filling and emptying the job table fast, in SQL rather than through the ORM."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection
from django.utils import timezone

from workers.models import WorkerJob

from .jobs import NOOP

# One finished job in this many failed, for the admin's "failed" filter.
FAILED_EVERY = 100


def empty() -> None:
    table = connection.ops.quote_name(WorkerJob._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {table}")
        else:
            cursor.execute(f"DELETE FROM {table}")


def max_id() -> int:
    return WorkerJob.objects.order_by("-id").values_list("id", flat=True).first() or 0


def add_history(finished: int, future: int) -> None:
    """Insert `finished` finished jobs and `future` jobs due tomorrow."""
    now = timezone.now()
    long_ago = now - dt.timedelta(days=30)
    tomorrow = now + dt.timedelta(days=1)
    failed = f"(n %% {FAILED_EVERY} <> 0)"
    _insert_series(
        finished,
        {
            "due": ("%s + n * interval '1 millisecond'", [long_ago]),
            "started": ("%s + n * interval '1 millisecond'", [long_ago]),
            "finished": ("%s + n * interval '1 millisecond'", [long_ago]),
            "remove_at": ("%s", [now + dt.timedelta(days=365)]),
            "success": (failed, []),
            "result": (
                f"(CASE WHEN {failed} THEN 'null' ELSE '{{\"error\": \"x\"}}' END)"
                "::jsonb",
                [],
            ),
            "created": ("%s", [long_ago]),
            "updated": ("%s", [now]),
        },
    )
    _insert_series(
        future,
        {
            "due": ("%s + n * interval '1 millisecond'", [tomorrow]),
            "created": ("%s", [now]),
            "updated": ("%s", [now]),
        },
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _insert_series(count: int, columns: dict[str, tuple[str, list[Any]]]) -> None:
    """INSERT `count` rows; columns not given take their field's default."""
    if count <= 0:
        return
    quote = connection.ops.quote_name
    meta = WorkerJob._meta
    names, values, params = [], [], []
    for field in meta.concrete_fields:
        if field.primary_key:
            continue
        names.append(quote(field.column))
        if field.name == "type":
            values.append("%s")
            params.append(NOOP)
        elif field.name in columns:
            expression, expression_params = columns[field.name]
            values.append(_portable(expression))
            params.extend(
                connection.ops.adapt_datetimefield_value(value)
                for value in expression_params
            )
        else:
            default = field.get_default() if field.has_default() else None
            values.append("%s")
            params.append(field.get_db_prep_save(default, connection))
    table = quote(meta.db_table)
    select = f"SELECT {', '.join(values)} FROM "
    if connection.vendor == "postgresql":
        source = "generate_series(1, %s) AS g(n)"
    else:
        source = (
            "(WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g "
            "WHERE n < %s) SELECT n FROM g)"
        )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(names)}) {select}{source}",
            [*params, count],
        )


def _portable(expression: str) -> str:
    """The PostgreSQL expression, or its SQLite spelling."""
    if connection.vendor == "postgresql":
        return expression
    return expression.replace("::jsonb", "").replace(
        "%s + n * interval '1 millisecond'",
        "strftime('%%Y-%%m-%%d %%H:%%M:%%f', %s, '+' || (n / 1000.0) || ' seconds')",
    )
