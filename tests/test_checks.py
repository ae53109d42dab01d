"""`manage.py check` reports each misconfiguration with a hint."""

from __future__ import annotations

import warnings

import pytest
from django.core import checks
from django.test import override_settings

SAFE_SQLITE = {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": "jobs.sqlite3",
    "OPTIONS": {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30.0,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    },
}


def workers_messages() -> dict[str, checks.CheckMessage]:
    """The workers app's check messages by id."""
    return {
        message.id: message
        for message in checks.run_checks(tags=[checks.Tags.compatibility])
        if message.id and message.id.startswith("workers.")
    }


def errors() -> dict[str, checks.CheckMessage]:
    return {
        id: message
        for id, message in workers_messages().items()
        if message.level >= checks.ERROR
    }


def test_the_example_settings_pass() -> None:
    assert errors() == {}


@pytest.mark.parametrize(
    ("settings", "id", "says", "hint"),
    [
        ({"USE_TZ": False}, "workers.E001", "USE_TZ is False", "USE_TZ = True"),
        ({"WORKER_COUNT": "many"}, "workers.E002", "'many'", "'cpus'"),
        ({"WORKER_COUNT": -2}, "workers.E002", "-2", "'cpus'"),
        (
            {"WORKER_REMOVE_OLD_JOBS_SCHEDULE": "0 25 * * *"},
            "workers.E003",
            "WORKER_REMOVE_OLD_JOBS_SCHEDULE: cron expression '0 25 * * *'",
            "five fields",
        ),
        (
            {"WORKER_REMOVE_OLD_JOBS_SCHEDULE": "0 0 31 2 *"},
            "workers.E003",
            "never matches a date",
            "five fields",
        ),
        (
            {"WORKER_TASK_MODULES": ["tests.tasks.sample", "tests.tasks.nosuch"]},
            "workers.E010",
            "'tests.tasks.nosuch', which cannot be found",
            "Check the spelling",
        ),
        (
            {"WORKER_TASK_MODULES": None},
            "workers.E010",
            "give a list of module paths",
            "WORKER_TASK_MODULES = [",
        ),
        (
            {"WORKER_CLEANUP_BATCH_SIZE": 0},
            "workers.E012",
            "WORKER_CLEANUP_BATCH_SIZE is 0",
            "5000",
        ),
        (
            {"WORKER_WATCH_CHAIN_SCHEDULE": "every 30 seconds"},
            "workers.E003",
            "has 3 fields",
            "six with seconds",
        ),
        ({"WORKER_POLL_INTERVAL": 0}, "workers.E004", "is 0", "0.5"),
        ({"WORKER_POLL_INTERVAL": "1"}, "workers.E004", "'1'", "1.0"),
        ({"WORKER_MAX_ATTEMPTS": 0}, "workers.E005", "is 0", "never retries"),
        ({"WORKER_RETRY_DELAY": -1}, "workers.E006", "-1", "= 60"),
        ({"WORKER_REMOVE_DELAY": 1.5}, "workers.E006", "1.5", "= 604800"),
        ({"WORKER_LOG_LEVEL": "loud"}, "workers.E007", "'loud'", "warning"),
        ({"WORKER_LOG_FORMAT": "xml"}, "workers.E008", "'xml'", "'json'"),
        ({"WORKER_CRON_TIME_ZONE": "Mars/Base"}, "workers.E009", "Mars", "IANA"),
        ({"WORKER_TASK_MODULES": "app.tasks"}, "workers.E010", "app.tasks", "["),
    ],
)
def test_misconfiguration_is_reported_with_a_hint(settings, id, says, hint) -> None:
    with override_settings(**settings):
        found = errors()

    assert list(found) == [id]
    assert says in found[id].msg
    assert hint in found[id].hint


def test_a_wallet_key_without_an_rpc_url_is_reported() -> None:
    with override_settings(
        SERVER_WALLET_PRIVATE_KEY="0x" + "11" * 32, CHAIN_RPC_URL=None
    ):
        found = workers_messages()

    assert found["workers.W101"].level == checks.WARNING
    assert "SERVER_WALLET_PRIVATE_KEY is set but CHAIN_RPC_URL is not" in (
        found["workers.W101"].msg
    )
    assert "Set CHAIN_RPC_URL" in found["workers.W101"].hint


