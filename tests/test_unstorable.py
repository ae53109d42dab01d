"""Results and errors no database column can hold as they are.

A handler may return, or fail with a message holding, a NUL character or a
lone surrogate. The job must fail with a message saying so (or store the
error escaped), never leave its worker retrying a write that cannot land.
"""

from __future__ import annotations

import pytest
from django.db import connection

from workers import execution
from workers.claim import claim_next
from workers.models import WorkerJob


def test_runworkers_fails_such_results_and_keeps_going(run_manage) -> None:
    jobs = {
        (value, raises): WorkerJob.objects.submit(
            "test.unstorable", {"value": value, "raise": raises}
        )
        for value in ("nul", "surrogate")
        for raises in (False, True)
    }
    after = WorkerJob.objects.submit("test.record")

    done = run_manage("runworkers", "--once", "--no-maintenance")

    assert done.returncode == 0, done.stderr
    for (value, raises), job in jobs.items():
        job.refresh_from_db()
        assert job.status == "failed", (value, raises)
        if raises:  # the message is kept, escaped
            escaped = "x\\x00y" if value == "nul" else "\\ud800"
            assert job.result["error"] == f"bad input: {escaped}"
        else:
            holds = "a NUL" if value == "nul" else "a lone surrogate"
            assert (
                f"returned a value that its result['text'] holds {holds}"
                in (job.result["error"])
            )
    after.refresh_from_db()
    assert after.status == "succeeded"


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite stores NUL in JSON text"
)
def test_an_outcome_the_database_refuses_is_stored_as_a_failure(monkeypatch) -> None:
    # The check before the write is switched off, so that the database
    # itself refuses the result: the worker must not retry it for ever.
    monkeypatch.setattr(execution, "storage_problem", lambda value, where: None)
    job = WorkerJob.objects.submit("test.unstorable", {"value": "nul"})
    claimed = claim_next("test-worker")
    assert claimed is not None and claimed.pk == job.pk

    label = execution.run_and_record(claimed, "test-worker")

    job.refresh_from_db()
    assert label == "failed" and job.status == "failed"
    assert "the database refused the job's outcome" in job.result["error"]
