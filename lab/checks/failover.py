"""Failover and failback: tunnels blackholed on the simulated internet while probes run."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from lab import diagnostics, goals, poll
from lab.inputs import verify_script_path
from lab.probes import RATE, ProbeResult, first_after
from lab.report import Outcome

if TYPE_CHECKING:
    from lab.session import Session


def measure_failover(s: Session, what: str) -> tuple[ProbeResult, bool, str, dict, str]:
    """Blackhole tunnel 1 while it carries the traffic; outage per direction."""
    aws_dpd = max((t.dpd_timeout_s for t in s.inputs.tunnels), default=30)
    t0 = s.probes.start()
    time.sleep(5)
    tb = s.blackhole.block(1)
    flowing = s.probes.wait_flowing(tb + 0.5, timeout=aws_dpd + 120)
    route_after = s.ecs_route()
    aws_after = s.aws_route_tunnel()
    counters = s.blackhole.counters()
    r = s.probes.stop(t0)
    s.timelines["failover" if what == "ours" else what] = (r, tb)
    metrics = {
        "uplink_outage_s": round(r.up.outage_s, 2),
        "downlink_outage_s": round(r.down.outage_s, 2),
        "uplink_lost": r.up.lost,
        "downlink_lost": r.down.lost,
        "aws_dpd_timeout_s": aws_dpd,
        "probe_rate_pps": RATE,
        "uplink": r.up.as_metrics(tb),
        "downlink": r.down.as_metrics(tb),
    }
    detail = (
        f"tunnel 1 ({s.addr(1)}) blackholed both ways at t=0 while carrying the traffic: "
        f"uplink (Alibaba->AWS) outage {r.up.outage_s:.1f}s ({r.up.lost} lost), "
        f"downlink (AWS->Alibaba) outage {r.down.outage_s:.1f}s (AWS DPD timeout {aws_dpd}s, "
        f"{r.down.lost} lost); after: ECS route {route_after!r}, "
        f"AWS router via tunnel {aws_after}"
    )
    recovered = flowing is not None and r.up.recovered and r.down.recovered
    if not recovered:
        detail = "traffic did not flow both ways again after the block\n" + detail
    return r, recovered, detail, metrics, counters


def failover_tunnel1(s: Session) -> Outcome:
    bad = s.precondition()
    if bad:
        return False, bad, {}
    _r, ok, detail, metrics, counters = measure_failover(s, "ours")
    if not ok or not all(g.judge(metrics)[0] for g in (goals.FAILOVER_UPLINK, goals.FAILOVER_DOWNLINK)):
        detail += f"\nblackhole counters: {counters}\n" + diagnostics.fault_context(s)
    # tunnel 1 stays blocked for failback
    return ok, detail, metrics


def failback(s: Session) -> Outcome:
    if 1 not in s.blackhole.blocked:
        bad = s.precondition()
        if bad:
            return False, bad, {}
        t0 = s.probes.start()
        time.sleep(2)
        s.blackhole.block(1)
        # wait for the ECS to fail over (route via tunnel 2) before lifting
        poll.until(lambda: s.ecs_tunnel_preferred() != 1, 60, interval=1.0)
        s.probes.stop(t0)
    t0 = s.probes.start()
    time.sleep(3)
    tu = s.blackhole.unblock(1)
    t_unblock_mono = time.monotonic()
    back = s.wait_both_up(150)
    back_s = time.monotonic() - t_unblock_mono if back is not None else None
    time.sleep(5)  # traffic over the re-established tunnel for a while
    r = s.probes.stop(t0)
    s.timelines["failback"] = (r, tu)
    st = s.tunnel_state()
    lost = r.up.lost + r.down.lost
    metrics = {
        "failback_lost": lost,
        "uplink_lost": r.up.lost,
        "downlink_lost": r.down.lost,
        "unblock_to_preferred_s": round(back_s, 1) if back_s is not None else None,
        "uplink": r.up.as_metrics(tu),
        "downlink": r.down.as_metrics(tu),
    }
    ok = back is not None and goals.FAILBACK_LOST.judge(metrics)[0]
    when = f"after {back_s:.0f}s" if back_s is not None else "NOT within 150s"
    detail = (
        f"block on tunnel 1 lifted at t=0: tunnel 1 re-established and preferred on both ends {when}; "
        f"{lost} probes lost (uplink {r.up.lost}, downlink {r.down.lost}); state {st}"
    )
    if not ok:
        detail += "\n" + diagnostics.fault_context(s)
    return ok, detail, metrics


def failover_tunnel2(s: Session) -> Outcome:
    bad = s.precondition()
    if bad:
        return False, bad, {}
    t0 = s.probes.start()
    time.sleep(3)
    tb = s.blackhole.block(2)
    time.sleep(40)  # long enough for both ends to declare tunnel 2 dead
    st = s.tunnel_state()
    pref = (s.ecs_tunnel_preferred(), s.aws_route_tunnel())
    s.blackhole.unblock(2)
    back = s.wait_both_up(150)  # tunnel 2 coming back must not disturb tunnel 1 either
    r = s.probes.stop(t0)
    lost = r.up.lost + r.down.lost
    metrics = {
        "lost": lost,
        "uplink_lost": r.up.lost,
        "downlink_lost": r.down.lost,
        "uplink": r.up.as_metrics(tb),
        "downlink": r.down.as_metrics(tb),
    }
    ok = goals.IDLE_TUNNEL_LOST.judge(metrics)[0] and pref == (1, 1)
    detail = (
        f"idle tunnel 2 ({s.addr(2)}) blackholed for 40s, then lifted until both tunnels were up: "
        f"{lost} probes lost on tunnel 1; "
        f"preferred tunnel ECS/AWS {pref}; state {st}"
    )
    if not ok:
        detail += "\n" + diagnostics.fault_context(s)
    metrics["unblock_to_both_up_s"] = round(back, 1) if back is not None else None
    if back is None:
        ok = False
        detail += "\ntunnel 2 did not come back within 150s after the block was lifted"
    return ok, detail, metrics


def verify_script_detects_down(s: Session) -> Outcome:
    path = verify_script_path(s.user_data)
    if not path:
        return False, "no write_files entry ending in '-verify' in the user-data", {}
    bad = s.precondition()
    if bad:
        return False, bad, {}
    s.blackhole.block(2)
    try:
        # wait until the ECS has declared tunnel 2 dead: its liveness daemon within seconds,
        # IKE's dead-peer detection (the backstop) within a minute
        poll.until(
            lambda: s.liveness().get("tunnel2", {}).get("state") == "dead"
            or not s.tunnel_state()[2]["ecs_established"],
            90,
        )
        verdict = s.liveness().get("tunnel2", {}).get("state")
        res = s.ecs_sh(path, 200)
    finally:
        s.blackhole.unblock(2)
    text = res.text()
    names = bool(re.search(r"tunnel ?2|Tunnel2", text, re.I))
    ok = res.rc not in (0, None) and names
    detail = (
        f"tunnel 2 blackholed (ECS liveness: {verdict}): `{path}` exited {res.rc} "
        f"({'names tunnel 2' if names else 'does NOT name tunnel 2'}; want non-zero and naming it)\n" + text[-2000:]
    )
    back = s.wait_both_up(150)
    if back is None:
        detail += "\ntunnel 2 did not come back within 150s after the block was lifted"
    return ok, detail, {"exit_code": res.rc, "names_tunnel": names}


def both_down_recover(s: Session) -> Outcome:
    bad = s.precondition()
    if bad:
        return False, bad, {}
    t0 = s.probes.start()
    time.sleep(3)
    s.blackhole.block(1)
    s.blackhole.block(2)
    time.sleep(60)
    tu = s.blackhole.unblock_all(record=True)
    flowing = s.probes.wait_flowing(tu, timeout=120, settle=1.0)
    r = s.probes.stop(t0)
    # time from the unblock to the first probe received after it, per direction
    up_back = first_after(r, "up", tu)
    down_back = first_after(r, "down", tu)
    rec = max(up_back, down_back) if up_back is not None and down_back is not None else None
    metrics = {
        "both_down_recover_s": round(rec, 2) if rec is not None else None,
        "uplink_back_s": round(up_back, 2) if up_back is not None else None,
        "downlink_back_s": round(down_back, 2) if down_back is not None else None,
        "uplink": r.up.as_metrics(tu),
        "downlink": r.down.as_metrics(tu),
    }
    ok = flowing is not None and goals.BOTH_DOWN_RECOVER.judge(metrics)[0]
    detail = (
        f"both tunnels blackholed for 60s, then lifted: traffic back both ways after "
        f"{rec if rec is None else round(rec, 1)}s (uplink {metrics['uplink_back_s']}s, "
        f"downlink {metrics['downlink_back_s']}s)"
    )
    if not ok:
        detail += "\n" + diagnostics.fault_context(s)
    return ok, detail, metrics
