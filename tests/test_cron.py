"""Cron expressions and cron chains."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from django.utils import timezone

from workers import cron
from workers.models import WorkerJob

UTC = dt.UTC


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("0 2 * * *", "2026-01-01T03:00:00", "2026-01-02T02:00:00"),
        ("*/30 * * * * *", "2026-01-01T00:00:10", "2026-01-01T00:00:30"),
        ("*/30 * * * * *", "2026-01-01T00:00:30", "2026-01-01T00:01:00"),
        ("15 */5 * * * *", "2026-01-01T00:00:00", "2026-01-01T00:00:15"),
        ("0 0 1 * *", "2026-01-15T00:00:00", "2026-02-01T00:00:00"),
    ],
)
def test_next_after(expr, after, expected) -> None:
    start = dt.datetime.fromisoformat(after).replace(tzinfo=UTC)

    assert cron.next_after(expr, start, "UTC") == dt.datetime.fromisoformat(
        expected
    ).replace(tzinfo=UTC)


def test_schedules_are_read_in_the_configured_zone(settings) -> None:
    settings.WORKER_CRON_TIME_ZONE = "America/New_York"
    start = dt.datetime(2026, 7, 1, 12, tzinfo=UTC)

    assert cron.next_after("0 2 * * *", start) == dt.datetime(2026, 7, 2, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    "expr", ["", "* * * *", "* * * * * * *", "60 * * * *", "x * * * *"]
)
def test_invalid_expressions_are_refused(expr) -> None:
    with pytest.raises(cron.InvalidCronExpression, match=re.escape(repr(expr))):
        cron.validate(expr)


@pytest.mark.slow
def test_a_thirty_second_schedule_runs_thirty_seconds_apart(start_manage) -> None:
    job = WorkerJob.objects.submit(
        "test.record", cron_schedule="*/30 * * * * *", tag="every-30s"
    )
    manager = start_manage("runworkers", "--no-maintenance", "--poll-interval", "0.2")

    deadline = time.monotonic() + 75
    while WorkerJob.objects.filter(tag="every-30s").succeeded().count() < 2:
        assert time.monotonic() < deadline, "two runs did not happen within 75 s"
        assert manager.poll() is None
        time.sleep(0.2)

    runs = list(WorkerJob.objects.filter(tag="every-30s").succeeded().order_by("id"))
    assert runs[0].pk == job.pk
    assert runs[1].rescheduled_from_id == job.pk
    assert runs[1].due - runs[0].due == dt.timedelta(seconds=30)
    gap = (runs[1].started - runs[0].started).total_seconds()
    assert 29 <= gap <= 31, gap
    assert runs[1].due.second in (0, 30) and runs[1].due.microsecond == 0
    pending = WorkerJob.objects.filter(tag="every-30s").pending().get()
    assert pending.due - runs[1].due == dt.timedelta(seconds=30)


@pytest.mark.django_db
def test_a_failing_cron_job_still_gets_its_next_run() -> None:
    from workers.claim import claim_next
    from workers.execution import run_and_record

    WorkerJob.objects.submit(
        "test.fail", cron_schedule="0 2 * * *", tag="nightly", due=timezone.now()
    )

    outcome = run_and_record(claim_next("test-worker"), "test-worker")

    assert outcome == "failed"
    following = WorkerJob.objects.filter(tag="nightly").pending().get()
    assert following.cron_schedule == "0 2 * * *"
    assert following.attempt == 1
    assert (following.due.hour, following.due.minute) == (2, 0)


@pytest.mark.django_db
def test_a_cron_retry_comes_before_the_next_tick_only() -> None:
    from workers.claim import claim_next
    from workers.execution import run_and_record

    WorkerJob.objects.submit(
        "test.fail",
        cron_schedule="0 2 * * *",
        tag="nightly",
        due=timezone.now(),
        auto_reschedule_on_failure=True,
        auto_reschedule_on_failure_delay=60,
    )

    assert run_and_record(claim_next("w"), "w") == "retrying"

    retry = WorkerJob.objects.filter(tag="nightly").pending().get()
    assert retry.attempt == 2
    assert retry.due - timezone.now() < dt.timedelta(seconds=61)


@pytest.mark.django_db(transaction=True)
def test_a_user_deleted_while_their_cron_job_runs_does_not_block_the_record() -> None:
    from django.contrib.auth import get_user_model

    from workers import execution
    from workers.claim import claim_next

    user = get_user_model().objects.create(username="gone")
    job = WorkerJob.objects.submit(
        "sayHello", user=user, cron_schedule="*/5 * * * * *", due=timezone.now()
    )
    claimed = claim_next("test-worker")
    assert claimed.pk == job.pk and claimed.user_id == user.pk
    user.delete()  # sets the running row's user to NULL

    assert execution.run_and_record(claimed, "test-worker") == "succeeded"
    follow = WorkerJob.objects.get(rescheduled_from=job)
    assert follow.user_id is None and follow.status == "pending"
