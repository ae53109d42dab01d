"""A backend for Django's Tasks framework that runs tasks on `runworkers`.

    TASKS = {"default": {"BACKEND": "workers.backends.WorkerJobBackend"}}

Each enqueued task is a WorkerJob (see workers.task_jobs); its result id is
the job's id. A task retried from the admin continues as a new job that
follows the first, and get_result() reports the latest attempt, with the
errors and workers of every attempt.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from django.apps import apps
from django.core import checks
from django.utils.dateparse import parse_datetime

from . import models as job_models
from .exceptions import InvalidJobDataError
from .models import WorkerJob
from .task_api import (
    BaseTaskBackend,
    Task,
    TaskError,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_enqueued,
)
from .task_jobs import TASK_JOB_TYPE, check_json_value, find_task, task_data

# A retry chain longer than this is not followed further.
MAX_ATTEMPTS_FOLLOWED = 1000

STATUS_OF_JOB = {
    job_models.PENDING: TaskResultStatus.READY,
    job_models.RUNNING: TaskResultStatus.RUNNING,
    job_models.SUCCEEDED: TaskResultStatus.SUCCESSFUL,
    job_models.FAILED: TaskResultStatus.FAILED,
    # Cancelled before it started: "unable to start", in the framework's words.
    job_models.CANCELLED: TaskResultStatus.FAILED,
}


class WorkerJobBackend(BaseTaskBackend):
    """Stores tasks as WorkerJob rows for `manage.py runworkers` to run."""

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def enqueue(
        self, task: Task, args: Sequence[Any], kwargs: dict[str, Any]
    ) -> TaskResult:
        """Validate the task and its arguments, then insert its job."""
        self.validate_task(task)
        data = {
            "task": task.module_path,
            "args": check_json_value(list(args), f"the args of {task.module_path}"),
            "kwargs": check_json_value(
                dict(kwargs), f"the kwargs of {task.module_path}"
            ),
            "backend": self.alias,
            "run_after": task.run_after.isoformat() if task.run_after else None,
        }
        job = WorkerJob.objects.submit(
            TASK_JOB_TYPE,
            data,
            due=task.run_after,
            queue=task.queue_name,
            priority=task.priority,
        )
        result = build_result(task, [job], self.alias)
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        """The result of the task enqueued as job `result_id`, latest attempt."""
        missing = TaskResultDoesNotExist(f"no task result with id {result_id!r}")
        # Ids are the jobs' primary keys as enqueue() wrote them: plain digits.
        if not (isinstance(result_id, str) and result_id.isascii()):
            raise missing
        if not result_id.isdigit() or str(int(result_id)) != result_id:
            raise missing
        try:
            first = WorkerJob.objects.get(pk=int(result_id), type=TASK_JOB_TYPE)
            path, _, _ = task_data(first)
            task = find_task(path)
        except (WorkerJob.DoesNotExist, InvalidJobDataError):
            # A row whose task is gone or renamed has no result to build.
            raise missing from None
        return build_result(task, [first, *_attempts_after(first)], self.alias)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        if apps.is_installed("workers"):
            return []
        return [
            checks.Error(
                f"The task backend {self.alias!r} stores tasks as worker jobs, "
                "but the workers app is not installed.",
                hint="Add 'workers' to INSTALLED_APPS.",
                id="workers.E201",
            )
        ]


def build_result(task: Task, jobs: list[WorkerJob], alias: str) -> TaskResult:
    """The TaskResult of the task whose attempts are `jobs`, oldest first."""
    first, last = jobs[0], jobs[-1]
    _, args, kwargs = task_data(first)
    run_after = parse_datetime(first.data.get("run_after") or "")
    task = dataclasses.replace(
        task,
        priority=first.priority,
        queue_name=first.queue,
        run_after=run_after,
        backend=alias,
    )
    started = [job.started for job in jobs if job.started is not None]
    status = STATUS_OF_JOB[last.status]
    result = TaskResult(
        task=task,
        id=str(first.pk),
        status=status,
        enqueued_at=first.created,
        started_at=started[0] if started else None,
        finished_at=last.finished if last.finished and last.started else None,
        last_attempted_at=started[-1] if started else None,
        args=args,
        kwargs=kwargs,
        backend=alias,
        errors=[_error(job) for job in jobs if _failed_with_error(job)],
        worker_ids=[job.worker for job in jobs if job.started is not None],
    )
    if status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", last.result)
    return result


def result_for_run(task: Task, job: WorkerJob) -> TaskResult:
    """The result a running job's task sees through its context."""
    earlier: list[WorkerJob] = []
    previous = job.rescheduled_from_id
    while previous is not None and len(earlier) < MAX_ATTEMPTS_FOLLOWED:
        row = WorkerJob.objects.filter(pk=previous, type=TASK_JOB_TYPE).first()
        if row is None:
            break
        earlier.insert(0, row)
        previous = row.rescheduled_from_id
    return build_result(task, [*earlier, job], task.backend)


def _attempts_after(job: WorkerJob) -> list[WorkerJob]:
    """The jobs that retried `job`, each following the one before."""
    following: list[WorkerJob] = []
    while len(following) < MAX_ATTEMPTS_FOLLOWED:
        job = (
            WorkerJob.objects.filter(rescheduled_from_id=job.pk, type=TASK_JOB_TYPE)
            .order_by("id")
            .first()
        )
        if job is None:
            break
        following.append(job)
    return following


def _failed_with_error(job: WorkerJob) -> bool:
    return (
        job.status == job_models.FAILED
        and isinstance(job.result, dict)
        and "exception" in job.result
    )


def _error(job: WorkerJob) -> TaskError:
    return TaskError(
        exception_class_path=job.result["exception"],
        traceback=job.result.get("traceback", ""),
    )
