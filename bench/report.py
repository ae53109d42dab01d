"""The table `python -m bench` prints, and the record of each run."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS_MD = HERE / "results.md"
RESULTS_JSONL = HERE / "results.jsonl"

# (label, figure path, goal test, goal text); the goals are PostgreSQL's.
GOALS: list[tuple[str, tuple[Any, ...], Callable[[float], bool], str]] = [
    (
        "throughput, 2 workers (jobs/s)",
        ("throughput", 2, "jobs_per_s"),
        lambda v: v >= 1500,
        ">= 1,500",
    ),
    ("throughput, 4 workers (jobs/s)", ("throughput", 4, "jobs_per_s"), None, ""),
    ("pickup p50 (ms)", ("latency", "p50_ms"), lambda v: v < 4, "< 4"),
    ("pickup p95 (ms)", ("latency", "p95_ms"), lambda v: v < 10, "< 10"),
    ("pickup p99 (ms)", ("latency", "p99_ms"), None, ""),
    ("pickup max (ms)", ("latency", "max_ms"), None, ""),
    (
        "deep table, 2 workers (jobs/s)",
        ("depth", "throughput", 2, "jobs_per_s"),
        None,
        "within 20% of empty",
    ),
    (
        "deep table, 4 workers (jobs/s)",
        ("depth", "throughput", 4, "jobs_per_s"),
        None,
        "within 20% of empty",
    ),
    (
        "submit one at a time (jobs/s)",
        ("submit", "single_per_s"),
        lambda v: v >= 1500,
        ">= 1,500",
    ),
    (
        "floor: bare one-row INSERT commits (/s)",
        ("floor", "insert_commits_per_s"),
        None,
        "",
    ),
    (
        "bulk submit (jobs/s)",
        ("submit", "bulk_per_s"),
        lambda v: v >= 20000,
        ">= 20,000",
    ),
    (
        "admin change list, first page (ms)",
        ("admin", "first_page_ms"),
        lambda v: v < 300,
        "< 300",
    ),
    (
        "admin change list, failed (ms)",
        ("admin", "failed_ms"),
        lambda v: v < 300,
        "< 300",
    ),
    ("peak RSS, manager (MB)", ("memory", "manager_mb"), None, ""),
    (
        "peak RSS, largest child (MB)",
        ("memory", "child_max_mb"),
        lambda v: v < 100,
        "< 100",
    ),
]


def figure(run: dict[str, Any], path: tuple[Any, ...]) -> float | None:
    value: Any = run
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key, value.get(str(key)))
        if value is None:
            return None
    return value


def add_memory(run: dict[str, Any]) -> None:
    """The largest peaks seen over every pool of the run."""
    pools = [run.get("latency", {})]
    for source in (run, run.get("depth", {})):
        pools += list(source.get("throughput", {}).values())
    memories = [pool["memory"] for pool in pools if "memory" in pool]
    run["memory"] = {
        "manager_mb": max((m["manager_mb"] for m in memories), default=0.0),
        "child_max_mb": max((m["child_max_mb"] for m in memories), default=0.0),
    }


def depth_ratio(run: dict[str, Any], workers: int) -> float | None:
    deep = figure(run, ("depth", "throughput", workers, "jobs_per_s"))
    empty = figure(run, ("throughput", workers, "jobs_per_s"))
    return None if not deep or not empty else deep / empty


def verdict(run: dict[str, Any], label: str, value: Any, test: Any) -> str:
    if value is None:
        return "-"
    if label.startswith("deep table"):
        ratio = depth_ratio(run, 2 if "2 workers" in label else 4)
        if ratio is None:
            return "-"
        mark = "met" if ratio >= 0.8 else "MISSED"
        return f"{mark} ({ratio:.0%} of empty)"
    if test is None:
        return ""
    return "met" if test(value) else "MISSED"


def table(runs: dict[str, dict[str, Any]]) -> str:
    """A Markdown table: one row per figure, one column per database."""
    names = list(runs)
    judged = [name for name in names if name == "postgresql"]
    head = ["figure", *names, "goal (PostgreSQL)", *(f"{n} vs goal" for n in judged)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, path, test, goal in GOALS:
        values = [figure(runs[name], path) for name in names]
        if all(value is None for value in values):
            continue
        cells = [label, *(_show(value) for value in values), goal]
        cells += [
            verdict(runs[name], label, value, test)
            for name, value in zip(names, values, strict=True)
            if name in judged
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value < 100:
        return f"{value:.2f}"
    return f"{value:,.0f}"


def environment(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Date, machine and versions of this run."""
    import django
    import psycopg

    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        # Other work on the machine lowers every figure; this is what ran
        # besides the benchmark when it ended (1-minute load average).
        "load_average": round(os.getloadavg()[0], 2),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "machine": {
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "memory_gb": round(int(meminfo[1]) / 1024 / 1024, 1),
            "system": platform.platform(),
        },
        "versions": {
            "python": platform.python_version(),
            "django": django.__version__,
            "psycopg": psycopg.__version__,
            **{f"{name}_server": run.get("server") for name, run in runs.items()},
        },
    }


def record(runs: dict[str, dict[str, Any]], text: str) -> None:
    """Append this run to results.md and results.jsonl."""
    env = environment(runs)
    machine = env["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    section = [
        f"## {env['date']} (commit {env['commit']}"
        f"{', uncommitted changes' if env['dirty'] else ''})",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, "
        f"{machine['memory_gb']} GB, {machine['system']}; "
        f"load average {env['load_average']} at the end.  ",
        f"Versions: {versions}.",
        "",
        text,
        "",
    ]
    for name, run in runs.items():
        plan = run.get("depth", {}).get("explain")
        if plan:
            section += [
                f"Claim plan on {name}, deep table:",
                "",
                "```",
                plan,
                "```",
                "",
            ]
    with RESULTS_MD.open("a") as file:
        file.write("\n".join(section) + "\n")
    with RESULTS_JSONL.open("a") as file:
        file.write(json.dumps({**env, "runs": runs}, default=str) + "\n")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=HERE.parent, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return ""


if __name__ == "__main__":
    sys.exit("run `python -m bench`")
