"""A gateway pair behind a HaVip (gatewayCount 2): the hand-over checks.

Each gateway runs in a VM of its own on the world VM's vSwitch (lab/gateways.py); the Alibaba
router's EIP NAT and route entries point at the HaVip, which answers wherever keepalived
announces it (its gratuitous ARP), as Alibaba's network makes it follow the instance that
announces it. Sequence-numbered probes (guest/seqprobe.py) run between alihost and awshost
through every fault; the outage per direction is the longest gap between delivered probes.

- ha_established: one MASTER, one BACKUP; the HaVip only on the active gateway; one SA pair
  per tunnel, all at the active one (the standby holds no SA); each AWS end one SA pair.
- ha_active_killed: the active gateway's VM powered off abruptly (QEMU killed: no shutdown,
  no VRRP goodbye); the standby takes the HaVip after keepalived's master-down interval and
  brings both tunnels up; AWS's end replaces the dead gateway's SAs on the new IKE SA's
  INITIAL_CONTACT.
- ha_recovered_no_preempt: the killed gateway powered on again (its disk kept, no cloud-init
  re-run): it comes back as standby (nopreempt), 0 probes lost.
- ha_strongswan_killed: charon SIGKILLed on the active gateway: keepalived sees the process
  exit (and its track script the restarted charon, whose SAs died with it) and hands over;
  same goal as a dead gateway.
- ha_partition: VRRP between the two dropped for PARTITION_S (nftables on both gateways: both
  become MASTER, split brain), then healed: afterwards one active, one SA pair per tunnel,
  traffic flowing; what was lost during it is reported.
- ha_rolling_replacement: both gateways replaced as `pulumi up` replaces them after a
  user-data change (a changed `sshAllowedCidrs`, planned again offline): the standby first
  (its instance deleted, a fresh VM booted from the new user-data with a new NIC at the same
  address), the gate (`aws2aliyun-ha ready` on the new one, run as Cloud Assistant would),
  then the active one the same way: at most one hand-over of outage.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from core import paths
from lab import REPO, gateways, goals, poll, swan, vswitch
from lab.checks.basic import settle_single_pair
from lab.inputs import LabInputs, PlanError, from_plan, run_plan
from lab.report import Outcome
from lab.topology import gateway_mac

if TYPE_CHECKING:
    from lab.probes import ProbeResult
    from lab.session import Session
    from lab.vm import VM

ROLLING_CHECK = "ha_rolling_replacement"
HANDOVER_TIMEOUT_S = 120  # a hand-over not done by then is a failure, not a slow one
CONVERGE_TIMEOUT_S = 180
PARTITION_S = 60
NAMESPACE = "aws2aliyun-vpc"
# The user-data change the rolling replacement plans: one more address allowed to SSH to the
# gateways (the host firewall is in the user-data, so both instances are replaced).
ROLLING_SSH_CIDR = "198.51.100.200/32"
LABFAULT_TABLE = "labfault_vrrp"
# What of the new active gateway's charon log goes in a hand-over's metrics
TAKEOVER_CHARON_RE = r"initiating|established|INITIAL_CONTACT|retransmit|deleting|DELETE|giving up"

STATE_SCRIPT = (
    f'echo "role $(cat {paths.HA_ROLE_PATH} 2>/dev/null || echo NONE)"; '
    "echo '=== addr'; ip -j -4 addr show dev eth0; "
    "echo '=== sas'; swanctl --list-sas --pretty 2>&1"
)


def parse_state(out: str, havip: str) -> dict:
    """One gateway's look: its keepalived role, whether it holds the HaVip, its SAs per peer."""
    head, _, rest = out.partition("=== addr")
    addr_text, _, sas_text = rest.partition("=== sas")
    role = "UNKNOWN"
    for ln in head.splitlines():
        if ln.startswith("role "):
            role = gateways.parse_role(ln[5:])
    try:
        addrs = [a.get("local") for link in json.loads(addr_text.strip() or "[]") for a in link.get("addr_info", [])]
    except ValueError:
        addrs = []
    sas = swan.parse_pretty(sas_text)
    return {"role": role, "holds_havip": havip in addrs, "ike_sas": len(sas), "sas": sas}


