"""Job types that misbehave on purpose, for the crash tests.

Each run appends the job's id to the file named by data["log"], if any, so
that a test can count how many times each job ran.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from workers.models import WorkerJob
from workers.registry import register


def note_run(job: WorkerJob) -> None:
    path = job.data.get("log")
    if path:
        with open(path, "a") as log:
            log.write(f"{job.pk}\n")


@register("crashSleep")
def crash_sleep(job: WorkerJob, log: logging.LoggerAdapter) -> dict[str, Any]:
    """Notes the run, then sleeps data["seconds"]."""
    note_run(job)
    time.sleep(float(job.data.get("seconds", 0)))
    return {"slept": job.data.get("seconds", 0)}


@register("crashHang", timeout=1)
def crash_hang(job: WorkerJob, log: logging.LoggerAdapter) -> None:
    """Never returns; its type's timeout is 1 s."""
    note_run(job)
    while True:
        time.sleep(1)


@register("crashExit")
def crash_exit(job: WorkerJob, log: logging.LoggerAdapter) -> None:
    """Ends its process at once, as a handler calling os._exit would."""
    note_run(job)
    os._exit(int(job.data.get("status", 3)))


@register("crashRaise")
def crash_raise(job: WorkerJob, log: logging.LoggerAdapter) -> None:
    note_run(job)
    raise ValueError("crashRaise always raises")


@register("crashLeak")
def crash_leak(job: WorkerJob, log: logging.LoggerAdapter) -> None:
    """Holds data["mb"] megabytes, then sleeps, as a leak would."""
    note_run(job)
    hoard = bytearray(int(job.data.get("mb", 200)) * 2**20)
    for i in range(0, len(hoard), 4096):
        hoard[i] = 1
    time.sleep(float(job.data.get("seconds", 30)))
    return len(hoard)


@register("crashHoldLock")
def crash_hold_lock(job: WorkerJob, log: logging.LoggerAdapter) -> None:
    """Sleeps inside a transaction that holds its own row locked and has
    written (on SQLite, the database's write lock)."""
    from django.db import transaction

    with transaction.atomic():
        WorkerJob.objects.select_for_update().filter(pk=job.pk).update(
            updated=job.updated
        )
        note_run(job)
        time.sleep(float(job.data.get("seconds", 60)))
