"""Errors raised by the workers app."""

import reprlib

from django.core.exceptions import ImproperlyConfigured

# How a bad value is shown in a message: in full as a rule, shortened when it
# is long or nested deep, so that no value can make the message itself fail.
_VALUE_REPR = reprlib.Repr()
_VALUE_REPR.maxlevel = 8
_VALUE_REPR.maxstring = _VALUE_REPR.maxother = _VALUE_REPR.maxlong = 300
for _name in ("maxdict", "maxlist", "maxtuple", "maxset", "maxfrozenset"):
    setattr(_VALUE_REPR, _name, 30)


class InvalidJobError(ValueError):
    """A job cannot be submitted as given; nothing was written."""

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field = field
        self.value = value
        try:
            shown = _VALUE_REPR.repr(value)
        except Exception:  # a repr that fails, or an int too long to print
            shown = f"<{type(value).__name__} that cannot be shown>"
        super().__init__(f"{field}={shown}: {problem}")


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
