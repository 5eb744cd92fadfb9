"""psk_rotation: the gateway replaced as `pulumi up` replaces it after both tunnel PSKs change.

What is modelled, in `pulumi up`'s order:

1. The same stack planned again offline (`tools.plan`) with `tunnel1PresharedKey` and
   `tunnel2PresharedKey` set to new valid keys: the new user-data, byte for byte.
2. AWS first (the VPN connection is updated in place, ModifyVpnTunnelOptions, tunnel by
   tunnel): each AWS-like endpoint is restarted with the new key (all its SAs lost,
   unreachable until configured, as in `aws_endpoint_restart`). After tunnel 1 the old ECS
   fails over to tunnel 2 (AWS takes minutes per tunnel, so it has long done so when tunnel
   2 follows); after tunnel 2 the old ECS, with the old keys, has no tunnel left.
3. The ECS replaced, delete-before-replace: the route entry and the EIP association (they
   name the instance) are deleted (guest/alieip.sh detach: the Alibaba router's 1:1 NAT rules
   removed, the route entry's prefix a blackhole), then the old instance (strongSwan and the
   program's units stopped, SAs flushed, its NIC's link taken down at QEMU so the Alibaba
   router's vSwitch neither reaches it nor hears from it, the router's ARP entry for the
   private address flushed), then a new one is created: a FRESH VM of its own booted from the
   lab's cached image with its own NoCloud seed (the new user-data byte for byte, a new
   instance-id) and a NIC with a new MAC on a spare port of the world VM's vSwitch hub. The
   Alibaba router's DHCP hands the plan's fixed private address to the new MAC (Alibaba gives
   the replacement instance the configured privateIp). Once the instance exists (its VM
   started), the EIP association and the route entry are created again (alieip.sh attach),
   pointing at that address. cloud-init installs strongSwan from the image's package mirror through
   the router's NAT, as on the first boot.

Sequence-numbered probes (guest/seqprobe.py) run between alihost and awshost throughout.
What it does not model: the minutes AWS itself spends per tunnel modification and the
instance creation time on Alibaba; the lab performs each step as soon as the previous one is
done, so on a real cloud the outage is longer by those.
"""

from __future__ import annotations

import base64
import dataclasses
import random
import re
import secrets
import string
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lab import cloudinit, gateways, mutations, peer, poll, vswitch
from lab.checks.baseline import restore_ours
from lab.checks.basic import settle_single_pair
from lab.inputs import LabInputs, PlanError, from_plan, run_plan, verify_script_path
from lab.report import Outcome
from lab.topology import gateway_mac, plan_topology

if TYPE_CHECKING:
    from lab.session import Session

from lab import REPO

NAMESPACE = "aws2aliyun-vpc"
PSK_KEYS = ("tunnel1PresharedKey", "tunnel2PresharedKey")
PSK_ALPHABET = string.ascii_letters + string.digits + "._"
PSK_PATTERN = re.compile(r"^[A-Za-z1-9._][A-Za-z0-9._]{7,63}$")  # AWS's rule
VSWITCH_PORT = 1  # the world VM's spare vSwitch port (lab.run.vswitch_ports)
GATEWAY_DIR = "gw1"  # the replacement gateway VM's own directory in the run directory
OLD_ECS_NETDEV = "ecs"  # the first ECS's NIC on the world VM's hub (lab.vm.world_netdevs)


# --------------------------------------------------------------------------- pure helpers
def psk_valid(key: str) -> bool:
    """AWS's rule: 8-64 letters, digits, '.' and '_', not starting with '0'."""
    return bool(PSK_PATTERN.match(key))


def new_psk(rng: random.Random, length: int = 40) -> str:
    if not 8 <= length <= 64:
        raise ValueError(f"AWS PSKs are 8-64 characters, not {length}")
    first = rng.choice(PSK_ALPHABET.replace("0", ""))
    return first + "".join(rng.choice(PSK_ALPHABET) for _ in range(length - 1))


