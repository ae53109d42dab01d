"""`pip install` of the repository gives the workers app with its migrations."""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "setup.cfg", "README.md", "workers", "quickdapp", "tests")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """A wheel built from a copy of the repository's sources.

    pip builds it as `pip install` would: in an isolated environment with the
    setuptools that pyproject.toml asks for, from the package index.
    """
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.sqlite3*")
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    dist = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist)]
    built = subprocess.run(
        [*command, str(source)], capture_output=True, text=True, timeout=300
    )
    assert built.returncode == 0, built.stderr
    (path,) = dist.glob("*.whl")
    return zipfile.ZipFile(path)


@pytest.mark.slow
def test_the_wheel_holds_the_app_and_every_migration(wheel) -> None:
    names = set(wheel.namelist())

    migrations = {
        f"workers/migrations/{path.name}"
        for path in (ROOT / "workers" / "migrations").glob("*.py")
    }
    assert migrations <= names
    assert "workers/management/commands/runworkers.py" in names
    assert "workers/backends.py" in names
    assert "workers/py.typed" in names
    assert any(name.startswith("workers/chain/data/") for name in names)
    assert not [n for n in names if n.startswith(("quickdapp/", "tests/"))]


@pytest.mark.slow
def test_the_wheel_requires_the_tasks_backport_where_django_6_cannot_go(
    wheel,
) -> None:
    (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    requires = email.message_from_bytes(wheel.read(metadata)).get_all("Requires-Dist")

    assert any(r.startswith("Django") for r in requires)
    assert 'django-tasks>=0.8; python_version < "3.12"' in requires
    # Django 5.2 on Python 3.12+ asks for it by name.
    assert 'django-tasks>=0.8; extra == "tasks"' in requires
