"""Submitting jobs: validation before writing, tags, transactions, bulk."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from workers.exceptions import InvalidJobError
from workers.models import WorkerJob
from workers.submission import CANCELLED_BY_NEW_JOB

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"type": "noSuchType"}, "type", "no handler is registered"),
        ({"type": ""}, "type", "registered job type"),
        ({"data": {"when": dt.date(2026, 1, 1)}}, "data", "not JSON"),
        ({"data": {"amount": Decimal("1.5")}}, "data", "not JSON"),
        ({"data": {"x": float("nan")}}, "data", "not JSON"),
        ({"tag": "a\x00b"}, "tag", "holds a NUL"),
        ({"queue": "mail\x00"}, "queue", "without commas, NUL"),
        ({"queue": " mail "}, "queue", "spaces around it"),
        (
            {"cron_schedule": ",".join(map(str, range(60))) + " * * * *"},
            "cron_schedule",
            "longer than 100",
        ),
        ({"cron_schedule": "R * * * *"}, "cron_schedule", "uses R or H"),
        ({"cron_schedule": "H(0-29) * * * *"}, "cron_schedule", "uses R or H"),
        ({"remove_delay": 2**31}, "remove_delay", "at most 2147483647 seconds"),
        ({"priority": 10**5000}, "priority", "from -100 to 100"),
        ({"remove_delay": 1e300}, "remove_delay", "at most"),
        ({"remove_delay": dt.timedelta(days=10**8)}, "remove_delay", "at most"),
        (
            {"auto_reschedule_on_failure_delay": 10**12},
            "auto_reschedule_on_failure_delay",
            "at most",
        ),
        (
            {"due": dt.datetime.min.replace(tzinfo=ZoneInfo("Asia/Tokyo"))},
            "due",
            "between the years 1 and 9000",
        ),
        (
            {"due": dt.datetime.max.replace(tzinfo=ZoneInfo("America/New_York"))},
            "due",
            "between the years",
        ),
        ({"data": {"name": "a\x00b"}}, "data", "data['name'] holds a NUL"),
        ({"data": {"a\x00": 1}}, "data", "the key 'a\\x00' of data holds a NUL"),
        ({"data": {"s": ["\ud800"]}}, "data", "data['s'][0] holds a lone surrogate"),
        ({"data": ["not", "a", "dict"]}, "data", "rejected by 'sayHello'"),
        ({"cron_schedule": "* * *"}, "cron_schedule", "has 3 fields"),
        ({"cron_schedule": "61 * * * *"}, "cron_schedule", "not valid"),
        ({"cron_schedule": "0 0 31 2 *"}, "cron_schedule", "never matches a date"),
        ({"due": dt.datetime(2030, 1, 1)}, "due", "naive"),
        ({"due": "tomorrow"}, "due", "timezone-aware"),
        (
            {"auto_reschedule_on_failure_delay": -1},
            "auto_reschedule_on_failure_delay",
            "0 or more",
        ),
        ({"remove_delay": -5}, "remove_delay", "0 or more"),
        ({"remove_delay": 1.5}, "remove_delay", "whole number"),
        ({"tag": ""}, "tag", "non-empty"),
        ({"tag": "x" * 256}, "tag", "255"),
        ({"persistent": "yes"}, "persistent", "True or False"),
        ({"user": 1}, "user", "saved User"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(kwargs, field, words) -> None:
    kwargs = {"type": "sayHello", **kwargs}

    with pytest.raises(InvalidJobError) as caught:
        WorkerJob.objects.submit(kwargs.pop("type"), **kwargs)

    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}=")
    assert words in str(caught.value)
    assert not WorkerJob.objects.exists()


def test_data_nested_deeper_than_json_goes_is_refused() -> None:
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(InvalidJobError, match="nested more than 200 levels deep"):
        WorkerJob.objects.submit("test.record", deep)
    assert not WorkerJob.objects.exists()


def test_a_validator_raising_key_error_rejects_the_data() -> None:
    with pytest.raises(InvalidJobError, match=r"rejected by 'test\.keyed': 'x'"):
        WorkerJob.objects.submit("test.keyed", {"y": 1})
    assert not WorkerJob.objects.exists()


def test_a_type_name_longer_than_the_column_is_refused() -> None:
    from workers.registry import JobRegistry

    with pytest.raises(ValueError, match="100 characters at most"):
        JobRegistry().register("t" * 101, lambda job, log: None)


def test_submit_fills_defaults_from_settings(settings) -> None:
    settings.WORKER_RETRY_DELAY = 42
    settings.WORKER_REMOVE_DELAY = 99
    before = timezone.now()

    job = WorkerJob.objects.submit("sayHello", {"name": "a"})

    job.refresh_from_db()
    assert job.status == "pending"
    assert before <= job.due <= timezone.now()
    assert (job.auto_reschedule_on_failure_delay, job.remove_delay) == (42, 99)
    assert job.user is None and job.attempt == 1 and job.tag is None


def test_submit_for_a_user_at_a_later_time() -> None:
    user = get_user_model().objects.create_user("alice")
    due = timezone.now() + dt.timedelta(hours=1)

    job = WorkerJob.objects.submit("sayHello", user=user, due=due)

    assert WorkerJob.objects.get(pk=job.pk).user == user
    assert not WorkerJob.objects.due().exists()
    assert WorkerJob.objects.due(due).get() == job


def test_cron_job_without_due_starts_at_the_next_tick() -> None:
    job = WorkerJob.objects.submit("sayHello", cron_schedule="0  2 * * *")

    assert job.cron_schedule == "0 2 * * *"
    assert (job.due.hour, job.due.minute, job.due.second) == (2, 0, 0)
    assert job.due > timezone.now()


def test_a_rolled_back_transaction_leaves_no_job() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        WorkerJob.objects.submit("sayHello", tag="t")
        raise RuntimeError("the view failed")

    assert not WorkerJob.objects.exists()


def test_a_tag_replaces_the_pending_job_which_stays_cancelled() -> None:
    first = WorkerJob.objects.submit("sayHello", {"name": "old"}, tag="greeting")
    second = WorkerJob.objects.submit("sayHello", {"name": "new"}, tag="greeting")

    first.refresh_from_db()
    assert first.status == "cancelled"
    assert first.result == CANCELLED_BY_NEW_JOB
    assert first.remove_at == first.finished + dt.timedelta(seconds=first.remove_delay)
    assert list(WorkerJob.objects.pending()) == [second]


def test_a_tag_does_not_touch_started_or_other_tags() -> None:
    running = WorkerJob.objects.submit("sayHello", tag="a")
    WorkerJob.objects.filter(pk=running.pk).update(started=timezone.now())
    other = WorkerJob.objects.submit("sayHello", tag="b")

    WorkerJob.objects.submit("sayHello", tag="a")

    assert WorkerJob.objects.get(pk=running.pk).status == "running"
    assert WorkerJob.objects.get(pk=other.pk).status == "pending"
    assert WorkerJob.objects.pending().count() == 2


def test_bulk_submit_inserts_all_in_one_statement() -> None:
    # PostgreSQL writes them with one COPY however many; SQLite with one
    # INSERT while they fit in its 999 parameters a statement.
    specs = [{"type": "sayHello", "data": {"name": str(i)}} for i in range(40)]

    with CaptureQueriesContext(connection) as queries:
        jobs = WorkerJob.objects.bulk_submit(specs)

    writes = [q["sql"].split()[0] for q in queries.captured_queries]
    writes = [verb for verb in writes if verb in ("INSERT", "COPY")]
    assert writes == ["COPY" if connection.vendor == "postgresql" else "INSERT"]
    assert len(jobs) == 40
    assert WorkerJob.objects.pending().count() == 40


def test_bulk_submit_with_one_bad_item_writes_nothing() -> None:
    specs = [{"type": "sayHello"}, {"type": "sayHello", "remove_delay": -1}]

    with pytest.raises(InvalidJobError, match=r"jobs\[1\]\.remove_delay=-1"):
        WorkerJob.objects.bulk_submit(specs)

    assert not WorkerJob.objects.exists()


@pytest.mark.parametrize(
    ("specs", "words"),
    [
        ([{"data": {}}], "'type' is missing"),
        ([{"type": "sayHello", "colour": "red"}], "unknown fields ['colour']"),
        (
            [{"type": "sayHello", "tag": "t"}, {"type": "sayHello", "tag": "t"}],
            "same tag",
        ),
        (["sayHello"], "give a mapping"),
    ],
)
def test_bulk_submit_names_the_bad_item(specs, words) -> None:
    with pytest.raises(InvalidJobError, match=r"jobs\[\d\]") as caught:
        WorkerJob.objects.bulk_submit(specs)

    assert words in str(caught.value)
    assert not WorkerJob.objects.exists()


def test_bulk_submit_replaces_pending_jobs_of_its_tags() -> None:
    old = WorkerJob.objects.submit("sayHello", tag="t")

    WorkerJob.objects.bulk_submit([{"type": "sayHello", "tag": "t"}])

    assert WorkerJob.objects.get(pk=old.pk).status == "cancelled"
    assert WorkerJob.objects.pending().filter(tag="t").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_submits_with_one_tag_leave_one_pending_job() -> None:
    threads, per_thread = 6, 10
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def submit_many() -> None:
        try:
            barrier.wait()
            for _ in range(per_thread):
                WorkerJob.objects.submit("sayHello", tag="race")
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    workers = [threading.Thread(target=submit_many) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()

    assert errors == []
    assert WorkerJob.objects.filter(tag="race").count() == threads * per_thread
    assert WorkerJob.objects.pending().filter(tag="race").count() == 1
    assert (
        WorkerJob.objects.cancelled().filter(tag="race").count()
        == threads * per_thread - 1
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite's IMMEDIATE transactions let no insert in between",
)
def test_bulk_submit_tries_again_when_a_follow_up_wins_the_tag(monkeypatch) -> None:
    from django.db import connections

    from workers import submission

    real_cancel = submission.cancel_pending_tags
    raced = []

    def insert_elsewhere() -> None:
        # A cron run's follow-up, committed by another process, without
        # the tag's lock.
        raced.append(
            WorkerJob.objects.create(type="sayHello", tag="t", due=timezone.now())
        )
        connections.close_all()

    def cancel_then_race(tags, now):
        cancelled = real_cancel(tags, now)
        if not raced:
            racer = threading.Thread(target=insert_elsewhere)
            racer.start()
            racer.join()
        return cancelled

    monkeypatch.setattr(submission, "cancel_pending_tags", cancel_then_race)
    [job] = WorkerJob.objects.bulk_submit([{"type": "sayHello", "tag": "t"}])

    assert list(WorkerJob.objects.pending().filter(tag="t")) == [job]
    assert WorkerJob.objects.get(pk=raced[0].pk).status == "cancelled"