def new_psks(old: Sequence[str], rng: random.Random | None = None) -> tuple[str, ...]:
    """One new key per tunnel, different from every old key and from each other."""
    rng = rng or secrets.SystemRandom()
    out: list[str] = []
    while len(out) < len(old):
        k = new_psk(rng)
        if k not in old and k not in out:
            out.append(k)
    return tuple(out)


def rotated_stack(text: str, keys: Sequence[str]) -> str:
    """The stack file with tunnelN_PresharedKey set to keys[N-1] (plain values: the offline
    plan cannot decrypt `secure:` ones; the file lives in a private temporary directory)."""
    import yaml

    doc = yaml.safe_load(text) or {}
    config = dict(doc.get("config") or {})
    for name, key in zip(PSK_KEYS, keys, strict=True):
        config.pop(name, None)
        config[f"{NAMESPACE}:{name}"] = key
    doc["config"] = config
    return yaml.safe_dump(doc, sort_keys=False)


def replacement_problems(old: LabInputs, new: LabInputs, keys: Sequence[str]) -> list[str]:
    """The lab's world is built once, from the first plan: the new plan may change the PSKs
    (and so the user-data), nothing the world depends on."""
    problems = []
    if plan_topology(old) != plan_topology(new):
        a, b = plan_topology(old).summary(), plan_topology(new).summary()
        diff = [k for k in a if a[k] != b.get(k)]
        problems.append(f"the new plan moves the lab's topology ({', '.join(diff)})")
    if len(new.tunnels) != len(keys):
        problems.append(f"the new plan has {len(new.tunnels)} tunnels, expected {len(keys)}")
    for t_old, t_new, key in zip(old.tunnels, new.tunnels, keys, strict=False):
        if t_new.preshared_key != key:
            problems.append(
                f"tunnel{t_new.number}: the new plan's PSK is not the configured tunnel{t_new.number}PresharedKey"
            )
        if t_new.preshared_key == t_old.preshared_key:
            problems.append(f"tunnel{t_new.number}: the PSK did not change")
        if dataclasses.replace(t_old, preshared_key="") != dataclasses.replace(t_new, preshared_key=""):
            problems.append(f"tunnel{t_new.number}: options other than the PSK changed")
    if new.user_data == old.user_data:
        problems.append("the user-data did not change: `pulumi up` would not replace the ECS")
    for t in old.tunnels:
        if t.preshared_key in new.user_data:
            problems.append(f"the new user-data still holds tunnel{t.number}'s old PSK")
    return problems


def parse_psk_files(out: str) -> dict[str, list[str]]:
    """`LABEL file...` lines of PSK_FILES_SCRIPT -> {label: [files]}."""
    found: dict[str, list[str]] = {}
    for ln in out.splitlines():
        parts = ln.split()
        if parts and parts[0] in ("new1", "new2", "old1", "old2", "old-anywhere"):
            found[parts[0]] = parts[1:]
    return found


def psk_files_verdict(found: dict[str, list[str]]) -> tuple[bool, str]:
    """New keys in the gateway's swanctl configuration, the old ones nowhere on it."""
    problems = []
    for n in (1, 2):
        files = found.get(f"new{n}", [])
        if not any(f.startswith("/etc/swanctl/") for f in files):
            problems.append(f"tunnel{n}'s NEW key is in no file under /etc/swanctl ({files or 'nowhere'})")
    old = sorted(set(found.get("old1", []) + found.get("old2", []) + found.get("old-anywhere", [])))
    if old:
        problems.append(f"an OLD key is still on the new gateway: {', '.join(old)}")
    if problems:
        return False, "; ".join(problems)
    files = sorted(set(found.get("new1", []) + found.get("new2", [])))
    return True, f"new keys in {', '.join(files)}; old keys in no file"


# Runs on the new gateway; the four keys come on stdin (never in argv or the journal).
PSK_FILES_SCRIPT = r"""
IFS= read -r new1; IFS= read -r new2; IFS= read -r old1; IFS= read -r old2
for k in new1 new2 old1 old2; do
  eval v=\$$k
  echo "$k $(grep -rlsF -e "$v" /etc 2>/dev/null | tr '\n' ' ')"
done
echo "old-anywhere $(grep -rlsF -e "$old1" -e "$old2" /var/lib/cloud /run /root /tmp 2>/dev/null | tr '\n' ' ')"
for f in $(grep -rlsF -e "$new1" -e "$new2" /etc 2>/dev/null); do echo "mode $(stat -c '%a %U' "$f") $f"; done
"""

