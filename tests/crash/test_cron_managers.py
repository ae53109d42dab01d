"""Three managers on one database: each cron tick runs once, restarts add nothing."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import time

import pytest

from workers.models import WorkerJob

from .conftest import FAST, drain, output, runs, wait_for

TICK = "*/2 * * * * *"  # every 2 seconds
RUN_FOR = 60  # seconds


def start_three(start_manage, *args: str) -> list:
    managers = []
    for _ in range(3):
        process = start_manage("runworkers", "--workers", "1", *args, **FAST)
        drain(process)
        managers.append(process)
    return managers


def stop_all(managers: list) -> None:
    for process in managers:
        os.kill(process.pid, signal.SIGTERM)
    for process in managers:
        process.wait(timeout=20)
        assert process.returncode == 0, output(process)


@pytest.mark.slow
def test_three_managers_run_each_tick_once(start_manage, run_log):
    managers = start_three(start_manage)
    wait_for(
        lambda: WorkerJob.objects.filter(type="removeOldWorkerJobs").exists(),
        30,
        "the maintenance job",
    )
    WorkerJob.objects.submit(
        "crashSleep", {"log": str(run_log)}, tag="cron:tick", cron_schedule=TICK
    )
    ended = time.monotonic() + RUN_FOR
    while time.monotonic() < ended:
        # None while a tick runs (its next one is added as it ends), never two.
        assert WorkerJob.objects.pending().filter(tag="cron:tick").count() <= 1
        time.sleep(0.5)
    stop_all(managers)

    ticks = list(
        WorkerJob.objects.filter(tag="cron:tick", started__isnull=False)
        .order_by("due")
        .values_list("pk", "due")
    )
    dues = [due for _, due in ticks]
    assert len(dues) == len(set(dues)), "a tick ran twice"
    assert set(runs(run_log).values()) == {1}
    assert sorted(runs(run_log)) == sorted(pk for pk, _ in ticks)
    # The first run is due at submission; from then on, every 2 seconds.
    gaps = [b - a for a, b in itertools.pairwise(dues[1:])]
    assert gaps.count(dt.timedelta(seconds=2)) >= 0.9 * len(gaps), gaps
    assert len(ticks) >= 0.9 * RUN_FOR / 2

    others = WorkerJob.objects.exclude(tag="cron:tick").count()
    managers = start_three(start_manage)
    time.sleep(3)
    stop_all(managers)
    assert WorkerJob.objects.exclude(tag="cron:tick").count() == others
    assert WorkerJob.objects.filter(type="removeOldWorkerJobs").count() == 1
    assert WorkerJob.objects.pending().filter(tag="cron:tick").count() == 1
