"""Submissions wake idle workers through LISTEN/NOTIFY; polling backs it up."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction
from django.test import override_settings

from workers.models import WorkerJob
from workers.notify import Listener
from workers.worker import Worker

JOB = "removeOldWorkerJobs"
pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="LISTEN/NOTIFY is PostgreSQL's"
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def listener():
    listener = Listener(reconnect_interval=0)
    stop = threading.Event()
    assert listener.wait(0, stop) is True  # connects, LISTENs
    assert listener.listening
    yield listener
    listener.close()


def timed_wait(listener: Listener, timeout: float) -> float:
    began = time.monotonic()
    assert listener.wait(timeout, threading.Event()) is True
    return time.monotonic() - began


def submit_later(delay: float, **options) -> threading.Timer:
    def submit() -> None:
        try:
            WorkerJob.objects.submit(JOB, **options)
        finally:
            connection.close()

    timer = threading.Timer(delay, submit)
    timer.start()
    return timer


def test_a_submission_wakes_the_listener(listener):
    timer = submit_later(0.2)
    waited = timed_wait(listener, 10)
    timer.join()
    assert 0.1 < waited < 5


def test_one_notification_per_transaction_and_none_on_rollback(listener):
    with transaction.atomic():
        WorkerJob.objects.submit(JOB)
        WorkerJob.objects.bulk_submit([{"type": JOB}] * 3)
    assert timed_wait(listener, 5) < 1
    # Everything that transaction sent was consumed by one wake-up.
    assert timed_wait(listener, 0.5) >= 0.5

    with pytest.raises(RuntimeError), transaction.atomic():
        WorkerJob.objects.submit(JOB)
        raise RuntimeError("roll back")
    assert timed_wait(listener, 0.5) >= 0.5


def test_a_job_due_later_sends_no_notification(listener):
    from django.utils import timezone

    WorkerJob.objects.submit(JOB, due=timezone.now() + timezone.timedelta(hours=1))
    assert timed_wait(listener, 0.5) >= 0.5


def test_a_lost_listener_falls_back_then_listens_again(listener, caplog):
    pid = listener._connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])

    assert listener.wait(1, threading.Event()) is False  # caller polls
    assert not listener.listening
    assert "Lost the listening connection" in caplog.text
    assert listener.wait(1, threading.Event()) is True  # reconnected
    assert listener.listening
    timer = submit_later(0.2)
    assert timed_wait(listener, 10) < 5
    timer.join()


@override_settings(WORKER_LISTEN=False)
def test_without_listening_the_caller_polls():
    assert Listener().wait(1, threading.Event()) is False


def test_an_idle_worker_starts_a_submitted_job_long_before_its_poll():
    worker = Worker("idle", poll_interval=30)
    thread = threading.Thread(target=_loop, args=(worker,))
    thread.start()
    try:
        time.sleep(0.5)  # finds nothing, then listens
        job = WorkerJob.objects.submit(JOB)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.finished:
                break
            time.sleep(0.05)
        assert job.finished is not None and job.success
        assert (job.started - job.created).total_seconds() < 5
    finally:
        worker.stop()
        thread.join(10)
    assert not thread.is_alive()


def _loop(worker: Worker) -> None:
    try:
        worker.loop()
    finally:
        worker.listener.close()
        connection.close()
