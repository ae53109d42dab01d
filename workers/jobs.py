"""The built-in job types.

The chain jobs import web3 only when they first run, so that a worker that
never runs them does not pay for it in memory.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from . import conf
from .models import WorkerJob
from .registry import register


@register("removeOldWorkerJobs")
def remove_old_worker_jobs(
    job: WorkerJob, log: logging.LoggerAdapter
) -> dict[str, Any]:
    """Delete finished, non-persistent jobs past their remove_at, in batches.

    Each batch is its own short statement, so that deleting a million rows
    never holds a long lock.
    """
    now = timezone.now()
    batch = int(conf.get("WORKER_CLEANUP_BATCH_SIZE"))
    deleted = 0
    while True:
        ids = list(WorkerJob.objects.expired(now).values_list("pk", flat=True)[:batch])
        if not ids:
            break
        count, _ = WorkerJob.objects.expired(now).filter(pk__in=ids).delete()
        deleted += count
        log.debug("Deleted a batch of old jobs", extra={"deleted": count})
    log.info("Removed old worker jobs", extra={"deleted": deleted})
    return {"deleted": deleted}


@register("django.task")
def run_django_task(job: WorkerJob, log: logging.LoggerAdapter) -> Any:
    """Run a task of Django's Tasks framework (workers.backends)."""
    from .task_jobs import run_task

    return run_task(job, log)


# A cap on a whole run: CHAIN_RPC_TIMEOUT bounds each socket read, not a
# request, so a node that drips its answer slowly could hold a run for ever.
# Past the cap the pool kills the run; a chain job is redone by the next one.
WATCH_CHAIN_TIMEOUT = 300
# Two transactions, each waited for up to two minutes, and a few requests.
DEPLOY_MULTICALL3_TIMEOUT = 600


@register("watchChain", timeout=WATCH_CHAIN_TIMEOUT)
def watch_chain(job: WorkerJob, log: logging.LoggerAdapter) -> Any:
    """Follow the chain's new blocks and logs (workers.chain.watch)."""
    from .chain.watch import run

    return run(job, log)


@register("deployMulticall3", timeout=DEPLOY_MULTICALL3_TIMEOUT)
def deploy_multicall3(job: WorkerJob, log: logging.LoggerAdapter) -> Any:
    """Make sure Multicall3 is at its canonical address (workers.chain.multicall)."""
    from .chain.multicall import run

    return run(job, log)