def gateway_states(s: Session) -> dict[int, dict]:
    """Every gateway's look (DOWN: its VM is not running)."""
    out = {}
    for n, vm in s.gateways.items():
        if not vm.alive():
            out[n] = {"role": "DOWN", "holds_havip": False, "ike_sas": 0, "sas": []}
            continue
        out[n] = parse_state(vm.sh(STATE_SCRIPT, 30).out, s.topo.havip or "")
    return out


CONTEXT_SCRIPT = (
    f'echo "role $(cat {paths.HA_ROLE_PATH} 2>/dev/null || echo NONE)"; ip -br -4 addr show dev eth0; '
    "swanctl --list-sas 2>&1 | grep -v \"^plugin '\" | grep -E '^[a-z]|INSTALLED' | head -12; "
    "echo '# keepalived'; journalctl -u keepalived --no-pager -o short-precise -n 25 2>&1; "
    "echo '# aws2aliyun-ha'; journalctl -t aws2aliyun-ha --no-pager -o short-precise -n 25 2>&1"
)


def pair_context(s: Session) -> str:
    """Each gateway's role, addresses, SAs and hand-over logs: what a failed ha_* check needs."""
    out = []
    for n, vm in sorted(s.gateways.items()):
        text = vm.sh(CONTEXT_SCRIPT, 30).text().rstrip() if vm.alive() else "(VM not running)"
        out.append(f"## gateway {n}\n{text}")
    return "\n".join(out)


def summary(states: dict[int, dict]) -> str:
    return ", ".join(
        f"gateway {n}: {st['role']}{' with the HaVip' if st['holds_havip'] else ''}, {st['ike_sas']} IKE SAs"
        for n, st in sorted(states.items())
    )


def pair_verdict(s: Session, states: dict[int, dict]) -> list[str]:
    """What is wrong with a settled pair: not exactly one MASTER holding the HaVip and every SA."""
    problems = []
    masters = [n for n, st in states.items() if st["role"] == "MASTER"]
    if len(masters) != 1:
        problems.append(f"{len(masters)} gateways are MASTER (expected 1)")
    holders = [n for n, st in states.items() if st["holds_havip"]]
    if holders != masters:
        problems.append(f"the HaVip {s.topo.havip} is held by {holders or 'none'}, the MASTER is {masters or 'none'}")
    for n, st in states.items():
        if n not in masters and st["ike_sas"]:
            problems.append(f"standby gateway {n} holds {st['ike_sas']} IKE SAs (expected none)")
        if n not in masters and st["role"] not in ("BACKUP", "DOWN"):
            # FAULT: its track script fails, so it could not take over (DOWN: a VM the check powered off)
            problems.append(f"standby gateway {n} is {st['role']} (expected BACKUP: ready to take over)")
    return problems


def wait_settled(s: Session, timeout: float) -> tuple[list[str], dict[int, dict]]:
    """Until the pair is settled (pair_verdict empty and both tunnels up on the active one)."""
    last: dict = {}

    def settled() -> bool:
        last["states"] = gateway_states(s)
        last["problems"] = pair_verdict(s, last["states"])
        if last["problems"]:
            return False
        s.follow_active()
        return s.both_up()

    poll.until(settled, timeout, interval=3.0)
    s.follow_active()
    problems = list(last.get("problems", ["not looked at"]))
    if not problems and not s.both_up():
        problems.append(f"both tunnels not up on the active gateway with tunnel 1 preferred: {s.state_line()}")
    return problems, last.get("states", {})


def ha_precondition(s: Session) -> str | None:
    problems, states = wait_settled(s, 90)
    if problems:
        return (
            "precondition failed: the pair is not settled: "
            + "; ".join(problems)
            + f" ({summary(states)})\n"
            + pair_context(s)
        )
    return s.precondition()


