"""Rekeys under traffic: forced from both ends, and colliding."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lab import diagnostics
from lab.checks.basic import AWS_END_REKEYED_IKEV1, settle_single_pair
from lab.report import Outcome
from userdata import watchdog

if TYPE_CHECKING:
    from lab.session import Session


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
    outputs = []
    for label, cmd in steps:
        res = s.sh(cmd + ' 2>&1 | grep -v "^plugin \'"', 90)
        s.event(label, s.now())
        outputs.append(f"{label}: {res.out.strip().splitlines()[-1:] or res.text()[-200:]}")
        time.sleep(4)
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
        f"{'; ' + AWS_END_REKEYED_IKEV1 if ikev1 else ''})"
    )
    if not ok:
        detail += "\n" + pair_detail + "\n" + "\n".join(outputs) + "\n" + diagnostics.fault_context(s)
    return ok, detail, metrics


def rekey_forced(s: Session) -> Outcome:
    return _rekey(s, collision=False)


def rekey_collision(s: Session) -> Outcome:
    return _rekey(s, collision=True)
