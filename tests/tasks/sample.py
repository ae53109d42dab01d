"""Tasks the tests enqueue; worker processes load them via WORKER_TASK_MODULES."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from workers.task_api import TaskContext

try:
    from django.tasks import task
except ImportError:
    from django_tasks import task


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


@task
def fail(message: str) -> None:
    raise ValueError(message)


@task(takes_context=True)
def describe_run(context: TaskContext, label: str) -> dict[str, Any]:
    return {
        "label": label,
        "id": context.task_result.id,
        "attempt": context.attempt,
        "status": str(context.task_result.status),
    }


@task
async def double_later(value: int) -> int:
    await asyncio.sleep(0)
    return value * 2


@task
def give_decimal() -> Decimal:
    return Decimal("1.5")


@task(queue_name="mail", priority=10)
def send_mail(to: str) -> str:
    return f"sent to {to}"


def not_a_task(path: str) -> None:
    """A plain function: a row naming it must never call it."""
    with open(path, "w") as marker:
        marker.write("called")
