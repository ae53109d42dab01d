"""Worker pools started as real `manage.py runworkers` processes, and their memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_pool(
    workers: int, *, once: bool, poll_interval: float = 1.0
) -> subprocess.Popen:
    """Start `manage.py runworkers` with the benchmark's settings."""
    args = [
        sys.executable,
        str(ROOT / "manage.py"),
        "runworkers",
        f"--workers={workers}",
        f"--poll-interval={poll_interval}",
        "--no-maintenance",
        "--log-level=warning",
    ]
    if once:
        args.append("--once")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    return subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True)


def stop_pool(process: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGTERM the manager, then SIGKILL its group if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident memory (VmHWM) in MB, or None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


class MemoryWatch:
    """Peak RSS of a manager and each of its children, sampled while they run."""

    def __init__(self, manager: int) -> None:
        self.manager = manager
        self.peaks: dict[int, float] = {}

    def sample(self) -> None:
        for pid in [self.manager, *children(self.manager)]:
            rss = peak_rss_mb(pid)
            if rss is not None:
                self.peaks[pid] = max(rss, self.peaks.get(pid, 0.0))

    def wait(
        self, process: subprocess.Popen, timeout: float, every: float = 0.05
    ) -> None:
        """Sample until `process` exits; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            self.sample()
            if time.monotonic() > deadline:
                stop_pool(process)
                raise TimeoutError(f"the pool did not finish in {timeout:.0f} s")
            time.sleep(every)

    def figures(self) -> dict[str, float]:
        manager = self.peaks.get(self.manager, 0.0)
        others = [rss for pid, rss in self.peaks.items() if pid != self.manager]
        return {
            "manager_mb": round(manager, 1),
            "child_max_mb": round(max(others, default=0.0), 1),
            "children": len(others),
        }
