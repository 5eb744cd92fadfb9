"""Lab runs for the lab tests, side by side where that keeps their numbers sound.

Two kinds of job. A *measured* run (a profile: every check, the fault checks' outages
against their goals) and an *unmeasured* one (a mutation: only which checks fail matters,
no timing). What loads a 2-core TCG machine is booting a VM and cloud-init's package
install; what a measured run measures (dead-peer detection, the updown script) is CPU work
in its guest too. A VM booting at the same priority next to a failover pushed its uplink
outage from 7.6 s to 10.8 s, past its goal; two fault phases side by side do not disturb
each other (they mostly wait on timers: DPD, blackholes, rekeys).

So: the measured runs start together (their boots overlap each other's boots, their fault
phases each other's waits). Once every measured run has booted (its `checks` phase line),
the unmeasured runs start at the lowest CPU priority (`nice -n 19`, which lab.vm carries
over to QEMU's own scheduler autogroup): they take the CPU the measured runs leave idle and
give it back the moment a measured guest wants it. Once a measured run has finished, the
unmeasured ones get their full priority back (every thread and autogroup of theirs). Every
run is told how many runs share the machine (lab.machine.SIDE_BY_SIDE_ENV) and its report
says so.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from lab import REPO
from lab.machine import SIDE_BY_SIDE_ENV

TIMEOUT_S = 3600
NICE = ("nice", "-n", "19")
# the phase line a run prints once its VM is up and cloud-init is done (lab.run)
PAST_BOOT = re.compile(r"^\[lab\s+[\d.]+s\] checks$", re.M)


@dataclass
class Result:
    proc: subprocess.CompletedProcess
    report: dict | None
    report_path: Path


@dataclass(frozen=True)
class Job:
    args: list[str]  # of `python -m lab run`, without --report
    measured: bool = True


@dataclass
class _Running:
    popen: subprocess.Popen
    started: float
    stdout: Path
    stderr: Path
    report: Path
    args: list[str]

    def past_boot(self) -> bool:
        try:
            return bool(PAST_BOOT.search(self.stderr.read_text(errors="replace")))
        except OSError:
            return False


def descendants(pid: int) -> list[int]:
    """pid and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def full_priority(pid: int) -> None:
    """Niceness 0 for every thread of pid and its descendants, and for their autogroups."""
    for p in descendants(pid):
        for task in Path(f"/proc/{p}/task").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, int(task.name), 0)
        with contextlib.suppress(OSError):
            Path(f"/proc/{p}/autogroup").write_text("0\n")


class LabJobs:
    def __init__(
        self,
        jobs: dict[str, Job],
        workdir: Path | None = None,
        command: tuple[str, ...] = (sys.executable, "-m", "lab", "run"),
        poll_s: float = 2.0,
    ):
        self.jobs = jobs
        self.command = command
        self.poll_s = poll_s
        self.workdir = workdir
        self.futures: dict[str, Future[Result]] = {name: Future() for name in jobs}
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def start(self, only: set[str] | None = None) -> None:
        """Start the queue (once): every job, or only these (the rest never run)."""
        with self.lock:
            if self.thread is None:
                if only is not None:
                    self.jobs = {n: j for n, j in self.jobs.items() if n in only}
                if self.workdir is None:
                    self.workdir = Path(tempfile.mkdtemp(prefix="aws2aliyun-labjobs-"))
                self.thread = threading.Thread(target=self._schedule, name="lab-jobs", daemon=True)
                self.thread.start()
                atexit.register(self.close)  # no lab run outlives an interrupted pytest

    def _launch(self, name: str) -> _Running:
        assert self.workdir is not None
        out, err, rep = (self.workdir / f"{name}.{x}" for x in ("out", "err", "json"))
        job = self.jobs[name]
        args = [*(() if job.measured else NICE), *self.command, *job.args, "--report", str(rep)]
        env = {**os.environ, SIDE_BY_SIDE_ENV: str(len(self.jobs))}
        with out.open("w") as o, err.open("w") as e:
            p = subprocess.Popen(args, cwd=REPO, stdout=o, stderr=e, text=True, env=env)
        return _Running(p, time.monotonic(), out, err, rep, args)

    def _finish(self, name: str, r: _Running) -> None:
        proc = subprocess.CompletedProcess(
            r.args, r.popen.returncode, r.stdout.read_text(errors="replace"), r.stderr.read_text(errors="replace")
        )
        rep = json.loads(r.report.read_text()) if r.report.is_file() else None
        self.futures[name].set_result(Result(proc, rep, r.report))

    def _schedule(self) -> None:
        pending = list(self.jobs)
        running: dict[str, _Running] = {}
        measured_done = boosted = False
        try:
            while (pending or running) and not self.stopping.is_set():
                for name, r in list(running.items()):
                    if r.popen.poll() is None and time.monotonic() - r.started > TIMEOUT_S:
                        r.popen.terminate()  # the lab cleans up on SIGTERM and writes its report
                        r.popen.wait(60)
                    if r.popen.poll() is not None:
                        self._finish(name, running.pop(name))
                        measured_done = measured_done or self.jobs[name].measured
                for name in [n for n in pending if self.jobs[n].measured]:
                    pending.remove(name)
                    running[name] = self._launch(name)
                measured = [r for n, r in running.items() if self.jobs[n].measured]
                if all(r.past_boot() for r in measured):
                    while pending:
                        name = pending.pop(0)
                        running[name] = self._launch(name)
                if measured_done and not boosted:
                    boosted = True
                    for n, r in running.items():
                        if not self.jobs[n].measured:
                            full_priority(r.popen.pid)
                time.sleep(self.poll_s)
        except BaseException as e:  # a scheduler bug fails every waiting test, never hangs it
            for f in self.futures.values():
                if not f.done():
                    f.set_exception(e)
            raise
        finally:
            for r in running.values():
                if r.popen.poll() is None:
                    r.popen.terminate()

    def result(self, name: str) -> Result:
        self.start()
        if name not in self.jobs:
            raise KeyError(f"lab job {name!r} was not started (started: {', '.join(self.jobs)})")
        return self.futures[name].result(timeout=len(self.jobs) * TIMEOUT_S)

    def close(self) -> None:
        self.stopping.set()
        if self.thread:
            self.thread.join(120)
