"""runworkers as users run it: real child processes on the test database."""

from __future__ import annotations

from datetime import timedelta

from workers.models import WorkerJob


def test_once_runs_due_jobs_and_exits(run_manage) -> None:
    jobs = [WorkerJob.objects.submit("sayHello", {"name": f"n{i}"}) for i in range(5)]

    done = run_manage("runworkers", "--workers", "2", "--once", "--no-maintenance")

    assert done.returncode == 0, done.stderr
    for job in jobs:
        job.refresh_from_db()
        assert job.status == "succeeded"
        assert job.result == {"greeting": f"Hello, {job.data['name']}!"}
        assert job.worker
        assert job.remove_at == job.finished + timedelta(seconds=job.remove_delay)
