"""The app's settings, each with its default.

Projects set them in their Django settings module; `get()` reads the value
in force, so tests can change them with `override_settings`.
"""

import os
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Worker processes: a whole number, or "cpus" for one per CPU.
    "WORKER_COUNT": "1",
    "WORKER_LOG_LEVEL": "info",
    # "text" (key=value lines) or "json" (one JSON object a line).
    "WORKER_LOG_FORMAT": "text",
    # Seconds an idle worker waits before it looks for due jobs again.
    "WORKER_POLL_INTERVAL": 1.0,
    # PostgreSQL: submit sends NOTIFY and idle workers LISTEN, so a job due
    # now starts within milliseconds; polling still finds the rest.
    "WORKER_LISTEN": True,
    # Runs of one job, first try included, before a failure is final.
    "WORKER_MAX_ATTEMPTS": 5,
    # Seconds: default auto_reschedule_on_failure_delay of a submitted job.
    "WORKER_RETRY_DELAY": 60,
    # Seconds: default remove_delay, how long a finished job is kept.
    "WORKER_REMOVE_DELAY": 7 * 24 * 3600,
    # Seconds between two heartbeats of a manager or worker process.
    "WORKER_HEARTBEAT_INTERVAL": 5.0,
    # Seconds without a heartbeat after which a process is presumed dead and
    # its running jobs are failed as lost.
    "WORKER_STALE_AFTER": 30.0,
    # Seconds a stopping worker may take to finish the job in hand.
    "WORKER_SHUTDOWN_TIMEOUT": 30.0,
    # Seconds a job may run before its worker is replaced; None: no limit.
    # A job type's own `timeout=` overrides it.
    "WORKER_JOB_TIMEOUT": None,
    # Megabytes of resident memory past which a worker is replaced; None: no
    # limit.
    "WORKER_MAX_MEMORY_MB": None,
    # Seconds the oldest due job may wait before the health view says 503.
    "WORKER_HEALTH_MAX_LAG": 60.0,
    # Zone cron expressions are read in; None means TIME_ZONE.
    "WORKER_CRON_TIME_ZONE": None,
    "WORKER_REMOVE_OLD_JOBS_SCHEDULE": "0 2 * * *",
    "WORKER_WATCH_CHAIN_SCHEDULE": "*/30 * * * * *",
    # Rows removeOldWorkerJobs deletes per statement.
    "WORKER_CLEANUP_BATCH_SIZE": 5000,
    # Modules defining tasks (Django's Tasks framework) beyond each installed
    # app's `tasks` module; workers run tasks from these modules only.
    "WORKER_TASK_MODULES": [],
    # The chain jobs (workers.chain); no RPC URL: they are not scheduled.
    "CHAIN_RPC_URL": None,
    # The chain id the node must report; None: any.
    "CHAIN_ID": None,
    # Hex private key paying for deployMulticall3; from the environment only.
    "SERVER_WALLET_PRIVATE_KEY": None,
    # Blocks below the head watchChain leaves alone until they are this deep.
    "CHAIN_CONFIRMATIONS": 0,
    "CHAIN_BLOCKS_PER_RUN": 500,
    # Seconds one RPC request may take.
    "CHAIN_RPC_TIMEOUT": 10.0,
    # First block watchChain processes on a new chain; None: the head.
    "CHAIN_START_BLOCK": None,
}


def get(name: str) -> Any:
    """Return the setting `name`, or its default."""
    if name not in DEFAULTS:
        raise KeyError(f"unknown workers setting {name!r}")
    return getattr(settings, name, DEFAULTS[name])


def cron_time_zone() -> str:
    """The zone cron expressions are read in."""
    return get("WORKER_CRON_TIME_ZONE") or settings.TIME_ZONE


def worker_count(value: Any = None, name: str = "WORKER_COUNT") -> int:
    """Parse WORKER_COUNT (or `value`): a whole number >= 0, or "cpus"."""
    raw = get("WORKER_COUNT") if value is None else value
    text = str(raw).strip().lower()
    if text == "cpus":
        return len(os.sched_getaffinity(0))
    try:
        count = int(text)
    except ValueError:
        count = -1
    if count < 0:
        raise ValueError(
            f"{name} is {raw!r}: give a whole number (0 or more) or 'cpus'"
        )
    return count
