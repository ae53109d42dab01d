"""Fixtures shared by the suite.

Tests that start real worker processes use the `transactional_db` fixture,
so that the rows they write are committed and visible to those processes,
and `workers_env`, which points the processes at the test database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def expected_database(django_db_setup: None, django_db_blocker: object) -> None:
    """Fail, not skip, when the suite runs on another database than CI asked."""
    wanted = os.environ.get("WORKERS_TEST_DB")
    if wanted and connection.vendor != wanted:
        pytest.exit(
            f"WORKERS_TEST_DB={wanted} but the tests run on {connection.vendor}; "
            "set DATABASE_URL to a reachable database",
            returncode=3,
        )


def database_url() -> str:
    """A DATABASE_URL naming the test database this process uses."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    if connection.vendor == "postgresql":
        auth = db["USER"] or ""
        if db.get("PASSWORD"):
            auth += f":{db['PASSWORD']}"
        host = db["HOST"] or "localhost"
        port = db["PORT"] or 5432
        return f"postgres://{auth}@{host}:{port}/{db['NAME']}"
    raise RuntimeError(f"no URL for the {connection.vendor} test database")


@pytest.fixture
def workers_env(transactional_db: None) -> dict[str, str]:
    """The environment for a manage.py subprocess using the test database."""
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url()
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    env.setdefault("WORKER_LOG_LEVEL", "info")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def manage_command(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), *args]


@pytest.fixture
def run_manage(workers_env: dict[str, str]):
    """Run `manage.py ARGS` to completion; return the CompletedProcess."""

    def run(
        *args: str, timeout: float = 120, **env: str
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            manage_command(*args),
            env={**workers_env, **env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture
def start_manage(workers_env: dict[str, str]) -> Iterator:
    """Start `manage.py ARGS` in the background; every process is reaped after."""
    started: list[subprocess.Popen] = []

    def start(*args: str, **env: str) -> subprocess.Popen:
        process = subprocess.Popen(
            manage_command(*args),
            env={**workers_env, **env},
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        if process.stdout:
            process.stdout.close()
