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
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    connection,
    transaction,
)
from django.utils import timezone

from . import conf, cron, submission
from .claim import FollowingClaim
from .exceptions import PermanentJobError, UnknownJobTypeError
from .inserts import hot_cursor, hot_options, log_query
from .log import job_logger, log_job_finished, log_job_started
from .models import WorkerJob
from .registry import registry
from .signals import job_finished, job_started
from .storable import storable_text, storage_problem

# Seconds before recording an outcome is tried again after a database
# error; doubles on each failure in a row, up to the maximum.
RECORD_RETRY_DELAY = 0.5
RECORD_RETRY_MAX = 10.0

_RESULT_FIELD = WorkerJob._meta.get_field("result")

# What is stored instead of an outcome the database refuses: the error,
# then, should that be refused too, a fixed message.
UNSTORABLE_OUTCOMES: tuple[Callable[[BaseException], Any], ...] = (
    lambda error: error_result(
        ValueError(f"the database refused the job's outcome: {error}")
    ),
    lambda error: {"error": "the database refused the job's outcome"},
)

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
    # Attempts to record it that the database failed.
    record_failures: int = 0

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
    try:
        message = str(error)
    except Exception:  # the exception's own __str__ failed: its type must do
        message = ""
    try:
        trace = "".join(traceback.format_exception(error))
    except Exception:
        trace = ""
    return {
        "error": storable_text(message or kind.__name__),
        "exception": storable_text(f"{kind.__module__}.{kind.__qualname__}"),
        "traceback": storable_text(trace),
    }


def run_and_record(
    job: WorkerJob, worker: str, then: Callable[[], None] | None = None
) -> str:
    """Run a claimed job, record its outcome; return the outcome's name."""
    return run_and_report(job, worker, then)[0]


def run_and_report(
    job: WorkerJob, worker: str, then: Callable[[], None] | None = None
) -> tuple[str, Outcome]:
    """Run a claimed job and record it; return the outcome's name and itself.

    `then` is called inside the transaction that records the outcome: the
    worker claims its next job there, so that one commit serves both.
    """
    log_job_started(job, worker)
    _send(job_started, job=job, worker=worker)
    began = time.monotonic()
    outcome = run(job, worker)
    label = record_until_stored(job, worker, outcome, then)
    log_job_finished(
        job, worker, label, (time.monotonic() - began) * 1000, outcome.error
    )
    _send(job_finished, job=job, worker=worker, outcome=label)
    return label, outcome


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
    except BaseException as error:
        # SystemExit, KeyboardInterrupt and asyncio's CancelledError too: raised
        # by the handler's code, they end this job, not the worker.
        return Outcome.failure(error)
    problem = storage_problem(result, "its result")
    if problem:
        return Outcome.failure(
            ValueError(f"the handler of {job.type!r} returned a value that {problem}")
        )
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        return Outcome.failure(
            TypeError(
                f"the handler of {job.type!r} returned a value that is not "
                f"JSON: {error}"
            )
        )
    return Outcome(True, result)


def record(
    job: WorkerJob,
    worker: str,
    outcome: Outcome,
    then: Callable[[], None] | None = None,
) -> str:
    """Store the outcome and schedule the follow-up job, in one transaction.

    `then` runs in that transaction too (a worker's FollowingClaim). A job
    with nothing to follow it, recorded outside any atomic block on
    PostgreSQL, takes the pipelined path: one round trip for the lot.
    """
    now = timezone.now()
    if isinstance(then, FollowingClaim) and _pipelinable(job, outcome):
        stored = _record_pipelined(job, worker, outcome, then, now)
    else:
        with transaction.atomic():
            stored = _store_outcome(job, worker, outcome, now)
            if stored:
                outcome.follow_up = schedule_follow_up(job, outcome, now)
            if then is not None:
                then()
    if not stored:
        return DISCARDED
    job.finished, job.success, job.result = now, outcome.success, outcome.result
    job.remove_at = now + dt.timedelta(seconds=job.remove_delay)
    if outcome.success:
        return SUCCEEDED
    if outcome.follow_up is not None and outcome.follow_up.attempt > job.attempt:
        return RETRYING
    return FAILED


