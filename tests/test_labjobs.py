"""The lab tests' job queue (tests/labjobs.py) with stand-in jobs: one boot at a time, at most
SLOTS at once, every result delivered (quick: no VM)."""

from __future__ import annotations

import sys

from tests.labjobs import LabJobs

# A stand-in for `python -m lab run`: "boots" for BOOT seconds, prints the lab's phase line,
# "checks" for RUN seconds, writes its report with its start and end times.
FAKE = r"""
import json, sys, time
boot, run, report = float(sys.argv[1]), float(sys.argv[2]), sys.argv[4]
t0 = time.time()
time.sleep(boot)
print("[lab   %.1fs] checks" % boot, file=sys.stderr, flush=True)
t1 = time.time()
time.sleep(run)
json.dump({"start": t0, "past_boot": t1, "end": time.time()}, open(report, "w"))
sys.exit(int(sys.argv[2] == "0.1"))
"""


def test_one_boot_at_a_time_and_at_most_slots_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS2ALIYUN_LAB_JOBS", "2")
    script = tmp_path / "fake.py"
    script.write_text(FAKE)
    jobs = {"a": ["0.6", "1.5"], "b": ["0.6", "1.5"], "c": ["0.3", "0.1"]}
    j = LabJobs(jobs, workdir=tmp_path, command=(sys.executable, str(script)), poll_s=0.05)
    try:
        res = {n: j.result(n) for n in jobs}
    finally:
        j.close()
    times = {n: r.report for n, r in res.items()}
    assert all(t is not None for t in times.values())
    a, b, c = times["a"], times["b"], times["c"]
    assert b["start"] >= a["past_boot"]  # b booted only after a had booted
    assert c["start"] >= min(a["end"], b["end"])  # two slots: c waited for one to finish
    assert res["c"].proc.returncode == 1 and res["a"].proc.returncode == 0
    assert "checks" in res["a"].proc.stderr
