"""The lab tests' job queue (tests/labjobs.py) with stand-in jobs (quick: no VM): the
measured runs together at normal priority, the unmeasured ones one at a time beside them at
nice 19; and lab.vm's QEMU child carrying the lab's niceness over to its own session's
autogroup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab import vm
from tests.labjobs import NICE, Job, LabJobs

# A stand-in for `python -m lab run`: runs for SECONDS, writes its report with its times and
# the side-by-side count it was given; exits 1 when told to run 0.1 s.
FAKE = r"""
import json, os, sys, time
seconds, report = float(sys.argv[1]), sys.argv[3]  # argv[2]: --report
t0 = time.time()
time.sleep(seconds)
side = os.environ.get("AWS2ALIYUN_LAB_SIDE_BY_SIDE")
niced = os.environ.get("AWS2ALIYUN_LAB_NICED_BESIDE")
json.dump({"start": t0, "end": time.time(), "side": side, "niced": niced, "nice": os.nice(0)}, open(report, "w"))
print("[lab   0.0s] checks", file=sys.stderr)
sys.exit(int(sys.argv[1] == "0.1"))
"""


def test_measured_runs_together_and_unmeasured_ones_niced_one_at_a_time_beside_them(tmp_path):
    script = tmp_path / "fake.py"
    script.write_text(FAKE)
    jobs = {
        "a": Job(["1.0"]),
        "b": Job(["0.8"]),
        "c": Job(["0.1"], measured=False),
        "d": Job(["0.3"], measured=False),
        "e": Job(["0.2"], measured=False),
    }
    j = LabJobs(jobs, workdir=tmp_path, command=(sys.executable, str(script)), poll_s=0.05)
    try:
        res = {n: j.result(n) for n in jobs}
    finally:
        j.close()
    t = {n: r.report for n, r in res.items()}
    assert all(v is not None for v in t.values())
    # ordering only, no timing: the machine may be busy
    measured = ("a", "b")
    assert t["c"]["end"] <= t["d"]["start"] and t["d"]["end"] <= t["e"]["start"]  # one at a time, in order
    assert max(t[m]["start"] for m in measured) < min(t[m]["end"] for m in measured)  # together
    assert t["c"]["start"] < min(t[m]["end"] for m in measured)  # beside them, not after
    base = os.nice(0)
    assert [t[n]["nice"] for n in "abcde"] == [base, base] + [min(base + NICE, 19)] * 3
    assert [t[n]["side"] for n in "abcde"] == ["2", "2", "3", "3", "3"]
    assert [t[n]["niced"] for n in "abcde"] == ["1", "1", "0", "0", "0"]
    assert res["c"].proc.returncode == 1 and res["a"].proc.returncode == 0
    assert "checks" in res["a"].proc.stderr


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


def test_a_vm_is_reniced_autogroup_and_threads(tmp_path):
    """VM.renice, as a niced boot's QEMU gets back to normal priority for the checks."""
    machine = vm.VM(tmp_path, *(tmp_path / n for n in ("k", "i", "d", "s", "l")), "10.0.2.0/24", nice=19)
    machine.proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert machine.renice(7) is True
        assert os.getpriority(os.PRIO_PROCESS, machine.proc.pid) == 7 and machine.nice == 7
        autogroup = Path(f"/proc/{machine.proc.pid}/autogroup")
        if autogroup.exists():
            assert autogroup.read_text().strip().endswith("nice 7")
        if os.geteuid() == 0:  # lowering a niceness needs root
            assert machine.renice(0) is True
            assert os.getpriority(os.PRIO_PROCESS, machine.proc.pid) == 0
    finally:
        machine.proc.kill()
        machine.proc.wait()
    assert machine.renice(0) is False  # QEMU gone
