"""Running tasks of Django's Tasks framework as jobs of one type.

A task enqueued through workers.backends.WorkerJobBackend becomes a WorkerJob
of type TASK_JOB_TYPE whose data names the task by its module path and holds
its arguments. A row's path only ever leads to a Task that is already loaded:
the worker imports the `tasks` module of each installed app and the modules
listed in WORKER_TASK_MODULES, nothing else, and calls nothing that is not a
Task. Any other path fails the job for good.
"""

from __future__ import annotations

import datetime as dt
import decimal
import importlib
import logging
import math
import sys
import uuid
from typing import TYPE_CHECKING, Any

from django.db import models
from django.utils.module_loading import autodiscover_modules

from . import conf
from .exceptions import InvalidJobDataError
from .storable import MAX_DEPTH, text_problem

if TYPE_CHECKING:
    from .models import WorkerJob
    from .task_api import Task

TASK_JOB_TYPE = "django.task"

# What to pass instead of a value JSON cannot carry, by the value's type.
JSON_ADVICE: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (decimal.Decimal, "pass str(value) and convert it back with Decimal()"),
    (
        (dt.datetime, dt.date, dt.time, dt.timedelta),
        "pass value.isoformat() (or seconds for a timedelta) and parse it back",
    ),
    (uuid.UUID, "pass str(value)"),
    ((set, frozenset), "pass a list, e.g. sorted(value)"),
    (models.Model, "pass its primary key (value.pk) and fetch it in the task"),
    ((bytes, bytearray), "pass text, e.g. base64.b64encode(value).decode()"),
)


class TaskArgumentsError(TypeError):
    """A task's arguments (or return value) would not survive a JSON round trip."""


# Lists and dicts within each other, at most, as for any job's data.
MAX_NESTING = MAX_DEPTH


def check_json_value(value: Any, where: str, depth: int = 0) -> Any:
    """Return `value` as JSON will give it back; TaskArgumentsError if it can't.

    Tuples become lists, as the Tasks framework stores them; anything whose
    type or keys would change or be lost on the way raises, naming where.
    """
    if depth > MAX_NESTING:
        raise TaskArgumentsError(
            f"{where} is nested more than {MAX_NESTING} levels deep; flatten it"
        )
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            raise TaskArgumentsError(f"{where} {problem} (e.g. pass repr(value))")
        return value
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TaskArgumentsError(
                f"{where} is {value!r}: JSON has no NaN or infinity; pass None "
                "or a string instead"
            )
        return value
    if isinstance(value, list | tuple):
        return [
            check_json_value(item, f"{where}[{i}]", depth + 1)
            for i, item in enumerate(value)
        ]
    if isinstance(value, dict):
        checked = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TaskArgumentsError(
                    f"{where} has the key {key!r} ({type(key).__name__}): JSON "
                    "keys are strings; use str keys"
                )
            check_json_value(key, f"the key {key!r} of {where}", depth + 1)
            checked[key] = check_json_value(item, f"{where}[{key!r}]", depth + 1)
        return checked
    advice = "convert it to dicts, lists, strings, numbers, booleans or None"
    for kinds, text in JSON_ADVICE:
        if isinstance(value, kinds):
            advice = text
            break
    raise TaskArgumentsError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__} "
        f"({value!r}), which JSON cannot carry: {advice}"
    )


def discover_task_modules() -> None:
    """Import each installed app's `tasks` module and WORKER_TASK_MODULES."""
    autodiscover_modules("tasks")
    for name in conf.get("WORKER_TASK_MODULES"):
        importlib.import_module(name)


def loaded_task(path: str) -> Task | None:
    """The Task at `path` if its module is already imported; never imports."""
    from .task_api import Task

    module_name, _, name = path.rpartition(".")
    module = sys.modules.get(module_name)
    candidate = getattr(module, name, None) if module is not None else None
    if isinstance(candidate, Task) and candidate.module_path == path:
        return candidate
    return None


def find_task(path: Any) -> Task:
    """The loaded Task at `path`, after discovery; InvalidJobDataError if none."""
    if not isinstance(path, str) or not path:
        raise InvalidJobDataError(f"task={path!r}: give a task's module path")
    task = loaded_task(path)
    if task is None:
        discover_task_modules()
        task = loaded_task(path)
    if task is None:
        raise InvalidJobDataError(
            f"task={path!r} is not a task this process knows: define it with "
            "@task in an installed app's tasks module, or list its module in "
            "WORKER_TASK_MODULES"
        )
    return task


def task_data(job: WorkerJob) -> tuple[str, list[Any], dict[str, Any]]:
    """The task path, args and kwargs of a task job; InvalidJobDataError if off."""
    data = job.data
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("args", []), list)
        or not isinstance(data.get("kwargs", {}), dict)
    ):
        raise InvalidJobDataError(
            f"data={data!r}: a {TASK_JOB_TYPE} job needs "
            "{'task': path, 'args': [...], 'kwargs': {...}}"
        )
    return data.get("task"), data.get("args", []), data.get("kwargs", {})


def run_task(job: WorkerJob, log: logging.LoggerAdapter) -> Any:
    """Call the task a job names, with its arguments; return its return value."""
    from .backends import result_for_run
    from .task_api import TaskContext, TaskResultStatus, task_finished, task_started

    path, args, kwargs = task_data(job)
    task = find_task(path)
    result = result_for_run(task, job)
    task_started.send(type(task.get_backend()), task_result=result)
    try:
        if task.takes_context:
            value = task.call(TaskContext(task_result=result), *args, **kwargs)
        else:
            value = task.call(*args, **kwargs)
        value = check_json_value(value, f"the return value of {path}")
    except BaseException as error:
        object.__setattr__(result, "status", TaskResultStatus.FAILED)
        task_finished.send(type(task.get_backend()), task_result=result)
        raise error
    object.__setattr__(result, "status", TaskResultStatus.SUCCESSFUL)
    object.__setattr__(result, "_return_value", value)
    task_finished.send(type(task.get_backend()), task_result=result)
    return value
