"""The lossy cross-border path (issue 15): the link left alone for a while on a path with
delay and loss (lab/netem.py) while probes run, and every tunnel teardown and route move
counted, for the program's design and for the design before data-plane liveness
(lab/previous.py).

What counts, from the logs of both ends over the soak:
- a teardown: charon giving up on a peer, on the ECS (its journal) or an AWS end (its log):
  IKEv2 "giving up after N retransmits", IKEv1 "DPD check timed out";
- a route switch: the traffic to AWS moved off tunnel 1, by a liveness verdict
  ("tunnel1: dead (") or by the VTI going down with its SA (updown "tunnel1: down: vti1 (");
  the same on tunnel 2, the standby, is a standby withdrawal (reported, it moves nothing).
For every liveness verdict its own log line (probes unanswered, probes the daemon failed to
send, its longest pause) and the lab probes delayed in the seconds before it tell a path that
stopped answering from a gateway that stalled (docs/lab-findings.md #17).
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from core import paths
from lab import diagnostics, previous
from lab.checks.baseline import reconfigure, restore_ours
from lab.netem import CROSS_BORDER
from lab.probes import SLOW_S
from lab.report import Outcome
from userdata import liveness, swanctl

if TYPE_CHECKING:
    from lab.session import Session

# A lab probe held up this long on tunnel 1 was stalled by the lab's own host (QEMU starved of
# CPU by the lab runs beside it), not by the simulated path: netem delays a probe by at most a
# few hundred milliseconds one way. A liveness verdict with such a stall in the seconds before
# it is the daemon doing its job (the tunnel did not deliver for longer than DOWN_AFTER_S), not
# a flap on loss: it is counted apart (route_switches_on_host_stall), not against the goal.
HOST_STALL_S = liveness.DOWN_AFTER_S
STALL_WINDOW_S = 5.0


TEARDOWN = re.compile(r"giving up after \d+ retransmits|DPD check timed out")
VERDICT = re.compile(r"\btunnel(\d+): dead \(")
VTI_DOWN = re.compile(r"\btunnel(\d+): down: (?!one of )\S+ \(")


def count_teardowns(text: str) -> int:
    return sum(1 for ln in text.splitlines() if TEARDOWN.search(ln))


def per_tunnel(pattern: re.Pattern, text: str, tunnels=(1, 2)) -> dict[int, int]:
    counts = dict.fromkeys(tunnels, 0)
    for ln in text.splitlines():
        m = pattern.search(ln)
        if m and int(m.group(1)) in counts:
            counts[int(m.group(1))] += 1
    return counts


def verdict_times(journal: str) -> list[tuple[float, int]]:
    """(time, tunnel) of each liveness verdict in `journalctl -o short-unix` text."""
    out = []
    for ln in journal.splitlines():
        m = VERDICT.search(ln)
        head = ln.split(None, 1)[0] if ln.strip() else ""
        if m:
            try:
                out.append((float(head), int(m.group(1))))
            except ValueError:
                continue
    return out


def expected_per_day(design: str, p: float, ike_version: int = 2) -> float:
    """False verdicts per tunnel per day the arithmetic expects at loss p each way: ours counts
    liveness verdicts (a route move each) and DPD teardowns; the old design DPD teardowns."""
    if design == "previous":
        return previous.false_teardowns_per_day(p)
    return liveness.liveness_false_downs_per_day(p) + swanctl.ecs_dpd_false_teardowns_per_day(p, ike_version)


def expected_teardowns(s: Session, design: str, p: float, soak_s: float) -> float:
    """The false teardowns the arithmetic expects over a soak of the program's design: the
    ECS's DPD on every tunnel. The AWS end hears the ECS's requests (as often as its own
    delay) and so seldom asks itself; its teardowns are counted, not expected. The design
    before liveness: reported, no expectation."""
    if design != "ours":
        return 0.0
    per_day = swanctl.ecs_dpd_false_teardowns_per_day(p, s.inputs.ike_version) * len(s.inputs.tunnels)
    return per_day * soak_s / liveness.SECONDS_PER_DAY


def _peer_log_lines(s: Session) -> dict[int, int]:
    nums = [t.number for t in s.inputs.tunnels]
    out = s.sh("; ".join(f"echo {n} $(wc -l < /run/lab/log/aws{n}-charon.log 2>/dev/null || echo 0)" for n in nums), 15)
    counts = {}
    for ln in out.out.splitlines():
        parts = ln.split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            counts[int(parts[0])] = int(parts[1])
    return counts


def soak(s: Session, design: str) -> tuple[bool, str, dict]:
    """The link on the cross-border path for s.opts.lossy_s seconds with probes running; what
    tore down or moved, and the probes' loss against the path's."""
    nums = [t.number for t in s.inputs.tunnels]
    lines0 = _peer_log_lines(s)
    live0 = s.liveness()
    t_start = s.now()
    imp = CROSS_BORDER
    s.netem.apply(imp)
    t0 = s.probes.start()
    try:
        time.sleep(s.opts.lossy_s)
    finally:
        delays = s.probes.delays()
        r = s.probes.stop(t0)
        qdiscs = s.netem.stats()
        s.netem.clear()
        t_end = s.now()
    live1 = s.liveness()
    since = f"--since @{t_start:.0f} --until @{t_end + 1:.0f} --no-pager -o short-unix"
    journals = s.ecs_sh(
        f"echo '=== strongswan'; journalctl -u strongswan {since}; "
        f"echo '=== liveness'; journalctl -u {paths.LIVENESS_SERVICE} {since}; "
        f"echo '=== updown'; journalctl -t aws2aliyun-updown {since}",
        60,
    ).out
    sec = diagnostics_sections(journals)
    peer_text = s.sh(
        "; ".join(
            f"tail -n +{lines0.get(n, 0) + 1} /run/lab/log/aws{n}-charon.log 2>/dev/null | sed 's/^/aws{n}: /'"
            for n in nums
        ),
        30,
    ).out
    ecs_teardowns = count_teardowns(sec.get("strongswan", ""))
    aws_teardowns = count_teardowns(peer_text)
    verdicts = per_tunnel(VERDICT, sec.get("liveness", ""))
    downs = per_tunnel(VTI_DOWN, sec.get("updown", ""))
    verdict_log = [ln for ln in sec.get("liveness", "").splitlines() if VERDICT.search(ln)][:10]
    windows = [
        {
            "tunnel": n,
            "t": round(t - t_start, 1),
            "slow_probes_before": [
                (round(ts - t_start, 1), dl)
                for d in delays.values()
                for ts, dl in d["slowest"]
                if t - STALL_WINDOW_S <= ts <= t
            ],
        }
        for t, n in verdict_times(sec.get("liveness", ""))
    ]
    for w in windows:
        w["host_stall"] = on_host_stall(w)
    stalls = sum(1 for w in windows if w["host_stall"])
    answered = {}
    for name, t1 in live1.items():
        t0_ = live0.get(name, {})
        sent = t1.get("sent", 0) - t0_.get("sent", 0)
        got = t1.get("answered", 0) - t0_.get("answered", 0)
        answered[name] = round(100 * got / sent, 1) if sent > 0 else None
    loss = {d: round(100 * x.lost / x.sent, 1) if x.sent else None for d, x in (("uplink", r.up), ("downlink", r.down))}
    metrics = {
        "design": design,
        "path": imp.describe(),
        "soak_s": round(t_end - t_start),
        "teardowns": ecs_teardowns + aws_teardowns,
        "ecs_teardowns": ecs_teardowns,
        "aws_teardowns": aws_teardowns,
        "route_switches": verdicts[1] + downs[1] - stalls,
        "route_switches_on_host_stall": stalls,
        "standby_withdrawals": verdicts[2] + downs[2],
        "liveness_verdicts": {f"tunnel{n}": c for n, c in verdicts.items()},
        "vti_downs": {f"tunnel{n}": c for n, c in downs.items()},
        "verdict_windows": windows,
        "probe_delays": {d: {k: v for k, v in x.items() if k != "slowest"} for d, x in delays.items()},
        "verdict_log": verdict_log,
        "path_loss_pct": imp.loss_pct,
        "uplink_loss_pct": loss["uplink"],
        "downlink_loss_pct": loss["downlink"],
        "uplink_outage_s": round(r.up.outage_s, 2),
        "downlink_outage_s": round(r.down.outage_s, 2),
        "liveness_answered_pct": answered,
        "netem": qdiscs,
        "ike_version": s.inputs.ike_version,
        "expected_false_per_tunnel_per_day": round(expected_per_day(design, imp.loss, s.inputs.ike_version), 3),
        "expected_teardowns": round(expected_teardowns(s, design, imp.loss, t_end - t_start), 2),
        "uplink": r.up.as_metrics(t0),
        "downlink": r.down.as_metrics(t0),
    }
    flowing = r.up.recovered and r.down.recovered and r.up.received > 0 and r.down.received > 0
    detail = (
        f"{s.opts.lossy_s:g} s on a path of {imp.describe()}: {metrics['teardowns']} teardowns "
        f"(ECS {ecs_teardowns}, AWS ends {aws_teardowns}), {metrics['route_switches']} route switches off "
        f"tunnel 1 (+{stalls} on a stall of the lab's host), {metrics['standby_withdrawals']} standby withdrawals; probes lost {loss['uplink']} % up, "
        f"{loss['downlink']} % down (path {imp.loss_pct:g} % each way), longest gap up "
        f"{r.up.outage_s:.1f} s, down {r.down.outage_s:.1f} s"
    )
    if any(answered.values()):
        detail += "; liveness answered " + ", ".join(f"{k} {v} %" for k, v in sorted(answered.items()))
    for w in windows:
        detail += (
            f"\nverdict on tunnel {w['tunnel']} at +{w['t']} s: lab probes delayed over {SLOW_S:g} s in the "
            f"{STALL_WINDOW_S:g} s before it: {w['slow_probes_before'] or 'none'}"
            + (f" (a stall of the lab's host: {HOST_STALL_S:g} s or more)" if w["host_stall"] else "")
        )
    if windows:
        detail += "\n" + "\n".join(verdict_log)
    if not flowing:
        detail = "probes did not flow both ways at the end of the soak\n" + detail
    return flowing, detail, metrics


def on_host_stall(window: dict) -> bool:
    """A tunnel-1 verdict with a lab probe delayed HOST_STALL_S or more in the seconds before it."""
    return window["tunnel"] == 1 and any(delay >= HOST_STALL_S for _, delay in window["slow_probes_before"])


def diagnostics_sections(out: str) -> dict[str, str]:
    sections: dict[str, str] = {}
    cur = ""
    for ln in out.splitlines():
        if ln.startswith("=== "):
            cur = ln[4:].strip()
            sections[cur] = ""
        elif cur:
            sections[cur] += ln + "\n"
    return sections


def lossy_path(s: Session) -> Outcome:
    if s.baseline_applied:  # the seed baseline ran first: the program's configuration back
        restore_ours(s)
        s.wait_both_up(240)
    bad = s.precondition()
    if bad:
        return False, bad, {}
    flowing, detail, metrics = soak(s, "ours")  # its goals: the registry's (a miss adds the fault context)
    if not flowing:
        detail += "\n" + diagnostics.fault_context(s)
    return flowing, detail, metrics


def baseline_lossy_path(s: Session) -> Outcome:
    """The same soak with the design before data-plane liveness on the ECS: reported."""
    reconfigure(s, previous.files(s.user_data), "design before liveness", restart_peers=False)
    if s.wait_both_up(240) is None:
        return False, "the design before liveness: both tunnels not up within 240s\n" + diagnostics.fault_context(s), {}
    time.sleep(5)
    flowing, detail, metrics = soak(s, "previous")
    metrics["baseline_settings"] = previous.SETTINGS
    return flowing, f"the design before liveness ({previous.SETTINGS}): " + detail, metrics
