"""System checks: misconfiguration reported by `manage.py check`, with a hint."""

from __future__ import annotations

import importlib.util
import math
import zoneinfo
from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register

from . import conf, cron

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")
SQLITE_SAFE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 30,
    "init_command": "PRAGMA journal_mode=WAL;",
}


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors: list[Error] = []
    if not settings.USE_TZ:
        errors.append(
            Error(
                "USE_TZ is False; job due times must be timezone-aware.",
                hint="Set USE_TZ = True in your settings.",
                id="workers.E001",
            )
        )
    try:
        conf.worker_count()
    except ValueError as error:
        errors.append(
            Error(
                str(error),
                hint="Set WORKER_COUNT to e.g. 1, 4 or 'cpus'.",
                id="workers.E002",
            )
        )
    for name in ("WORKER_REMOVE_OLD_JOBS_SCHEDULE", "WORKER_WATCH_CHAIN_SCHEDULE"):
        try:
            cron.validate(conf.get(name))
        except cron.InvalidCronExpression as error:
            errors.append(
                Error(
                    f"{name}: {error}",
                    hint="Use five fields ('0 2 * * *') or six with seconds "
                    "first ('*/30 * * * * *').",
                    id="workers.E003",
                )
            )
    return errors


@register(Tags.compatibility)
def check_numbers(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Poll interval, attempts and delays: numbers in their ranges."""
    errors: list[Error] = []
    poll = conf.get("WORKER_POLL_INTERVAL")
    if not _is_number(poll) or not poll > 0:
        errors.append(
            Error(
                f"WORKER_POLL_INTERVAL is {poll!r}: give the seconds an idle "
                "worker waits, a number above 0.",
                hint="Set WORKER_POLL_INTERVAL = 1.0 (the default) or e.g. 0.5.",
                id="workers.E004",
            )
        )
    listen = conf.get("WORKER_LISTEN")
    if not isinstance(listen, bool):
        errors.append(
            Error(
                f"WORKER_LISTEN is {listen!r}: give True or False.",
                hint="Set WORKER_LISTEN = True (the default) to wake idle "
                "workers with LISTEN/NOTIFY on PostgreSQL.",
                id="workers.E013",
            )
        )
    attempts = conf.get("WORKER_MAX_ATTEMPTS")
    if not _is_whole(attempts) or attempts < 1:
        errors.append(
            Error(
                f"WORKER_MAX_ATTEMPTS is {attempts!r}: give a whole number of "
                "runs, 1 or more.",
                hint="Set WORKER_MAX_ATTEMPTS = 5 (the default); 1 never retries.",
                id="workers.E005",
            )
        )
    batch = conf.get("WORKER_CLEANUP_BATCH_SIZE")
    if not _is_whole(batch) or batch < 1:
        errors.append(
            Error(
                f"WORKER_CLEANUP_BATCH_SIZE is {batch!r}: give the rows "
                "removeOldWorkerJobs deletes a statement, 1 or more.",
                hint="Set WORKER_CLEANUP_BATCH_SIZE = 5000 (the default).",
                id="workers.E012",
            )
        )
    for name in ("WORKER_RETRY_DELAY", "WORKER_REMOVE_DELAY"):
        value = conf.get(name)
        if not _is_whole(value) or value < 0:
            errors.append(
                Error(
                    f"{name} is {value!r}: give a whole number of seconds, 0 or more.",
                    hint=f"Set {name} = {conf.DEFAULTS[name]} (the default).",
                    id="workers.E006",
                )
            )
    return errors


@register(Tags.compatibility)
def check_choices(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Log level and format, cron time zone, task modules."""
    errors: list[Error] = []
    level = conf.get("WORKER_LOG_LEVEL")
    if str(level).lower() not in LOG_LEVELS:
        errors.append(
            Error(
                f"WORKER_LOG_LEVEL is {level!r}: not a log level.",
                hint=f"Use one of {', '.join(LOG_LEVELS)}.",
                id="workers.E007",
            )
        )
    log_format = conf.get("WORKER_LOG_FORMAT")
    if log_format not in LOG_FORMATS:
        errors.append(
            Error(
                f"WORKER_LOG_FORMAT is {log_format!r}: not a log format.",
                hint="Use 'text' (key=value lines) or 'json' (one object a line).",
                id="workers.E008",
            )
        )
    zone = conf.cron_time_zone()
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        errors.append(
            Error(
                f"WORKER_CRON_TIME_ZONE is {zone!r}: not a time zone.",
                hint="Use an IANA zone name such as 'UTC' or 'Europe/Paris', or "
                "None for TIME_ZONE.",
                id="workers.E009",
            )
        )
    errors.extend(_check_task_modules(conf.get("WORKER_TASK_MODULES")))
    return errors


def _check_task_modules(modules: Any) -> list[Error]:
    """WORKER_TASK_MODULES: a list of module paths that can be found."""
    hint = "E.g. WORKER_TASK_MODULES = ['myapp.background.tasks']."
    if not isinstance(modules, list | tuple) or not all(
        isinstance(name, str) and name for name in modules
    ):
        return [
            Error(
                f"WORKER_TASK_MODULES is {modules!r}: give a list of module paths.",
                hint=hint,
                id="workers.E010",
            )
        ]
    missing = [name for name in modules if not _module_exists(name)]
    return [
        Error(
            f"WORKER_TASK_MODULES names {name!r}, which cannot be found.",
            hint=f"Check the spelling, or remove it. {hint}",
            id="workers.E010",
        )
        for name in missing
    ]


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# Reads settings only, so it runs without --database.
@register(Tags.compatibility)
def check_sqlite_concurrency(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Several workers on one SQLite file need WAL, IMMEDIATE and a busy timeout."""
    try:
        count = conf.worker_count()
    except ValueError:
        return []  # reported by check_settings
    problem = sqlite_unsafe_for(count, "WORKER_COUNT")
    if problem is None:
        return []
    return [
        Error(
            problem,
            hint=f"Add to DATABASES['default']['OPTIONS']: {SQLITE_SAFE_OPTIONS!r} "
            "(Django 5.1+), or set WORKER_COUNT = 1, or use PostgreSQL.",
            id="workers.E011",
        )
    ]


def sqlite_unsafe_for(count: int, source: str) -> str | None:
    """Why `count` workers would fail on the default SQLite database, or None."""
    database = settings.DATABASES.get("default", {})
    if count < 2 or not database.get("ENGINE", "").endswith("sqlite3"):
        return None
    options = database.get("OPTIONS", {})
    init_command = "".join(str(options.get("init_command", "")).lower().split())
    missing = []
    if "journal_mode=wal" not in init_command:
        missing.append("WAL journal (init_command 'PRAGMA journal_mode=WAL;')")
    if str(options.get("transaction_mode", "")).upper() != "IMMEDIATE":
        missing.append("transaction_mode 'IMMEDIATE'")
    if not _is_number(options.get("timeout")) or not options["timeout"] > 0:
        missing.append("a busy timeout (timeout, in seconds)")
    if not missing:
        return None
    return (
        f"{source} gives {count} workers on one SQLite database without "
        f"{', '.join(missing)}: they would fail with 'database is locked'."
    )


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _is_whole(value: Any) -> bool:
    return _is_number(value) and value == int(value)


# The chain settings are checked beside the chain jobs.
from .chain.checks import check_chain_settings  # noqa: E402, F401


@register(Tags.compatibility)
def check_supervision(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Heartbeat, staleness, shutdown, timeout and memory settings."""
    errors: list[Error] = []
    required = (
        "WORKER_HEARTBEAT_INTERVAL",
        "WORKER_STALE_AFTER",
        "WORKER_SHUTDOWN_TIMEOUT",
        "WORKER_HEALTH_MAX_LAG",
    )
    for name in required:
        value = conf.get(name)
        if not _is_number(value) or not value > 0:
            errors.append(
                Error(
                    f"{name} is {value!r}: give a number of seconds above 0.",
                    hint=f"Leave {name} unset to use its default "
                    f"({conf.DEFAULTS[name]:g}).",
                    id="workers.E020",
                )
            )
    for name in ("WORKER_JOB_TIMEOUT", "WORKER_MAX_MEMORY_MB"):
        value = conf.get(name)
        if value is not None and (not _is_number(value) or not value > 0):
            errors.append(
                Error(
                    f"{name} is {value!r}: give a number above 0, or None for "
                    "no limit.",
                    hint=f"Set {name} = None to turn the limit off.",
                    id="workers.E021",
                )
            )
    if errors:
        return errors
    beat = conf.get("WORKER_HEARTBEAT_INTERVAL")
    stale = conf.get("WORKER_STALE_AFTER")
    if stale < 2 * beat:
        errors.append(
            Error(
                f"WORKER_STALE_AFTER ({stale:g} s) is less than twice "
                f"WORKER_HEARTBEAT_INTERVAL ({beat:g} s): one late heartbeat "
                "would get a live worker's jobs failed as lost.",
                hint="Keep WORKER_STALE_AFTER at 3 to 6 heartbeat intervals, "
                "e.g. 5 and 30 (the defaults).",
                id="workers.E022",
            )
        )
    return errors
