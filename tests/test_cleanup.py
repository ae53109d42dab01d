"""removeOldWorkerJobs: deletes what has expired, in batches, nothing else."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.utils import timezone

from workers.jobs import remove_old_worker_jobs
from workers.models import WorkerJob

pytestmark = pytest.mark.django_db


def make(count: int, **fields) -> None:
    now = timezone.now()
    WorkerJob.objects.bulk_create(
        [WorkerJob(type="sayHello", due=now, **fields) for _ in range(count)]
    )


def test_deletes_expired_jobs_in_batches(
    settings, django_assert_max_num_queries
) -> None:
    settings.WORKER_CLEANUP_BATCH_SIZE = 100
    past = timezone.now() - dt.timedelta(seconds=1)
    future = timezone.now() + dt.timedelta(days=1)
    make(250, finished=past, started=past, success=True, remove_at=past)
    make(3, finished=past, started=past, success=True, remove_at=past, persistent=True)
    make(4, finished=past, started=past, success=False, remove_at=future)
    make(5, started=past)
    make(6)
    cleanup = WorkerJob.objects.submit("removeOldWorkerJobs")
    log = logging.LoggerAdapter(logging.getLogger("test"), {})

    with django_assert_max_num_queries(4 * 2):
        result = remove_old_worker_jobs(cleanup, log)

    assert result == {"deleted": 250}
    assert WorkerJob.objects.count() == 3 + 4 + 5 + 6 + 1
    assert remove_old_worker_jobs(cleanup, log) == {"deleted": 0}
