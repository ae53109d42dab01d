"""The maintenance jobs the manager makes sure exist when it starts.

Each is kept as one pending row per tag. The partial unique index on
pending tags makes this safe across restarts and across several managers on
one database: a manager that finds the row already there adds nothing, and
of two managers racing to insert it, the second's insert is refused.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import conf, submission
from .models import WorkerJob

logger = logging.getLogger("workers.scheduling")

WATCH_CHAIN_TAG = "cron:watchChain"
DEPLOY_MULTICALL3_TAG = "startup:deployMulticall3"
CHAIN_JOB_TAGS = (WATCH_CHAIN_TAG, DEPLOY_MULTICALL3_TAG)


def ensure_job(
    type: str,
    *,
    tag: str,
    cron_schedule: str | None = None,
    data: Any = None,
    **options: Any,
) -> WorkerJob | None:
    """Make sure one pending job with `tag` exists as described.

    Returns the job inserted, or None when a matching one was already pending.
    A pending job with that tag but another type, schedule or data is replaced.
    """
    job = submission.build(type, data, tag=tag, cron_schedule=cron_schedule, **options)
    existing = WorkerJob.objects.pending().filter(tag=tag).first()
    if existing is not None:
        if (existing.type, existing.cron_schedule, existing.data) == (
            job.type,
            job.cron_schedule,
            job.data,
        ):
            return None
        logger.info(
            "Replacing scheduled job",
            extra={"job": existing.pk, "tag": tag, "type": type},
        )
        return submission.submit(
            type, data, tag=tag, cron_schedule=cron_schedule, **options
        )
    try:
        with transaction.atomic():
            job.save(force_insert=True)
    except IntegrityError:
        return None
    logger.info("Scheduled job", extra={"job": job.pk, "tag": tag, "type": type})
    return job


def chain_configured() -> bool:
    """True when an RPC URL is set, so the chain jobs can run."""
    from django.conf import settings

    return bool(getattr(settings, "CHAIN_RPC_URL", None))


def ensure_maintenance_jobs() -> list[WorkerJob]:
    """Schedule the built-in jobs; return the rows this call inserted."""
    added = [
        ensure_job(
            "removeOldWorkerJobs",
            tag="cron:removeOldWorkerJobs",
            cron_schedule=conf.get("WORKER_REMOVE_OLD_JOBS_SCHEDULE"),
        )
    ]
    if chain_configured():
        added.append(
            ensure_job(
                "watchChain",
                tag=WATCH_CHAIN_TAG,
                cron_schedule=conf.get("WORKER_WATCH_CHAIN_SCHEDULE"),
            )
        )
        added.append(ensure_job("deployMulticall3", tag=DEPLOY_MULTICALL3_TAG))
    else:
        logger.info(
            "CHAIN_RPC_URL is not set: watchChain and deployMulticall3 "
            "are not scheduled"
        )
        unschedule_chain_jobs()
    return [job for job in added if job is not None]


def unschedule_chain_jobs() -> int:
    """Cancel the pending chain jobs scheduled while a chain was configured.

    Left pending, each would fail for want of CHAIN_RPC_URL, and the cron
    chain of watchChain would add a failed row every tick.
    """
    cancelled = submission.cancel_pending(
        WorkerJob.objects.filter(tag__in=CHAIN_JOB_TAGS),
        {"error": "Job cancelled: CHAIN_RPC_URL is no longer set"},
        timezone.now(),
    )
    if cancelled:
        logger.info(
            "Cancelled %d scheduled chain job(s): CHAIN_RPC_URL is not set",
            cancelled,
        )
    return cancelled
