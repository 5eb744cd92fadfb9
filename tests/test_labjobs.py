"""The lab tests' job queue (tests/labjobs.py) with stand-in jobs (quick: no VM): the
unmeasured runs first, together; the measured runs together once the unmeasured are done."""

from __future__ import annotations

import sys

from tests.labjobs import Job, LabJobs

# A stand-in for `python -m lab run`: "boots" for BOOT seconds, prints the lab's phase line,
# "checks" for RUN seconds, writes its report with its times and the lab's side-by-side count.
FAKE = r"""
import json, os, sys, time
boot, run, report = float(sys.argv[1]), float(sys.argv[2]), sys.argv[4]
t0 = time.time()
time.sleep(boot)
print("[lab   %.1fs] checks" % boot, file=sys.stderr, flush=True)
t1 = time.time()
time.sleep(run)
side = os.environ.get("AWS2ALIYUN_LAB_SIDE_BY_SIDE")
json.dump({"start": t0, "past_boot": t1, "end": time.time(), "side": side}, open(report, "w"))
sys.exit(int(sys.argv[2] == "0.1"))
"""


def test_unmeasured_runs_first_then_measured_ones_together(tmp_path):
    script = tmp_path / "fake.py"
    script.write_text(FAKE)
    jobs = {
        "a": Job(["0.4", "0.6"]),
        "b": Job(["0.2", "0.6"]),
        "c": Job(["0.2", "0.1"], measured=False),
        "d": Job(["0.3", "0.5"], measured=False),
    }
    j = LabJobs(jobs, workdir=tmp_path, command=(sys.executable, str(script)), poll_s=0.05)
    try:
        res = {n: j.result(n) for n in jobs}
    finally:
        j.close()
    t = {n: r.report for n, r in res.items()}
    assert all(v is not None for v in t.values())
    assert abs(t["c"]["start"] - t["d"]["start"]) < 0.3  # unmeasured: together, first
    assert abs(t["a"]["start"] - t["b"]["start"]) < 0.3  # measured: together
    assert min(t["a"]["start"], t["b"]["start"]) >= max(t["c"]["end"], t["d"]["end"])  # nothing beside them
    assert {v["side"] for v in t.values()} == {"2"}
    assert res["c"].proc.returncode == 1 and res["a"].proc.returncode == 0
    assert "checks" in res["a"].proc.stderr
