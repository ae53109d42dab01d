"""The admin and the example view, as a user clicks through them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from workers.models import WorkerJob

CHANGELIST = reverse("admin:workers_workerjob_changelist")


@pytest.fixture
def admin_client_(client, transactional_db):
    user = get_user_model().objects.create_superuser("admin", "a@example.com", "pw")
    client.force_login(user)
    return client


def change_url(job: WorkerJob) -> str:
    return reverse("admin:workers_workerjob_change", args=[job.pk])


def test_a_job_from_the_view_runs_and_shows_as_succeeded(
    admin_client_, run_manage
) -> None:
    response = admin_client_.post("/jobs/hello/", {"name": "Ada"})
    assert response.status_code == 202
    job_id = response.json()["id"]

    done = run_manage("runworkers", "--once", "--no-maintenance")
    assert done.returncode == 0, done.stderr

    assert admin_client_.get(f"/jobs/{job_id}/").json()["status"] == "succeeded"
    page = admin_client_.get(CHANGELIST, {"status": "succeeded"})
    assert page.status_code == 200
    rows = list(page.context["cl"].result_list)
    assert [job.pk for job in rows] == [job_id]
    assert "Hello, Ada!" in admin_client_.get(change_url(rows[0])).content.decode()


def test_the_view_refuses_bad_data(admin_client_) -> None:
    response = admin_client_.post("/jobs/hello/", {"name": ""})
    assert response.status_code == 202

    response = admin_client_.get("/jobs/hello/")
    assert response.status_code == 405


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "pending"}, {"pending"}),
        ({"status": "failed"}, {"failed"}),
        ({"status": "cancelled"}, {"cancelled"}),
        ({"schedule": "cron"}, {"cron"}),
        ({"type": "flakyTask"}, {"flakyTask"}),
        ({"q": "greet"}, {"tag:greeting"}),
    ],
)
def test_filters_and_search(admin_client_, params, expected) -> None:
    now = timezone.now()
    WorkerJob.objects.submit("sayHello", tag="greeting")
    WorkerJob.objects.submit("sayHello", tag="greeting")  # cancels the first
    failed = WorkerJob.objects.submit("flakyTask")
    WorkerJob.objects.filter(pk=failed.pk).update(
        started=now, finished=now, success=False
    )
    WorkerJob.objects.submit("sayHello", cron_schedule="0 2 * * *")

    rows = admin_client_.get(CHANGELIST, params).context["cl"].result_list

    def describe(job: WorkerJob) -> str:
        key = next(iter(params))
        if key == "schedule":
            return "cron" if job.is_cron else "one-off"
        if key == "type":
            return job.type
        if key == "q":
            return f"tag:{job.tag}"
        return job.status

    assert rows, params
    assert {describe(job) for job in rows} == expected


def test_search_by_id(admin_client_) -> None:
    jobs = [WorkerJob.objects.submit("sayHello") for _ in range(3)]

    rows = (
        admin_client_.get(CHANGELIST, {"q": str(jobs[1].pk)}).context["cl"].result_list
    )

    assert [job.pk for job in rows] == [jobs[1].pk]


def test_detail_page_escapes_json_and_links_the_job_it_follows(admin_client_) -> None:
    first = WorkerJob.objects.submit("sayHello", {"name": "<script>alert(1)</script>"})
    follow = WorkerJob.objects.create(
        type="sayHello", due=timezone.now(), rescheduled_from=first, attempt=2
    )

    html = admin_client_.get(change_url(follow)).content.decode()
    assert f'href="{change_url(first)}"' in html

    html = admin_client_.get(change_url(first)).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_run_now_retry_and_cancel_actions(admin_client_) -> None:
    later = WorkerJob.objects.submit(
        "sayHello", due=timezone.now() + dt.timedelta(days=1)
    )
    doomed = WorkerJob.objects.submit(
        "sayHello", due=timezone.now() + dt.timedelta(days=1)
    )
    now = timezone.now()
    failed = WorkerJob.objects.submit("flakyTask", tag="flaky")
    WorkerJob.objects.filter(pk=failed.pk).update(
        started=now, finished=now, success=False
    )

    def act(action: str, *jobs: WorkerJob) -> str:
        response = admin_client_.post(
            CHANGELIST,
            {"action": action, "_selected_action": [job.pk for job in jobs]},
            follow=True,
        )
        return " ".join(str(m) for m in response.context["messages"])

    assert "1 pending job(s) are due now" in act("run_now", later)
    assert WorkerJob.objects.due().filter(pk=later.pk).exists()

    assert "1 pending job(s) cancelled" in act("cancel_pending", doomed)
    doomed.refresh_from_db()
    assert doomed.status == "cancelled"
    assert "Cancelled in the admin by admin" in doomed.result["error"]

    assert "Retrying as job(s)" in act("retry", failed)
    retry = WorkerJob.objects.get(rescheduled_from=failed)
    assert (retry.status, retry.attempt, retry.tag) == ("pending", 2, "flaky")

    assert "already has a pending job" in act("retry", failed)
    assert WorkerJob.objects.filter(rescheduled_from=failed).count() == 1


def test_retrying_a_cron_job_runs_it_once_without_forking_its_chain(
    admin_client_,
) -> None:
    run = WorkerJob.objects.submit("sayHello", cron_schedule="*/5 * * * * *")
    now = timezone.now()
    WorkerJob.objects.filter(pk=run.pk).update(started=now, finished=now, success=False)
    chain = WorkerJob.objects.create(
        type="sayHello", due=now, cron_schedule=run.cron_schedule, rescheduled_from=run
    )

    response = admin_client_.post(
        CHANGELIST,
        {"action": "retry", "_selected_action": [run.pk]},
        follow=True,
    )

    messages = " ".join(str(m) for m in response.context["messages"])
    assert "its schedule goes on" in messages
    retry = WorkerJob.objects.exclude(pk__in=[run.pk, chain.pk]).get()
    assert (retry.cron_schedule, retry.tag, retry.attempt) == ("", None, 2)
    assert list(WorkerJob.objects.pending().cron()) == [chain]


def test_changelist_runs_no_full_count(admin_client_) -> None:
    WorkerJob.objects.bulk_submit([{"type": "sayHello"} for _ in range(30)])

    with CaptureQueriesContext(connection) as queries:
        response = admin_client_.get(CHANGELIST)

    assert response.status_code == 200
    counts = [
        q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()
    ]
    assert counts, "the page shows a count"
    assert all("LIMIT" in sql.upper() for sql in counts), counts
