"""Signals a project can connect to.

- job_submitted: after submit() or bulk_submit() wrote jobs (sender None).
- job_started: a worker is about to run a job (sender the WorkerJob class,
  job=, worker=).
- job_finished: a job's outcome was recorded (sender the WorkerJob class,
  job=, worker=, outcome=).

Receivers run in the worker process; an exception in one is logged and does
not change the job's outcome.
"""

from django.dispatch import Signal

job_submitted = Signal()
job_started = Signal()
job_finished = Signal()
