"""How a job's life is logged: one vocabulary of keys, two formats.

Every record about a job carries the same keys: job, type (and, for a task
of Django's Tasks framework, task: its import path), tag, attempt, worker
and, when it ends, duration_ms and outcome. KeyValueFormatter writes
them as `key=value` after the message; JSONFormatter writes one JSON object
a line (WORKER_LOG_FORMAT=json).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from .task_jobs import TASK_JOB_TYPE

if TYPE_CHECKING:
    from .models import WorkerJob

logger = logging.getLogger("workers.jobs")

# The keys a record about a job may carry, in the order they are written.
KEYS = (
    "job",
    "type",
    "task",
    "tag",
    "attempt",
    "worker",
    "duration_ms",
    "outcome",
    "error",
)
# Attributes every LogRecord has; anything else passed as extra= is context.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def job_context(job: WorkerJob, worker: str = "") -> dict[str, Any]:
    """The keys that identify a job in log records."""
    context = {
        "job": job.pk,
        "type": job.type,
        "tag": job.tag,
        "attempt": job.attempt,
        "worker": worker or job.worker,
    }
    if job.type == TASK_JOB_TYPE and isinstance(job.data, dict):
        context["task"] = job.data.get("task")
    return context


class JobLogAdapter(logging.LoggerAdapter):
    """A logger bound to one job: its records carry the job's keys."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def job_logger(
    job: WorkerJob, worker: str = "", name: str | None = None
) -> JobLogAdapter:
    """A logger for a handler: records go to `workers.jobs.<type>`."""
    base = logging.getLogger(name or f"workers.jobs.{job.type}")
    return JobLogAdapter(base, job_context(job, worker))


def context_of(record: logging.LogRecord) -> dict[str, Any]:
    """The extra keys of `record`, vocabulary keys first."""
    extra = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS}
    ordered = {k: extra.pop(k) for k in KEYS if k in extra}
    ordered.update(sorted(extra.items()))
    return ordered


def _text(value: Any) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text)
    return text


class KeyValueFormatter(logging.Formatter):
    """`2026-12-03 10:00:00,123 INFO workers.jobs Job succeeded job=1 type=x`."""

    def __init__(self, fmt: str | None = None, **kwargs: Any) -> None:
        super().__init__(
            fmt or "%(asctime)s %(levelname)s %(name)s %(message)s", **kwargs
        )

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = " ".join(
            f"{k}={_text(v)}" for k, v in context_of(record).items() if v is not None
        )
        if pairs:
            first, newline, rest = line.partition("\n")
            line = f"{first} {pairs}{newline}{rest}"
        return line


class JSONFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message, job keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(context_of(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def log_job_started(job: WorkerJob, worker: str) -> None:
    logger.info("Job started", extra=job_context(job, worker))


def log_job_finished(
    job: WorkerJob, worker: str, outcome: str, duration_ms: float, error: str | None
) -> None:
    """Log a job's end at the level its outcome deserves."""
    level = {
        "succeeded": logging.INFO,
        "retrying": logging.WARNING,
        "discarded": logging.WARNING,
    }.get(outcome, logging.ERROR)
    logger.log(
        level,
        "Job %s",
        outcome,
        extra={
            **job_context(job, worker),
            "duration_ms": round(duration_ms, 1),
            "outcome": outcome,
            "error": error,
        },
    )


def console_handler(log_format: str = "text") -> logging.Handler:
    """A stderr handler writing key=value lines, or JSON ones for "json".

    runworkers adds it when a project's LOGGING gives the `workers` loggers
    nowhere to write, so that a new project sees its jobs run.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(
        JSONFormatter() if log_format == "json" else KeyValueFormatter()
    )
    return handler