def outage_metrics(r: ProbeResult, t_ref: float) -> dict:
    """A direction that never recovered before the probes stopped has no outage to report
    (its longest gap is only a lower bound): not measured, so its goal is not met."""
    return {
        "ha_uplink_outage_s": round(r.up.outage_s, 2) if r.up.recovered else None,
        "ha_downlink_outage_s": round(r.down.outage_s, 2) if r.down.recovered else None,
        "uplink_lost": r.up.lost,
        "downlink_lost": r.down.lost,
        "uplink": r.up.as_metrics(t_ref),
        "downlink": r.down.as_metrics(t_ref),
    }


# --------------------------------------------------------------------------- the checks
def ha_established(s: Session) -> Outcome:
    problems, states = wait_settled(s, CONVERGE_TIMEOUT_S)
    metrics: dict = {"roles": {str(n): st["role"] for n, st in states.items()}}
    pair_ok, pair_detail, _pairs, _ = settle_single_pair(s, timeout=60)
    if not pair_ok:
        problems.append("not one SA pair per tunnel at the active gateway: " + pair_detail.splitlines()[0])
    active = s.active_number()
    metrics["active_gateway"] = active
    detail = (
        f"{summary(states)}; active gateway {active} holds the HaVip {s.topo.havip} and "
        f"one SA pair per tunnel, the standby none; {s.state_line()}"
    )
    if problems:
        return False, "; ".join(problems) + "\n" + detail + "\n" + pair_context(s), metrics
    return True, detail, metrics


TAKEOVER_LOG_RE = re.compile(
    r"MASTER: (?:(?P<tunnel>tunnel\d): .*\((?P<t>[\d.]+)s after taking over\)|connections loaded in (?P<load>[\d.]+)s)"
)


def takeover_steps(journal: str) -> dict[str, float]:
    """The new active gateway's own timings of a hand-over, from `aws2aliyun-ha`'s journal:
    connections loaded, and each tunnel's initiation done, in seconds after it became MASTER
    (the last hand-over's, when the journal holds several)."""
    steps: dict[str, float] = {}
    for line in journal.splitlines():
        m = TAKEOVER_LOG_RE.search(line)
        if not m:
            continue
        if m.group("load"):
            steps = {"connections_loaded_s": float(m.group("load"))}
        else:
            steps[f"{m.group('tunnel')}_initiated_s"] = float(m.group("t"))
    return steps


def _takeover_journal(s: Session, back: int) -> str:
    """`aws2aliyun-ha`'s journal on the active gateway for the last `back` seconds of its own
    clock (the VMs' clocks differ from the world VM's by seconds)."""
    return s.ecs_sh(f"journalctl -t aws2aliyun-ha --no-pager -o short-precise --since -{back}s 2>&1", 30).out


def _takeover_charon(s: Session, back: int) -> list[str]:
    """The new active gateway's charon on the hand-over's IKE exchanges (its last lines)."""
    out = s.ecs_sh(
        f"journalctl -u strongswan --no-pager -o short-precise --since -{back}s 2>&1"
        f" | grep -E '{TAKEOVER_CHARON_RE}' | tail -n 24",
        30,
    ).out
    return out.strip().splitlines()


# The units whose journal tells a hand-over's story on either gateway, in one clock per gateway
HANDOVER_UNITS = (
    "_SYSTEMD_UNIT=strongswan.service",
    "_SYSTEMD_UNIT=keepalived.service",
    "SYSLOG_IDENTIFIER=aws2aliyun-ha",
    "SYSLOG_IDENTIFIER=aws2aliyun-updown",
    "_SYSTEMD_UNIT=aws2aliyun-liveness.service",
)


