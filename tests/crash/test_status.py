"""workerstatus, the health view, the admin's process page and the checks."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal

import pytest
from django.test import override_settings
from django.utils import timezone

from workers.checks import check_supervision
from workers.models import WorkerJob, WorkerProcess

from .conftest import FAST, wait_until_no_heartbeat_is_live


def status(run_manage, *args: str) -> tuple[int, str]:
    done = run_manage("workerstatus", *args, **FAST)
    assert not done.stderr, done.stderr
    return done.returncode, done.stdout


def test_status_shows_live_then_stale_processes(manager, run_manage):
    pool = manager(workers=2)

    code, out = status(run_manage, "--json")
    report = json.loads(out)
    assert code == 0 and report["healthy"], report
    mine = [p for p in report["processes"] if p["state"] == "alive"]
    assert sorted(p["kind"] for p in mine) == ["child", "child", "manager"]
    assert {p["pid"] for p in mine if p["kind"] == "manager"} == {pool.pid}
    assert all(p["host"] and p["started"] and p["last_heartbeat"] for p in mine)

    os.killpg(pool.pid, signal.SIGKILL)
    wait_until_no_heartbeat_is_live("the heartbeats to go stale")
    code, out = status(run_manage)
    assert code == 1
    assert out.count("stale ") == 3, out
    assert out.count(" worker ") == 2, out
    assert "UNHEALTHY: no manager has sent a heartbeat recently" in out


@pytest.mark.django_db(transaction=True)
def test_status_counts_pending_jobs_lag_and_failures(run_manage):
    now = timezone.now()
    late = WorkerJob.objects.submit("sayHello", due=now - dt.timedelta(seconds=120))
    WorkerJob.objects.submit("sayHello", due=now + dt.timedelta(hours=1))
    failed = WorkerJob.objects.submit("crashRaise")
    WorkerJob.objects.filter(pk=failed.pk).update(
        started=now, finished=now, success=False, result={"error": "it broke"}
    )

    code, out = status(run_manage, "--json")

    report = json.loads(out)
    assert code == 1
    assert report["pending"] == {"sayHello": {"pending": 2, "due": 1}}
    assert report["oldest_due"]["job"] == late.pk
    assert report["oldest_due"]["lag_seconds"] >= 120
    assert report["recent_failures"][0]["error"] == "it broke"
    assert any("has waited" in problem for problem in report["problems"])


def beating_manager() -> WorkerProcess:
    now = timezone.now()
    return WorkerProcess.objects.create(
        kind="manager", name="h:1", host="h", pid=1, started=now, last_heartbeat=now
    )


@pytest.mark.django_db
def test_health_is_503_without_a_live_manager(client):
    response = client.get("/health/workers/")
    assert response.status_code == 503
    assert response.json()["problems"] == ["no manager has sent a heartbeat recently"]


@pytest.mark.django_db
def test_health_is_200_with_a_live_manager_and_no_late_job(client):
    beating_manager()
    WorkerJob.objects.submit("sayHello", due=timezone.now() - dt.timedelta(seconds=5))
    response = client.get("/health/workers/")
    assert response.status_code == 200, response.json()
    assert response.json()["live_managers"] == 1


@pytest.mark.django_db
@override_settings(WORKER_HEALTH_MAX_LAG=30)
def test_health_is_503_when_the_oldest_due_job_is_late(client):
    beating_manager()
    WorkerJob.objects.submit("sayHello", due=timezone.now() - dt.timedelta(seconds=31))
    response = client.get("/health/workers/")
    assert response.status_code == 503
    assert "WORKER_HEALTH_MAX_LAG is 30 s" in response.json()["problems"][0]


@pytest.mark.django_db
def test_health_answers_head_as_get(client):
    assert client.head("/health/workers/").status_code == 503
    beating_manager()
    assert client.head("/health/workers/").status_code == 200
    assert client.post("/health/workers/").status_code == 405


@pytest.mark.django_db
def test_health_is_503_json_when_the_database_cannot_be_read(client, monkeypatch):
    from django.db import OperationalError

    from workers import status as worker_status

    def unreachable(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(worker_status, "health", unreachable)
    response = client.get("/health/workers/")
    assert response.status_code == 503
    assert response.json() == {
        "healthy": False,
        "problems": ["the database cannot be read: OperationalError"],
    }


@pytest.mark.django_db(transaction=True)
def test_status_text_names_workers_and_says_none(run_manage):
    _, out = status(run_manage)
    assert "Recent failures\n  none" in out
    for value in ("-1", "99999999999999999999"):
        bad = run_manage("workerstatus", "--failures", value, **FAST)
        assert bad.returncode != 0
        assert f"--failures is '{value}': give a whole number from 0 to" in (bad.stderr)


@pytest.mark.django_db
def test_admin_lists_processes_alive_or_not(admin_client):
    beating_manager()
    old = timezone.now() - dt.timedelta(minutes=10)
    WorkerProcess.objects.create(
        kind="child", name="h:2/0", host="h", pid=2, started=old, last_heartbeat=old
    )
    page = admin_client.get("/admin/workers/workerprocess/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "h:1" in text and "h:2/0" in text
    stale = admin_client.get("/admin/workers/workerprocess/?state=stale")
    assert "h:2/0" in stale.content.decode()
    assert "h:1<" not in stale.content.decode()


@pytest.mark.parametrize(
    ("overrides", "check_id"),
    [
        ({"WORKER_STALE_AFTER": 6, "WORKER_HEARTBEAT_INTERVAL": 5}, "workers.E022"),
        ({"WORKER_JOB_TIMEOUT": -1}, "workers.E021"),
        ({"WORKER_HEARTBEAT_INTERVAL": 0}, "workers.E020"),
    ],
)
def test_checks_reject_unsafe_supervision_settings(overrides, check_id):
    with override_settings(**overrides):
        assert [error.id for error in check_supervision()] == [check_id]
    assert check_supervision() == []
