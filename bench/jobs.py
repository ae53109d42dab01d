"""The job type the benchmark runs: it does nothing, so only the queue is timed."""

from __future__ import annotations

import logging

from workers.models import WorkerJob
from workers.registry import register

NOOP = "benchNoop"


@register(NOOP)
def noop(job: WorkerJob, log: logging.LoggerAdapter) -> None:
    return None
