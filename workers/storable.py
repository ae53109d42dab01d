"""Text every supported database stores as given.

PostgreSQL refuses the NUL character in text and JSON, and no database can
store a lone surrogate (half of a UTF-16 pair, which Python strings may hold
but UTF-8 cannot encode). A job's data, a task's arguments and a result are
checked with text_problem() before they are written; an error's message and
traceback go through storable_text().
"""

from __future__ import annotations

from typing import Any


def text_problem(value: str) -> str | None:
    """Why the string `value` cannot be stored, or None if it can."""
    if "\x00" in value:
        return "holds a NUL character (\\x00), which PostgreSQL cannot store"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone surrogate, which is not valid UTF-8"
    return None


def first_text_problem(value: Any, where: str) -> str | None:
    """The first string in a JSON value (keys included) that cannot be stored,
    as "<where>[...] holds ...", or None.

    Walked with a stack of its own: a value nested as deep as JSON allows
    must not exhaust Python's.
    """
    stack = [(value, where)]
    while stack:
        item, place = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return f"{place} {problem}"
        elif isinstance(item, dict):
            for key, inner in reversed(item.items()):
                stack.append((inner, f"{place}[{key!r}]"))
                stack.append((key, f"the key {key!r} of {place}"))
        elif isinstance(item, list | tuple):
            for index in range(len(item) - 1, -1, -1):
                stack.append((item[index], f"{place}[{index}]"))
    return None


def storable_text(value: str) -> str:
    """`value` with NUL written as \\x00 and lone surrogates as \\udXXX escapes."""
    if text_problem(value) is None:
        return value
    value = value.replace("\x00", "\\x00")
    return value.encode("utf-8", "backslashreplace").decode("utf-8")