DELETE_OLD_SCRIPT = """
systemctl stop aws2aliyun-watchdog.timer 2>/dev/null
systemctl stop strongswan.service 'aws2aliyun-*' 2>/dev/null
ip xfrm state flush; ip xfrm policy flush
ip link set eth0 down
echo "strongswan: $(systemctl is-active strongswan.service)"
echo "units active: $(systemctl list-units --no-legend --plain --state=active 'aws2aliyun-*' | wc -l)"
echo "xfrm states: $(ip xfrm state | grep -c '^src')"
date +%s.%N
"""


# --------------------------------------------------------------------------- the check
class Rotation:
    def __init__(self, s: Session):
        self.s = s
        self.notes: list[str] = []
        self.mac = gateway_mac(1)  # the replacement gateway's NIC

    def plan_rotated(self, keys: Sequence[str]) -> LabInputs:
        """The same stack planned again offline with the new keys."""
        cfg = Path(self.s.opts.config_file)
        with tempfile.TemporaryDirectory(prefix="aws2aliyun-plan-") as d:
            stack = Path(d) / cfg.name  # same file name: same stack name, same resource names
            stack.write_text(rotated_stack(cfg.read_text(), keys))
            stack.chmod(0o600)
            return from_plan(run_plan(stack, Path(d) / "plan.json", REPO))

    def gateway_vm(self, new: LabInputs, user_data: str):
        s = self.s
        return gateways.gateway_vm(
            s.run_dir,
            s.image,
            s.topo.slirp_net,
            key=GATEWAY_DIR,
            port=VSWITCH_PORT,
            mac=self.mac,
            user_data=user_data,
            hostname=new.hostname,
            memory_mb=s.opts.memory_mb,
            cpus=s.opts.cpus,
        )

    def modify_aws_tunnel(self, t, mark: int) -> float:
        """ModifyVpnTunnelOptions: the endpoint restarts with the new key (its SAs gone),
        unreachable until it is configured."""
        s = self.s
        conf = base64.b64encode(peer.swanctl_conf(t, s.inputs.eip, mark).encode()).decode()
        n = t.number
        t_mod = s.blackhole.block(n)  # the modification's start: the endpoint's SAs are gone from here on
        res = s.sh(
            f"echo {conf} | base64 -d > /run/lab/aws{n}.swanctl.conf; chmod 600 /run/lab/aws{n}.swanctl.conf; "
            f"/bin/sh /run/lab/peer.sh stop {n}; sleep 2; /bin/sh /run/lab/peer.sh start {n}; echo rc=$?",
            90,
        )
        s.blackhole.unblock(n)
        s.event(f"AWS: tunnel {n} PSK modified (endpoint restarted with the new key)", t_mod)
        if "rc=0" not in res.out:
            raise RuntimeError(f"AWS-like endpoint {n} did not restart with the new key: {res.text()[-800:]}")
        return t_mod

    def delete_old(self) -> tuple[float, float, str]:
        """The old ECS deleted: nothing of it left on the vSwitch. Returns its guest and host
        (monotonic) instants and what was seen."""
        s, topo = self.s, self.s.topo
        # the route entry and the EIP association go first: they name the instance
        detach = s.sh("/bin/sh /run/lab/alieip.sh detach 2>&1", 30)
        if not detach.ok:
            raise RuntimeError(f"could not delete the EIP association and route entry: {detach.text()[-800:]}")
        s.event("EIP association and route entry deleted", s.now())
        res = s.world.sh(DELETE_OLD_SCRIPT, 90)
        s.world.set_link(OLD_ECS_NETDEV, False)
        mono_del = time.monotonic()
        t_del = s.now()
        s.event("old ECS deleted", t_del)
        lines = [ln for ln in res.out.strip().splitlines() if ":" in ln]
        gone = s.sh(
            f"ip -n alirouter neigh flush to {topo.private_ip}; "
            f"ip netns exec alirouter ping -c 3 -i 0.3 -W 1 {topo.private_ip} 2>&1 | grep -E 'transmitted'; "
            f"/bin/sh /run/lab/alidhcp.sh restart {self.mac} && echo dhcp-restarted",
            30,
        )
        facts = (
            "EIP association (1:1 NAT) and route entry deleted first; old ECS: "
            + ", ".join(lines)
            + f"; its NIC's link set down at QEMU (set_link {OLD_ECS_NETDEV} off); Alibaba router -> "
            + f"{topo.private_ip} right after: {gone.out.strip().splitlines()[0] if gone.out.strip() else '?'}"
            + f"; DHCP now maps {topo.private_ip} to the new MAC {self.mac}"
            + ("" if "dhcp-restarted" in gone.out else " (DHCP restart FAILED)")
        )
        return t_del, mono_del, facts

    def wait_new_up(self, vm, timeout: float) -> float | None:
        """Both tunnels ESTABLISHED on the new ECS with an SA pair on each AWS-like end."""
        ci = [""]

        def up() -> float | str | None:
            st = self.s.tunnel_state()
            if all(v["ecs_established"] and v["peer_xfrm_states"] >= 2 for v in st.values()):
                return time.monotonic()
            new_ci = cloudinit.status(vm.sh(cloudinit.STATUS_SCRIPT, 20).out)
            if new_ci and new_ci != ci[0]:
                ci[0] = new_ci
                self.s.say(f"new gateway: cloud-init {new_ci} ({vm.since_start():.0f}s after its VM start)")
            return None if vm.alive() else "dead"

        # every 3 s: each look is a guest-exec in the booting VM and in the world VM
        t = poll.until(up, timeout, interval=3.0)
        return t if isinstance(t, float) else None

    def psk_files(self, vm, new: LabInputs, old: LabInputs) -> tuple[bool, str, dict]:
        keys = [t.preshared_key for t in new.tunnels] + [t.preshared_key for t in old.tunnels]
        res = vm.agent.sh(PSK_FILES_SCRIPT, timeout=90, stdin=("\n".join(keys) + "\n").encode())
        found = parse_psk_files(res.out)
        ok, text = psk_files_verdict(found)
        modes = [ln[5:] for ln in res.out.splitlines() if ln.startswith("mode ")]
        loose = [m for m in modes if not m.startswith(("600 root", "400 root"))]
        if loose:
            ok, text = False, text + f"; NOT root-only: {', '.join(loose)}"
        return (
            ok,
            text,
            {
                "files_with_new_psk": len(modes),
                "files_with_old_psk": len({x for k in ("old1", "old2", "old-anywhere") for x in found.get(k, [])}),
            },
        )

    def context(self, vm) -> str:
        parts = []
        if vm is not None and vm.alive():
            parts.append(
                vm.sh(
                    "echo '## new gateway: cloud-init'; cloud-init status --long 2>&1 | head -8; "
                    "tail -n 15 /var/log/cloud-init-output.log 2>&1; echo '## new gateway: addresses, routes'; "
                    "ip -br addr; ip route; echo '## new gateway: swanctl --list-sas'; "
                    'swanctl --list-sas 2>&1 | grep -v "^plugin \'" | head -30; '
                    "echo '## new gateway: strongswan journal'; journalctl -u strongswan --no-pager -n 30 2>&1",
                    60,
                ).text()
            )
            parts.append("## new gateway: console (last lines)\n" + vm.tail_file(vm.console, 15))
        parts.append(
            self.s.sh(
                'for n in 1 2; do echo "## aws$n SAs"; /bin/sh /run/lab/peer.sh exec $n swanctl --list-sas 2>&1 '
                '| grep -v "^plugin \'" | head -12; echo "## aws$n charon (auth)"; '
                "grep -E 'AUTH|authentication|pre-shared|establish' /run/lab/log/aws$n-charon.log | tail -n 8; done; "
                "echo '## alirouter DHCP'; tail -n 12 /run/lab/log/dnsmasq.log; "
                "echo '## alirouter neighbours'; ip -n alirouter neigh; "
                "echo '## awsrouter'; tail -n 4 /run/lab/log/awsrouter.log",
                60,
            ).text()
        )
        return "\n".join(parts)

    def run(self) -> Outcome:
        s = self.s
        old = s.inputs
        if not vswitch.opened(s.run_dir, VSWITCH_PORT):
            return False, "the world VM has no spare vSwitch port for a gateway VM (started without psk_rotation?)", {}
        # 1. the new plan, and the new gateway's disks, ready before anything changes
        keys = new_psks([t.preshared_key for t in old.tunnels])
        try:
            new = self.plan_rotated(keys)
        except PlanError as e:
            return False, "the stack with new PSKs does not plan:\n" + "\n".join(e.problems), {}
        bad = replacement_problems(old, new, keys)
        if bad:
            return False, "the new plan cannot replace the gateway in this lab:\n" + "\n".join(bad), {}
        user_data = new.user_data
        if s.opts.mutate:
            user_data = mutations.apply(s.opts.mutate, user_data, new)
        vm = self.gateway_vm(new, user_data)
        # 2. from the program's own configuration on both ends (the baseline left seed 000's)
        restored = ""
        if s.baseline_applied:
            restore_ours(s)
            s.wait_both_up(240)  # both ends were restarted: their tunnels first, then the precondition
            restored = "both ends first restored from seed 000's settings to the program's; "
        pre = s.precondition()
        if pre:
            return False, pre, {}
        t0 = s.probes.start()
        time.sleep(5)
        # 3. AWS: the VPN connection's tunnels modified one after the other
        marks = {p.number: p.mark for p in s.topo.peers}
        t_mod: dict[int, float] = {}
        mono_mod1 = time.monotonic()
        for t in new.tunnels:
            t_mod[t.number] = self.modify_aws_tunnel(t, marks[t.number])
            if t.number == 1:
                # the old ECS fails over to tunnel 2 (AWS spends minutes on each tunnel)
                fo = s.probes.wait_flowing(t_mod[1] + 0.5, timeout=90, settle=3.0)
                self.notes.append(
                    "old ECS failed over to tunnel 2 after tunnel 1's modification"
                    if fo is not None
                    else "traffic did NOT flow again within 90 s of tunnel 1's modification (no failover)"
                )
        # 4. the ECS replaced, delete-before-replace
        t_del, mono_del, old_facts = self.delete_old()
        s.extra_vms.append(vm)
        vm.start()
        t_create = s.now()
        s.event("new ECS created (VM started)", t_create)
        # once the instance exists, Pulumi associates the EIP and creates the route entry again
        attach = s.sh("/bin/sh /run/lab/alieip.sh attach 2>&1", 30)
        if not attach.ok:
            s.probes.stop(t0)
            return False, f"could not re-create the EIP association and route entry: {attach.text()[-800:]}", {}
        s.event("EIP association and route entry created again", s.now())
        s.say(f"psk_rotation: old ECS deleted, new gateway VM started (MAC {self.mac})")
        try:
            agent_s = vm.wait_agent(timeout=s.opts.boot_timeout_s)  # a busy host: as long as the first boot may take
        except Exception as e:
            s.probes.stop(t0)
            return False, f"the new gateway VM did not boot: {e}\n" + self.context(None), {}
        s.ecs = vm
        mono_up = self.wait_new_up(vm, s.opts.boot_timeout_s)
        up_s = {
            "rotation_to_established_s": round(mono_up - mono_mod1, 1) if mono_up else None,
            "rotation_replace_to_established_s": round(mono_up - mono_del, 1) if mono_up else None,
            "rotation_boot_to_established_s": round(vm.since_start() - (time.monotonic() - mono_up), 1)
            if mono_up
            else None,
        }
        if mono_up:
            s.say(
                f"psk_rotation: both tunnels ESTABLISHED on the new gateway, {up_s['rotation_boot_to_established_s']}s after its VM start"
            )
        flowing = s.probes.wait_flowing(t_create, timeout=120, settle=3.0) if mono_up else None
        r = s.probes.stop(t0)
        # 5. afterwards, on the new gateway
        pair_ok, pair_detail, pairs, _ = (
            settle_single_pair(s, timeout=60) if mono_up else (False, "tunnels not up", {}, 0)
        )
        psk_ok, psk_text, psk_metrics = self.psk_files(vm, new, old)
        addr = vm.sh("ip -4 -br addr show eth0; cat /sys/class/net/eth0/address", 20).out.split()
        got_ip = any(a.split("/")[0] == new.private_ip for a in addr)
        ci = vm.sh("cloud-init status 2>&1 | head -1", 30).out.strip()
        verify = ""
        vpath = verify_script_path(user_data)
        vres = vm.sh(vpath, 150) if vpath and mono_up else None
        if vres is not None:
            verify = f"; the new gateway's `{vpath}` exited {vres.rc}"
        up, down = r.up, r.down
        outage = max(up.outage_s, down.outage_s)
        metrics = {
            "rotation_outage_s": round(outage, 2),
            "rotation_uplink_outage_s": round(up.outage_s, 2),
            "rotation_downlink_outage_s": round(down.outage_s, 2),
            **up_s,
            "new_gateway_boot_to_agent_s": round(agent_s, 1),
            "uplink_lost": up.lost,
            "downlink_lost": down.lost,
            "uplink": up.as_metrics(t_mod[2]),
            "downlink": down.as_metrics(t_mod[2]),
            "events_s": {
                "tunnel1_modified": round(t_mod[1] - t_mod[2], 2),
                "tunnel2_modified": 0.0,
                "old_ecs_deleted": round(t_del - t_mod[2], 2),
                "new_ecs_created": round(t_create - t_mod[2], 2),
            },
            "new_gateway_mac": self.mac,
            "new_gateway_got_private_ip": got_ip,
            "new_gateway_cloud_init": ci,
            "new_gateway_verify_exit": vres.rc if vres is not None else None,
            "sa_pairs": pairs,
            **psk_metrics,
            "goal": "none (informational: bounded by a fresh TCG boot and the package install)",
        }
        back = mono_up is not None and flowing is not None and up.recovered and down.recovered
        ok = back and pair_ok and psk_ok
        est = up_s["rotation_to_established_s"]
        detail = (
            f"PSK rotation, `pulumi up` modelled: {restored}AWS modified tunnel 1 then tunnel 2 (each endpoint "
            f"restarted with its new key); then the ECS replaced delete-before-replace (route entry and EIP "
            f"association deleted, the old ECS deleted, the new one created, association and route entry "
            f"created again): old one deleted "
            f"({t_del - t_mod[2]:.0f}s after tunnel 2's modification), a fresh VM with the new user-data "
            f"(new instance-id, new MAC {self.mac}) created: outage uplink {up.outage_s:.1f}s / downlink "
            f"{down.outage_s:.1f}s (rotation_outage_s {outage:.1f}); both tunnels ESTABLISHED again "
            + (
                f"{est}s after the first PSK modification ({up_s['rotation_replace_to_established_s']}s after the "
                f"old ECS's deletion, {up_s['rotation_boot_to_established_s']}s after the new VM's start)"
                if est is not None
                else "NOT within the boot timeout"
            )
            + f"; traffic both ways again: {'yes' if back else 'NO'}; one SA pair per tunnel on both ends: "
            + ("yes" if pair_ok else "NO")
            + f"; PSK files on the new gateway: {psk_text}\n"
            + f"{old_facts}\n"
            + f"new gateway: {' '.join(addr)} (the plan's privateIp {new.private_ip} by DHCP: "
            + f"{'yes' if got_ip else 'NO'}), cloud-init {ci!r}{verify}; "
            + "; ".join(self.notes)
            + "\nNot modelled: the minutes AWS spends per tunnel modification and Alibaba's instance creation "
            "time (the lab runs each step as soon as the previous one is done)."
        )
        if not ok:
            if not pair_ok:
                detail += "\n" + pair_detail
            detail += "\n" + self.context(vm)
        return ok, detail, metrics


def psk_rotation(s: Session) -> Outcome:
    return Rotation(s).run()
