"""Job types for tests. Each run writes a JobRun row before it does its thing."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from workers.exceptions import InvalidJobDataError
from workers.models import WorkerJob
from workers.registry import register

from .models import JobRun


def _record(job: WorkerJob) -> None:
    JobRun.objects.create(
        job_id=job.pk, attempt=job.attempt, worker=job.worker, pid=os.getpid()
    )


@register("test.record")
def record(job: WorkerJob, log: logging.LoggerAdapter) -> dict[str, Any]:
    _record(job)
    return {"pid": os.getpid()}


@register("test.sleep")
def sleep(job: WorkerJob, log: logging.LoggerAdapter) -> dict[str, Any]:
    _record(job)
    time.sleep(float(job.data.get("seconds", 1)))
    return {"slept": job.data.get("seconds", 1)}


@register("test.fail", max_attempts=3)
def fail(job: WorkerJob, log: logging.LoggerAdapter) -> None:
    _record(job)
    raise RuntimeError(f"failing on purpose, attempt {job.attempt}")


@register("test.reject")
def reject(job: WorkerJob, log: logging.LoggerAdapter) -> None:
    _record(job)
    raise InvalidJobDataError(f"data {job.data!r} is not accepted")


@register("test.not_json")
def not_json(job: WorkerJob, log: logging.LoggerAdapter) -> Any:
    return {"value": {1, 2}}


# Strings no database column can take as they are.
UNSTORABLE = {"nul": "x\x00y", "surrogate": "\ud800"}


@register("test.unstorable")
def unstorable(job: WorkerJob, log: logging.LoggerAdapter) -> Any:
    """Returns, or raises with, one of the UNSTORABLE strings."""
    value = UNSTORABLE[job.data["value"]]
    if job.data.get("raise"):
        raise ValueError(f"bad input: {value}")
    return {"text": value}


@register("test.interrupt")
def interrupt(job: WorkerJob, log: logging.LoggerAdapter) -> None:
    """Raises what is not an Exception, as a cancelled asyncio.run() would."""
    import asyncio

    _record(job)
    raise asyncio.CancelledError("cancelled inside the handler")


def _needs_x(data: Any) -> None:
    data["x"]  # KeyError when it is missing, as validators often do


@register("test.keyed", validate=_needs_x)
def keyed(job: WorkerJob, log: logging.LoggerAdapter) -> None:
    return None


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("this exception cannot be printed")

    __repr__ = __str__

    def __hash__(self) -> int:
        return 1


@register("test.awkward")
def awkward(job: WorkerJob, log: logging.LoggerAdapter) -> Any:
    """Fails in ways that are hard to report: an exception that cannot be
    printed, or a result nested deeper than JSON goes."""
    _record(job)
    if job.data.get("unprintable"):
        raise _Unprintable()
    if job.data.get("unprintable_key"):
        return {_Unprintable(): 1, 10**5000: 2}
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    return deep