def _handover_journals(s: Session, back: int, numbers: list[int]) -> dict[str, list[str]]:
    """Every line of those units on each gateway still running, from `back` seconds ago (a
    little before the fault) for 40 s, each in the gateway's own clock."""
    out = {}
    units = " + ".join(HANDOVER_UNITS)  # journalctl ANDs different fields unless joined by +
    for n in numbers:
        vm = s.gateways[n]
        if not vm.alive():
            continue
        res = vm.sh(
            f"journalctl {units} --no-pager -o short-precise --since -{back}s --until -{max(0, back - 40)}s"
            " 2>&1 | grep -v -E 'received packet|sending packet|parsed INFORMATIONAL|generating INFORMATIONAL'"
            " | head -n 200",
            30,
        )
        out[f"gateway{n}"] = res.out.strip().splitlines()
    return out


def _handover(s: Session, name: str, what: str, fault) -> Outcome:
    """Probes running, `fault(old_vm)` on the active gateway at t=0; the other must take over."""
    bad = ha_precondition(s)
    if bad:
        return False, bad, {}
    old = s.follow_active()
    assert old is not None
    other = next(n for n in s.gateways if n != old)
    if not s.gateways[other].alive():
        return (
            False,
            f"precondition failed: gateway {other} is powered off, so there is no standby to hand over to "
            "(ha_recovered_no_preempt powers it on again after ha_active_killed)",
            {},
        )
    t0 = s.probes.start()
    time.sleep(5)
    tf = s.now()
    fault(s.gateways[old])
    s.event(f"gateway {old} (active): {what}", tf)
    # Traffic may go on through the old gateway for a moment (charon killed, its kernel SAs
    # still installed): it flows again through the pair only once the other one took over.
    took = poll.until(lambda: s.roles().get(other) == "MASTER", HANDOVER_TIMEOUT_S, interval=1.0)
    flowing = s.probes.wait_flowing(s.now(), timeout=HANDOVER_TIMEOUT_S) if took else None
    r = s.probes.stop(t0)
    s.timelines[name] = (r, tf)
    s.follow_active()
    states = gateway_states(s)
    back = int(s.now() - tf) + 5  # seconds since just before the fault, for the gateways' own clocks
    journal = _takeover_journal(s, back)
    metrics = {
        **outage_metrics(r, tf),
        "old_active": old,
        "new_active": s.active_number(),
        # the new active gateway's own account (aws2aliyun-ha), whatever the verdict
        "takeover_steps": takeover_steps(journal),
        "takeover_journal": journal.strip().splitlines()[-12:],
        "takeover_charon": _takeover_charon(s, back),
        "handover_journals": _handover_journals(s, back, [old, other]),
    }
    ok = bool(flowing) and bool(took) and r.up.recovered and r.down.recovered
    detail = (
        f"gateway {old} (active) {what} at t=0: gateway {other} "
        f"{'took the HaVip and the tunnels' if took else 'did NOT become MASTER'}; "
        f"uplink outage {r.up.outage_s:.1f}s ({r.up.lost} lost), downlink outage {r.down.outage_s:.1f}s "
        f"({r.down.lost} lost); after: {summary(states)}; {s.state_line()}"
    )
    if not ok:
        detail = "traffic did not flow both ways again through the other gateway\n" + detail + "\n" + pair_context(s)
    return ok, detail, metrics


def ha_active_killed(s: Session) -> Outcome:
    return _handover(s, "ha_active_killed", "powered off abruptly (QEMU killed)", lambda vm: vm.power_off())


def ha_strongswan_killed(s: Session) -> Outcome:
    def kill(vm: VM) -> None:
        vm.sh("pkill -KILL -x charon-systemd; pkill -KILL -x charon; true", 15)

    return _handover(s, "ha_strongswan_killed", "charon killed (SIGKILL)", kill)


