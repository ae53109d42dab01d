"""`manage.py workerstatus`: processes, heartbeats, pending jobs and failures."""

from __future__ import annotations

import argparse
import json
from typing import Any

from django.core.management.base import BaseCommand

from workers import status
from workers.models import WorkerProcess

# The names the admin shows: "manager", "worker".
KIND_NAMES = {kind: label.lower() for kind, label in WorkerProcess.KINDS}


# The most failures --failures shows.
MAX_FAILURES = 10_000


def failure_count(text: str) -> int:
    """--failures: a whole number from 0 to MAX_FAILURES."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_FAILURES:
        raise argparse.ArgumentTypeError(
            f"--failures is {text!r}: give a whole number from 0 to {MAX_FAILURES}"
        )
    return value


class Command(BaseCommand):
    help = (
        "Show the worker processes and their heartbeats (alive, stale or "
        "stopped), pending jobs per type, how late the oldest due job is, "
        "and recent failures. Exits with status 1 when unhealthy."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON.")
        parser.add_argument(
            "--failures",
            type=failure_count,
            default=10,
            help="How many recent failures to show (default: 10).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = status.snapshot(failures=options["failures"])
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self.write_text(report)
        if not report["healthy"]:
            raise SystemExit(1)

    def write_text(self, report: dict[str, Any]) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING("Processes"))
        for p in report["processes"]:
            age = f"heartbeat {p['heartbeat_age_seconds']:g} s ago"
            kind = KIND_NAMES.get(p["kind"], p["kind"])
            line = f"  {p['state']:<7} {kind:<7} {p['name']:<32} {age}"
            if p["stop_reason"]:
                line += f" ({p['stop_reason']})"
            self.stdout.write(line)
        if not report["processes"]:
            self.stdout.write("  none")
        self.stdout.write(self.style.MIGRATE_HEADING("Pending jobs"))
        for job_type, counts in report["pending"].items():
            self.stdout.write(
                f"  {job_type:<32} {counts['pending']:>7} pending, {counts['due']} due"
            )
        waiting = report["oldest_due"]
        if waiting:
            self.stdout.write(
                f"  oldest due: job {waiting['job']} ({waiting['type']}), "
                f"{waiting['lag_seconds']:.1f} s late"
            )
        else:
            self.stdout.write("  no job is due")
        self.stdout.write(self.style.MIGRATE_HEADING("Recent failures"))
        for job in report["recent_failures"]:
            self.stdout.write(
                f"  job {job['job']} {job['type']} attempt {job['attempt']} "
                f"at {job['finished']}: {job['error']}"
            )
        if not report["recent_failures"]:
            self.stdout.write("  none")
        verdict = "healthy" if report["healthy"] else "UNHEALTHY"
        self.stdout.write(f"{verdict}: " + ("; ".join(report["problems"]) or "ok"))
