"""A database outage while jobs run: workers wait, reconnect and go on."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from workers.models import WorkerJob

from .conftest import output, runs, wait_for

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="PostgreSQL connections can be cut from outside; SQLite has none",
)


def cut_connections(seconds: float) -> None:
    """Refuse new connections to the test database for `seconds`; drop the rest.

    Run from the maintenance database: PostgreSQL will not lock out the
    database the statement runs in.
    """
    import psycopg

    db = connection.settings_dict
    name = connection.ops.quote_name(db["NAME"])
    admin = psycopg.connect(
        dbname="postgres",
        user=db["USER"],
        password=db["PASSWORD"] or None,
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        autocommit=True,
    )
    with admin:
        admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s",
                [db["NAME"]],
            )
            time.sleep(seconds)
        finally:
            admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
    connection.close()


@pytest.mark.slow
def test_jobs_survive_an_outage_each_run_once(manager, run_log):
    pool = manager(workers=2)
    jobs = WorkerJob.objects.bulk_submit(
        [
            {"type": "crashSleep", "data": {"seconds": 0.02, "log": str(run_log)}}
            for _ in range(400)
        ]
    )
    for _ in range(3):
        wait_for(lambda: len(runs(run_log)) > 0, 10, "jobs to run")
        cut_connections(4)  # longer than WORKER_STALE_AFTER
        time.sleep(1)
        cut_connections(0)  # connections dropped, new ones allowed at once

    deadline = time.monotonic() + 60
    while WorkerJob.objects.finished().count() < len(jobs):
        assert time.monotonic() < deadline, output(pool)[-3000:]
        time.sleep(0.2)
    assert pool.poll() is None, "the manager exited"
    assert WorkerJob.objects.succeeded().count() == len(jobs)
    assert runs(run_log) == {job.pk: 1 for job in jobs}
    log = output(pool)
    assert "Database unavailable" in log, log
