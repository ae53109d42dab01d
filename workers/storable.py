"""JSON every supported database stores as given.

PostgreSQL refuses the NUL character in text and JSON, and no database can
store a lone surrogate (half of a UTF-16 pair, which Python strings may hold
but UTF-8 cannot encode). A job's data, a task's arguments and a result are
checked with text_problem() before they are written; an error's message and
traceback go through storable_text().
"""

from __future__ import annotations

from typing import Any

# Lists and dicts within each other, at most. Deeper values are refused
# before the JSON encoder (whose limit is Python's recursion limit, which
# libraries raise) or a database (SQLite's JSON stops at 1,000) meets them.
MAX_DEPTH = 200


def text_problem(value: str) -> str | None:
    """Why the string `value` cannot be stored, or None if it can."""
    if "\x00" in value:
        return (
            "holds a NUL character (\\x00), which PostgreSQL cannot store; "
            "remove or escape it"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone surrogate, which is not valid UTF-8; remove it"
    return None


def storage_problem(value: Any, where: str) -> str | None:
    """Why a JSON value cannot be stored as it is, naming where, or None.

    The first string (keys included) that holds what no database stores, or
    the first list or dict nested deeper than MAX_DEPTH. Walked with a stack
    of its own, so that no depth exhausts Python's; the place is spelled out
    only for a problem, so that a key whose repr() fails costs nothing.
    """
    # Each entry: the item, the path to it (a chain of (parent, step)), depth.
    stack: list[tuple[Any, Any, int]] = [(value, None, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return f"{_place(where, path)} {problem}"
            continue
        if not isinstance(item, dict | list | tuple):
            continue
        if depth >= MAX_DEPTH:
            return f"{where} is nested more than {MAX_DEPTH} levels deep; flatten it"
        if isinstance(item, dict):
            for key, inner in reversed(item.items()):
                stack.append((inner, (path, ("item", key)), depth + 1))
                stack.append((key, (path, ("key", key)), depth + 1))
        else:
            for index in range(len(item) - 1, -1, -1):
                stack.append((item[index], (path, ("item", index)), depth + 1))
    return None


def _place(where: str, path: Any) -> str:
    """`where[...]...` for a path of storage_problem's, or the key it names."""
    steps = []
    while path is not None:
        path, step = path
        steps.append(step)
    place = where
    for kind, key in reversed(steps):
        shown = safe_repr(key)
        place = f"the key {shown} of {place}" if kind == "key" else f"{place}[{shown}]"
    return place


def safe_repr(value: Any) -> str:
    """repr(value), or a stand-in if repr() itself fails."""
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__} that cannot be shown>"


def storable_text(value: str) -> str:
    """`value` with NUL written as \\x00 and lone surrogates as \\udXXX escapes."""
    if text_problem(value) is None:
        return value
    value = value.replace("\x00", "\\x00")
    return value.encode("utf-8", "backslashreplace").decode("utf-8")