def ha_recovered_no_preempt(s: Session) -> Outcome:
    down = [n for n, vm in s.gateways.items() if not vm.alive()]
    if not down:  # ha_active_killed did not run before: power the active one off here
        bad = ha_precondition(s)
        if bad:
            return False, bad, {}
        n = s.follow_active()
        assert n is not None
        s.gateways[n].power_off()
        s.event(f"gateway {n} (active) powered off", s.now())
        problems, _ = wait_settled(s, HANDOVER_TIMEOUT_S)
        if problems:
            return False, "the other gateway did not take over: " + "; ".join(problems), {}
        down = [n]
    back = down[0]
    active = s.follow_active()
    bad = s.precondition()
    if bad:
        return False, bad, {}
    vm = s.gateways[back]
    t0 = s.probes.start()
    time.sleep(3)
    tp = s.now()
    vm.start(keep_disk=True)
    s.event(f"gateway {back} powered on again", tp)
    try:
        vm.wait_agent(timeout=s.opts.boot_timeout_s)
    except Exception as e:
        s.probes.stop(t0)
        return False, f"gateway {back} did not boot again: {e}", {}
    said: list[str] = []

    def is_ready() -> bool:
        res = vm.sh(f"{paths.HA_PATH} ready", 30)
        said[:] = [res.text().strip()[-300:]]
        return res.ok

    ready = poll.until(is_ready, 300, interval=3.0)
    time.sleep(10)  # traffic while the recovered gateway runs as standby
    r = s.probes.stop(t0)
    s.timelines["ha_recovered_no_preempt"] = (r, tp)
    states = gateway_states(s)
    lost = r.up.lost + r.down.lost
    metrics = {
        "ha_recovered_lost": lost,
        "uplink_lost": r.up.lost,
        "downlink_lost": r.down.lost,
        "power_on_to_ready_s": round(vm.since_start(), 1) if ready else None,
        "uplink": r.up.as_metrics(tp),
        "downlink": r.down.as_metrics(tp),
    }
    still = states.get(active or 0, {}).get("role") == "MASTER" and states.get(back, {}).get("role") == "BACKUP"
    ok = bool(ready) and still and goals.HA_RECOVERED_LOST.judge(metrics)[0] and not pair_verdict(s, states)
    detail = (
        f"gateway {back} powered on again at t=0 (its disk kept): "
        f"{'ready as standby' if ready else 'NOT ready'} after {vm.since_start():.0f}s; gateway {active} "
        f"{'stayed' if still else 'did NOT stay'} active (nopreempt); {lost} probes lost "
        f"(uplink {r.up.lost}, downlink {r.down.lost}; the lab's receivers dropped "
        f"{r.up.rx_dropped + r.down.rx_dropped}, their socket buffers full); {summary(states)}"
    )
    if not ok:
        detail += f"\nits last `aws2aliyun-ha ready`: {said[0] if said else 'never answered'}\n" + pair_context(s)
    return ok, detail, metrics


def _vrrp_block(vm: VM, on: bool) -> str:
    if on:
        script = (
            f"nft add table inet {LABFAULT_TABLE} && "
            f"nft add chain inet {LABFAULT_TABLE} input '{{ type filter hook input priority -300; }}' && "
            f"nft add rule inet {LABFAULT_TABLE} input ip protocol vrrp counter drop && echo blocked"
        )
    else:
        script = f"nft delete table inet {LABFAULT_TABLE} 2>/dev/null; echo unblocked"
    return vm.sh(script, 20).text().strip()


