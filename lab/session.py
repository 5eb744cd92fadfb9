"""A running lab, as every check sees it: the VMs, the plan, the topology, the probes and the
blackhole, and the state of both tunnels as each end reports it.

`lab.run` builds one Session per run and passes it to each check (`lab.registry`); checks
keep nothing of their own between runs, and what one check leaves for a later one is in the
report (`Session.report`) or in a declared attribute here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core import paths
from lab import gateways, poll, swan, topology
from lab.blackhole import Blackhole
from lab.netem import Netem
from lab.probes import Probes

if TYPE_CHECKING:
    from lab.image import Image
    from lab.inputs import LabInputs
    from lab.options import Options
    from lab.report import Progress, Report
    from lab.topology import Topology
    from lab.vm import VM, ExecResult

PROBE = "python3 /run/lab/probe.py"
PEER = "/bin/sh /run/lab/peer.sh"
UP_TIMEOUT_S = 45  # how long a check waits for its precondition (both tunnels up, tunnel 1 preferred);
# every check before it ends by waiting for the link itself, so this is only the case of a broken one


@dataclass
class LinkState:
    """One look at both ends (Session.look), parsed."""

    ecs_sas: list[dict] = field(default_factory=list)
    ecs_routes: list[dict] = field(default_factory=list)
    peer_xfrm: dict[int, int] = field(default_factory=dict)  # tunnel -> the AWS end's xfrm states
    aws_via: int | None = None  # the tunnel the AWS router sends the Alibaba side to

    @classmethod
    def parse(cls, out: str, topo: Topology) -> LinkState:
        sections: dict[str, str] = {"": ""}
        cur = ""
        for ln in out.splitlines():
            if ln.startswith("=== "):
                cur = ln[4:].strip()
                sections[cur] = ""
            else:
                sections[cur] = sections.get(cur, "") + ln + "\n"
        st = cls(ecs_sas=swan.parse_pretty(sections.get("sas", "")))
        for ln in sections[""].splitlines():
            parts = ln.split(None, 2)
            if len(parts) == 3 and parts[0] == "xfrm" and parts[1].isdigit():
                st.peer_xfrm[int(parts[1])] = swan.xfrm_state_count(parts[2])
        st.ecs_routes = _json_list(sections.get("routes", ""))
        gateways = {r.get("gateway") for r in _json_list(sections.get("awsrouter", ""))}
        st.aws_via = next((p.number for p in topo.peers if p.transit_peer in gateways), None)
        return st

    def tunnels(self, inputs: LabInputs) -> dict:
        return {
            t.number: {
                "ecs_established": swan.established(self.ecs_sas, t.outside_address),
                "peer_xfrm_states": self.peer_xfrm.get(t.number, 0),
            }
            for t in inputs.tunnels
        }

    def both_up(self, inputs: LabInputs) -> bool:
        return (
            all(v["ecs_established"] and v["peer_xfrm_states"] >= 2 for v in self.tunnels(inputs).values())
            and swan.preferred_tunnel(self.ecs_routes) == 1
            and self.aws_via == 1
        )


def pairs_command(kind: str, pairs: list[tuple[str, str, str, str, int]], options: str) -> str:
    """guest/probe.py `pairs KIND` for every (client ns, client ip, server ns, server ip, port)."""
    specs = " ".join(f"--pair {','.join(map(str, p))}" for p in pairs)
    return f"{PROBE} pairs {kind} {specs} {options}"


def parse_pairs(out: str, count: int, context: str = "") -> list[dict]:
    """The `pairs` command's JSON list (its last line), one result per pair; when it has no
    such list, every pair's result is {"ok": False, "error": ...}."""
    try:
        results = json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        results = None
    if isinstance(results, list) and len(results) == count and all(isinstance(r, dict) for r in results):
        return results
    return [{"ok": False, "error": f"probe failed: {context or out[-1500:]}"} for _ in range(count)]


def _json_list(text: str) -> list[dict]:
    try:
        out = json.loads(text.strip() or "[]")
    except ValueError:
        return []
    return out if isinstance(out, list) else []


@dataclass
class BootFacts:
    """What waiting for cloud-init and the tunnels saw (lab.run.wait_for_link)."""

    cloud_init_status: str = ""
    cloud_init_done_s: float | None = None  # after VM start
    tunnel_up_s: dict[int, float] = field(default_factory=dict)  # tunnel -> established, after VM start
    # tunnels seen up, then not established on both ends when the checks were to start
    lost_before_checks: list[str] = field(default_factory=list)

    @property
    def established_s(self) -> float | None:
        return max(self.tunnel_up_s.values()) if self.tunnel_up_s else None


