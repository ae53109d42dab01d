"""Submitting jobs: validate everything first, then write in one transaction.

A job submitted with a tag replaces the pending job of that tag: the old row
stays, cancelled (finished, never started). The partial unique index
ONE_PENDING_PER_TAG guarantees one pending job per tag even when several
processes submit the same tag at once; the loser of such a race cancels the
winner's row and inserts again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from . import conf, cron
from .exceptions import InvalidJobError, UnknownJobTypeError
from .registry import registry
from .storable import storage_problem, text_problem

if TYPE_CHECKING:
    from .models import WorkerJob

CANCELLED_BY_NEW_JOB = {"error": "Job cancelled due to new job being created"}
TAG_RACE_RETRIES = 5
SUBMIT_FIELDS = frozenset(
    {
        "type",
        "data",
        "user",
        "due",
        "tag",
        "cron_schedule",
        "auto_reschedule_on_failure",
        "auto_reschedule_on_failure_delay",
        "remove_delay",
        "persistent",
        "queue",
        "priority",
    }
)
# Job priorities span the range Django's Tasks framework allows.
MIN_PRIORITY, MAX_PRIORITY = -100, 100
# Delays are stored in 32-bit integer columns (seconds).
MAX_SECONDS = 2**31 - 1
# Years a due time may fall in, so that every database (and Python's
# datetime, with room for a delay after it) can hold it.
MIN_DUE_YEAR, MAX_DUE_YEAR = 1, 9000
# The length of the cron_schedule column.
MAX_CRON_LENGTH = 100


def submit(type: str, data: Any = None, **options: Any) -> WorkerJob:
    """Validate one job and insert it, cancelling the pending job of its tag.

    Raises InvalidJobError naming the field and value when anything is off;
    nothing is written then. Inside a transaction that rolls back, the job
    (and the cancellation) roll back with it.
    """
    from .inserts import insert_one

    job = build(type, data, **options)
    if job.tag is None:
        # One statement needs no transaction of its own.
        insert_one(job)
    else:
        _replace_tagged(job)
    _after_submit()
    return job


def _replace_tagged(job: WorkerJob) -> None:
    """Cancel the pending job of `job`'s tag and insert `job`, atomically."""
    from .inserts import insert_one

    _replace_tags([job], lambda: insert_one(job))


def _replace_tags(jobs: list[WorkerJob], insert: Callable[[], None]) -> None:
    """Cancel the pending jobs of the tags of `jobs`, then insert() them.

    Submitters, and cron runs inserting their next row, take an advisory
    lock per tag; a row released back to pending by a manager does not, and
    should it win the race for a tag, the transaction is tried again, and
    cancels it.
    """
    tags = sorted({job.tag for job in jobs if job.tag is not None})
    for attempt in range(TAG_RACE_RETRIES):
        try:
            with transaction.atomic():
                if tags:
                    lock_tags(tags)
                    cancel_pending_tags(tags, timezone.now())
                insert()
        except (IntegrityError, OperationalError) as error:
            if not _is_tag_race(error) or attempt == TAG_RACE_RETRIES - 1:
                raise
            for job in jobs:
                job.pk = None
                job._state.adding = True
            continue
        return


def bulk_submit(jobs: Iterable[Mapping[str, Any]]) -> list[WorkerJob]:
    """Validate every job, then insert them all with one INSERT statement.

    Each item is a mapping of submit()'s arguments (`type` required). A bad
    item fails the whole call, naming its index, before anything is written.
    """
    from .inserts import insert_many

    built: list[WorkerJob] = []
    tags: dict[str, int] = {}
    for index, spec in enumerate(jobs):
        if not isinstance(spec, Mapping):
            raise InvalidJobError(f"jobs[{index}]", spec, "give a mapping of fields")
        unknown = set(spec) - SUBMIT_FIELDS
        if unknown or "type" not in spec:
            problem = (
                f"unknown fields {sorted(unknown)}" if unknown else "'type' is missing"
            )
            raise InvalidJobError(f"jobs[{index}]", dict(spec), problem)
        fields = dict(spec)
        try:
            job = build(fields.pop("type"), fields.pop("data", None), **fields)
        except InvalidJobError as error:
            raise InvalidJobError(
                f"jobs[{index}].{error.field}", error.value, str(error)
            ) from error
        if job.tag is not None:
            if job.tag in tags:
                raise InvalidJobError(
                    f"jobs[{index}].tag",
                    job.tag,
                    f"jobs[{tags[job.tag]}] has the same tag; "
                    "at most one pending job per tag",
                )
            tags[job.tag] = index
        built.append(job)
    if not built:
        return []
    _replace_tags(built, lambda: insert_many(built))
    _after_submit()
    return built


