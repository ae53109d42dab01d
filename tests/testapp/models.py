from django.db import models


class JobRun(models.Model):
    """One row per run of a test job: counting them shows runs, not claims."""

    job_id = models.BigIntegerField()
    attempt = models.PositiveIntegerField()
    worker = models.CharField(max_length=100)
    pid = models.IntegerField()
    created = models.DateTimeField(auto_now_add=True)
