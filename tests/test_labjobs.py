"""The lab tests' job queue (tests/labjobs.py) with stand-in jobs (quick: no VM): the
unmeasured runs first, one at a time, then the measured ones together; a holding run paused
while the measured ones run, until those it waits for have ended; and lab.vm's QEMU child
carrying the lab's niceness over to its own session's autogroup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab import vm
from tests.labjobs import Job, LabJobs

# A stand-in for `python -m lab run`: runs for SECONDS, writes its report with its times and
# the side-by-side count it was given; exits 1 when told to run 0.1 s.
FAKE = r"""
import json, os, sys, time
seconds, report = float(sys.argv[1]), sys.argv[3]  # argv[2]: --report
t0 = time.time()
time.sleep(seconds)
side = os.environ.get("AWS2ALIYUN_LAB_SIDE_BY_SIDE")
json.dump({"start": t0, "end": time.time(), "side": side}, open(report, "w"))
print("[lab   0.0s] checks", file=sys.stderr)
sys.exit(int(sys.argv[1] == "0.1"))
"""


def test_unmeasured_runs_one_at_a_time_then_the_measured_ones_together(tmp_path):
    script = tmp_path / "fake.py"
    script.write_text(FAKE)
    jobs = {
        "a": Job(["1.0"]),
        "b": Job(["0.8"]),
        "c": Job(["0.1"], measured=False),
        "d": Job(["0.6"], measured=False),
        "e": Job(["0.4"], measured=False),
    }
    j = LabJobs(jobs, workdir=tmp_path, command=(sys.executable, str(script)), poll_s=0.05)
    try:
        res = {n: j.result(n) for n in jobs}
    finally:
        j.close()
    t = {n: r.report for n, r in res.items()}
    assert all(v is not None for v in t.values())
    # ordering only, no timing: the machine may be busy
    unmeasured, measured = ("c", "d", "e"), ("a", "b")
    assert t["c"]["end"] <= t["d"]["start"] and t["d"]["end"] <= t["e"]["start"]  # one at a time, in order
    assert max(t[m]["start"] for m in measured) < min(t[m]["end"] for m in measured)  # together
    assert min(t[m]["start"] for m in measured) >= max(t[u]["end"] for u in unmeasured)  # nothing beside them
    assert [t[n]["side"] for n in "abcde"] == ["2", "2", "1", "1", "1"]
    assert res["c"].proc.returncode == 1 and res["a"].proc.returncode == 0
    assert "checks" in res["a"].proc.stderr


# A stand-in for `python -m lab run --mutate A,B,... --pause-until GO` and for a measured run
# with `--goals-done DONE`: SECONDS of work; then DONE is created, or it holds (GO.paused)
# until GO exists; then SECONDS more.
HOLDING = r"""
import json, os, sys, time
from pathlib import Path
def arg(name):
    return Path(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else None
seconds, report = float(sys.argv[1]), sys.argv[3]
go, done = arg("--pause-until"), arg("--goals-done")
t0 = time.time()
time.sleep(seconds)
paused = time.time()
if done:
    done.touch()
if go:
    Path(f"{go}.paused").touch()
    while not go.exists():
        time.sleep(0.02)
resumed = time.time()
time.sleep(seconds)
json.dump(
    {"start": t0, "paused": paused, "resumed": resumed, "end": time.time(), "held": bool(go), "done": bool(done),
     "side": os.environ.get("AWS2ALIYUN_LAB_SIDE_BY_SIDE")},
    open(report, "w"),
)
"""


def test_a_holding_run_pauses_while_the_measured_ones_run_and_resumes_after_those_it_waits_for(tmp_path):
    """It resumes once the job it waits for says its checks with goals have run (here half
    way through that job: `paused` is when the fake created its --goals-done path)."""
    script = tmp_path / "fake.py"
    script.write_text(HOLDING)
    jobs = {
        "modern": Job(["0.3"]),
        "legacy": Job(["1.5"]),
        "mutations": Job(["0.3"], measured=False, resume_after=("modern", "not-selected")),
    }
    j = LabJobs(jobs, workdir=tmp_path, command=(sys.executable, str(script)), poll_s=0.05, resume_at_goals_done=True)
    try:
        t = {n: j.result(n).report for n in jobs}
    finally:
        j.close()
    held, modern, legacy = t["mutations"], t["modern"], t["legacy"]
    assert held["held"] and not modern["held"]  # only the holding job is given --pause-until
    assert modern["done"] and not legacy["done"]  # and only the awaited one --goals-done
    assert held["paused"] <= min(modern["start"], legacy["start"])  # the measured runs start once it holds
    assert held["resumed"] >= modern["paused"]  # it goes on once the awaited checks have run
    assert held["resumed"] < legacy["end"]  # not after the one it does not wait for


def test_a_late_measured_run_starts_once_those_it_starts_after_have_run_their_quiet_checks(tmp_path):
    """A pair's run (three VMs) starts when the profiles no longer measure anything a boot
    would disturb: their --goals-done, not their end; a job it does not name does not hold it."""
    script = tmp_path / "fake.py"
    script.write_text(HOLDING)
    jobs = {
        "modern": Job(["0.5"]),
        "legacy": Job(["0.2"]),
        "pair": Job(["0.1"], start_after=("modern", "not-selected")),
    }
    j = LabJobs(jobs, workdir=tmp_path, command=(sys.executable, str(script)), poll_s=0.05)
    try:
        t = {n: j.result(n).report for n in jobs}
    finally:
        j.close()
    assert t["modern"]["done"] and not t["legacy"]["done"] and not t["pair"]["done"]
    assert t["pair"]["start"] >= t["modern"]["paused"]  # after modern's quiet checks
    assert t["pair"]["start"] < t["modern"]["end"]  # not after its end: beside its soaks


def test_a_run_started_after_others_end_waits_for_their_end_and_for_the_unmeasured_ones(tmp_path):
    """The BGP stack's run starts once the legacy profile and the mutations have ended (their VMs
    gone), beside what the modern profile still runs; its report counts the runs beside it."""
    script = tmp_path / "fake.py"
    script.write_text(HOLDING)
    jobs = {
        "modern": Job(["0.8"]),
        "legacy": Job(["0.2"]),
        "mutations": Job(["0.2"], measured=False, resume_after=("legacy",)),
        "bgp": Job(["0.1"], start_after_end=("legacy", "mutations", "not-selected")),
        "bgp-tgw": Job(["0.1"], start_after_end=("bgp",)),  # not started yet: not beside bgp
    }
    j = LabJobs(jobs, workdir=tmp_path, command=(sys.executable, str(script)), poll_s=0.05)
    try:
        t = {n: j.result(n).report for n in jobs}
    finally:
        j.close()
    assert t["bgp"]["start"] >= max(t["legacy"]["end"], t["mutations"]["end"])
    assert t["bgp"]["start"] < t["modern"]["end"]  # beside modern's last checks
    assert (t["modern"]["side"], t["legacy"]["side"], t["bgp"]["side"]) == ("2", "2", "2")
    assert t["bgp-tgw"]["start"] >= t["bgp"]["end"]


def test_by_default_a_holding_run_resumes_once_those_it_waits_for_have_ended(tmp_path):
    script = tmp_path / "fake.py"
    script.write_text(HOLDING)
    jobs = {"modern": Job(["0.3"]), "mutations": Job(["0.3"], measured=False, resume_after=("modern",))}
    j = LabJobs(jobs, workdir=tmp_path, command=(sys.executable, str(script)), poll_s=0.05)
    try:
        t = {n: j.result(n).report for n in jobs}
    finally:
        j.close()
    assert t["mutations"]["held"] and not t["modern"]["done"]  # no --goals-done given
    assert t["mutations"]["resumed"] >= t["modern"]["end"]


def test_a_job_that_waits_for_no_selected_job_does_not_hold(tmp_path):
    script = tmp_path / "fake.py"
    script.write_text(HOLDING)
    j = LabJobs(
        {"mutations": Job(["0.1"], measured=False, resume_after=("modern",))},
        workdir=tmp_path,
        command=(sys.executable, str(script)),
        poll_s=0.05,
    )
    try:
        assert j.result("mutations").report["held"] is False
    finally:
        j.close()


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="no sched_autogroup in this kernel")
def test_qemu_child_takes_the_lab_niceness_to_its_autogroup():
    """A child in a new session, as lab.vm starts QEMU, from a lab run at nice 19."""
    code = (
        "import subprocess, sys; from lab import vm; "
        "p = subprocess.run(['cat', '/proc/self/autogroup'], start_new_session=True, "
        "preexec_fn=vm._die_with_parent, capture_output=True, text=True); print(p.stdout)"
    )
    out = subprocess.run(
        ["nice", "-n", "19", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(vm.__file__).parent.parent,
        env={**os.environ, "PYTHONPATH": str(Path(vm.__file__).parent.parent)},
    ).stdout
    assert out.strip().endswith("nice 19"), out
