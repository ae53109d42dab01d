"""Cron expressions: five fields (minute first) or six (seconds first).

`*/30 * * * * *` runs every 30 seconds, `0 2 * * *` daily at 02:00. The
expression is read in the zone WORKER_CRON_TIME_ZONE (default TIME_ZONE);
every time this module returns is aware and in UTC.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

from croniter import CroniterBadDateError, croniter

from . import conf

# croniter's R (random) and H (hashed) stand alone or before "(": not the R
# of FRI or MAR, nor the H of THU.
_RANDOM_OR_HASHED = re.compile(r"(?<![A-Za-z])[RH](?![A-Za-z])", re.IGNORECASE)


class InvalidCronExpression(ValueError):
    """The text is not a cron expression of five or six fields."""


def _fields(expr: str) -> list[str]:
    if not isinstance(expr, str):
        raise InvalidCronExpression(f"cron expression must be a string, not {expr!r}")
    fields = expr.split()
    if len(fields) not in (5, 6):
        raise InvalidCronExpression(
            f"cron expression {expr!r} has {len(fields)} fields: give five "
            "(minute hour day month weekday) or six with seconds first "
            "(second minute hour day month weekday)"
        )
    return fields


def validate(expr: str) -> str:
    """Return `expr` normalised to single spaces, or raise InvalidCronExpression."""
    fields = _fields(expr)
    normal = " ".join(fields)
    seconds_first = len(fields) == 6
    if _RANDOM_OR_HASHED.search(normal):
        raise InvalidCronExpression(
            f"cron expression {expr!r} uses R or H (a random or hashed time), "
            "which would move at every run: give the time itself"
        )
    if not croniter.is_valid(normal, second_at_beginning=seconds_first):
        raise InvalidCronExpression(
            f"cron expression {expr!r} is not valid: check each field's range "
            "(second 0-59, minute 0-59, hour 0-23, day 1-31, month 1-12, "
            "weekday 0-6)"
        )
    try:
        croniter(normal, second_at_beginning=seconds_first).get_next(dt.datetime)
    except CroniterBadDateError:
        raise InvalidCronExpression(
            f"cron expression {expr!r} never matches a date (e.g. February "
            "31st): check the day and month fields"
        ) from None
    return normal


def next_after(
    expr: str, after: dt.datetime, time_zone: str | None = None
) -> dt.datetime:
    """The first time strictly after `after` that `expr` matches, in UTC.

    A time that the zone's clock shows twice (the hour repeated when daylight
    saving ends) matches once: a schedule with a fixed hour does not run again
    in the repeated hour, as cron does not.
    """
    fields = _fields(expr)
    zone = zoneinfo.ZoneInfo(time_zone or conf.cron_time_zone())
    local_after = after.astimezone(zone)
    it = croniter(" ".join(fields), local_after, second_at_beginning=len(fields) == 6)
    # croniter expands the hour (second of its fields, whichever the form)
    # to ["*"] when it matches every hour: "*", "*/1", "0-23" alike.
    every_hour = it.expanded[1] == ["*"]
    while True:
        candidate: dt.datetime = it.get_next(dt.datetime)
        if not every_hour and _is_repeated_wall_time(candidate, zone):
            continue
        return candidate.astimezone(dt.UTC)


def _is_repeated_wall_time(moment: dt.datetime, zone: zoneinfo.ZoneInfo) -> bool:
    """True when `moment` is the second of two instants the clock shows alike."""
    local = moment.astimezone(zone)
    naive = local.replace(tzinfo=None)
    first = naive.replace(tzinfo=zone, fold=0)
    second = naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return False
    return local.utcoffset() == second.utcoffset()
