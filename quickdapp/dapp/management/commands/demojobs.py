"""`manage.py demojobs`: submit a handful of jobs that show the pool at work."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils import timezone

from workers.models import WorkerJob


class Command(BaseCommand):
    help = "Submit demo jobs, and create the admin user admin/admin if missing."

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model().objects
        if not users.filter(username="admin").exists():
            users.create_superuser("admin", "admin@example.com", "admin")
            self.stdout.write("Created the admin user: admin / admin")
        now = timezone.now()
        WorkerJob.objects.bulk_submit(
            [{"type": "sayHello", "data": {"name": name}} for name in ("Ada", "Alan")]
        )
        WorkerJob.objects.submit(
            "sayHello", {"name": "later"}, due=now + dt.timedelta(seconds=10)
        )
        WorkerJob.objects.submit(
            "flakyTask",
            {"succeed_on_attempt": 3},
            auto_reschedule_on_failure=True,
            auto_reschedule_on_failure_delay=2,
            tag="demo:flaky",
        )
        WorkerJob.objects.submit(
            "sayHello",
            {"name": "cron, every 10 seconds"},
            cron_schedule="*/10 * * * * *",
            tag="demo:every-10s",
        )
        self.stdout.write(
            "Submitted: two greetings now, one in 10 s, a job that fails twice "
            "and succeeds on its third attempt, and a greeting every 10 s."
        )