def build(
    type: str,
    data: Any = None,
    *,
    user: Any = None,
    due: dt.datetime | None = None,
    tag: str | None = None,
    cron_schedule: str | None = None,
    auto_reschedule_on_failure: bool = False,
    auto_reschedule_on_failure_delay: int | None = None,
    remove_delay: int | None = None,
    persistent: bool = False,
    queue: str | None = None,
    priority: int = 0,
) -> WorkerJob:
    """Return an unsaved, validated WorkerJob; InvalidJobError if any field is off."""
    from .models import WorkerJob

    job_type = _check_type(type)
    data = {} if data is None else data
    _check_json("data", data)
    if job_type.validate is not None:
        try:
            job_type.validate(data)
        except (ValueError, TypeError, LookupError) as error:
            raise InvalidJobError(
                "data", data, f"rejected by {type!r}: {error}"
            ) from error
    schedule = ""
    if cron_schedule is not None and cron_schedule != "":
        try:
            schedule = cron.validate(cron_schedule)
        except cron.InvalidCronExpression as error:
            raise InvalidJobError("cron_schedule", cron_schedule, str(error)) from error
        if len(schedule) > MAX_CRON_LENGTH:
            raise InvalidJobError(
                "cron_schedule",
                cron_schedule,
                f"longer than {MAX_CRON_LENGTH} characters; use ranges and steps "
                "(0-30/5) instead of long lists",
            )
    now = timezone.now()
    if due is None:
        due = cron.next_after(schedule, now) if schedule else now
    elif not isinstance(due, dt.datetime):
        raise InvalidJobError("due", due, "give a timezone-aware datetime")
    elif timezone.is_naive(due):
        raise InvalidJobError(
            "due",
            due,
            "the datetime is naive; give an aware one, "
            "e.g. django.utils.timezone.now() + timedelta(...)",
        )
    else:
        due = _check_due_range(due)
    if tag is not None and (not isinstance(tag, str) or not tag or len(tag) > 255):
        raise InvalidJobError(
            "tag", tag, "give a non-empty string of 255 characters at most"
        )
    if tag is not None and (problem := text_problem(tag)):
        raise InvalidJobError("tag", tag, f"it {problem}")
    for name, value in (
        ("auto_reschedule_on_failure", auto_reschedule_on_failure),
        ("persistent", persistent),
    ):
        if not isinstance(value, bool):
            raise InvalidJobError(name, value, "give True or False")
    retry_delay = _check_seconds(
        "auto_reschedule_on_failure_delay",
        auto_reschedule_on_failure_delay,
        conf.get("WORKER_RETRY_DELAY"),
    )
    keep = _check_seconds("remove_delay", remove_delay, conf.get("WORKER_REMOVE_DELAY"))
    return WorkerJob(
        type=type,
        data=data,
        user=_check_user(user),
        due=due,
        tag=tag,
        cron_schedule=schedule,
        auto_reschedule_on_failure=auto_reschedule_on_failure,
        auto_reschedule_on_failure_delay=retry_delay,
        remove_delay=keep,
        persistent=persistent,
        queue=_check_queue(queue),
        priority=_check_priority(priority),
    )


