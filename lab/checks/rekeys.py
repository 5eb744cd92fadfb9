"""Rekeys under traffic: forced from both ends, and colliding."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lab import diagnostics, poll, swan
from lab.checks.basic import AWS_END_REKEYED_IKEV1, settle_single_pair
from lab.report import Outcome
from userdata import watchdog

if TYPE_CHECKING:
    from lab.session import Session


# How long a rekey may take to finish on both ends before the next one is forced anyway, and
# the pause after it: rekeys come hours apart on a real link, so one overlapping the previous
# (an IKEv1 reauthentication started while the last one still deletes its old IKE_SA) is the
# lab's doing, not a case the link meets (docs/lab-findings.md #25).
STEP_QUIET_TIMEOUT_S = 30
STEP_PAUSE_S = 2
# CHILD_SA states of a rekey still under way (REKEYED and DELETED ones are done: charon or the
# watchdog removes them, and the final one-SA-pair check judges what is left)
CHILD_BUSY = frozenset({"CREATED", "ROUTED", "INSTALLING", "UPDATING", "REKEYING", "DELETING"})


def unquiet(ecs_sas: list[dict], peer_sas: list[dict], aws_address: str, eip: str) -> str:
    """Why one tunnel is still busy with a rekey ("" when quiet): each end must hold exactly
    one IKE SA for it, ESTABLISHED, with exactly one INSTALLED CHILD_SA and none still being
    created, rekeyed or deleted."""
    why = []
    for end, sas in (("ECS", swan.sas_to(ecs_sas, aws_address)), ("AWS end", swan.sas_to(peer_sas, eip))):
        states = [sa.get("state") for sa in sas]
        kids = [str(c.get("state")) for sa in sas for c in swan.children(sa)]
        if states != ["ESTABLISHED"] or kids.count("INSTALLED") != 1 or CHILD_BUSY & set(kids):
            why.append(f"{end}: IKE SAs {states or 'none'}, CHILD_SAs {kids or 'none'}")
    return "; ".join(why)


def _wait_quiet(s: Session, n: int) -> tuple[float, str]:
    """Seconds until tunnel n is quiet on both ends, and why not when it was not in time."""
    t = next(t for t in s.inputs.tunnels if t.number == n)
    t0 = time.monotonic()
    last = [""]

    def quiet() -> bool:
        last[0] = unquiet(s.ecs_sas(), s.peer_sas(n), t.outside_address, s.inputs.eip)
        return not last[0]

    poll.until(quiet, STEP_QUIET_TIMEOUT_S, interval=1.0)
    return time.monotonic() - t0, last[0]


def _rekey(s: Session, collision: bool):
    bad = s.precondition()
    if bad:
        return False, bad, {}
    ecs_child, peer_child = "tunnel1", "aws1"
    ecs = "swanctl --rekey"
    aws = "/bin/sh /run/lab/peer.sh exec 1 swanctl --rekey"
    if collision:
        steps = [
            (
                f"collision {k + 1}: CHILD_SA rekey from both ends at once",
                f"{ecs} --child {ecs_child} & {aws} --child {peer_child} & wait",
            )
            for k in range(3)
        ]
    else:
        steps = [
            (f"{who} {kind} rekey {k + 1}", f"{cmd} --{kind} {ecs_child if who == 'ECS' else peer_child}")
            for who, cmd in (("ECS", ecs), ("AWS", aws))
            for kind in ("child", "ike")
            for k in range(3)
        ]
    t0 = s.probes.start()
    time.sleep(3)
    outputs, step_s, unsettled = [], [], []
    for label, cmd in steps:
        res = s.sh(cmd + ' 2>&1 | grep -v "^plugin \'"', 90)
        s.event(label, s.now())
        outputs.append(f"{label}: {res.out.strip().splitlines()[-1:] or res.text()[-200:]}")
        time.sleep(1)  # the command returns once the exchange is queued
        took, why = _wait_quiet(s, 1)
        step_s.append(round(took + 1, 1))
        if why:
            unsettled.append(f"{label}: not finished after {STEP_QUIET_TIMEOUT_S}s ({why})")
        time.sleep(STEP_PAUSE_S)
    # a rekey may leave a CHILD_SA the AWS end has deleted: the watchdog re-creates it in time
    settle_timeout = max(60, watchdog.heals_within_s(s.inputs.ike_version) + 10)
    ikev1 = s.inputs.ike_version == 1
    pair_ok, pair_detail, pair_metrics, settle_s = settle_single_pair(s, timeout=settle_timeout, aws_rekeyed_ok=ikev1)
    flowing = s.probes.wait_flowing(t0 + 1, timeout=30, settle=1.0)
    r = s.probes.stop(t0)
    lost = r.up.lost + r.down.lost
    key = "collision_lost" if collision else "rekey_lost"
    metrics = {
        key: lost,
        "uplink_lost": r.up.lost,
        "downlink_lost": r.down.lost,
        "uplink_outage_s": round(r.up.outage_s, 2),
        "downlink_outage_s": round(r.down.outage_s, 2),
        "rekeys": len(steps),
        "uplink": r.up.as_metrics(t0),
        "downlink": r.down.as_metrics(t0),
        "settle_to_single_pair_s": round(settle_s, 1),
        "sa_pairs": pair_metrics,
        "step_to_quiet_s": step_s,
        "steps_unsettled": len(unsettled),
    }
    ok = pair_ok and flowing is not None  # and the probes lost against the registry's goals
    what = (
        "3 simultaneous CHILD_SA rekeys of tunnel 1 from the ECS and the AWS end"
        if collision
        else "CHILD_SA and IKE_SA rekeys of tunnel 1, 3 each from the ECS and from the AWS end"
    )
    detail = (
        f"{what}, under traffic: {lost} probes lost (uplink {r.up.lost}, downlink {r.down.lost}"
        f"); one SA pair per tunnel afterwards: "
        f"{'yes' if pair_ok else 'NO'} (settled after {settle_s:.0f}s"
        f"{'; ' + AWS_END_REKEYED_IKEV1 if ikev1 else ''}); each rekey finished on both ends "
        f"before the next: longest {max(step_s, default=0):.0f}s"
        + (f", {len(unsettled)} not within {STEP_QUIET_TIMEOUT_S}s" if unsettled else "")
    )
    if unsettled:
        detail += "\n" + "\n".join(unsettled)
    if not ok:
        detail += "\n" + pair_detail + "\n" + "\n".join(outputs) + "\n" + diagnostics.fault_context(s)
    return ok, detail, metrics


def rekey_forced(s: Session) -> Outcome:
    return _rekey(s, collision=False)


def rekey_collision(s: Session) -> Outcome:
    return _rekey(s, collision=True)
