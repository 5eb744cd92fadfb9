"""Seed 000's settings on both ends, and failover_tunnel1 measured again against them."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from core import paths
from lab import baseline, diagnostics, goals, peer
from lab.checks.failover import measure_failover
from lab.inputs import Tunnel
from lab.report import Outcome

if TYPE_CHECKING:
    from lab.session import Session


ECS_FILES = (baseline.ECS_SWANCTL_PATH, baseline.ECS_CHARON_PATH)  # the ECS's own files a design rewrites


def _peer_files(s: Session, tunnel: Callable[[Tunnel], Tunnel]) -> dict[str, str]:
    i = s.inputs
    return {
        f"/run/lab/aws{t.number}.swanctl.conf": peer.swanctl_conf(tunnel(t), i.eip, p.mark)
        for t, p in zip(i.tunnels, s.topo.peers, strict=False)
    }


def reconfigure(s: Session, files: dict[str, str], what: str, *, restart_peers: bool) -> str:
    """Another design on the ECS (and the AWS ends' files in /run/lab): the ECS's own files
    kept for restore(), its watchdog and liveness daemon stopped (neither existed before),
    the AWS ends restarted when their files changed, strongSwan restarted."""
    script = "set -e\n"
    for path in files:
        if not path.startswith("/run/lab/"):
            # once: a design applied over another keeps the program's own for restore()
            script += f"[ -e {path}.lab-ours ] || [ ! -e {path} ] || cp -p {path} {path}.lab-ours\n"
    for path, text in files.items():
        b64 = base64.b64encode(text.encode()).decode()
        script += f"echo {b64} | base64 -d > {path}\n"
    script += f"chmod 0755 {baseline.SEED_UPDOWN_PATH}\n"
    script += f"systemctl stop {paths.WATCHDOG_TIMER} {paths.LIVENESS_SERVICE}\n"
    if restart_peers:
        nums = " ".join(str(t.number) for t in s.inputs.tunnels)
        script += (
            f"for n in {nums}; do /bin/sh /run/lab/peer.sh stop $n; done; sleep 1\n"
            f"for n in {nums}; do /bin/sh /run/lab/peer.sh start $n; done\n"
        )
    script += "systemctl restart strongswan\necho applied\n"
    res = s.sh(script, 120)
    s.baseline_applied = True
    if not res.ok or "applied" not in res.out:
        raise RuntimeError(f"could not apply {what}: " + res.text()[-1500:])
    s.event(f"{what} configured", s.now())
    return res.text()


def restore_ours(s: Session) -> str:
    """Undo reconfigure(): the ECS's own files, liveness daemon and watchdog back, the AWS ends
    configured from the plan again, both restarted."""
    script = "set -e\n"
    for path in ECS_FILES:
        script += f"if [ -e {path}.lab-ours ]; then mv -f {path}.lab-ours {path}; fi\n"
    for path, text in _peer_files(s, lambda t: t).items():
        script += f"echo {base64.b64encode(text.encode()).decode()} | base64 -d > {path}\n"
    nums = " ".join(str(t.number) for t in s.inputs.tunnels)
    script += (
        f"for n in {nums}; do /bin/sh /run/lab/peer.sh stop $n; done; sleep 1\n"
        f"for n in {nums}; do /bin/sh /run/lab/peer.sh start $n; done\n"
        f"systemctl start {paths.LIVENESS_SERVICE}\n"
        "systemctl restart strongswan\n"
        f"systemctl start {paths.WATCHDOG_TIMER}\n"
        "echo restored\n"
    )
    res = s.sh(script, 120)
    if not res.ok or "restored" not in res.out:
        raise RuntimeError("could not restore the program's configuration: " + res.text()[-1500:])
    s.baseline_applied = False
    s.event("program's configuration restored", s.now())
    return res.text()


def apply_baseline(s: Session) -> str:
    """Both ends reconfigured with seed 000's settings (lab/baseline.py); both restarted."""
    files = {
        baseline.ECS_SWANCTL_PATH: baseline.ecs_swanctl_conf(s.inputs, s.user_data),
        baseline.ECS_CHARON_PATH: baseline.ecs_charon_conf(),
        baseline.SEED_UPDOWN_PATH: baseline.seed_updown(),
        **_peer_files(s, baseline.aws_tunnel),
    }
    return reconfigure(s, files, "baseline (seed 000)", restart_peers=True)


def baseline_failover_tunnel1(s: Session) -> Outcome:
    """failover_tunnel1 again, with seed 000's settings on both ends: the reference."""
    apply_baseline(s)
    wait = s.wait_both_up(240)
    if wait is None:
        return False, "seed 000's configuration: both tunnels not up within 240s\n" + diagnostics.fault_context(s), {}
    time.sleep(5)
    r, recovered, detail, metrics, counters = measure_failover(s, "baseline")
    # ours: what failover_tunnel1 measured earlier in this run (its report entry)
    first = s.report.get("failover_tunnel1")
    ours = first.metrics if first and first.metrics.get("uplink_outage_s") is not None else None
    up_ratio = baseline.ratio(ours["uplink_outage_s"] if ours else None, r.up.outage_s)
    down_ratio = baseline.ratio(ours["downlink_outage_s"] if ours else None, r.down.outage_s)
    metrics = {
        "baseline_uplink_outage_s": metrics["uplink_outage_s"],
        "baseline_downlink_outage_s": metrics["downlink_outage_s"],
        "uplink_ratio": up_ratio,
        "downlink_ratio": down_ratio,
        "baseline_settings": "seed 000: IKEv1 aes128-sha1-modp1024, DPD 10s/30s restart, charon defaults",
        **{k: v for k, v in metrics.items() if k not in ("uplink_outage_s", "downlink_outage_s")},
    }
    # ours must beat the reference on the uplink (the ECS's own detection) and not be
    # worse on the downlink (both are bounded by the AWS end's DPD; 10% for noise)
    beats = all(g.judge(metrics)[0] for g in (goals.BASELINE_UPLINK_RATIO, goals.BASELINE_DOWNLINK_RATIO))
    ok = recovered and beats
    detail = (
        "seed 000's settings on the ECS (IKEv1, DPD 10s/30s, charon defaults): "
        + detail
        + "; ours/baseline: "
        + (f"uplink {up_ratio}, downlink {down_ratio}" if ours else "not measured (failover_tunnel1 not run)")
    )
    if not ok:
        detail += f"\nblackhole counters: {counters}\n" + diagnostics.fault_context(s)
    return ok, detail, metrics
