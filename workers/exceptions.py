"""Errors raised by the workers app."""

from django.core.exceptions import ImproperlyConfigured


class InvalidJobError(ValueError):
    """A job cannot be submitted as given; nothing was written."""

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field = field
        self.value = value
        super().__init__(f"{field}={value!r}: {problem}")


class UnknownJobTypeError(LookupError):
    """No handler is registered for this job type."""


class PermanentJobError(Exception):
    """Raised by a handler when running the job again cannot succeed.

    The job fails at once, without the retries auto_reschedule_on_failure
    would otherwise give it.
    """


class InvalidJobDataError(PermanentJobError, ValueError):
    """The job's data is not what its handler accepts."""


class WorkersConfigurationError(ImproperlyConfigured):
    """A workers setting has a value the app cannot use."""