def ha_partition(s: Session) -> Outcome:
    bad = ha_precondition(s)
    if bad:
        return False, bad, {}
    before = s.active_number()
    t0 = s.probes.start()
    time.sleep(3)
    tb = s.now()
    said = [_vrrp_block(vm, True) for vm in s.gateways.values()]
    s.event("VRRP between the gateways blocked (both directions)", tb)
    time.sleep(PARTITION_S / 2)
    during = gateway_states(s)
    time.sleep(PARTITION_S / 2)
    th = s.now()
    for vm in s.gateways.values():
        _vrrp_block(vm, False)
    s.event("VRRP between the gateways healed", th)
    problems, states = wait_settled(s, CONVERGE_TIMEOUT_S)
    flowing = s.probes.wait_flowing(s.now(), timeout=60) if not problems else None
    r = s.probes.stop(t0)
    s.timelines["ha_partition"] = (r, tb)
    pair_ok, pair_detail, _p, _ = settle_single_pair(s, timeout=60) if not problems else (False, "", {}, 0)
    if not problems and not pair_ok:
        problems.append("not one SA pair per tunnel: " + pair_detail.splitlines()[0])
    metrics = {
        "partition_s": PARTITION_S,
        "partition_uplink_lost": r.up.lost,
        "partition_downlink_lost": r.down.lost,
        "partition_uplink_outage_s": round(r.up.outage_s, 2),
        "partition_downlink_outage_s": round(r.down.outage_s, 2),
        "masters_during": sum(1 for st in during.values() if st["role"] == "MASTER"),
        "active_before": before,
        "active_after": s.active_number(),
        "uplink": r.up.as_metrics(tb),
        "downlink": r.down.as_metrics(tb),
    }
    ok = not problems and flowing is not None
    detail = (
        f"VRRP blocked on both gateways for {PARTITION_S}s ({'; '.join(said)}): during it {summary(during)}; "
        f"healed: {summary(states)}; lost during and after: uplink {r.up.lost} "
        f"(longest gap {r.up.outage_s:.1f}s), downlink {r.down.lost} (longest gap {r.down.outage_s:.1f}s)"
    )
    if problems:
        detail = "; ".join(problems) + "\n" + detail + "\n" + pair_context(s)
    elif flowing is None:
        detail = "traffic did not flow both ways after the partition healed\n" + detail + "\n" + pair_context(s)
    return ok, detail, metrics


# --------------------------------------------------------------------------- rolling replacement
def changed_stack(text: str) -> str:
    """The stack file with ROLLING_SSH_CIDR added to sshAllowedCidrs (a user-data change)."""
    doc = yaml.safe_load(text) or {}
    cfg = doc.setdefault("config", {})
    key = f"{NAMESPACE}:sshAllowedCidrs"
    current = cfg.get(key) or []
    if isinstance(current, str):
        current = json.loads(current) if current.strip().startswith("[") else [current]
    cfg[key] = [*current, ROLLING_SSH_CIDR]
    return yaml.safe_dump(doc, sort_keys=False)


def plan_changed(s: Session) -> LabInputs:
    cfg = Path(s.opts.config_file)
    with tempfile.TemporaryDirectory(prefix="aws2aliyun-plan-") as d:
        stack = Path(d) / cfg.name  # same file name: same stack name, same resource names
        stack.write_text(changed_stack(cfg.read_text()))
        stack.chmod(0o600)
        return from_plan(run_plan(stack, Path(d) / "plan.json", REPO))


def _replace(s: Session, number: int, new: LabInputs, port: int, active: bool) -> tuple[VM, str]:
    """Gateway `number` deleted (VM killed, its NIC gone) and created again from the new
    user-data: a fresh VM with a new MAC on spare vSwitch port `port`, the same address.

    The active one's replacement VM starts once the other gateway has taken over and traffic
    flows again (at most HANDOVER_TIMEOUT_S): on Alibaba an instance being created and booted
    takes no CPU from the surviving gateway, on the lab's two cores a TCG boot beside the
    hand-over slowed it from 8 s to 13.7 s (docs/lab-findings.md #26)."""
    old = s.gateways[number]
    old.power_off()
    old.stop()
    if active:
        other = next(n for n in s.gateways if n != number)
        if poll.until(lambda: s.roles().get(other) == "MASTER", HANDOVER_TIMEOUT_S, interval=1.0):
            s.probes.wait_flowing(s.now(), timeout=HANDOVER_TIMEOUT_S)
    g = next(g for g in new.gateways if g.number == number)
    mac = gateway_mac(port)
    dhcp = s.sh(f"/bin/sh /run/lab/alidhcp.sh restart {mac} {g.private_ip} && echo dhcp-restarted", 30)
    vm = gateways.gateway_vm(
        s.run_dir,
        s.image,
        s.topo.slirp_net,
        key=f"pair-gw{number}-new",
        port=port,
        mac=mac,
        user_data=g.user_data,
        hostname=g.hostname,
        memory_mb=s.opts.memory_mb,
        cpus=gateways.PAIR_GATEWAY_CPUS,
    )
    s.gateways[number] = vm
    s.extra_vms.append(vm)
    vm.start()
    return vm, ("" if "dhcp-restarted" in dhcp.out else f" (DHCP restart FAILED: {dhcp.text()[-300:]})")


