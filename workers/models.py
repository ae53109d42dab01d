"""The job table and its QuerySet."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from . import submission

# The states a job passes through. They are not stored: each is derived from
# started, finished and success (see the QuerySet methods of the same names).
PENDING = "pending"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
STATUSES = (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED)

UNSTARTED = Q(started__isnull=True, finished__isnull=True)
DEFAULT_QUEUE = "default"
ONE_PENDING_PER_TAG = "workers_job_one_pending_per_tag"


class WorkerJobQuerySet(models.QuerySet):
    def pending(self) -> WorkerJobQuerySet:
        """Jobs not yet started (due or not)."""
        return self.filter(UNSTARTED)

    def due(self, now: dt.datetime | None = None) -> WorkerJobQuerySet:
        """Pending jobs whose due time has come."""
        return self.pending().filter(due__lte=now or timezone.now())

    def running(self) -> WorkerJobQuerySet:
        return self.filter(started__isnull=False, finished__isnull=True)

    def finished(self) -> WorkerJobQuerySet:
        return self.filter(finished__isnull=False)

    def succeeded(self) -> WorkerJobQuerySet:
        return self.filter(finished__isnull=False, success=True)

    def failed(self) -> WorkerJobQuerySet:
        """Jobs that ran and did not succeed."""
        return self.filter(finished__isnull=False, started__isnull=False, success=False)

    def cancelled(self) -> WorkerJobQuerySet:
        """Jobs finished without ever starting: replaced or cancelled."""
        return self.filter(finished__isnull=False, started__isnull=True)

    def with_status(self, status: str) -> WorkerJobQuerySet:
        """Jobs in `status`, one of STATUSES."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; use one of {STATUSES}")
        return getattr(self, status)()

    def in_queues(self, queues: Sequence[str] | None) -> WorkerJobQuerySet:
        """Jobs of these queues; all jobs when `queues` is empty or None."""
        return self.filter(queue__in=queues) if queues else self

    def cron(self) -> WorkerJobQuerySet:
        return self.exclude(cron_schedule="")

    def one_off(self) -> WorkerJobQuerySet:
        return self.filter(cron_schedule="")

    def expired(self, now: dt.datetime | None = None) -> WorkerJobQuerySet:
        """Finished, non-persistent jobs whose remove_at has passed."""
        return self.filter(
            finished__isnull=False,
            persistent=False,
            remove_at__lte=now or timezone.now(),
        )


