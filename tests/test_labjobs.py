"""The lab tests' job queue (tests/labjobs.py) with stand-in jobs (quick: no VM): measured
runs start together, unmeasured ones only once every measured run has booted, at nice 19."""

from __future__ import annotations

import sys

from tests.labjobs import Job, LabJobs

# A stand-in for `python -m lab run`: "boots" for BOOT seconds, prints the lab's phase line,
# "checks" for RUN seconds, writes its report with its times and its niceness.
FAKE = r"""
import json, os, sys, time
boot, run, report = float(sys.argv[1]), float(sys.argv[2]), sys.argv[4]
t0 = time.time()
time.sleep(boot)
print("[lab   %.1fs] checks" % boot, file=sys.stderr, flush=True)
t1 = time.time()
time.sleep(run)
json.dump({"start": t0, "past_boot": t1, "end": time.time(), "nice": os.nice(0)}, open(report, "w"))
sys.exit(int(sys.argv[2] == "0.1"))
"""


def test_measured_runs_together_unmeasured_after_their_boot_and_niced(tmp_path):
    script = tmp_path / "fake.py"
    script.write_text(FAKE)
    jobs = {
        "a": Job(["0.4", "1.0"]),
        "b": Job(["0.8", "1.0"]),
        "c": Job(["0.2", "0.1"], measured=False),
        "d": Job(["0.2", "0.3"], measured=False),
    }
    j = LabJobs(jobs, workdir=tmp_path, command=(sys.executable, str(script)), poll_s=0.05)
    try:
        res = {n: j.result(n) for n in jobs}
    finally:
        j.close()
    t = {n: r.report for n, r in res.items()}
    assert all(v is not None for v in t.values())
    assert abs(t["a"]["start"] - t["b"]["start"]) < 0.3  # measured runs: together
    for u in ("c", "d"):  # unmeasured: after every measured run booted, at the lowest priority
        assert t[u]["start"] >= max(t["a"]["past_boot"], t["b"]["past_boot"])
        assert t[u]["nice"] == 19
    assert t["a"]["nice"] < 19  # measured runs keep the caller's priority
    assert res["c"].proc.returncode == 1 and res["a"].proc.returncode == 0
    assert "checks" in res["a"].proc.stderr