def _pipelinable(job: WorkerJob, outcome: Outcome) -> bool:
    """True when recording `job` needs no follow-up and can be pipelined."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return False
    retry = not outcome.success and job.auto_reschedule_on_failure
    return not job.cron_schedule and not retry


def _record_pipelined(
    job: WorkerJob,
    worker: str,
    outcome: Outcome,
    claim: FollowingClaim,
    now: dt.datetime,
) -> bool:
    """BEGIN, store the outcome, claim the next job, COMMIT: one round trip.

    psycopg's pipeline mode sends the four statements without waiting for
    each answer; the claim's row is read once the commit is in.
    """
    import psycopg

    connection.ensure_connection()
    raw = connection.connection
    params = _store_params(job, worker, outcome, now)
    wanted = claim.wanted
    with connection.wrap_database_errors:
        store, take = psycopg.Cursor(raw), psycopg.Cursor(raw)
        with raw.pipeline():
            _send_statement(raw, "BEGIN")
            _send_statement(store, _store_sql(), params)
            if wanted:
                _send_statement(take, *claim.statement(now))
            _send_statement(raw, "COMMIT")
        if wanted:
            claim.accept(take.fetchone())
        return store.rowcount == 1


def _send_statement(target: Any, sql: str, params: Any = None) -> None:
    log_query(connection, sql)
    target.execute(sql, params, prepare=params is not None)


def _store_outcome(
    job: WorkerJob, worker: str, outcome: Outcome, now: dt.datetime
) -> bool:
    """Write the outcome if the row is still this worker's unfinished claim.

    One prepared statement: this runs once per job, and the ORM would build
    the same UPDATE anew each time.
    """
    with connection.wrap_database_errors, hot_cursor() as cursor:
        params = _store_params(job, worker, outcome, now)
        cursor.execute(_store_sql(), params, **hot_options())
        return cursor.rowcount == 1


def _store_params(
    job: WorkerJob, worker: str, outcome: Outcome, now: dt.datetime
) -> list[Any]:
    moment = connection.ops.adapt_datetimefield_value
    return [
        moment(now),
        outcome.success,
        _RESULT_FIELD.get_db_prep_save(outcome.result, connection),
        moment(now + dt.timedelta(seconds=job.remove_delay)),
        moment(now),
        job.pk,
        worker,
        moment(job.started),
    ]


@cache
def _store_sql() -> str:
    quote = connection.ops.quote_name
    return (
        f"UPDATE {quote(WorkerJob._meta.db_table)} SET finished = %s, "
        "success = %s, result = %s, remove_at = %s, updated = %s "
        "WHERE id = %s AND worker = %s AND started = %s AND finished IS NULL"
    )


def record_until_stored(
    job: WorkerJob,
    worker: str,
    outcome: Outcome,
    then: Callable[[], None] | None = None,
) -> str:
    """record(), tried again while the database is unreachable.

    The job has run: its outcome must not be lost, and the job must not be
    claimed and run again. If the outage outlasts WORKER_STALE_AFTER, another
    manager fails the job as lost, and the fence in record() turns this
    outcome into DISCARDED. After a failure `then` is no longer called: a
    commit whose answer was lost leaves the worker unsure of what it holds,
    which outcome.record_failures tells it.
    """
    refusals = 0
    while True:
        try:
            then_now = None if outcome.record_failures else then
            return record(job, worker, outcome, then_now)
        except DataError as error:
            # The database refuses this outcome itself (say, a value of a
            # type it cannot hold): retrying the same would never end. The
            # transaction rolled back, claim included, so nothing is in doubt.
            refusals += 1
            if refusals > len(UNSTORABLE_OUTCOMES):
                raise
            job_logger(job, worker, "workers.execution").error(
                "The database refused the outcome, storing a failure instead: %s",
                error,
            )
            connection.close()
            outcome.success, outcome.permanent = False, True
            outcome.result = UNSTORABLE_OUTCOMES[refusals - 1](error)
        except (DatabaseError, InterfaceError) as error:
            outcome.record_failures += 1
            delay = min(
                RECORD_RETRY_DELAY * 2 ** (outcome.record_failures - 1),
                RECORD_RETRY_MAX,
            )
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
        try:
            next_due = cron.next_after(job.cron_schedule, max(now, job.due))
        except (ValueError, OverflowError) as error:
            # A row written past submit()'s checks (by hand, or by an older
            # version): the chain cannot go on, but the outcome must land.
            job_logger(job, job.worker, "workers.execution").error(
                "The next run of cron job %s cannot be scheduled: %s",
                job.pk,
                error,
            )
    if retry_due is not None and (next_due is None or retry_due < next_due):
        next_due, attempt = retry_due, job.attempt + 1
    if next_due is None:
        return None
    return insert_follow_up(job, next_due, attempt)


def insert_follow_up(
    job: WorkerJob, due: dt.datetime, attempt: int, *, one_off: bool = False
) -> WorkerJob | None:
    """Insert a copy of `job` due at `due`; None if its tag is already pending.

    With `one_off`, the copy runs once: no schedule and no tag, so that it
    does not start a second cron chain beside the one that goes on.
    """
    user_id = job.user_id
    if user_id is not None:
        # The user may have been deleted since the job was read (the row's
        # user is then set to NULL): copying the old id would break the
        # foreign key at commit.
        user_id = (
            WorkerJob.objects.filter(pk=job.pk)
            .values_list("user_id", flat=True)
            .first()
        )
    follow = WorkerJob(
        type=job.type,
        tag=None if one_off else job.tag,
        user_id=user_id,
        data=job.data,
        due=due,
        cron_schedule="" if one_off else job.cron_schedule,
        auto_reschedule_on_failure=job.auto_reschedule_on_failure,
        auto_reschedule_on_failure_delay=job.auto_reschedule_on_failure_delay,
        remove_delay=job.remove_delay,
        persistent=job.persistent,
        queue=job.queue,
        priority=job.priority,
        rescheduled_from_id=job.pk,
        attempt=attempt,
    )
    if follow.tag is not None:
        # Queue behind a submitter of the same tag, as submit() does, so that
        # neither has to retry a lost race.
        submission.lock_tags([follow.tag])
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