class WorkerJobManager(models.Manager.from_queryset(WorkerJobQuerySet)):
    def submit(
        self,
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
        """Validate and insert one job; see workers.submission.submit."""
        return submission.submit(
            type,
            data,
            user=user,
            due=due,
            tag=tag,
            cron_schedule=cron_schedule,
            auto_reschedule_on_failure=auto_reschedule_on_failure,
            auto_reschedule_on_failure_delay=auto_reschedule_on_failure_delay,
            remove_delay=remove_delay,
            persistent=persistent,
            queue=queue,
            priority=priority,
        )

    async def asubmit(self, type: str, data: Any = None, **options: Any) -> WorkerJob:
        """submit() for async code: the same arguments, run in a thread."""
        return await sync_to_async(self.submit)(type, data, **options)

    def bulk_submit(self, jobs: Iterable[Mapping[str, Any]]) -> list[WorkerJob]:
        """Validate every job, then insert them all; see submission.bulk_submit."""
        return submission.bulk_submit(jobs)

    async def abulk_submit(self, jobs: Iterable[Mapping[str, Any]]) -> list[WorkerJob]:
        """bulk_submit() for async code."""
        return await sync_to_async(self.bulk_submit)(list(jobs))


class WorkerJob(models.Model):
    type = models.CharField(max_length=100)
    tag = models.CharField(max_length=255, null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="worker_jobs",
        help_text="None for a system job.",
        # Indexed below for the rows that have one only: every index is
        # written twice per job (claim, record), most jobs are system jobs.
        db_index=False,
    )
    data = models.JSONField(default=dict, blank=True)
    due = models.DateTimeField()
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    remove_at = models.DateTimeField(
        null=True, blank=True, help_text="finished + remove_delay."
    )
    success = models.BooleanField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    cron_schedule = models.CharField(max_length=100, blank=True, default="")
    auto_reschedule_on_failure = models.BooleanField(default=False)
    auto_reschedule_on_failure_delay = models.PositiveIntegerField(
        default=60, help_text="Seconds."
    )
    remove_delay = models.PositiveIntegerField(
        default=7 * 24 * 3600, help_text="Seconds."
    )
    persistent = models.BooleanField(
        default=False, help_text="Never deleted by removeOldWorkerJobs."
    )
    # No database constraint: removeOldWorkerJobs deletes old rows in plain
    # batches, and a job may outlive the one it follows.
    rescheduled_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="rescheduled_to",
        help_text="The job this one retries or follows.",
    )
    attempt = models.PositiveIntegerField(default=1)
    # Workers started with --queues claim only jobs of those queues.
    queue = models.CharField(max_length=100, default=DEFAULT_QUEUE)
    # Among due jobs, higher priorities are claimed first (-100 to 100).
    priority = models.SmallIntegerField(default=0)
    worker = models.CharField(
        max_length=100, blank=True, default="", help_text="Process that ran it."
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = WorkerJobManager()

    class Meta:
        verbose_name = "worker job"
        constraints = [
            models.UniqueConstraint(
                fields=["tag"],
                condition=UNSTARTED & Q(tag__isnull=False),
                name=ONE_PENDING_PER_TAG,
            ),
        ]
        indexes = [
            # The claim: the next due job is the first entry of this index
            # (in workers.claim's order), whatever the number of finished rows.
            models.Index(
                fields=["-priority", "due", "id"],
                condition=UNSTARTED,
                name="workers_job_due",
            ),
            # The admin's "failed" filter, newest first, on a table of millions.
            models.Index(
                fields=["-id"],
                condition=Q(finished__isnull=False, started__isnull=False)
                & Q(success=False),
                name="workers_job_failed",
            ),
            models.Index(
                fields=["remove_at"],
                condition=Q(finished__isnull=False, persistent=False),
                name="workers_job_expiry",
            ),
            models.Index(
                fields=["started"],
                condition=Q(started__isnull=False, finished__isnull=True),
                name="workers_job_running",
            ),
            models.Index(fields=["type", "id"], name="workers_job_type"),
            # Partial, so the many rows without one cost no index writes.
            models.Index(
                fields=["tag", "id"],
                condition=Q(tag__isnull=False),
                name="workers_job_tag",
            ),
            models.Index(
                fields=["user", "id"],
                condition=Q(user__isnull=False),
                name="workers_job_user",
            ),
            models.Index(
                fields=["rescheduled_from"],
                condition=Q(rescheduled_from__isnull=False),
                name="workers_job_follows",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk}"

    @property
    def status(self) -> str:
        if self.finished is None:
            return PENDING if self.started is None else RUNNING
        if self.started is None:
            return CANCELLED
        return SUCCEEDED if self.success else FAILED

    @property
    def duration(self) -> dt.timedelta | None:
        if self.started and self.finished:
            return self.finished - self.started
        return None

    @property
    def is_cron(self) -> bool:
        return bool(self.cron_schedule)


MANAGER = "manager"
CHILD = "child"


class WorkerProcessQuerySet(models.QuerySet):
    def running(self) -> WorkerProcessQuerySet:
        """Processes not known to have stopped (their heartbeat may be stale)."""
        return self.filter(stopped__isnull=True)

    def live(self, since: dt.datetime) -> WorkerProcessQuerySet:
        """Running processes that have beaten since `since`."""
        return self.running().filter(last_heartbeat__gte=since)

    def stale(self, since: dt.datetime) -> WorkerProcessQuerySet:
        """Running processes silent since before `since`: presumed dead."""
        return self.running().filter(last_heartbeat__lt=since)


class WorkerProcess(models.Model):
    """A manager or worker process, as it last reported itself."""

    KINDS = ((MANAGER, "Manager"), (CHILD, "Worker"))

    kind = models.CharField(max_length=10, choices=KINDS)
    name = models.CharField(
        max_length=100, help_text="host:pid, or host:pid/slot for a worker."
    )
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="children",
    )
    started = models.DateTimeField()
    last_heartbeat = models.DateTimeField()
    stopped = models.DateTimeField(null=True, blank=True)
    stop_reason = models.CharField(max_length=255, blank=True, default="")

    objects = WorkerProcessQuerySet.as_manager()

    class Meta:
        verbose_name = "worker process"
        verbose_name_plural = "worker processes"
        indexes = [
            models.Index(
                fields=["last_heartbeat"],
                condition=Q(stopped__isnull=True),
                name="workers_process_heartbeat",
            ),
            models.Index(fields=["name", "id"], name="workers_process_name"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


# The chain jobs' records live in their own module; importing them here lets
# Django find them as models of this app.
from .chain.models import ChainBlock, ChainCheckpoint, ProcessedLog  # noqa: E402, F401
