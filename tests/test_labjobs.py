"""The lab tests' job queue (tests/labjobs.py) with stand-in jobs (quick: no VM): the
measured runs together, the unmeasured ones once every measured run has booted, at nice 19
until a measured run has ended; and lab.vm's QEMU child carrying that niceness over to its
own session's autogroup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab import vm
from tests.labjobs import Job, LabJobs

# A stand-in for `python -m lab run`: "boots" for BOOT seconds, prints the lab's phase line,
# "checks" for RUN seconds, writes its report with its times, niceness and side-by-side count.
FAKE = r"""
import json, os, sys, time
boot, run, report = float(sys.argv[1]), float(sys.argv[2]), sys.argv[4]
t0, nice0 = time.time(), os.nice(0)
time.sleep(boot)
print("[lab   %.1fs] checks" % boot, file=sys.stderr, flush=True)
t1 = time.time()
time.sleep(run)
side = os.environ.get("AWS2ALIYUN_LAB_SIDE_BY_SIDE")
json.dump(
    {"start": t0, "past_boot": t1, "end": time.time(), "nice0": nice0, "nice": os.nice(0), "side": side},
    open(report, "w"),
)
sys.exit(int(sys.argv[2] == "0.1"))
"""


def test_measured_runs_together_unmeasured_after_their_boot_at_nice_19(tmp_path):
    script = tmp_path / "fake.py"
    script.write_text(FAKE)
    jobs = {
        "a": Job(["0.5", "0.5"]),
        "b": Job(["0.3", "4.0"]),
        "c": Job(["0.2", "0.1"], measured=False),
        "d": Job(["0.2", "3.5"], measured=False),
    }
    j = LabJobs(jobs, workdir=tmp_path, command=(sys.executable, str(script)), poll_s=0.05)
    try:
        res = {n: j.result(n) for n in jobs}
    finally:
        j.close()
    t = {n: r.report for n, r in res.items()}
    assert all(v is not None for v in t.values())
    # ordering only, no timing: the machine may be busy
    assert t["a"]["start"] < t["b"]["end"] and t["b"]["start"] < t["a"]["end"]  # measured: together
    for u in ("c", "d"):  # unmeasured: after every measured run booted, at the lowest priority
        assert t[u]["start"] >= max(t["a"]["past_boot"], t["b"]["past_boot"])
        assert t[u]["nice0"] == 19
    assert t["d"]["end"] > t["a"]["end"] and t["d"]["nice"] == 0  # full priority once a measured run ended
    assert t["a"]["nice"] < 19  # measured runs keep the caller's priority
    assert {v["side"] for v in t.values()} == {"4"}
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
