"""A daily cron job across daylight-saving changes runs once per local day."""

from __future__ import annotations

import collections
import datetime as dt
import zoneinfo

import pytest
from django.test import override_settings

from workers import cron

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
SPRING_FORWARD = dt.date(2026, 3, 29)  # 02:00 CET jumps to 03:00 CEST
FALL_BACK = dt.date(2026, 10, 25)  # 03:00 CEST falls back to 02:00 CET
DAILY = ["0 2 * * *", "30 2 * * *", "59 2 * * *", "0 3 * * *", "0 0 2 * * *"]


def local_runs(expr: str, around: dt.date) -> list[dt.datetime]:
    """The runs of `expr` from three days before `around` to three days after."""
    moment = dt.datetime.combine(around - dt.timedelta(days=3), dt.time(), BERLIN)
    end = moment + dt.timedelta(days=6)
    runs = []
    with override_settings(WORKER_CRON_TIME_ZONE="Europe/Berlin"):
        while (moment := cron.next_after(expr, moment)) < end:
            assert moment.tzinfo is dt.UTC
            runs.append(moment.astimezone(BERLIN))
    return runs


@pytest.mark.parametrize("expr", DAILY)
@pytest.mark.parametrize("change", [SPRING_FORWARD, FALL_BACK], ids=["spring", "fall"])
def test_daily_job_runs_once_per_wall_clock_day(expr, change):
    runs = local_runs(expr, change)
    per_day = collections.Counter(run.date() for run in runs)
    assert sorted(per_day) == [change + dt.timedelta(days=d) for d in range(-3, 3)], (
        runs
    )
    assert set(per_day.values()) == {1}, runs


def test_a_time_skipped_in_spring_runs_at_the_first_time_after():
    runs = local_runs("30 2 * * *", SPRING_FORWARD)
    (on_the_day,) = [run for run in runs if run.date() == SPRING_FORWARD]
    assert on_the_day.strftime("%H:%M %Z") == "03:00 CEST"


def test_a_time_repeated_in_autumn_runs_the_first_time():
    runs = local_runs("30 2 * * *", FALL_BACK)
    (on_the_day,) = [run for run in runs if run.date() == FALL_BACK]
    assert on_the_day.strftime("%H:%M %Z") == "02:30 CEST"


@pytest.mark.parametrize("expr", ["0 * * * *", "0 */1 * * *", "0 0-23 * * *"])
def test_an_hourly_job_runs_in_both_repeated_hours(expr):
    # Without a fixed hour, each real hour counts: 02:00 comes twice.
    runs = local_runs(expr, FALL_BACK)
    twos = [run for run in runs if run.date() == FALL_BACK and run.hour == 2]
    assert [run.strftime("%Z") for run in twos] == ["CEST", "CET"]
