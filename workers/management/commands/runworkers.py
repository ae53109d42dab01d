"""`manage.py runworkers`: start the manager and its pool of worker processes."""

from __future__ import annotations

import argparse
import logging
import math
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from workers import conf
from workers.checks import SQLITE_SAFE_OPTIONS, sqlite_unsafe_for
from workers.log import console_handler
from workers.pool import WorkerPool
from workers.scheduling import ensure_maintenance_jobs

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds above 0 (e.g. 0.5 or 2)"
        )
    return value


def _queue_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of queue names (e.g. default,mail)"
        )
    return names


class Command(BaseCommand):
    help = (
        "Run background jobs: start WORKER_COUNT worker processes that claim "
        "due jobs from the WorkerJob table, and keep them alive."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--workers",
            help="Worker processes: a whole number or 'cpus' "
            "(default: WORKER_COUNT, which defaults to 1).",
        )
        parser.add_argument(
            "--poll-interval",
            type=_positive_seconds,
            help="Seconds an idle worker waits between looks for due jobs "
            "(default: WORKER_POLL_INTERVAL, which defaults to 1).",
        )
        parser.add_argument(
            "--queues",
            type=_queue_names,
            help="Comma-separated queues whose jobs the workers run "
            "(default: every queue).",
        )
        parser.add_argument(
            "--once",
            action="store_true",
            help="Run the jobs that are due, then exit.",
        )
        parser.add_argument(
            "--no-maintenance",
            action="store_true",
            help="Do not schedule the built-in maintenance jobs at start.",
        )
        parser.add_argument(
            "--log-level",
            choices=LOG_LEVELS,
            help="Level of the 'workers' loggers (default: WORKER_LOG_LEVEL).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        raw = options["workers"]
        try:
            count = conf.worker_count(
                raw, name="WORKER_COUNT" if raw is None else "--workers"
            )
        except ValueError as error:
            raise CommandError(str(error)) from error
        level = options["log_level"] or str(conf.get("WORKER_LOG_LEVEL")).lower()
        if level not in LOG_LEVELS:
            raise CommandError(
                f"WORKER_LOG_LEVEL is {level!r}: use one of {', '.join(LOG_LEVELS)}"
            )
        unsafe = sqlite_unsafe_for(
            count, "WORKER_COUNT" if raw is None else "--workers"
        )
        if unsafe is not None:
            raise CommandError(
                f"{unsafe} Use --workers 1, or add to DATABASES['default']"
                f"['OPTIONS']: {SQLITE_SAFE_OPTIONS!r} (Django 5.1+)."
            )
        logger = logging.getLogger("workers")
        logger.setLevel(level.upper())
        if not logger.hasHandlers():
            logger.addHandler(console_handler(str(conf.get("WORKER_LOG_FORMAT"))))
        poll = options["poll_interval"] or float(conf.get("WORKER_POLL_INTERVAL"))
        if not options["no_maintenance"]:
            ensure_maintenance_jobs()
        if count == 0:
            self.stderr.write("Worker count is 0: no workers started.")
            return
        WorkerPool(
            count, poll_interval=poll, once=options["once"], queues=options["queues"]
        ).run()
