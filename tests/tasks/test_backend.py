"""Django's Tasks framework on runworkers: @task functions stored as jobs."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from tests.tasks import sample
from workers.backends import WorkerJobBackend
from workers.claim import claim_next
from workers.execution import insert_follow_up, run_and_record
from workers.models import WorkerJob
from workers.task_api import (
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_enqueued,
    task_finished,
    task_started,
)
from workers.task_jobs import TASK_JOB_TYPE, TaskArgumentsError

TASK_MODULES = "tests.tasks.sample"


def run_due_jobs(queues: list[str] | None = None) -> int:
    """Run the due jobs in this process, as a worker would; return how many."""
    ran = 0
    while (job := claim_next("test-worker", queues=queues)) is not None:
        run_and_record(job, "test-worker")
        ran += 1
    return ran


def test_tasks_run_on_runworkers_and_results_read_back(run_manage) -> None:
    added = sample.add.enqueue(2, 3)
    echoed = sample.echo.enqueue("a", (1, 2), flag=True, nested={"k": [None]})
    failed = sample.fail.enqueue("boom")
    described = sample.describe_run.enqueue("ctx")
    doubled = sample.double_later.enqueue(21)
    assert added.status == TaskResultStatus.READY
    assert WorkerJob.objects.filter(type=TASK_JOB_TYPE).count() == 5

    done = run_manage(
        "runworkers", "--once", "--no-maintenance", WORKER_TASK_MODULES=TASK_MODULES
    )

    assert done.returncode == 0, done.stderr
    assert "task=tests.tasks.sample.add" in done.stderr  # in each log line
    result = sample.add.get_result(added.id)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 5
    assert result.is_finished and result.errors == []
    assert result.args == [2, 3] and result.kwargs == {}
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.attempts == 1 and ":" in result.worker_ids[0]
    assert sample.echo.get_result(echoed.id).return_value == {
        "args": ["a", [1, 2]],
        "kwargs": {"flag": True, "nested": {"k": [None]}},
    }
    assert sample.double_later.get_result(doubled.id).return_value == 42

    failure = sample.fail.get_result(failed.id)
    assert failure.status == TaskResultStatus.FAILED
    assert [e.exception_class for e in failure.errors] == [ValueError]
    assert "boom" in failure.errors[0].traceback
    with pytest.raises(ValueError, match="Task failed"):
        failure.return_value  # noqa: B018

    context = sample.describe_run.get_result(described.id).return_value
    assert context == {
        "label": "ctx",
        "id": described.id,
        "attempt": 1,
        "status": "RUNNING",
    }


def test_refresh_sees_the_outcome(db) -> None:
    result = sample.add.enqueue(1, 1)
    with pytest.raises(ValueError, match="not finished"):
        result.return_value  # noqa: B018

    run_due_jobs()
    result.refresh()

    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 2


def test_aenqueue_and_aget_result(db) -> None:
    async def enqueue_and_read() -> tuple[str, str]:
        enqueued = await sample.add.aenqueue(20, 22)
        read = await sample.add.aget_result(enqueued.id)
        return enqueued.id, read.status

    result_id, status = async_to_sync(enqueue_and_read)()
    assert status == TaskResultStatus.READY

    run_due_jobs()
    result = async_to_sync(sample.add.aget_result)(result_id)
    assert result.return_value == 42


def test_run_after_defers_the_task(db) -> None:
    later = timezone.now() + dt.timedelta(hours=1)
    result = sample.add.using(run_after=later).enqueue(1, 2)

    assert run_due_jobs() == 0
    job = WorkerJob.objects.get(pk=int(result.id))
    assert job.due == later
    read = sample.add.get_result(result.id)
    assert read.status == TaskResultStatus.READY
    assert read.task.run_after == later


def test_higher_priority_is_claimed_first(db) -> None:
    low = sample.add.using(priority=-5).enqueue(0, 0)
    high = sample.add.using(priority=50).enqueue(0, 0)
    middle = sample.add.enqueue(0, 0)

    order = []
    while (job := claim_next("test-worker")) is not None:
        order.append(str(job.pk))
    assert order == [high.id, middle.id, low.id]
    assert sample.add.get_result(high.id).task.priority == 50


def test_workers_claim_only_their_queues(db) -> None:
    mail = sample.send_mail.enqueue("ann@example.com")
    default = sample.add.enqueue(1, 1)
    assert mail.task.queue_name == "mail"

    assert run_due_jobs(queues=["mail"]) == 1

    sent = sample.send_mail.get_result(mail.id)
    assert sent.return_value == "sent to ann@example.com"
    assert sample.add.get_result(default.id).status == TaskResultStatus.READY
    assert WorkerJob.objects.get(pk=int(default.id)).queue == "default"


def test_runworkers_queues_option(run_manage) -> None:
    mail = sample.send_mail.enqueue("bob@example.com")
    default = sample.add.enqueue(1, 1)

    done = run_manage(
        "runworkers",
        "--once",
        "--no-maintenance",
        "--queues",
        "mail,reports",
        WORKER_TASK_MODULES=TASK_MODULES,
    )

    assert done.returncode == 0, done.stderr
    assert sample.send_mail.get_result(mail.id).status == TaskResultStatus.SUCCESSFUL
    assert sample.add.get_result(default.id).status == TaskResultStatus.READY


def test_runworkers_rejects_an_empty_queue_name(run_manage) -> None:
    done = run_manage("runworkers", "--once", "--queues", "mail,")

    assert done.returncode != 0
    assert "'mail,' is not a comma-separated list of queue names" in done.stderr


@pytest.mark.parametrize(
    ("value", "advice"),
    [
        (decimal.Decimal("1.10"), "str(value)"),
        (dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "isoformat()"),
        (dt.date(2026, 1, 1), "isoformat()"),
        (uuid.UUID(int=1), "str(value)"),
        ({1, 2}, "sorted(value)"),
        (b"raw", "base64"),
        (object(), "convert it to dicts"),
    ],
    ids=["decimal", "datetime", "date", "uuid", "set", "bytes", "object"],
)
def test_arguments_json_cannot_carry_fail_at_enqueue(db, value, advice) -> None:
    with pytest.raises(TaskArgumentsError) as caught:
        sample.echo.enqueue("ok", {"deep": [value]})

    message = str(caught.value)
    assert "the args of tests.tasks.sample.echo[1]['deep'][0]" in message
    assert type(value).__name__ in message
    assert advice in message
    assert not WorkerJob.objects.exists()


@pytest.mark.parametrize(
    ("value", "words"), [("a\x00b", "a NUL"), ("\udc80", "a lone surrogate")]
)
def test_text_no_database_can_store_fails_at_enqueue(db, value, words) -> None:
    with pytest.raises(TaskArgumentsError, match=f"echo\\[0\\] holds {words}"):
        sample.echo.enqueue(value)
    with pytest.raises(TaskArgumentsError, match=f"holds {words}"):
        sample.echo.enqueue(**{value: 1})
    assert not WorkerJob.objects.exists()


def test_model_instance_argument_fails_at_enqueue(db) -> None:
    user = get_user_model().objects.create(username="ann")

    with pytest.raises(TaskArgumentsError, match=r"kwargs.*\['user'\].*value\.pk"):
        sample.echo.enqueue(user=user)
    assert not WorkerJob.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"counts": {1: "one"}}, "JSON keys are strings"),
        ({"ratio": math.nan}, "no NaN or infinity"),
    ],
)
def test_values_json_would_change_fail_at_enqueue(db, kwargs, problem) -> None:
    with pytest.raises(TaskArgumentsError, match=problem):
        sample.echo.enqueue(**kwargs)
    assert not WorkerJob.objects.exists()


def test_a_return_value_json_cannot_carry_fails_the_task(db) -> None:
    result = sample.give_decimal.enqueue()

    run_due_jobs()

    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is TaskArgumentsError
    assert "the return value of tests.tasks.sample.give_decimal" in (
        result.errors[0].traceback
    )


def test_rows_naming_anything_but_a_task_fail_without_import_or_call(
    run_manage, tmp_path: Path
) -> None:
    imported = tmp_path / "imported"
    called = tmp_path / "called"
    rows = [
        WorkerJob.objects.submit(
            TASK_JOB_TYPE,
            {"task": path, "args": args, "kwargs": {}},
            auto_reschedule_on_failure=True,
        )
        for path, args in [
            ("tests.tasks.forbidden.anything", []),
            ("tests.tasks.sample.not_a_task", [str(called)]),
            ("os.system", [f"touch {called}"]),
            ("", []),
        ]
    ]

    done = run_manage(
        "runworkers",
        "--once",
        "--no-maintenance",
        WORKER_TASK_MODULES=TASK_MODULES,
        FORBIDDEN_IMPORT_MARKER=str(imported),
    )

    assert done.returncode == 0, done.stderr
    assert not imported.exists(), "a module named by a row was imported"
    assert not called.exists(), "a function that is not a task was called"
    for row in rows:
        row.refresh_from_db()
        assert row.status == "failed"
        assert row.result["exception"] == "workers.exceptions.InvalidJobDataError"
    assert "is not a task this process knows" in rows[0].result["error"]
    # A permanent failure: no retry despite auto_reschedule_on_failure.
    assert WorkerJob.objects.count() == len(rows)


def test_malformed_task_data_fails_for_good(db) -> None:
    job = WorkerJob.objects.submit(
        TASK_JOB_TYPE,
        {"task": "tests.tasks.sample.add", "args": "1, 2"},
        auto_reschedule_on_failure=True,
    )

    run_due_jobs()

    job.refresh_from_db()
    assert job.status == "failed"
    assert "needs {'task': path" in job.result["error"]
    assert WorkerJob.objects.count() == 1


def test_get_result_of_an_unknown_id(db) -> None:
    other = WorkerJob.objects.submit("removeOldWorkerJobs")

    for result_id in ["12345678", "not-a-number", str(other.pk)]:
        with pytest.raises(TaskResultDoesNotExist, match=repr(result_id)):
            sample.add.get_result(result_id)


def test_get_result_takes_ids_only_as_enqueue_wrote_them(db) -> None:
    result = sample.add.enqueue(1, 2)

    assert sample.add.get_result(result.id).id == result.id
    for odd in [f" {result.id}", f"+{result.id}", f"0{result.id}", "\uff11"]:
        with pytest.raises(TaskResultDoesNotExist):
            sample.add.get_result(odd)


def test_get_result_of_a_row_whose_task_is_gone(db) -> None:
    result = sample.add.enqueue(1, 2)
    job = WorkerJob.objects.get(pk=int(result.id))
    job.data = {**job.data, "task": "tests.tasks.sample.renamed_since"}
    job.save(update_fields=["data"])

    with pytest.raises(TaskResultDoesNotExist, match=repr(result.id)):
        sample.add.get_result(result.id)


def test_arguments_nested_too_deep_fail_at_enqueue(db) -> None:
    value: list = []
    for _ in range(3000):
        value = [value]

    with pytest.raises(TaskArgumentsError, match="nested more than 200 levels"):
        sample.echo.enqueue(value)
    assert not WorkerJob.objects.exists()


def test_a_retried_task_reports_every_attempt(db) -> None:
    failed = sample.fail.enqueue("first")
    described = sample.describe_run.enqueue("again")
    run_due_jobs()

    # What the admin's retry action does.
    for result_id in (failed.id, described.id):
        job = WorkerJob.objects.get(pk=int(result_id))
        insert_follow_up(job, timezone.now(), job.attempt + 1)
    assert sample.fail.get_result(failed.id).status == TaskResultStatus.READY
    run_due_jobs()

    retried = sample.fail.get_result(failed.id)
    assert retried.status == TaskResultStatus.FAILED
    assert retried.attempts == 2 and len(retried.errors) == 2
    again = sample.describe_run.get_result(described.id)
    assert again.return_value["attempt"] == 2
    assert again.return_value["id"] == described.id


def test_enqueue_in_a_rolled_back_transaction_leaves_no_job(db) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        sample.add.enqueue(1, 2)
        raise RuntimeError("roll back")

    assert not WorkerJob.objects.exists()


def test_framework_signals_are_sent(db) -> None:
    seen: list[tuple[str, str]] = []

    def receiver(signal_name: str):
        def receive(sender: type, task_result, **kwargs) -> None:
            assert sender is WorkerJobBackend
            seen.append((signal_name, task_result.status))

        return receive

    receivers = {name: receiver(name) for name in ("enqueued", "started", "finished")}
    task_enqueued.connect(receivers["enqueued"])
    task_started.connect(receivers["started"])
    task_finished.connect(receivers["finished"])
    try:
        sample.add.enqueue(1, 2)
        sample.fail.enqueue("x")
        run_due_jobs()
    finally:
        task_enqueued.disconnect(receivers["enqueued"])
        task_started.disconnect(receivers["started"])
        task_finished.disconnect(receivers["finished"])

    assert seen == [
        ("enqueued", "READY"),
        ("enqueued", "READY"),
        ("started", "RUNNING"),
        ("finished", "SUCCESSFUL"),
        ("started", "RUNNING"),
        ("finished", "FAILED"),
    ]
