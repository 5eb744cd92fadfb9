"""Where a lab run ran: the numbers in a report only mean something next to this."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

from lab import REPO

# How many lab runs shared the machine with this one (set by whoever started them side by
# side, e.g. tests/test_lab.py); reports and BENCHMARKS.md show it next to the numbers.
SIDE_BY_SIDE_ENV = "AWS2ALIYUN_LAB_SIDE_BY_SIDE"


def _first_line(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=REPO)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def cpu_model(cpuinfo: str) -> str | None:
    for ln in cpuinfo.splitlines():
        if ln.startswith("model name"):
            return ln.split(":", 1)[1].strip()
    return None


def mem_total_gib(meminfo: str) -> float | None:
    for ln in meminfo.splitlines():
        if ln.startswith("MemTotal:"):
            return round(int(ln.split()[1]) / 1024 / 1024, 1)
    return None


def info() -> dict:
    def read(p: str) -> str:
        try:
            return Path(p).read_text()
        except OSError:
            return ""

    commit = _first_line(["git", "rev-parse", "--short=12", "HEAD"])
    dirty = _first_line(["git", "status", "--porcelain", "--untracked-files=no"])
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "host_cpu": cpu_model(read("/proc/cpuinfo")),
        "host_cpus": os.cpu_count(),
        "host_memory_gib": mem_total_gib(read("/proc/meminfo")),
        "host_kernel": platform.release(),
        "host_load_1m": round(os.getloadavg()[0], 2),
        "qemu": _first_line(["qemu-system-x86_64", "--version"]),
        "lab_runs_side_by_side": side_by_side(),
        "git_commit": (commit + ("-dirty" if dirty else "")) if commit else None,
    }


def side_by_side() -> int:
    try:
        return max(1, int(os.environ.get(SIDE_BY_SIDE_ENV, "1")))
    except ValueError:
        return 1
