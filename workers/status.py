"""The state of the pool as the database shows it, for workerstatus and health.

A process is alive while its heartbeat is younger than WORKER_STALE_AFTER,
stale when it is older and the process never said it stopped (it died or
hangs), and stopped once it said so or a manager declared it dead.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from . import conf
from .models import MANAGER, WorkerJob, WorkerProcess
from .supervision import stale_since

ALIVE = "alive"
STALE = "stale"
STOPPED = "stopped"


def process_state(process: WorkerProcess, now: dt.datetime) -> str:
    if process.stopped is not None:
        return STOPPED
    return ALIVE if process.last_heartbeat >= stale_since(now) else STALE


def oldest_due(now: dt.datetime) -> dict[str, Any] | None:
    """The due job waiting longest, and for how many seconds."""
    job = WorkerJob.objects.due(now).order_by("due", "id").first()
    if job is None:
        return None
    return {
        "job": job.pk,
        "type": job.type,
        "due": job.due.isoformat(),
        "lag_seconds": round((now - job.due).total_seconds(), 3),
    }


def processes(now: dt.datetime, stopped_for: float = 3600) -> list[dict[str, Any]]:
    """Running processes, and those stopped in the last `stopped_for` seconds."""
    recent = now - dt.timedelta(seconds=stopped_for)
    rows = WorkerProcess.objects.filter(
        Q(stopped__isnull=True) | Q(stopped__gte=recent)
    ).order_by("kind", "host", "pid", "id")
    return [
        {
            "kind": process.kind,
            "name": process.name,
            "host": process.host,
            "pid": process.pid,
            "parent": process.parent_id,
            "started": process.started.isoformat(),
            "last_heartbeat": process.last_heartbeat.isoformat(),
            "heartbeat_age_seconds": round(
                (now - process.last_heartbeat).total_seconds(), 1
            ),
            "stopped": process.stopped.isoformat() if process.stopped else None,
            "stop_reason": process.stop_reason,
            "state": process_state(process, now),
        }
        for process in rows
    ]


def pending_by_type(now: dt.datetime) -> dict[str, dict[str, int]]:
    rows = (
        WorkerJob.objects.pending()
        .values("type")
        .annotate(pending=Count("id"), due=Count("id", filter=Q(due__lte=now)))
        .order_by("type")
    )
    return {row["type"]: {"pending": row["pending"], "due": row["due"]} for row in rows}


def recent_failures(limit: int = 10) -> list[dict[str, Any]]:
    jobs = WorkerJob.objects.failed().order_by("-id")[:limit]
    return [
        {
            "job": job.pk,
            "type": job.type,
            "tag": job.tag,
            "attempt": job.attempt,
            "worker": job.worker,
            "finished": job.finished.isoformat(),
            "error": (job.result or {}).get("error")
            if isinstance(job.result, dict)
            else None,
        }
        for job in jobs
    ]


def health(now: dt.datetime | None = None) -> dict[str, Any]:
    """Healthy: a manager beats, and no due job has waited too long."""
    now = now or timezone.now()
    since = stale_since(now)
    managers = WorkerProcess.objects.live(since).filter(kind=MANAGER).count()
    workers = WorkerProcess.objects.live(since).exclude(kind=MANAGER).count()
    waiting = oldest_due(now)
    max_lag = float(conf.get("WORKER_HEALTH_MAX_LAG"))
    problems = []
    if not managers:
        problems.append("no manager has sent a heartbeat recently")
    if waiting is not None and waiting["lag_seconds"] >= max_lag:
        problems.append(
            f"job {waiting['job']} has waited {waiting['lag_seconds']:.0f} s "
            f"since it was due (WORKER_HEALTH_MAX_LAG is {max_lag:g} s)"
        )
    return {
        "healthy": not problems,
        "problems": problems,
        "live_managers": managers,
        "live_workers": workers,
        "oldest_due": waiting,
        "max_lag_seconds": max_lag,
        "checked": now.isoformat(),
    }


def snapshot(now: dt.datetime | None = None, failures: int = 10) -> dict[str, Any]:
    """Everything workerstatus shows."""
    now = now or timezone.now()
    return {
        **health(now),
        "processes": processes(now),
        "pending": pending_by_type(now),
        "recent_failures": recent_failures(failures),
    }
