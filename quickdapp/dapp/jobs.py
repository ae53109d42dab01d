"""The example project's own job types, found by the workers app at start-up."""

from __future__ import annotations

import logging
from typing import Any

from workers.exceptions import InvalidJobDataError
from workers.models import WorkerJob
from workers.registry import register


def _check_greeting(data: Any) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("name", ""), str):
        raise ValueError('give {"name": "<text>"}')


@register("sayHello", validate=_check_greeting)
def say_hello(job: WorkerJob, log: logging.LoggerAdapter) -> dict[str, str]:
    """Greets someone: the smallest useful job."""
    name = job.data.get("name", "world")
    log.info("Hello, %s!", name)
    return {"greeting": f"Hello, {name}!"}


@register("flakyTask")
def flaky_task(job: WorkerJob, log: logging.LoggerAdapter) -> dict[str, int]:
    """Fails until its attempt reaches data["succeed_on_attempt"] (never, if 0)."""
    succeed_on = job.data.get("succeed_on_attempt", 0)
    if not isinstance(succeed_on, int):
        raise InvalidJobDataError(
            f"succeed_on_attempt must be a number, not {succeed_on!r}"
        )
    if not succeed_on or job.attempt < succeed_on:
        raise RuntimeError(f"flakyTask failed on attempt {job.attempt}")
    return {"succeeded_on_attempt": job.attempt}
