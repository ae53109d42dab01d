"""The registry that maps job type names to their handlers.

A handler is a callable `handler(job, log) -> result`: it gets the
`WorkerJob` being run and a logger bound to it, and returns a JSON value that
is stored as the job's result. Apps register handlers in a `jobs` module,
which the workers app imports for every installed app at start-up::

    from workers.registry import register

    @register("sendWelcomeEmail", timeout=60)
    def send_welcome_email(job, log):
        ...
        return {"sent": True}
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .exceptions import UnknownJobTypeError

# The length of WorkerJob.type.
MAX_TYPE_LENGTH = 100

if TYPE_CHECKING:
    from .models import WorkerJob

Handler = Callable[["WorkerJob", logging.LoggerAdapter], Any]
DataValidator = Callable[[Any], None]


@dataclass(frozen=True)
class JobType:
    """A registered job type and how its jobs are run."""

    name: str
    handler: Handler
    # Seconds a run may take before its worker is replaced; None: the default.
    timeout: float | None = None
    # Overrides WORKER_MAX_ATTEMPTS for this type; None: the setting.
    max_attempts: int | None = None
    # Called with the data at submit time; raises ValueError to reject it.
    validate: DataValidator | None = None


class JobRegistry:
    """Job types by name."""

    def __init__(self) -> None:
        self._types: dict[str, JobType] = {}

    def register(
        self,
        name: str,
        handler: Handler | None = None,
        *,
        timeout: float | None = None,
        max_attempts: int | None = None,
        validate: DataValidator | None = None,
    ) -> Any:
        """Register `handler` for `name`; without a handler, act as a decorator."""
        if not name or not isinstance(name, str) or len(name) > MAX_TYPE_LENGTH:
            raise ValueError(
                "a job type name must be a non-empty string of "
                f"{MAX_TYPE_LENGTH} characters at most, not {name!r}"
            )
        if max_attempts is not None and max_attempts < 1:
            raise ValueError(f"max_attempts for {name!r} must be 1 or more")

        def add(func: Handler) -> Handler:
            existing = self._types.get(name)
            if existing is not None and existing.handler is not func:
                raise ValueError(
                    f"job type {name!r} is already registered to "
                    f"{existing.handler.__module__}.{existing.handler.__qualname__}"
                )
            self._types[name] = JobType(name, func, timeout, max_attempts, validate)
            return func

        return add if handler is None else add(handler)

    def unregister(self, name: str) -> None:
        """Forget the job type `name` (for tests and reloads)."""
        self._types.pop(name, None)

    def get(self, name: str) -> JobType:
        """The job type `name`; UnknownJobTypeError if none is registered."""
        try:
            return self._types[name]
        except KeyError:
            known = ", ".join(sorted(self._types)) or "none"
            raise UnknownJobTypeError(
                f"no handler is registered for job type {name!r} "
                f"(registered: {known}); register one with "
                "workers.registry.register in your app's jobs module"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def names(self) -> list[str]:
        """The registered type names, sorted."""
        return sorted(self._types)


registry = JobRegistry()
register = registry.register
