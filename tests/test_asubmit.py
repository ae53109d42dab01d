"""asubmit and abulk_submit: submitting from async views and tasks."""

from __future__ import annotations

import datetime as dt

import pytest
from asgiref.sync import async_to_sync

from workers.exceptions import InvalidJobError
from workers.models import WorkerJob


def test_asubmit_inserts_a_job_like_submit(db) -> None:
    async def view_body() -> WorkerJob:
        return await WorkerJob.objects.asubmit(
            "test.record", {"n": 1}, tag="nightly", queue="reports", priority=5
        )

    job = async_to_sync(view_body)()

    stored = WorkerJob.objects.get(pk=job.pk)
    assert stored.status == "pending"
    assert (stored.type, stored.data, stored.tag) == (
        "test.record",
        {"n": 1},
        "nightly",
    )
    assert (stored.queue, stored.priority) == ("reports", 5)


def test_asubmit_replaces_the_pending_job_of_its_tag(db) -> None:
    first = async_to_sync(WorkerJob.objects.asubmit)("test.record", tag="t")
    second = async_to_sync(WorkerJob.objects.asubmit)("test.record", tag="t")

    assert WorkerJob.objects.get(pk=first.pk).status == "cancelled"
    assert WorkerJob.objects.get(pk=second.pk).status == "pending"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"due": dt.datetime(2030, 1, 1)}, "due"),
        ({"priority": 101}, "priority"),
        ({"queue": "a,b"}, "queue"),
    ],
)
def test_asubmit_validates_before_it_writes(db, options, field) -> None:
    with pytest.raises(InvalidJobError) as caught:
        async_to_sync(WorkerJob.objects.asubmit)("test.record", **options)

    assert caught.value.field == field
    assert not WorkerJob.objects.exists()


def test_abulk_submit_inserts_all_or_nothing(db) -> None:
    jobs = async_to_sync(WorkerJob.objects.abulk_submit)(
        {"type": "test.record", "data": {"n": n}} for n in range(3)
    )
    assert sorted(job.data["n"] for job in jobs) == [0, 1, 2]

    with pytest.raises(InvalidJobError, match=r"jobs\[1\]\.type"):
        async_to_sync(WorkerJob.objects.abulk_submit)(
            [{"type": "test.record"}, {"type": "no.such.type"}]
        )
    assert WorkerJob.objects.count() == 3
