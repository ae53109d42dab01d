"""System checks: misconfiguration reported by `manage.py check`, with a hint."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register

from . import conf, cron


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors: list[Error] = []
    if not settings.USE_TZ:
        errors.append(
            Error(
                "USE_TZ is False; job due times must be timezone-aware.",
                hint="Set USE_TZ = True in your settings.",
                id="workers.E001",
            )
        )
    try:
        conf.worker_count()
    except ValueError as error:
        errors.append(
            Error(
                str(error),
                hint="Set WORKER_COUNT to e.g. 1, 4 or 'cpus'.",
                id="workers.E002",
            )
        )
    for name in ("WORKER_REMOVE_OLD_JOBS_SCHEDULE", "WORKER_WATCH_CHAIN_SCHEDULE"):
        try:
            cron.validate(conf.get(name))
        except cron.InvalidCronExpression as error:
            errors.append(
                Error(
                    f"{name}: {error}",
                    hint="Use five fields ('0 2 * * *') or six with seconds "
                    "first ('*/30 * * * * *').",
                    id="workers.E003",
                )
            )
    return errors


# The chain settings are checked beside the chain jobs.
from .chain.checks import check_chain_settings  # noqa: E402, F401