def lock_tags(tags: list[str]) -> None:
    """Serialise submissions of these tags until the transaction ends.

    The unique index alone would make concurrent submitters of one tag fail
    and retry in turn; on PostgreSQL an advisory lock per tag queues them
    instead. SQLite's IMMEDIATE transactions queue all writers already.
    """
    if connection.vendor != "postgresql":
        return
    keys = sorted({_lock_key(tag) for tag in tags})
    with connection.cursor() as cursor:
        for key in keys:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _lock_key(tag: str) -> int:
    digest = hashlib.blake2b(f"workers.tag:{tag}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def cancel_pending_tags(tags: list[str], now: dt.datetime) -> int:
    """Cancel the pending jobs with these tags; return how many."""
    from .models import WorkerJob

    return cancel_pending(
        WorkerJob.objects.filter(tag__in=tags), CANCELLED_BY_NEW_JOB, now
    )


def cancel_pending(queryset: Any, result: Any, now: dt.datetime) -> int:
    """Finish the pending jobs of `queryset` unstarted, with `result`."""
    cancelled = 0
    pending = queryset.pending()
    for pk, remove_delay in pending.values_list("pk", "remove_delay"):
        cancelled += (
            pending.model.objects.pending()
            .filter(pk=pk)
            .update(
                finished=now,
                success=False,
                result=result,
                remove_at=now + dt.timedelta(seconds=remove_delay),
                updated=now,
            )
        )
    return cancelled


def _after_submit() -> None:
    """Hook run after a submission commits (wake idle workers)."""
    from .signals import job_submitted

    job_submitted.send(sender=None)


def _check_type(name: Any) -> Any:
    if not isinstance(name, str) or not name:
        raise InvalidJobError("type", name, "give the name of a registered job type")
    try:
        return registry.get(name)
    except UnknownJobTypeError as error:
        raise InvalidJobError("type", name, str(error)) from error


def _check_json(field: str, value: Any) -> None:
    problem = storage_problem(value, field)
    if problem:
        raise InvalidJobError(field, value, f"{problem} before submitting")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        raise InvalidJobError(
            field,
            value,
            f"not JSON: {error}; convert it to dicts, lists, strings, "
            "numbers, booleans and None first",
        ) from error


def _check_seconds(field: str, value: Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidJobError(field, value, "give a whole number of seconds")
    if not math.isfinite(value) or value < 0 or value != int(value):
        raise InvalidJobError(field, value, "give a whole number of seconds, 0 or more")
    if value > MAX_SECONDS:
        raise InvalidJobError(
            field, value, f"give at most {MAX_SECONDS} seconds (about 68 years)"
        )
    return int(value)


def _check_due_range(due: dt.datetime) -> dt.datetime:
    """`due`, if its UTC time falls within the years every database stores."""
    try:
        utc = due.astimezone(dt.UTC)
    except OverflowError:
        utc = None
    if utc is None or not MIN_DUE_YEAR <= utc.year <= MAX_DUE_YEAR:
        raise InvalidJobError(
            "due",
            due,
            f"give a time between the years {MIN_DUE_YEAR} and {MAX_DUE_YEAR} (in UTC)",
        )
    return due


def _check_queue(queue: Any) -> str:
    from .models import DEFAULT_QUEUE

    if queue is None:
        return DEFAULT_QUEUE
    if (
        not isinstance(queue, str)
        or not queue
        or len(queue) > 100
        or "," in queue
        or queue != queue.strip()
        or text_problem(queue)
    ):
        raise InvalidJobError(
            "queue",
            queue,
            "give a non-empty name of 100 characters at most, without commas, "
            "NUL or spaces around it",
        )
    return queue


def _check_priority(priority: Any) -> int:
    if (
        isinstance(priority, bool)
        or not isinstance(priority, int)
        or not MIN_PRIORITY <= priority <= MAX_PRIORITY
    ):
        raise InvalidJobError(
            "priority",
            priority,
            f"give a whole number from {MIN_PRIORITY} to {MAX_PRIORITY} "
            "(higher runs first)",
        )
    return priority


def _check_user(user: Any) -> Any:
    if user is None:
        return None
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    if isinstance(user, user_model):
        if user.pk is None:
            raise InvalidJobError("user", user, "save the user before submitting")
        return user
    raise InvalidJobError(
        "user", user, f"give a saved {user_model.__name__} or None for a system job"
    )


def _is_tag_race(error: Exception) -> bool:
    """A lost race for a tag: its unique index, or (rarely, when several tags
    are locked at once) a deadlock that PostgreSQL broke."""
    from .models import ONE_PENDING_PER_TAG

    if getattr(error.__cause__, "sqlstate", None) == "40P01":
        return True
    text = str(error)
    return isinstance(error, IntegrityError) and (
        ONE_PENDING_PER_TAG in text or "workers_workerjob.tag" in text
    )
