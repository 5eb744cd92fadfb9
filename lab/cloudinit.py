"""cloud-init's progress as the lab watches it: from the JSON files cloud-init itself writes.

`cloud-init status --format json` is the authority (the `cloud_init_clean` check asks it
once), but it is a Python program: in a TCG guest each call costs about 2 CPU-seconds, and
polled every few seconds during a boot it took a third of the boot's CPU. The files it reads
are cheap to `cat`: `/run/cloud-init/status.json` (each stage's start, finish and errors,
written as the stages run) and `/run/cloud-init/result.json` (written once, when the last
stage has finished). The status derived here follows `cloud-init status`'s own rules.
"""

from __future__ import annotations

import json

RUN_DIR = "/run/cloud-init"
STATUS_FILE = f"{RUN_DIR}/status.json"
RESULT_FILE = f"{RUN_DIR}/result.json"
SEPARATOR = "=== result.json"
# One guest command: both files (either may be missing), split by SEPARATOR.
STATUS_SCRIPT = f"cat {STATUS_FILE} 2>/dev/null; echo; echo '{SEPARATOR}'; cat {RESULT_FILE} 2>/dev/null"
# The statuses after which cloud-init does nothing more this boot.
TERMINAL = ("done", "error", "disabled", "degraded done", "degraded error")


def _v1(text: str) -> dict | None:
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    v1 = doc.get("v1") if isinstance(doc, dict) else None
    return v1 if isinstance(v1, dict) else None


def status(out: str) -> str:
    """STATUS_SCRIPT's output -> "not run", "running", "done" or "error" ("" when the output
    is not STATUS_SCRIPT's: the guest command itself failed).

    As `cloud-init status`: done once result.json exists, error when it lists errors;
    before that running once status.json shows a stage started."""
    if SEPARATOR not in out:
        return ""
    status_text, _, result_text = out.partition(SEPARATOR)
    result = _v1(result_text.strip())
    if result is not None:
        return "error" if result.get("errors") else "done"
    stages = _v1(status_text.strip())
    if stages is None:
        return "not run"
    started = stages.get("stage") or any(isinstance(v, dict) and v.get("start") for v in stages.values())
    return "running" if started else "not run"


# What a boot's time went to, from cloud-init's own event log as JSON (`cloud-init analyze
# dump`: every stage's and module's start and finish events, with timestamps).
ANALYZE_SCRIPT = "cloud-init analyze dump 2>/dev/null"
# (cloud.cfg may spell a module with dashes or underscores; the event carries its spelling)
PACKAGES_EVENT = "modules-final/config-package-update-upgrade-install"


def _event_name(name: object) -> str:
    return str(name).replace("_", "-")


def durations(dump: str) -> dict[str, float]:
    """ANALYZE_SCRIPT's output -> how long each event ran, by name (its last start to the
    finish after it: a boot of a reused disk repeats some events); unfinished ones left out."""
    try:
        events = json.loads(dump)
    except ValueError:
        return {}
    started: dict[str, float] = {}
    took: dict[str, float] = {}
    for ev in events if isinstance(events, list) else []:
        if not isinstance(ev, dict):
            continue
        name, at = _event_name(ev.get("name")), ev.get("timestamp")
        if not isinstance(at, (int, float)):
            continue
        if ev.get("event_type") == "start":
            started[name] = at
            took.pop(name, None)
        elif ev.get("event_type") == "finish" and name in started:
            took[name] = round(at - started[name], 1)
    return took


def event_seconds(dump: str, name: str) -> float | None:
    """How long the event NAME ran (durations()), None when it did not finish."""
    return durations(dump).get(_event_name(name))


def slowest_modules(dump: str, n: int = 6) -> dict[str, float]:
    """The N cloud-init modules that took longest (`stage/config-module`: seconds), slowest
    first: what a slow boot's time went to."""
    mods = {k: v for k, v in durations(dump).items() if k.count("/") == 1 and "/config-" in k}
    return dict(sorted(mods.items(), key=lambda kv: -kv[1])[:n])
