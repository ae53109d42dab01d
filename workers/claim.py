"""Claiming the next due job, so that no two workers run the same one.

On PostgreSQL the claim locks the first due row with FOR UPDATE SKIP LOCKED:
workers on any number of hosts skip the rows others are claiming. SQLite
has no row locks; there the settings open every transaction with BEGIN
IMMEDIATE, which takes the database's write lock first, so claims queue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from .models import WorkerJob


def claim_next(
    worker: str,
    now: dt.datetime | None = None,
    queues: Sequence[str] | None = None,
) -> WorkerJob | None:
    """Mark the next due job as started by `worker` and return it, or None.

    With `queues`, only jobs of those queues; higher priorities first.
    """
    now = now or timezone.now()
    with transaction.atomic():
        job = (
            WorkerJob.objects.due(now)
            .in_queues(queues)
            .select_for_update(skip_locked=True)
            .order_by("-priority", "due", "id")
            .first()
        )
        if job is None:
            return None
        job.started = now
        job.worker = worker
        job.updated = now
        job.save(update_fields=["started", "worker", "updated"])
    return job
