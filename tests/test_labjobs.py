"""The lab tests' job queue (tests/labjobs.py) with stand-in jobs (quick: no VM): every run
starts at once and the measured ones hold before their fault checks until the unmeasured
ones are done; and lab.vm's QEMU child carrying the lab's niceness over to its own
session's autogroup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab import vm
from lab.machine import QUIET_ENV
from tests.labjobs import Job, LabJobs

# A stand-in for `python -m lab run`: "boots" for BOOT seconds, then (like lab.run before its
# fault checks) holds while the quiet-marker file exists, "measures" for RUN seconds and
# writes its report with its times and the side-by-side count.
FAKE = r"""
import json, os, sys, time
boot, run, report = float(sys.argv[1]), float(sys.argv[2]), sys.argv[4]  # argv[3]: --report
t0 = time.time()
time.sleep(boot)
marker = os.environ.get("QUIET_ENV_NAME")
while marker and os.path.exists(marker):
    time.sleep(0.05)
t1 = time.time()
time.sleep(run)
side = os.environ.get("AWS2ALIYUN_LAB_SIDE_BY_SIDE")
json.dump({"start": t0, "faults": t1, "end": time.time(), "side": side, "held": bool(marker)}, open(report, "w"))
print("[lab   0.0s] checks", file=sys.stderr)
sys.exit(int(sys.argv[2] == "0.1"))
"""


def test_all_start_at_once_and_measured_faults_wait_for_the_unmeasured(tmp_path):
    script = tmp_path / "fake.py"
    script.write_text(FAKE.replace("QUIET_ENV_NAME", QUIET_ENV))
    jobs = {
        "a": Job(["0.2", "1.0"]),
        "b": Job(["0.3", "1.0"]),
        "c": Job(["0.2", "0.1"], measured=False),
        "d": Job(["1.0", "0.5"], measured=False),
    }
    j = LabJobs(jobs, workdir=tmp_path, command=(sys.executable, str(script)), poll_s=0.05)
    try:
        res = {n: j.result(n) for n in jobs}
    finally:
        j.close()
    t = {n: r.report for n, r in res.items()}
    assert all(v is not None for v in t.values())
    # ordering only, no timing: the machine may be busy
    starts = [v["start"] for v in t.values()]
    assert max(starts) < min(v["end"] for v in t.values())  # all running at once
    for m in ("a", "b"):
        assert t[m]["held"] and t[m]["faults"] >= max(t["c"]["end"], t["d"]["end"])
    assert not t["c"]["held"] and not t["d"]["held"]  # unmeasured runs never wait
    assert {v["side"] for v in t.values()} == {"4"}
    assert not j.quiet.exists()
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
