"""Daemons and machines restarted under traffic: the ECS's strongSwan, the AWS endpoint, the ECS itself."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lab import diagnostics
from lab.checks.basic import settle_single_pair
from lab.probes import last_line_time
from lab.report import Outcome

if TYPE_CHECKING:
    from lab.session import Session

SEMS = "/var/lib/cloud/instance/sem"  # cloud-init's per-instance semaphores


def _restart(s: Session, what: str, script: str, metric: str, isolate: bool = False):
    """Restart a daemon under traffic; both tunnels must come back (tunnel 1 preferred),
    with one SA pair per tunnel on both ends."""
    bad = s.precondition()
    if bad:
        return False, bad, {}
    t0 = s.probes.start()
    time.sleep(3)
    if isolate:
        s.blackhole.block(1)  # like a replaced endpoint: not reachable until it is configured
    res = s.sh(script + "; date +%s.%N", 90)
    if isolate:
        s.blackhole.unblock(1)
    tr = last_line_time(res.out) or s.now()
    s.event(what, tr)
    t_mono = time.monotonic()
    back = s.wait_both_up(180)
    back_s = time.monotonic() - t_mono if back is not None else None
    flowing = s.probes.wait_flowing(tr, timeout=60, settle=2.0)
    r = s.probes.stop(t0)
    pair_ok, pair_detail, pairs, _settle = settle_single_pair(s)
    metrics = {
        metric: round(back_s, 1) if back_s is not None else None,
        "uplink_outage_s": round(r.up.outage_s, 2),
        "downlink_outage_s": round(r.down.outage_s, 2),
        "uplink_lost": r.up.lost,
        "downlink_lost": r.down.lost,
        "sa_pairs": pairs,
    }
    ok = back is not None and flowing is not None and pair_ok
    detail = (
        f"{what} under traffic: both tunnels back, tunnel 1 preferred on both ends "
        f"{f'after {back_s:.0f}s' if back_s is not None else 'NOT within 180s'}; outage uplink "
        f"{r.up.outage_s:.1f}s / downlink {r.down.outage_s:.1f}s; one SA pair per tunnel on both ends: "
        + ("yes" if pair_ok else "NO\n" + pair_detail)
    )
    if not ok:
        detail += "\n" + res.text()[-500:] + "\n" + diagnostics.fault_context(s)
    return ok, detail, metrics


def charon_restart_ecs(s: Session) -> Outcome:
    return _restart(
        s,
        "ECS strongSwan restarted (systemctl restart strongswan)",
        "systemctl restart strongswan",
        "charon_restart_to_established_s",
    )


def aws_endpoint_restart(s: Session) -> Outcome:
    # endpoint replacement: the AWS side loses every SA and will not initiate
    return _restart(
        s,
        "AWS tunnel 1 endpoint daemon restarted (all its SAs lost)",
        "/bin/sh /run/lab/peer.sh stop 1; sleep 2; /bin/sh /run/lab/peer.sh start 1",
        "aws_endpoint_restart_to_established_s",
        isolate=True,
    )


def reboot_persistence(s: Session) -> Outcome:
    """The ECS rebooted: cloud-init must not run the user-data again (its per-instance
    semaphores untouched), both tunnels must come back by themselves."""
    vm = s.ecs
    bad = s.precondition()
    if bad:
        return False, bad, {}
    before = s.sh(f"cd {SEMS} && stat -c '%n %Y' * 2>&1 | sort", 30).out.strip()
    boot_before = s.sh("cat /proc/sys/kernel/random/boot_id", 15).out.strip()
    t_mono = time.monotonic()
    try:
        agent_s = vm.reboot(timeout=300)
    except Exception as e:
        return False, f"the VM did not come back after the reboot: {e}", {}
    back = s.wait_both_up(300)
    back_s = time.monotonic() - t_mono if back is not None else None
    after = s.sh(f"cd {SEMS} && stat -c '%n %Y' * 2>&1 | sort", 30).out.strip()
    ci = s.sh(
        "cloud-init status 2>&1 | head -1; grep -c 'already ran' /var/log/cloud-init.log; "
        "cat /proc/sys/kernel/random/boot_id",
        60,
    ).out
    flow_t = s.now()
    t0 = s.probes.start()
    flowing = s.probes.wait_flowing(flow_t, timeout=30, settle=2.0)
    r = s.probes.stop(t0)
    rebooted = bool(ci.strip()) and boot_before != ci.strip().splitlines()[-1]
    reran = before != after
    metrics = {
        "reboot_to_established_s": round(back_s, 1) if back_s is not None else None,
        "reboot_to_agent_s": round(agent_s, 1),
        "user_data_ran_again": reran,
        "lost_after": r.up.lost + r.down.lost,
    }
    ok = back is not None and not reran and flowing is not None and rebooted
    detail = (
        f"ECS rebooted{'' if rebooted else ' (boot id UNCHANGED: did it reboot?)'}: both tunnels back, tunnel 1 "
        f"preferred, {f'{back_s:.0f}s' if back_s is not None else 'NOT within 300s'} after the reboot "
        f"command (guest agent after {agent_s:.0f}s); cloud-init per-instance semaphores "
        f"{'CHANGED: the user-data ran again' if reran else 'untouched: the user-data did not run again'}; "
        f"traffic both ways afterwards: {'yes' if flowing is not None else 'NO'}\n"
        f"cloud-init status / 'already ran' log lines / boot id: {ci.strip()}"
    )
    if reran:
        detail += f"\nsemaphores before:\n{before}\nafter:\n{after}"
    if not ok:
        detail += "\n" + diagnostics.fault_context(s)
    return ok, detail, metrics
