"""The signals a project hooks: job_submitted, job_started, job_finished."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.testapp.models import JobRun
from workers.claim import claim_next
from workers.execution import run_and_record
from workers.models import WorkerJob
from workers.signals import job_finished, job_started, job_submitted

WORKER = "signals-test"


@pytest.fixture
def received():
    """Every job_started and job_finished sent during the test, as it was seen."""
    seen: list[dict[str, Any]] = []

    def on_started(sender: type, job: WorkerJob, worker: str, **kwargs: Any) -> None:
        seen.append(
            {
                "signal": "started",
                "sender": sender,
                "job": job.pk,
                "worker": worker,
                "status": job.status,
                "runs_so_far": JobRun.objects.filter(job_id=job.pk).count(),
            }
        )

    def on_finished(
        sender: type, job: WorkerJob, worker: str, outcome: str, **kwargs: Any
    ) -> None:
        seen.append(
            {
                "signal": "finished",
                "sender": sender,
                "job": job.pk,
                "worker": worker,
                "status": job.status,
                "outcome": outcome,
                "runs_so_far": JobRun.objects.filter(job_id=job.pk).count(),
            }
        )

    job_started.connect(on_started)
    job_finished.connect(on_finished)
    yield seen
    job_started.disconnect(on_started)
    job_finished.disconnect(on_finished)


def run_one() -> WorkerJob:
    job = claim_next(WORKER)
    assert job is not None
    run_and_record(job, WORKER)
    return job


def test_started_before_the_handler_and_finished_after_the_record(db, received) -> None:
    job = WorkerJob.objects.submit("test.record")

    run_one()

    assert received == [
        {
            "signal": "started",
            "sender": WorkerJob,
            "job": job.pk,
            "worker": WORKER,
            "status": "running",
            "runs_so_far": 0,
        },
        {
            "signal": "finished",
            "sender": WorkerJob,
            "job": job.pk,
            "worker": WORKER,
            "status": "succeeded",
            "outcome": "succeeded",
            "runs_so_far": 1,
        },
    ]


@pytest.mark.parametrize(
    ("job_type", "options", "outcome"),
    [
        ("test.fail", {"auto_reschedule_on_failure": True}, "retrying"),
        ("test.fail", {}, "failed"),
        ("test.reject", {"auto_reschedule_on_failure": True}, "failed"),
    ],
)
def test_finished_tells_the_outcome(db, received, job_type, options, outcome) -> None:
    WorkerJob.objects.submit(job_type, **options)

    run_one()

    assert [(r["signal"], r.get("outcome")) for r in received] == [
        ("started", None),
        ("finished", outcome),
    ]
    assert received[-1]["status"] == "failed"


def test_a_failing_receiver_is_logged_and_changes_nothing(db, caplog) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    job_started.connect(broken)
    job_finished.connect(broken)
    try:
        job = WorkerJob.objects.submit("test.record")
        with caplog.at_level(logging.ERROR, logger="workers.signals"):
            run_one()
    finally:
        job_started.disconnect(broken)
        job_finished.disconnect(broken)

    job.refresh_from_db()
    assert job.status == "succeeded"
    errors = [r for r in caplog.records if r.name == "workers.signals"]
    assert len(errors) == 2
    assert "receiver bug" in errors[0].getMessage()


def test_submitted_after_submit_and_bulk_submit(db) -> None:
    senders: list[Any] = []

    def on_submitted(sender: Any, **kwargs: Any) -> None:
        senders.append((sender, WorkerJob.objects.count()))

    job_submitted.connect(on_submitted)
    try:
        WorkerJob.objects.submit("test.record")
        WorkerJob.objects.bulk_submit([{"type": "test.record"}] * 3)
    finally:
        job_submitted.disconnect(on_submitted)

    assert senders == [(None, 1), (None, 4)]
