"""`python -m bench`: measure the workers app and record the figures.

Runs the suite against PostgreSQL (a `workers_bench` database it creates on
the server, then drops) and against a temporary SQLite file, prints one
table, and appends the run to bench/results.md and bench/results.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import database, report

ROOT = Path(__file__).resolve().parent.parent
SUITE_TIMEOUT = 600  # seconds, per database


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--databases",
        default="postgresql,sqlite",
        help="Comma-separated: postgresql, sqlite (default: both).",
    )
    parser.add_argument(
        "--server",
        default=os.environ.get("BENCH_POSTGRES_URL", database.DEFAULT_SERVER),
        help="A PostgreSQL URL on the server to use; the benchmark creates and "
        f"drops the {database.BENCH_DATABASE!r} database there "
        "(default: BENCH_POSTGRES_URL or %(default)s).",
    )
    parser.add_argument(
        "--sqlite-depth",
        action="store_true",
        help="Also run the deep-table and admin figures on SQLite.",
    )
    parser.add_argument(
        "--no-record", action="store_true", help="Print only; append no results."
    )
    args = parser.parse_args(argv)
    runs: dict[str, dict[str, Any]] = {}
    for name in [part.strip() for part in args.databases.split(",") if part.strip()]:
        began = time.monotonic()
        if name == "postgresql":
            if not database.server_reachable(args.server):
                print(f"PostgreSQL at {args.server} is not reachable; skipped.")
                continue
            with database.postgresql(args.server) as url:
                runs[name] = run_suite(url, depth=True)
        elif name == "sqlite":
            with database.sqlite() as url:
                runs[name] = run_suite(url, depth=args.sqlite_depth)
        else:
            parser.error(f"unknown database {name!r}: use postgresql or sqlite")
        print(f"{name}: done in {time.monotonic() - began:.0f} s", file=sys.stderr)
    if not runs:
        return 1
    for run in runs.values():
        report.add_memory(run)
    text = report.table(runs)
    print(text)
    if not args.no_record:
        report.record(runs, text)
        print(f"\nRecorded in {report.RESULTS_MD.relative_to(ROOT)}.")
    return 0


def run_suite(url: str, *, depth: bool) -> dict[str, Any]:
    """Run bench.suite in a process of its own against `url`; its figures."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, "-m", "bench.suite", out.name]
        if not depth:
            command.append("--no-depth")
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
        }
        subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=SUITE_TIMEOUT)
        return json.loads(Path(out.name).read_text())


if __name__ == "__main__":
    sys.exit(main())
