"""The admin: jobs are history, so the pages read them and act through actions."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html

from . import status as pool_status
from . import submission
from .execution import insert_follow_up
from .models import STATUSES, WorkerJob, WorkerProcess
from .registry import registry

# The change list counts at most this many rows; past it, pages are still
# reachable one by one. A full COUNT(*) of a large table takes seconds.
COUNT_LIMIT = 10_000


class CappedCountPaginator(Paginator):
    """A paginator whose count stops at COUNT_LIMIT rows."""

    @cached_property
    def count(self) -> int:
        return self.object_list[:COUNT_LIMIT].count()


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(status, status.capitalize()) for status in STATUSES]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        if self.value() in STATUSES:
            return queryset.with_status(self.value())
        return None


class TypeFilter(admin.SimpleListFilter):
    """Lists the registered types, not the table's distinct values."""

    title = "type"
    parameter_name = "type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in registry.names()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        return queryset.filter(type=self.value()) if self.value() else None


class ScheduleFilter(admin.SimpleListFilter):
    title = "schedule"
    parameter_name = "schedule"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("cron", "Cron"), ("one-off", "One-off")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        if self.value() == "cron":
            return queryset.cron()
        if self.value() == "one-off":
            return queryset.one_off()
        return None


def _pretty_json(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


@admin.register(WorkerJob)
class WorkerJobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "status_label",
        "type",
        "tag",
        "user",
        "due",
        "started",
        "finished",
        "duration_label",
        "attempt",
        "queue",
    )
    list_filter = (StatusFilter, TypeFilter, ScheduleFilter)
    list_select_related = ("user",)
    search_fields = ("type", "tag")
    search_help_text = "A job id, a type, or a tag (or the start of one)."
    ordering = ("-id",)
    paginator = CappedCountPaginator
    show_full_result_count = False
    actions = ("run_now", "retry", "cancel_pending")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "status_label",
                    "type",
                    "tag",
                    "user",
                    "attempt",
                    "queue",
                    "priority",
                )
            },
        ),
        (
            "Times",
            {"fields": ("due", "started", "finished", "duration_label", "remove_at")},
        ),
        ("Data and result", {"fields": ("data_json", "result_json", "success")}),
        (
            "Schedule",
            {
                "fields": (
                    "cron_schedule",
                    "rescheduled_from_link",
                    "auto_reschedule_on_failure",
                    "auto_reschedule_on_failure_delay",
                    "remove_delay",
                    "persistent",
                )
            },
        ),
        ("Process", {"fields": ("worker", "created", "updated")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [name for _, group in self.fieldsets for name in group["fields"]]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Viewing only; the actions say what can be done to a job.
        return False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(type=term) | Q(tag__startswith=term)
        if term.isdigit():
            condition |= Q(pk=int(term))
        return queryset.filter(condition), False

    @admin.display(description="status")
    def status_label(self, job: WorkerJob) -> str:
        return job.status

    @admin.display(description="duration")
    def duration_label(self, job: WorkerJob) -> str:
        duration = job.duration
        return "" if duration is None else f"{duration.total_seconds():.3f} s"

    @admin.display(description="data")
    def data_json(self, job: WorkerJob) -> str:
        return _pretty_json(job.data)

    @admin.display(description="result")
    def result_json(self, job: WorkerJob) -> str:
        return _pretty_json(job.result)

    @admin.display(description="follows")
    def rescheduled_from_link(self, job: WorkerJob) -> str:
        if job.rescheduled_from_id is None:
            return "-"
        url = reverse("admin:workers_workerjob_change", args=[job.rescheduled_from_id])
        return format_html('<a href="{}">job #{}</a>', url, job.rescheduled_from_id)

    @admin.action(description="Run selected pending jobs now")
    def run_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        now = timezone.now()
        count = queryset.pending().update(due=now, updated=now)
        self.message_user(request, f"{count} pending job(s) are due now.")

    @admin.action(description="Retry selected finished jobs")
    def retry(self, request: HttpRequest, queryset: QuerySet) -> None:
        now = timezone.now()
        created, skipped = [], []
        for job in queryset.finished():
            # A cron job's chain goes on by itself: its retry runs once.
            follow = insert_follow_up(
                job, now, job.attempt + 1, one_off=bool(job.cron_schedule)
            )
            (created if follow else skipped).append(follow or job)
        if created:
            ids = ", ".join(f"#{job.pk}" for job in created)
            note = ""
            if any(job.rescheduled_from.cron_schedule for job in created):
                note = " A cron job's retry runs once, untagged; its schedule goes on."
            self.message_user(request, f"Retrying as job(s) {ids}.{note}")
        if skipped:
            tags = ", ".join(sorted({str(job.tag) for job in skipped}))
            self.message_user(
                request,
                f"{len(skipped)} job(s) not retried: their tag ({tags}) already "
                "has a pending job.",
                messages.WARNING,
            )
        if not created and not skipped:
            self.message_user(
                request, "Only finished jobs can be retried.", messages.WARNING
            )

    @admin.action(description="Cancel selected pending jobs")
    def cancel_pending(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = submission.cancel_pending(
            queryset,
            {"error": f"Cancelled in the admin by {request.user}"},
            timezone.now(),
        )
        self.message_user(request, f"{count} pending job(s) cancelled.")


class ProcessStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        states = (pool_status.ALIVE, pool_status.STALE, pool_status.STOPPED)
        return [(state, state.capitalize()) for state in states]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        since = pool_status.stale_since(timezone.now())
        if self.value() == pool_status.ALIVE:
            return queryset.live(since)
        if self.value() == pool_status.STALE:
            return queryset.stale(since)
        if self.value() == pool_status.STOPPED:
            return queryset.filter(stopped__isnull=False)
        return None


@admin.register(WorkerProcess)
class WorkerProcessAdmin(admin.ModelAdmin):
    """Managers and workers with their heartbeats; written by the processes."""

    list_display = (
        "name",
        "kind",
        "state_label",
        "host",
        "pid",
        "started",
        "last_heartbeat",
        "stopped",
        "stop_reason",
    )
    list_filter = (ProcessStateFilter, "kind")
    search_fields = ("name", "host")
    ordering = ("-id",)
    paginator = CappedCountPaginator
    show_full_result_count = False
    fields = (
        "name",
        "kind",
        "state_label",
        "host",
        "pid",
        "parent",
        "started",
        "last_heartbeat",
        "stopped",
        "stop_reason",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="state")
    def state_label(self, process: WorkerProcess) -> str:
        return pool_status.process_state(process, timezone.now())
