"""The claim: one job per worker, in order, through the index."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from workers.claim import claim_next, claim_sql, persistent_connection
from workers.models import WorkerJob

JOB = "removeOldWorkerJobs"
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks and plans of PostgreSQL"
)


@pytest.mark.django_db
def test_claim_marks_and_returns_the_whole_job():
    submitted = WorkerJob.objects.submit(JOB, {"n": [1, 2]}, tag="t", priority=3)
    now = timezone.now()

    job = claim_next("host:1", now)

    assert job.pk == submitted.pk
    assert (job.started, job.worker) == (now, "host:1")
    assert job.data == {"n": [1, 2]} and job.tag == "t" and job.priority == 3
    assert job.due == submitted.due and job.finished is None
    stored = WorkerJob.objects.get(pk=job.pk)
    assert (stored.started, stored.worker) == (now, "host:1")
    assert claim_next("host:1") is None


@pytest.mark.django_db
def test_claim_order_is_priority_then_due_then_id():
    now = timezone.now()
    early = WorkerJob.objects.submit(JOB, due=now - dt.timedelta(minutes=2))
    late = WorkerJob.objects.submit(JOB, due=now - dt.timedelta(minutes=1))
    urgent = WorkerJob.objects.submit(JOB, due=now, priority=5)
    WorkerJob.objects.submit(JOB, due=now + dt.timedelta(hours=1), priority=9)

    order = [claim_next("w").pk for _ in range(3)]

    assert order == [urgent.pk, early.pk, late.pk]
    assert claim_next("w") is None


@pytest.mark.django_db
def test_claim_of_some_queues_only():
    WorkerJob.objects.submit(JOB, queue="mail")
    other = WorkerJob.objects.submit(JOB, queue="chain")

    assert claim_next("w", queues=["chain", "x"]).pk == other.pk
    assert claim_next("w", queues=["chain"]) is None


@on_postgresql
@pytest.mark.django_db
def test_claim_is_one_statement_on_postgresql():
    WorkerJob.objects.submit(JOB)
    with CaptureQueriesContext(connection) as queries:
        assert claim_next("w") is not None
    assert len(queries) == 1
    assert queries[0]["sql"].startswith("UPDATE")


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_never_share_a_job():
    WorkerJob.objects.bulk_submit([{"type": JOB}] * 300)
    claimed: list[int] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        try:
            while (job := claim_next(name)) is not None:
                with lock:
                    claimed.append(job.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(claimed) == 300 == len(set(claimed))
    assert not WorkerJob.objects.filter(started__isnull=True).exists()


@on_postgresql
@pytest.mark.django_db
def test_claim_plan_is_a_scan_of_the_partial_index():
    WorkerJob.objects.submit(JOB)
    now = timezone.now()
    with connection.cursor() as cursor:
        # A table this small is cheaper to read whole; what matters is that
        # the index answers the query once the table is large.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN " + claim_sql(), [now, "w", now, now])
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "Index Scan using workers_job_due" in plan
    assert "Sort" not in plan


@pytest.mark.django_db(transaction=True)
def test_persistent_connection_survives_close_old_connections():
    WorkerJob.objects.count()
    with persistent_connection():
        raw = connection.connection
        close_old_connections()
        WorkerJob.objects.count()
        assert connection.connection is raw
