"""Running one claimed job and recording what came of it.

Three steps: run the handler (outside any transaction), then record the
outcome and schedule what follows (the next cron occurrence, or a retry) in
one transaction. The record is fenced: it only lands while the row is still
unfinished and claimed by this worker, so a worker that was declared lost
cannot overwrite what was decided for its job meanwhile.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    connection,
    transaction,
)
from django.utils import timezone

from . import conf, cron
from .exceptions import PermanentJobError, UnknownJobTypeError
from .log import job_logger, log_job_finished, log_job_started
from .models import WorkerJob
from .registry import registry
from .signals import job_finished, job_started

# Seconds before recording an outcome is tried again after a database
# error; doubles on each failure in a row, up to the maximum.
RECORD_RETRY_DELAY = 0.5
RECORD_RETRY_MAX = 10.0

SUCCEEDED = "succeeded"
FAILED = "failed"
RETRYING = "retrying"
DISCARDED = "discarded"


@dataclass
class Outcome:
    """What running a job gave: a result, or an error and whether to retry."""

    success: bool
    result: Any
    permanent: bool = False
    follow_up: WorkerJob | None = field(default=None, repr=False)

    @classmethod
    def failure(cls, error: BaseException, *, permanent: bool = False) -> Outcome:
        return cls(False, error_result(error), permanent=permanent)

    @property
    def error(self) -> str | None:
        if self.success or not isinstance(self.result, dict):
            return None
        return self.result.get("error")


def error_result(error: BaseException) -> dict[str, Any]:
    """A failed job's result: the exception's type, message and traceback."""
    kind = type(error)
    return {
        "error": str(error) or kind.__name__,
        "exception": f"{kind.__module__}.{kind.__qualname__}",
        "traceback": "".join(traceback.format_exception(error)),
    }


def run_and_record(job: WorkerJob, worker: str) -> str:
    """Run a claimed job, record its outcome; return the outcome's name."""
    log_job_started(job, worker)
    _send(job_started, job=job, worker=worker)
    began = time.monotonic()
    outcome = run(job, worker)
    label = record_until_stored(job, worker, outcome)
    log_job_finished(
        job, worker, label, (time.monotonic() - began) * 1000, outcome.error
    )
    _send(job_finished, job=job, worker=worker, outcome=label)
    return label


def run(job: WorkerJob, worker: str) -> Outcome:
    """Call the handler of the job's type and turn what happens into an Outcome."""
    try:
        handler = registry.get(job.type).handler
    except UnknownJobTypeError as error:
        return Outcome.failure(error, permanent=True)
    try:
        result = handler(job, job_logger(job, worker))
    except PermanentJobError as error:
        return Outcome.failure(error, permanent=True)
    except (Exception, SystemExit) as error:
        return Outcome.failure(error)
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as error:
        return Outcome.failure(
            TypeError(
                f"the handler of {job.type!r} returned a value that is not "
                f"JSON: {error}"
            )
        )
    return Outcome(True, result)


def record(job: WorkerJob, worker: str, outcome: Outcome) -> str:
    """Store the outcome and schedule the follow-up job, in one transaction."""
    now = timezone.now()
    with transaction.atomic():
        updated = WorkerJob.objects.filter(
            pk=job.pk, worker=worker, started=job.started, finished__isnull=True
        ).update(
            finished=now,
            success=outcome.success,
            result=outcome.result,
            remove_at=now + dt.timedelta(seconds=job.remove_delay),
            updated=now,
        )
        if not updated:
            return DISCARDED
        job.finished, job.success, job.result = now, outcome.success, outcome.result
        job.remove_at = now + dt.timedelta(seconds=job.remove_delay)
        outcome.follow_up = schedule_follow_up(job, outcome, now)
    if outcome.success:
        return SUCCEEDED
    if outcome.follow_up is not None and outcome.follow_up.attempt > job.attempt:
        return RETRYING
    return FAILED


def record_until_stored(job: WorkerJob, worker: str, outcome: Outcome) -> str:
    """record(), tried again while the database is unreachable.

    The job has run: its outcome must not be lost, and the job must not be
    claimed and run again. If the outage outlasts WORKER_STALE_AFTER, another
    manager fails the job as lost, and the fence in record() turns this
    outcome into DISCARDED.
    """
    failures = 0
    while True:
        try:
            return record(job, worker, outcome)
        except (DatabaseError, InterfaceError) as error:
            failures += 1
            delay = min(RECORD_RETRY_DELAY * 2 ** (failures - 1), RECORD_RETRY_MAX)
            job_logger(job, worker, "workers.execution").warning(
                "Database unavailable while recording the outcome, "
                "retrying in %.1f s: %s",
                delay,
                error,
            )
            connection.close()
            time.sleep(delay)


def schedule_follow_up(
    job: WorkerJob, outcome: Outcome, now: dt.datetime
) -> WorkerJob | None:
    """Insert the job that follows `job`: a retry, the next cron run, or none.

    A cron job always gets a next run, whatever its outcome. A failed job with
    auto_reschedule_on_failure is retried after its delay until it reaches
    its type's attempt limit; a cron job's retry comes only if it is due
    before the next scheduled run. If its tag already has a pending job (a
    newer submission), that job stands and nothing is added.
    """
    retry_due = None
    if (
        not outcome.success
        and not outcome.permanent
        and job.auto_reschedule_on_failure
        and job.attempt < max_attempts(job.type)
    ):
        retry_due = now + dt.timedelta(seconds=job.auto_reschedule_on_failure_delay)
    next_due, attempt = None, 1
    if job.cron_schedule:
        next_due = cron.next_after(job.cron_schedule, max(now, job.due))
    if retry_due is not None and (next_due is None or retry_due < next_due):
        next_due, attempt = retry_due, job.attempt + 1
    if next_due is None:
        return None
    return insert_follow_up(job, next_due, attempt)


def insert_follow_up(
    job: WorkerJob, due: dt.datetime, attempt: int
) -> WorkerJob | None:
    """Insert a copy of `job` due at `due`; None if its tag is already pending."""
    follow = WorkerJob(
        type=job.type,
        tag=job.tag,
        user_id=job.user_id,
        data=job.data,
        due=due,
        cron_schedule=job.cron_schedule,
        auto_reschedule_on_failure=job.auto_reschedule_on_failure,
        auto_reschedule_on_failure_delay=job.auto_reschedule_on_failure_delay,
        remove_delay=job.remove_delay,
        persistent=job.persistent,
        queue=job.queue,
        priority=job.priority,
        rescheduled_from_id=job.pk,
        attempt=attempt,
    )
    try:
        with transaction.atomic():
            follow.save(force_insert=True)
    except IntegrityError:
        if job.tag is None:
            raise
        return None
    return follow


def max_attempts(job_type: str) -> int:
    """How many runs a job of this type gets, first included."""
    if job_type in registry:
        limit = registry.get(job_type).max_attempts
        if limit is not None:
            return limit
    return int(conf.get("WORKER_MAX_ATTEMPTS"))


def _send(signal: Any, **kwargs: Any) -> None:
    for receiver, response in signal.send_robust(sender=WorkerJob, **kwargs):
        if isinstance(response, Exception):
            job_logger(kwargs["job"], kwargs["worker"], "workers.signals").error(
                "Signal receiver %r raised %r", receiver, response
            )
