"""The benchmark's own databases: never the test database nor db.sqlite3."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

BENCH_DATABASE = "workers_bench"
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"


@contextmanager
def postgresql(server_url: str = DEFAULT_SERVER, keep: bool = False) -> Iterator[str]:
    """Create BENCH_DATABASE on the server of `server_url`; yield its URL."""
    import psycopg

    parts = urlsplit(server_url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {BENCH_DATABASE}")
    try:
        yield urlunsplit(parts._replace(path=f"/{BENCH_DATABASE}"))
    finally:
        if not keep:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")


@contextmanager
def sqlite(keep: bool = False) -> Iterator[str]:
    """A fresh SQLite file in a temporary directory; yield its URL."""
    directory = tempfile.mkdtemp(prefix="workers-bench-")
    try:
        yield f"sqlite:///{directory}/bench.sqlite3"
    finally:
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)


def server_reachable(server_url: str = DEFAULT_SERVER) -> bool:
    import psycopg

    parts = urlsplit(server_url)
    try:
        psycopg.connect(
            urlunsplit(parts._replace(path="/postgres")), connect_timeout=3
        ).close()
    except psycopg.Error:
        return False
    return True