def sqlite_errors(database: dict, worker_count: str) -> dict[str, checks.CheckMessage]:
    # The check reads the settings only; no connection is opened to them.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Overriding setting DATABASES")
        with override_settings(
            DATABASES={"default": database}, WORKER_COUNT=worker_count
        ):
            return errors()


@pytest.mark.parametrize(
    ("drop", "named"),
    [
        ("init_command", "WAL journal"),
        ("transaction_mode", "transaction_mode 'IMMEDIATE'"),
        ("timeout", "a busy timeout"),
    ],
)
def test_sqlite_with_several_workers_needs_safe_options(drop, named) -> None:
    options = {k: v for k, v in SAFE_SQLITE["OPTIONS"].items() if k != drop}

    found = sqlite_errors({**SAFE_SQLITE, "OPTIONS": options}, "4")

    assert list(found) == ["workers.E011"]
    assert "4 workers on one SQLite database without" in found["workers.E011"].msg
    assert named in found["workers.E011"].msg
    assert "'transaction_mode': 'IMMEDIATE'" in found["workers.E011"].hint


def test_sqlite_without_options_names_all_three() -> None:
    found = sqlite_errors({**SAFE_SQLITE, "OPTIONS": {}}, "2")

    message = found["workers.E011"].msg
    assert "WAL journal" in message and "IMMEDIATE" in message
    assert "busy timeout" in message


@pytest.mark.parametrize(
    ("database", "worker_count"),
    [
        (SAFE_SQLITE, "4"),
        ({**SAFE_SQLITE, "OPTIONS": {}}, "1"),
        (
            {"ENGINE": "django.db.backends.postgresql", "NAME": "jobs", "OPTIONS": {}},
            "8",
        ),
    ],
    ids=["safe-sqlite", "one-worker", "postgresql"],
)
def test_no_sqlite_error_when_safe(database, worker_count) -> None:
    assert sqlite_errors(database, worker_count) == {}


def test_manage_py_check_fails_with_the_hint(run_manage) -> None:
    done = run_manage("check", WORKER_COUNT="lots", WORKER_LOG_FORMAT="xml")

    assert done.returncode == 1
    assert "(workers.E002) WORKER_COUNT is 'lots'" in done.stderr
    assert "HINT: Set WORKER_COUNT to e.g. 1, 4 or 'cpus'." in done.stderr
    assert "(workers.E008) WORKER_LOG_FORMAT is 'xml'" in done.stderr


def test_task_backend_without_the_app_is_reported() -> None:
    from workers.backends import WorkerJobBackend

    backend = WorkerJobBackend("default", {})
    assert backend.check() == []
    with override_settings(INSTALLED_APPS=["django.contrib.contenttypes"]):
        found = backend.check()

    assert [m.id for m in found] == ["workers.E201"]
    assert found[0].hint == "Add 'workers' to INSTALLED_APPS."


@pytest.mark.parametrize(
    ("init_command", "unsafe"),
    [
        ("PRAGMA journal_mode = WAL;", False),
        ("PRAGMA synchronous=NORMAL;", True),
    ],
)
def test_sqlite_safety_reads_the_pragma_however_spaced(init_command, unsafe) -> None:
    from workers.checks import sqlite_unsafe_for

    database = {**SAFE_SQLITE, "OPTIONS": {**SAFE_SQLITE["OPTIONS"]}}
    database["OPTIONS"]["init_command"] = init_command
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overriding DATABASES, read-only here
        with override_settings(DATABASES={"default": database}):
            problem = sqlite_unsafe_for(3, "--workers")

    assert (problem is not None) is unsafe
    if unsafe:
        assert problem.startswith("--workers gives 3 workers")


@override_settings(WORKER_LISTEN="no")
def test_worker_listen_must_be_a_boolean() -> None:
    message = errors()["workers.E013"]
    assert "WORKER_LISTEN is 'no'" in message.msg
