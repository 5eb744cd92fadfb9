"""Lab runs for the lab tests, side by side where that keeps their numbers sound.

Two kinds of job. A *measured* run (a profile: every check, the fault checks' outages
against their goals) and an *unmeasured* one (a mutation: only which checks fail matters,
no timing). What loads a 2-core TCG machine is booting a VM and cloud-init's package
install; what a measured run measures (dead-peer detection, the updown script) is CPU work
in its guest too. A VM booting next to a failover pushed its uplink outage from 7.6 s to
10.8 s, past its goal; `nice` does not keep it off (a fault phase keeps a TCG guest busy
enough that a niced VM beside it does not even boot); two fault phases side by side do not
disturb each other.

Booting VMs side by side gains nothing here: it is CPU-bound, and three mutation runs at
once took 520-590 s against 490 s one after the other. Fault phases side by side do gain:
both profiles together take about 1,300 s against 1,725 s one after the other.

So: the unmeasured runs first, one at a time; then the measured runs, together (their boots
overlap each other's boots, their fault phases each other's waits). Every run is told how
many runs share the machine with it (lab.machine.SIDE_BY_SIDE_ENV) and its report says so.

An unmeasured run may hold (`Job.resume_after`): the mutations share one VM (`--mutate
A,B,C`), and after the first one it pauses that VM (`--pause-until`: QEMU stopped, no CPU)
until the measured runs it names have ended, or (`resume_at_goals_done`, what the lab tests
use) until they have run every check whose goals need a quiet machine (`--goals-done`); the
measured runs start as soon as it holds. Resuming at the goals was once too early: beside the
modern profile's `psk_rotation` the reboots starved the new gateway's hard dead-peer detection
in one run of three. Since issue 15 the gateway's liveness daemon carries the failover and DPD
is calm, and the lossy-path soaks (ten idle minutes each) are measured beside other runs.
"""

from __future__ import annotations

import atexit
import json
import os
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


@dataclass
class Result:
    proc: subprocess.CompletedProcess
    report: dict | None
    report_path: Path


@dataclass(frozen=True)
class Job:
    args: list[str]  # of `python -m lab run`, without --report
    measured: bool = True
    # (unmeasured runs) hold with `--pause-until` until these jobs have ended
    resume_after: tuple[str, ...] = ()
    # (measured runs) start only once these measured jobs have run every check whose goals
    # need a quiet machine (or have ended): its boots and faults then load nothing they measure
    start_after: tuple[str, ...] = ()
    # (measured runs) start only once these jobs have ended: a run that may share the machine
    # with no measured phase of theirs (their VMs gone), only with what runs after them
    start_after_end: tuple[str, ...] = ()


@dataclass
class _Running:
    popen: subprocess.Popen
    started: float
    stdout: Path
    stderr: Path
    report: Path
    args: list[str]


class LabJobs:
    def __init__(
        self,
        jobs: dict[str, Job],
        workdir: Path | None = None,
        command: tuple[str, ...] = (sys.executable, "-m", "lab", "run"),
        poll_s: float = 2.0,
        resume_at_goals_done: bool = False,
    ):
        # A holding job resumes when the jobs it waits for have run every check whose goals
        # need a quiet machine (True), or when they have ended (False, the default).
        self.resume_at_goals_done = resume_at_goals_done
        self.jobs = jobs
        self.command = command
        self.poll_s = poll_s
        self.workdir = workdir
        self.futures: dict[str, Future[Result]] = {name: Future() for name in jobs}
        self.launched: set[str] = set()
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def start(self, only: set[str] | None = None) -> None:
        """Start every job now (once): all of them, or only these (the rest never run)."""
        with self.lock:
            if self.thread is None:
                if only is not None:
                    self.jobs = {n: j for n, j in self.jobs.items() if n in only}
                if self.workdir is None:
                    self.workdir = Path(tempfile.mkdtemp(prefix="aws2aliyun-labjobs-"))
                self.thread = threading.Thread(target=self._schedule, name="lab-jobs", daemon=True)
                self.thread.start()
                atexit.register(self.close)  # no lab run outlives an interrupted pytest

    def _go(self, name: str) -> Path:
        """The path a holding job waits for (its `--pause-until`)."""
        assert self.workdir is not None
        return self.workdir / f"{name}.go"

    def _waits_for(self, name: str) -> list[str]:
        return [n for n in self.jobs[name].resume_after if n in self.jobs]

    def _starts_after(self, name: str) -> list[str]:
        return [n for n in self.jobs[name].start_after if n in self.jobs]

    def _late(self, name: str) -> bool:
        job = self.jobs[name]
        return bool(self._starts_after(name) or [n for n in job.start_after_end if n in self.jobs])

    def _may_start(self, name: str) -> bool:
        ended = [n for n in self.jobs[name].start_after_end if n in self.jobs]
        return all(self._goals_done(n) for n in self._starts_after(name)) and all(self.futures[n].done() for n in ended)

    def _goals_done_path(self, name: str) -> Path:
        """The path a measured job creates once its checks with goals have run (`--goals-done`)."""
        assert self.workdir is not None
        return self.workdir / f"{name}.goals-done"

    def _goals_done(self, name: str) -> bool:
        return self.futures[name].done() or self._goals_done_path(name).exists()

    def _holding(self, name: str) -> bool:
        """Paused until its go (it said so with the go path's `.paused`)."""
        return bool(self._waits_for(name)) and Path(f"{self._go(name)}.paused").exists() and not self._go(name).exists()

    def _launch(self, name: str) -> _Running:
        assert self.workdir is not None
        self.launched.add(name)
        out, err, rep = (self.workdir / f"{name}.{x}" for x in ("out", "err", "json"))
        job = self.jobs[name]
        args = [*self.command, *job.args, "--report", str(rep)]
        if self._waits_for(name):
            args += ["--pause-until", str(self._go(name))]
        waited_for = any(name in self._waits_for(other) for other in self.jobs) and self.resume_at_goals_done
        if waited_for or any(name in self._starts_after(other) for other in self.jobs):
            args += ["--goals-done", str(self._goals_done_path(name))]
        side = 1
        if job.measured and self._late(name):  # beside the measured runs still going
            side += sum(1 for n in self.launched if n != name and self.jobs[n].measured and not self.futures[n].done())
        elif job.measured:  # the measured runs that start together
            side = sum(1 for n, j in self.jobs.items() if j.measured and not self._late(n))
        env = {**os.environ, SIDE_BY_SIDE_ENV: str(side)}
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
        try:
            while (pending or running) and not self.stopping.is_set():
                for name, r in list(running.items()):
                    if r.popen.poll() is None and time.monotonic() - r.started > TIMEOUT_S:
                        r.popen.terminate()  # the lab cleans up on SIGTERM and writes its report
                        r.popen.wait(60)
                    if r.popen.poll() is not None:
                        self._finish(name, running.pop(name))
                for name in running:  # a holding job goes on once what it waits for has ended
                    if self._holding(name) and all(self._goals_done(n) for n in self._waits_for(name)):
                        self._go(name).touch()
                unmeasured = [n for n in pending if not self.jobs[n].measured]
                busy = [n for n in running if not self.jobs[n].measured and not self._holding(n)]
                if unmeasured and not busy:
                    name = unmeasured[0]  # one at a time
                    pending.remove(name)
                    running[name] = self._launch(name)
                elif not unmeasured and not busy:
                    for name in list(pending):  # every measured run at once (a late one when it may)
                        if self._may_start(name):
                            pending.remove(name)
                            running[name] = self._launch(name)
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