class Session:
    def __init__(
        self,
        *,
        inputs: LabInputs,
        topo: Topology,
        user_data: str,
        world: VM,
        gateways: dict[int, VM] | None = None,
        run_dir: Path,
        image: Image,
        report: Report,
        progress: Progress,
        opts: Options,
        boot: BootFacts,
    ):
        self.inputs = inputs
        self.topo = topo
        self.user_data = user_data
        self.world = world  # the world VM; its root namespace is the first ECS
        self.ecs = world  # the VM holding the ECS now (a replacement runs in a VM of its own)
        # a pair's gateways by number, each in a VM of its own (the lab stops them); `ecs` is then
        # the active one (keepalived MASTER: it holds the HaVip and the tunnels), see follow_active
        self.gateways: dict[int, VM] = gateways if gateways is not None else {}
        self.extra_vms: list[VM] = []  # gateway VMs of their own, stopped with the world VM
        self.run_dir = run_dir
        self.image = image
        self.report = report
        self.progress = progress
        self.opts = opts  # the run's options (stack file, mutation, VM size, timeouts)
        self.boot = boot
        self.events: list[tuple[str, float]] = []  # (what, guest time) of every fault injected
        self.timelines: dict = {}  # name -> (ProbeResult, t_ref): the failover plots' data
        self.baseline_applied = False  # seed 000's settings on both ends (checks.baseline)
        self.notes: list[str] = []  # what the harness did before the current check (lab.run)
        self.probes = Probes(self.sh, topo, self.now)
        self.blackhole = Blackhole(self.sh, {t.number: t.outside_address for t in inputs.tunnels}, self.event, self.now)
        self.netem = Netem(self.sh, [t.number for t in inputs.tunnels], self.event, self.now)
        if self.gateways:
            self.follow_active()

    # ------------------------------------------------------------------ a pair's gateways
    def roles(self) -> dict[int, str]:
        """keepalived's role of each gateway of a pair (DOWN: its VM is not running)."""
        return {
            n: gateways.parse_role(vm.sh(gateways.ROLE_SCRIPT, 15).out) if vm.alive() else "DOWN"
            for n, vm in self.gateways.items()
        }

    def active_number(self) -> int | None:
        """The pair's gateway that is MASTER, when exactly one is."""
        masters = [n for n, r in self.roles().items() if r == "MASTER"]
        return masters[0] if len(masters) == 1 else None

    def follow_active(self) -> int | None:
        """Point `ecs` at the pair's active gateway (the checks' "the ECS"); returns its number."""
        n = self.active_number()
        if n is not None:
            self.ecs = self.gateways[n]
        return n

    # ------------------------------------------------------------------ running things
    def sh(self, script: str, timeout: float = 60) -> ExecResult:
        """In the world VM's root namespace (the first ECS; `ip netns exec NS` for the rest)."""
        return self.world.sh(script, timeout=timeout)

    def ecs_sh(self, script: str, timeout: float = 60) -> ExecResult:
        """On the ECS, wherever it runs now."""
        return self.ecs.sh(script, timeout=timeout)

    def peer_sh(self, n: int, command: str, timeout: float = 60) -> ExecResult:
        """A command in tunnel n's AWS-like endpoint (its namespace and strongSwan)."""
        return self.sh(f"{PEER} exec {n} {command}", timeout)

    def probe(self, args: str, timeout: float = 90) -> dict:
        """guest/probe.py (one JSON line) in the world VM."""
        res = self.sh(f"{PROBE} {args}", timeout=timeout)
        try:
            return json.loads(res.out.strip().splitlines()[-1])
        except (IndexError, ValueError):
            return {"ok": False, "error": "probe failed: " + res.text()[-1500:]}

    def probe_pairs(
        self, kind: str, pairs: list[tuple[str, str, str, str, int]], options: str, timeout: float = 90
    ) -> list[dict]:
        """guest/probe.py `pairs` (ping, tcp, udp): every (client ns, client ip, server ns,
        server ip, port) at once in one guest process; a result per pair, in order."""
        res = self.sh(pairs_command(kind, pairs, options), timeout=timeout)
        return parse_pairs(res.out, len(pairs), res.text()[-1500:])

    def now(self) -> float:
        """The world VM's wall clock (every fault instant and probe is timed by it)."""
        out = self.sh("date +%s.%N", 15).out.strip()
        try:
            return float(out)
        except ValueError:
            import time

            return time.time()

    def event(self, what: str, t: float) -> None:
        self.events.append((what, t))

    def say(self, msg: str) -> None:
        self.progress.say(msg)

    # ------------------------------------------------------------------ hosts and addresses
    def pairs(self, direction: str) -> list[tuple[str, str, str, str]]:
        """(client ns, client ip, server ns, server ip) of every Alibaba host x every AWS
        host, for ali_to_aws / aws_to_ali (topology.pairs); alihost and awshost first."""
        return topology.pairs(self.topo, direction)

    def hosts(self, direction: str) -> tuple[str, str, str, str]:
        """The first pair: alihost and awshost (the bulk transfer's and the fault probes' hosts)."""
        return self.pairs(direction)[0]

    def addr(self, n: int) -> str:
        """Tunnel n's AWS outside address."""
        return self.blackhole.addresses[n]

    # ------------------------------------------------------------------ both ends' state
    def ecs_sas(self) -> list[dict]:
        return swan.parse_pretty(self.ecs_sh("swanctl --list-sas --pretty 2>&1", 30).out)

    def peer_sas(self, n: int) -> list[dict]:
        return swan.parse_pretty(self.peer_sh(n, "swanctl --list-sas --pretty 2>&1", 30).out)

    def ecs_routes(self, prefix: str | None = None) -> list[dict]:
        """The ECS's routes to an AWS prefix, the first by default (`ip -j route`)."""
        out = self.ecs_sh(f"ip -j route show {prefix or self.topo.aws_prefixes[0]}", 15).out
        try:
            return json.loads(out or "[]")
        except ValueError:
            return []

    def liveness(self) -> dict:
        """The gateway's liveness daemon's view of each tunnel (its state file), {} if none."""
        out = self.ecs_sh(f"cat {paths.LIVENESS_STATE_PATH} 2>/dev/null", 15).out
        try:
            return json.loads(out or "{}").get("tunnels", {})
        except ValueError:
            return {}

    def ecs_route(self) -> str:
        """The same, as a line per route for reports."""
        return "; ".join(f"dev {r.get('dev')} metric {r.get('metric', 0)}" for r in self.ecs_routes())

    def ecs_tunnel_preferred(self) -> int | None:
        return swan.preferred_tunnel(self.ecs_routes())

    def aws_route_tunnel(self) -> int | None:
        """Which tunnel the AWS router sends the Alibaba side to (from its route's next hop)."""
        out = self.sh(f"ip -j -n awsrouter route show {self.topo.ali_prefixes[0]}", 15).out
        try:
            gateways = {r.get("gateway") for r in json.loads(out or "[]")}
        except ValueError:
            return None
        return next((p.number for p in self.topo.peers if p.transit_peer in gateways), None)

    def look(self) -> LinkState:
        """Both ends' state in one guest call per VM (a poll runs it every 2 s, and each
        guest-exec costs CPU in a TCG guest): the ECS's SAs and routes to the first AWS prefix,
        each AWS end's xfrm state count, the AWS router's next hop to the first Alibaba prefix
        (guest/awsrouter-monitor.sh moves every Alibaba prefix at once)."""
        nums = " ".join(str(t.number) for t in self.inputs.tunnels)
        world = (
            f'for n in {nums}; do echo "xfrm $n $(ip -n aws$n xfrm state count)"; done; '
            f"echo '=== awsrouter'; ip -j -n awsrouter route show {self.topo.ali_prefixes[0]}; "
        )
        ecs = (
            f"echo '=== routes'; ip -j route show {self.topo.aws_prefixes[0]}; "
            "echo '=== sas'; swanctl --list-sas --pretty 2>&1"
        )
        if self.ecs is self.world:
            out = self.sh(world + ecs, 30).out
        else:
            out = self.sh(world, 30).out + "\n" + self.ecs_sh(ecs, 30).out
        return LinkState.parse(out, self.topo)

    def tunnel_state(self) -> dict:
        """Per tunnel: ECS established + installed, the AWS end's xfrm states."""
        return self.look().tunnels(self.inputs)

    def both_up(self) -> bool:
        """Both tunnels established on the ECS with SAs on the AWS ends, tunnel 1 preferred
        on both ends."""
        return self.look().both_up(self.inputs)

    def wait_both_up(self, timeout: float) -> float | None:
        """Seconds until both_up(), None when not within timeout."""
        import time

        t0 = time.monotonic()
        return time.monotonic() - t0 if poll.until(self.both_up, timeout) else None

    def state_line(self) -> str:
        return (
            f"state {self.tunnel_state()}, ECS route {self.ecs_route()!r}, "
            f"AWS router via tunnel {self.aws_route_tunnel()}"
        )

    def precondition(self) -> str | None:
        """Every fault check starts from both tunnels up, tunnel 1 preferred on both ends.
        When a check before it left the link broken, both ends are restarted once (noted in
        this check's detail: the earlier check has already failed for it)."""
        if self.wait_both_up(UP_TIMEOUT_S) is not None:
            return None
        before = self.state_line()
        self.sh(
            "for n in "
            + " ".join(str(t.number) for t in self.inputs.tunnels)
            + f"; do {PEER} stop $n; done; sleep 1; for n in "
            + " ".join(str(t.number) for t in self.inputs.tunnels)
            + f"; do {PEER} start $n; done",
            120,
        )
        if self.gateways:
            # a pair: restarting charon on the active gateway would hand over (aws2aliyun-ha
            # check); the active one initiates both tunnels afresh instead
            self.follow_active()
            self.ecs_sh(
                "for t in tunnel1 tunnel2; do swanctl --terminate --ike $t --force --timeout 3; "
                "swanctl --initiate --child $t --timeout 30; done >/dev/null 2>&1",
                90,
            )
        else:
            self.ecs_sh("systemctl restart strongswan", 60)
        self.event("lab: both ends restarted (precondition)", self.now())
        self.notes.append(
            f"the link was not up in {UP_TIMEOUT_S} s before this check ({before}); the lab restarted "
            "both ends' strongSwan first"
        )
        if self.wait_both_up(UP_TIMEOUT_S) is not None:
            return None
        return (
            f"precondition failed: both tunnels up with tunnel 1 preferred on both ends not reached in "
            f"{UP_TIMEOUT_S} s, nor {UP_TIMEOUT_S} s after both ends were restarted; {self.state_line()}"
        )