def _gate(s: Session, vm: VM) -> bool:
    """The Cloud Assistant gate: `aws2aliyun-ha ready` exits 0 on the new gateway."""
    try:
        vm.wait_agent(timeout=s.opts.boot_timeout_s)
    except Exception:
        return False
    return bool(poll.until(lambda: vm.sh(f"{paths.HA_PATH} ready", 30).ok, s.opts.boot_timeout_s, interval=5.0))


def ha_rolling_replacement(s: Session) -> Outcome:
    from components.gateway_pair import rollout_order

    if not vswitch.opened(s.run_dir, 3):
        return False, "the world VM has no spare vSwitch ports for the replacements (started without this check?)", {}
    try:
        new = plan_changed(s)
    except PlanError as e:
        return False, "the stack with a changed sshAllowedCidrs does not plan:\n" + "\n".join(e.problems), {}
    changed = [
        g.number
        for g in new.gateways
        if g.user_data != next(o for o in s.inputs.gateways if o.number == g.number).user_data
    ]
    if sorted(changed) != [1, 2]:
        return False, f"the changed stack changes the user-data of gateways {changed}, expected both", {}
    bad = ha_precondition(s)
    if bad:
        return False, bad, {}
    active = s.follow_active()
    first, second = rollout_order(active)
    notes = []
    t0 = s.probes.start()
    time.sleep(5)
    t_start = s.now()
    mono = time.monotonic()
    for k, number in enumerate((first, second)):
        t = s.now()
        vm, dhcp = _replace(s, number, new, port=3 + k, active=number == active)
        s.event(f"gateway {number} replaced (deleted, a new VM started)", t)
        ready = _gate(s, vm)
        notes.append(
            f"gateway {number} ({'standby' if number != active else 'active'}) replaced{dhcp}: "
            f"{'ready' if ready else 'NOT ready'} {vm.since_start():.0f}s after its VM start"
        )
        if not ready:
            s.probes.stop(t0)
            return False, "the gate failed: " + "; ".join(notes) + f"; {summary(gateway_states(s))}", {}
    problems, states = wait_settled(s, CONVERGE_TIMEOUT_S)
    flowing = s.probes.wait_flowing(s.now(), timeout=60) if not problems else None
    r = s.probes.stop(t0)
    s.timelines[ROLLING_CHECK] = (r, t_start)
    metrics = {
        "rolling_uplink_outage_s": round(r.up.outage_s, 2),
        "rolling_downlink_outage_s": round(r.down.outage_s, 2),
        "rolling_lost": r.up.lost + r.down.lost,
        "rolling_total_s": round(time.monotonic() - mono, 1),
        "order": [first, second],
        "uplink": r.up.as_metrics(t_start),
        "downlink": r.down.as_metrics(t_start),
    }
    ok = not problems and flowing is not None and r.up.recovered and r.down.recovered
    detail = (
        f"sshAllowedCidrs + {ROLLING_SSH_CIDR} planned again: both gateways' user-data changed; replaced in "
        f"pulumi up's order {first} then {second} (the standby first, the gate between): "
        + "; ".join(notes)
        + f"; longest outage uplink {r.up.outage_s:.1f}s, downlink {r.down.outage_s:.1f}s "
        f"({r.up.lost + r.down.lost} lost); after: {summary(states)}"
    )
    if problems:
        detail = "; ".join(problems) + "\n" + detail + "\n" + pair_context(s)
    return ok, detail, metrics
