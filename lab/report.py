"""The lab's JSON report and its short human summary.

Schema (ARCHITECTURE.md): {"ok", "config", "checks": [{"name", "ok", "seconds", "detail",
"metrics"}], "metrics": {...}}. `ok` is true only when every expected check ran and passed.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

# What every check returns: passed, the detail (first line: the summary), its metrics.
Outcome = tuple[bool, str, dict]


@dataclass
class Check:
    name: str
    ok: bool
    seconds: float
    detail: str
    metrics: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "ok": bool(self.ok),
            "seconds": round(self.seconds, 2),
            "detail": self.detail,
            "metrics": self.metrics,
        }


def run_check(name: str, fn: Callable[[], tuple[bool, str, dict]]) -> Check:
    """Run one check, timed; a lab error while checking is a failed check with its traceback."""
    t0 = time.monotonic()
    try:
        ok, detail, metrics = fn()
    except Exception:
        ok, detail, metrics = False, "lab error while checking:\n" + traceback.format_exc(), {}
    return Check(name, ok, time.monotonic() - t0, detail, metrics)


@dataclass
class Report:
    config: dict = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    expected: tuple[str, ...] = ()  # the checks this run was asked for, in the run order
    error: str | None = None

    def add(self, check: Check) -> None:
        self.checks = [c for c in self.checks if c.name != check.name] + [check]

    def get(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def ordered(self) -> list[Check]:
        order = {n: k for k, n in enumerate(self.expected)}
        return sorted(self.checks, key=lambda c: order.get(c.name, len(order)))

    @property
    def ok(self) -> bool:
        names = {c.name for c in self.checks}
        return self.error is None and all(n in names for n in self.expected) and all(c.ok for c in self.checks)

    def as_dict(self) -> dict:
        checks = self.ordered()
        d = {"ok": self.ok, "config": self.config, "checks": [c.as_dict() for c in checks], "metrics": self.metrics}
        if self.error:
            d["error"] = self.error
        return d

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.as_dict(), indent=2) + "\n")
        tmp.replace(path)

    def summary(self) -> str:
        lines = []
        for c in self.ordered():
            first = c.detail.splitlines()[0] if c.detail else ""
            lines.append(f"  {'PASS' if c.ok else 'FAIL'}  {c.name:<20} {c.seconds:6.1f}s  {first[:110]}")
        missing = [n for n in self.expected if not self.get(n)]
        for n in missing:
            lines.append(f"  SKIP  {n:<20}  (not run)")
        m = self.metrics
        facts = []
        for key, label in (
            ("boot_to_established_s", "boot->established"),
            ("boot_to_cloud_init_done_s", "boot->cloud-init done"),
            ("total_s", "total"),
        ):
            if m.get(key) is not None:
                facts.append(f"{label} {m[key]:.0f}s")
        if m.get("uplink_outage_s") is not None and m.get("downlink_outage_s") is not None:
            facts.append(f"failover outage up {m['uplink_outage_s']:.1f}s / down {m['downlink_outage_s']:.1f}s")
        if m.get("rotation_outage_s") is not None:
            facts.append(
                f"PSK rotation outage up {m.get('rotation_uplink_outage_s', 0):.0f}s / "
                f"down {m.get('rotation_downlink_outage_s', 0):.0f}s"
            )
        if m.get("baseline_uplink_ratio") is not None:
            facts.append(f"uplink outage {m['baseline_uplink_ratio']:.2f}x seed 000's")
        passed = sum(1 for c in self.checks if c.ok)
        head = f"lab {'PASSED' if self.ok else 'FAILED'}: {passed}/{len(self.expected)} checks passed" + (
            f" ({', '.join(facts)})" if facts else ""
        )
        if self.error:
            head += "\n  error: " + "\n         ".join(self.error.splitlines()[:12])
        return head + "\n" + "\n".join(lines)


def report_path(path: Path | None, mutation: str | None) -> Path | None:
    """Where a run's report goes: PATH itself, or with several mutations PATH with the
    mutation's name before its suffix (reports/m.json -> reports/m.wrong-mark.json)."""
    if path is None or mutation is None:
        return path
    return path.with_name(f"{path.stem}.{mutation}{path.suffix}")


class Progress:
    """Phase lines on stderr with the elapsed time since the lab started."""

    def __init__(self, stream: TextIO | None = None) -> None:
        import sys

        self.t0 = time.monotonic()
        self.stream = stream or sys.stderr
        self.phase_t0 = self.t0
        self.phases: dict[str, float] = {}
        self.current: str | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def phase(self, name: str, what: str = "") -> None:
        now = time.monotonic()
        if self.current:
            self.phases[self.current] = round(now - self.phase_t0, 1)
        self.current, self.phase_t0 = name, now
        self.say(f"{name}: {what}" if what else name)

    def end(self) -> None:
        if self.current:
            self.phases[self.current] = round(time.monotonic() - self.phase_t0, 1)
            self.current = None

    def say(self, msg: str) -> None:
        print(f"[lab {self.elapsed():7.1f}s] {msg}", file=self.stream, flush=True)
