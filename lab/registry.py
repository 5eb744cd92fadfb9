"""Every lab check, once: its name, its place in the run, the function, its goals, the report's
headline metrics it provides and its rows in BENCHMARKS.md.

The run order (`lab.run`), the report (`lab.report`), BENCHMARKS.md (`lab.benchmarks`), the CLI
and the lab tests all read SPECS. A new check is one function `(Session) -> Outcome` and one
Spec here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lab import diagnostics, goals
from lab.checks import baseline, basic, bgp, failover, ha, lossy, rekeys, restarts, rotation, security, traffic
from lab.goals import Bound, Goal
from lab.report import Check, Outcome


@dataclass(frozen=True)
class Row:
    """A row of BENCHMARKS.md's metrics table: one metric of the check it belongs to."""

    label: str
    key: str
    unit: str = "s"
    informational: bool = False


@dataclass(frozen=True)
class Spec:
    name: str
    run: Callable  # (Session) -> Outcome
    fault: bool = False  # one of the fault checks (`--no-faults` skips them)
    goals: tuple[Goal, ...] = ()
    # (report metric, check metric): what the report's top-level metrics take from it
    headline: tuple[tuple[str, str], ...] = ()
    rows: tuple[Row, ...] = ()
    # the check that continues from the fault this one leaves in place (else every block
    # is lifted after it)
    hands_over_to: str = ""
    # on an IKEv1 link: the bound it can meet instead of `goals`, and why (lab/goals.py Bound)
    ikev1: Bound | None = None
    # its goals hold with other lab runs loading the machine (measured so: lab/checks/lossy.py),
    # so a scheduler may load it again before this check (`--goals-done`, tests/labjobs.py)
    load_tolerant: bool = False
    # the IKE versions it runs on (a check IKEv1 cannot pass yet, for a reason of its own: `not_on_ikev1`)
    ike_versions: tuple[int, ...] = (1, 2)
    not_on_ikev1: str = ""
    # the stacks it runs on by their gateway count: 1, or 2 for a pair behind a HaVip
    gateway_counts: tuple[int, ...] = (1,)
    # a failure gets one more attempt on the same lab (RETRY_WHY); both are in the report
    retry: bool = False
    # the stacks it runs on by their routing: static, or bgp (issue 14: the traffic, tunnel
    # failover and bgp_* checks; NOT_ON_BGP)
    routings: tuple[str, ...] = ("static",)
    # on a BGP stack: the goals it must meet instead of `goals` (None: the same)
    bgp_goals: tuple[Goal, ...] | None = None


# Why some fault checks get a second attempt (Spec.retry): what they exercise (rekeys, restarts,
# reboots) depends on both ends' timing, and under `make test` two TCG guests share two cores
# beside other lab runs: a stall of several seconds in one guest turns a rekey into a
# retransmission chain. A regression fails both attempts; a stall seldom hits both. The first
# attempt stays in the report (metrics["first_attempt"]) and BENCHMARKS.md marks the check. Only
# checks that start from and leave a link with both tunnels up, and that take minutes at most:
# not the failover/failback pair (one leaves its fault for the other), the soaks or the
# replacements (docs/lab-findings.md #25).
RETRY_WHY = "timing-sensitive on a loaded TCG host: one more attempt on the same lab, both reported"

# The lossy path's two designs are compared once, on IKEv2 (docs/lab-findings.md #18)
BASELINE_LOSSY_IKEV1_WHY = (
    "the two designs are compared once, on the modern profile (IKEv2); on IKEv1 the program's own "
    "soak (`lossy_path`) is held to its DPD's bound, and a second soak would cost `make test` its "
    "minutes again"
)


def for_ike(ike_version: int, gateway_count: int = 1, routing: str = "static") -> tuple[str, ...]:
    """The checks a run on a link of this IKE version (gateway count, routing) runs, in order."""
    return tuple(
        s.name
        for s in SPECS
        if ike_version in s.ike_versions and gateway_count in s.gateway_counts and routing in s.routings
    )


# What a pair runs besides its own checks (issue 13: the traffic and tunnel-failover checks on
# the pair); the others model one ECS (it is rebooted, replaced, reconfigured in place).
NOT_ON_A_PAIR = "models one gateway ECS; a pair runs the ha_* checks, the traffic and the tunnel failover checks"
BOTH = (1, 2)
# What a BGP stack runs besides its own checks (issue 14): the traffic and tunnel-failover checks
# under BGP. The others exercise what routing does not change (IKE, the host) and run on the
# static stacks.
NOT_ON_BGP = "exercises what routing does not change (IKE, rekeys, restarts, the host): run on the static stacks"
BOTH_ROUTINGS = ("static", "bgp", "bgp-ecmp")
BGP = ("bgp", "bgp-ecmp")


def _same(*keys: str) -> tuple[tuple[str, str], ...]:
    return tuple((k, k) for k in keys)


SPECS: tuple[Spec, ...] = (
    Spec(
        "cloud_init_clean",
        basic.cloud_init_clean,
        rows=(Row("cloud-init's package install (apt, from the image's mirror)", "packages_s", informational=True),),
        gateway_counts=BOTH,
        routings=BOTH_ROUTINGS,
    ),
    Spec(
        "tunnels_established",
        basic.tunnels_established,
        rows=(Row("boot to both tunnels established", "boot_to_established_s"),),
        gateway_counts=BOTH,
        routings=BOTH_ROUTINGS,
    ),
    Spec("bgp_established", bgp.bgp_established, routings=BGP),
    Spec("ha_established", ha.ha_established, gateway_counts=(2,)),
    Spec("icmp_ali_to_aws", traffic.icmp_ali_to_aws, gateway_counts=BOTH, routings=BOTH_ROUTINGS),
    Spec("icmp_aws_to_ali", traffic.icmp_aws_to_ali, gateway_counts=BOTH, routings=BOTH_ROUTINGS),
    Spec("tcp_ali_to_aws", traffic.tcp_ali_to_aws, gateway_counts=BOTH, routings=BOTH_ROUTINGS),
    Spec("tcp_aws_to_ali", traffic.tcp_aws_to_ali, gateway_counts=BOTH, routings=BOTH_ROUTINGS),
    Spec("udp_ali_to_aws", traffic.udp_ali_to_aws, gateway_counts=BOTH, routings=BOTH_ROUTINGS),
    Spec("udp_aws_to_ali", traffic.udp_aws_to_ali, gateway_counts=BOTH, routings=BOTH_ROUTINGS),
    Spec("nat_t", basic.nat_t),
    Spec("bulk_tcp_mtu", traffic.bulk_tcp_mtu),
    Spec("single_sa_pair", basic.single_sa_pair, gateway_counts=BOTH, routings=BOTH_ROUTINGS),
    Spec("routes_prefer_tunnel1", basic.routes_prefer_tunnel1, gateway_counts=BOTH),
    Spec("verify_script", basic.verify_script, gateway_counts=BOTH, routings=BOTH_ROUTINGS),
    Spec("host_firewall", security.host_firewall, routings=BOTH_ROUTINGS),
    Spec("bgp_routes", bgp.bgp_routes, routings=BGP),
    Spec("bgp_ecmp", bgp.bgp_ecmp, routings=("bgp-ecmp",)),
    Spec("secrets_on_instance", security.secrets_on_instance),
    # the fault checks, in this order on one running lab
    Spec(
        "failover_tunnel1",
        failover.failover_tunnel1,
        fault=True,
        goals=(goals.FAILOVER_UPLINK, goals.FAILOVER_DOWNLINK),
        bgp_goals=(goals.FAILOVER_UPLINK_BGP, goals.FAILOVER_DOWNLINK),
        headline=_same("uplink_outage_s", "downlink_outage_s"),
        hands_over_to="failback",  # tunnel 1 stays blackholed: failback lifts it
        gateway_counts=BOTH,
        routings=("static", "bgp"),
        rows=(
            Row("failover: uplink outage (Alibaba -> AWS)", "uplink_outage_s"),
            Row("failover: downlink outage (AWS -> Alibaba)", "downlink_outage_s"),
        ),
    ),
    Spec(
        "failback",
        failover.failback,
        fault=True,
        goals=(goals.FAILBACK_LOST,),
        headline=_same("failback_lost"),
        gateway_counts=BOTH,
        routings=("static", "bgp"),
        rows=(
            Row("failback: probes lost", "failback_lost", unit=""),
            Row("failback: block lifted to tunnel 1 preferred", "unblock_to_preferred_s"),
        ),
    ),
    Spec(
        "bgp_prefix_added",
        bgp.bgp_prefix_added,
        fault=True,
        routings=("bgp",),
        rows=(
            Row("BGP: a prefix announced on the AWS side, routed on the gateway after", "announce_to_route_s"),
            Row("BGP: the prefix withdrawn, gone from the gateway after", "withdraw_to_gone_s"),
        ),
    ),
    Spec(
        "bgp_down_ipsec_up",
        bgp.bgp_down_ipsec_up,
        fault=True,
        routings=("bgp",),
        rows=(
            Row("BGP: bgpd stopped on tunnel 1's AWS end, uplink outage", "uplink_outage_s"),
            Row("BGP: bgpd stopped on tunnel 1's AWS end, downlink outage", "downlink_outage_s"),
        ),
    ),
    Spec(
        "failover_tunnel2",
        failover.failover_tunnel2,
        fault=True,
        goals=(goals.IDLE_TUNNEL_LOST,),
        rows=(Row("idle tunnel 2 blackholed: probes lost", "lost", unit=""),),
        retry=True,
    ),
    Spec(
        "verify_script_detects_down",
        failover.verify_script_detects_down,
        fault=True,
        goals=(goals.VERIFY_DETECTS_DOWN,),
        rows=(Row("verify script, tunnel 2 down: exit code", "exit_code", unit=""),),
        retry=True,
    ),
    Spec(
        "both_down_recover",
        failover.both_down_recover,
        fault=True,
        goals=(goals.BOTH_DOWN_RECOVER,),
        headline=_same("both_down_recover_s"),
        rows=(Row("both down 60 s, lifted: traffic back", "both_down_recover_s"),),
        retry=True,
    ),
    Spec(
        "charon_restart_ecs",
        restarts.charon_restart_ecs,
        fault=True,
        headline=_same("charon_restart_to_established_s"),
        rows=(Row("ECS strongSwan restart: both tunnels back", "charon_restart_to_established_s"),),
        retry=True,
    ),
    Spec(
        "rekey_forced",
        rekeys.rekey_forced,
        fault=True,
        goals=(goals.REKEY_LOST,),
        ikev1=Bound((goals.IKEV1_REKEY_LOST,), goals.IKEV1_REKEY_WHY),
        headline=_same("rekey_lost"),
        rows=(
            Row("forced rekeys (12) under traffic: probes lost", "rekey_lost", unit=""),
            Row("rekeys: settled to one SA pair per tunnel", "settle_to_single_pair_s"),
        ),
        retry=True,
    ),
    Spec(
        "rekey_collision",
        rekeys.rekey_collision,
        fault=True,
        ikev1=Bound((goals.IKEV1_COLLISION_LOST,), goals.IKEV1_REKEY_WHY),
        headline=_same("collision_lost"),
        rows=(
            Row("rekey collisions (3): probes lost", "collision_lost", unit=""),
            Row("collisions: settled to one SA pair per tunnel", "settle_to_single_pair_s"),
        ),
        retry=True,
    ),
    Spec(
        "reboot_persistence",
        restarts.reboot_persistence,
        fault=True,
        headline=_same("reboot_to_established_s"),
        rows=(Row("ECS reboot: both tunnels back", "reboot_to_established_s"),),
        retry=True,
        routings=("static", "bgp"),  # with BGP: FRR back by itself, tunnel 1 preferred both ends
    ),
    Spec(
        "aws_endpoint_restart",
        restarts.aws_endpoint_restart,
        fault=True,
        headline=_same("aws_endpoint_restart_to_established_s"),
        rows=(Row("AWS endpoint restart: both tunnels back", "aws_endpoint_restart_to_established_s"),),
        retry=True,
    ),
    # it reconfigures both ends with seed 000's settings (lab/baseline.py), on the first ECS
    Spec(
        "baseline_failover_tunnel1",
        baseline.baseline_failover_tunnel1,
        fault=True,
        goals=(goals.BASELINE_UPLINK_RATIO, goals.BASELINE_DOWNLINK_RATIO),
        headline=(
            *_same("baseline_uplink_outage_s", "baseline_downlink_outage_s"),
            ("baseline_uplink_ratio", "uplink_ratio"),
            ("baseline_downlink_ratio", "downlink_ratio"),
        ),
        rows=(
            Row("seed 000 baseline: uplink outage", "baseline_uplink_outage_s"),
            Row("seed 000 baseline: downlink outage", "baseline_downlink_outage_s"),
            Row("ours / baseline, uplink outage", "uplink_ratio", unit="x"),
            Row("ours / baseline, downlink outage", "downlink_ratio", unit="x"),
        ),
    ),
    # the program's configuration first (the seed baseline left its own), then a cross-border path
    Spec(
        "lossy_path",
        lossy.lossy_path,
        fault=True,
        goals=(goals.LOSSY_TEARDOWNS, goals.LOSSY_ROUTE_SWITCHES),
        ikev1=Bound((goals.IKEV1_LOSSY_TEARDOWNS, goals.IKEV1_LOSSY_ROUTE_SWITCHES), goals.IKEV1_LOSSY_WHY),
        load_tolerant=True,  # a lossy path is no quiet machine either; measured beside other runs
        headline=(("lossy_teardowns", "teardowns"), ("lossy_route_switches", "route_switches")),
        rows=(
            Row("lossy path (10 min): tunnel teardowns", "teardowns", unit=""),
            Row("lossy path: route switches off tunnel 1", "route_switches", unit=""),
            Row(
                "lossy path: route switches on a stall of the lab's host",
                "route_switches_on_host_stall",
                unit="",
                informational=True,
            ),
            Row("lossy path: standby withdrawals", "standby_withdrawals", unit="", informational=True),
            Row("lossy path: probes lost uplink (path: 15 % each way)", "uplink_loss_pct", unit="%"),
            Row("lossy path: probes lost downlink", "downlink_loss_pct", unit="%"),
        ),
    ),
    # the design before data-plane liveness on the ECS (lab/previous.py): reported
    Spec(
        "baseline_lossy_path",
        lossy.baseline_lossy_path,
        fault=True,
        ike_versions=(2,),
        not_on_ikev1=BASELINE_LOSSY_IKEV1_WHY,
        headline=(
            ("baseline_lossy_teardowns", "teardowns"),
            ("baseline_lossy_route_switches", "route_switches"),
        ),
        rows=(
            Row("design before liveness, lossy path: tunnel teardowns", "teardowns", unit="", informational=True),
            Row("design before liveness, lossy path: route switches", "route_switches", unit="", informational=True),
        ),
    ),
    # last: it replaces the ECS (lab/checks/rotation.py); no check after it could run on the
    # first one. No goal: the outage is a fresh TCG boot plus the package install.
    Spec(
        "psk_rotation",
        rotation.psk_rotation,
        fault=True,
        headline=_same(
            "rotation_outage_s", "rotation_uplink_outage_s", "rotation_downlink_outage_s", "rotation_to_established_s"
        ),
        rows=(
            Row("PSK rotation (ECS replaced): outage, worse direction", "rotation_outage_s", informational=True),
            Row("PSK rotation: uplink outage", "rotation_uplink_outage_s", informational=True),
            Row("PSK rotation: downlink outage", "rotation_downlink_outage_s", informational=True),
            Row(
                "PSK rotation: first PSK change to both tunnels established",
                "rotation_to_established_s",
                informational=True,
            ),
        ),
    ),
)

SPECS += (
    # a gateway pair behind a HaVip (lab/checks/ha.py), after the tunnel failover checks
    Spec(
        "ha_active_killed",
        ha.ha_active_killed,
        fault=True,
        goals=(goals.HA_UPLINK, goals.HA_DOWNLINK),
        headline=_same("ha_uplink_outage_s", "ha_downlink_outage_s"),
        rows=(
            Row("pair: active gateway powered off, uplink outage", "ha_uplink_outage_s"),
            Row("pair: active gateway powered off, downlink outage", "ha_downlink_outage_s"),
        ),
        gateway_counts=(2,),
    ),
    Spec(
        "ha_recovered_no_preempt",
        ha.ha_recovered_no_preempt,
        fault=True,
        goals=(goals.HA_RECOVERED_LOST,),
        headline=_same("ha_recovered_lost"),
        rows=(
            Row("pair: old active back as standby, probes lost", "ha_recovered_lost", unit=""),
            Row("pair: power-on to ready as standby", "power_on_to_ready_s", informational=True),
        ),
        gateway_counts=(2,),
    ),
    Spec(
        "ha_strongswan_killed",
        ha.ha_strongswan_killed,
        fault=True,
        goals=(goals.HA_UPLINK, goals.HA_DOWNLINK),
        headline=(
            ("ha_strongswan_uplink_outage_s", "ha_uplink_outage_s"),
            ("ha_strongswan_downlink_outage_s", "ha_downlink_outage_s"),
        ),
        rows=(
            Row("pair: charon killed on the active, uplink outage", "ha_uplink_outage_s"),
            Row("pair: charon killed on the active, downlink outage", "ha_downlink_outage_s"),
        ),
        gateway_counts=(2,),
    ),
    Spec(
        "ha_partition",
        ha.ha_partition,
        fault=True,
        headline=_same("partition_uplink_lost", "partition_downlink_lost"),
        rows=(
            Row("pair: VRRP partition 60 s, probes lost uplink", "partition_uplink_lost", unit="", informational=True),
            Row("pair: VRRP partition, probes lost downlink", "partition_downlink_lost", unit="", informational=True),
        ),
        gateway_counts=(2,),
    ),
    # last: it replaces both gateways. Not load-tolerant: beside the mutations and the BGP stack
    # its one hand-over took 9.1 / 10.0 s, at the goal's edge (docs/lab-findings.md #40)
    Spec(
        ha.ROLLING_CHECK,
        ha.ha_rolling_replacement,
        fault=True,
        goals=(goals.ROLLING_UPLINK, goals.ROLLING_DOWNLINK),
        headline=_same("rolling_uplink_outage_s", "rolling_downlink_outage_s"),
        rows=(
            Row("pair: rolling replacement, uplink outage", "rolling_uplink_outage_s"),
            Row("pair: rolling replacement, downlink outage", "rolling_downlink_outage_s"),
            Row("pair: rolling replacement, total time", "rolling_total_s", informational=True),
        ),
        gateway_counts=(2,),
    ),
)

BY_NAME: dict[str, Spec] = {s.name: s for s in SPECS}
CHECKS: tuple[str, ...] = tuple(s.name for s in SPECS if not s.fault)
FAULT_CHECKS: tuple[str, ...] = tuple(s.name for s in SPECS if s.fault)
ALL: tuple[str, ...] = CHECKS + FAULT_CHECKS


def goals_for(spec: Spec, ike_version: int = 2, routing: str = "static") -> tuple[Goal, ...]:
    """What the check must meet on a link of this IKE version and routing: its goals, on IKEv1
    its bound, with BGP its BGP goals."""
    if routing != "static" and spec.bgp_goals is not None:
        return spec.bgp_goals
    return spec.ikev1.goals if ike_version == 1 and spec.ikev1 else spec.goals


def quiet_until(specs: list[Spec]) -> Spec | None:
    """The last of these checks whose goals need a quiet machine: once it has run, other lab
    runs may load the machine again (`--goals-done`)."""
    return next((s for s in reversed(specs) if s.goals and not s.load_tolerant), None)


def goal_of(spec: Spec, key: str, ike_version: int = 2) -> Goal | None:
    return next((g for g in goals_for(spec, ike_version) if g.metric == key), None)


def judge(spec: Spec, check: Check, ike_version: int = 2, routing: str = "static") -> Check:
    """The check's goals (on IKEv1 its bound, with BGP its BGP goals) against its own metrics:
    each verdict in metrics["goals"]; a missed goal fails the check and says so first."""
    wanted = goals_for(spec, ike_version, routing)
    if not wanted:
        return check
    verdicts = {g.metric: g.judge(check.metrics) for g in wanted}
    check.metrics["goals"] = {
        k: {"goal": g.text, "met": met, "verdict": text}
        for (k, (met, text)), g in zip(verdicts.items(), wanted, strict=True)
    }
    if ike_version == 1 and spec.ikev1:
        check.metrics["goals_why"] = spec.ikev1.why
    missed = [text for met, text in verdicts.values() if not met]
    met = [text for ok, text in verdicts.values() if ok]
    head, _, rest = check.detail.partition("\n")
    if missed:
        check.ok = False
        head = "GOAL MISSED: " + "; ".join(missed) + ". " + head
    elif met:
        head += " [goals met: " + "; ".join(met) + "]"
    check.detail = head + ("\n" + rest if rest else "")
    return check


def headline(checks: list[Check]) -> dict:
    """The report's top-level metrics, from the checks that provide them."""
    by_name = {c.name: c for c in checks}
    out = {}
    for spec in SPECS:
        c = by_name.get(spec.name)
        for report_key, key in spec.headline:
            if c and c.metrics.get(key) is not None:
                out[report_key] = c.metrics[key]
    return out


def run_retrying(spec: Spec, session, before_retry: Callable[[], object]) -> Check:
    """run(), and for a check with `retry` that failed, once more after `before_retry` (which
    lifts whatever fault the first attempt left): the second attempt's verdict, the first's in
    metrics["first_attempt"] and named in the detail."""
    first = run(spec, session)
    if first.ok or not spec.retry or not session.world.alive():
        return first
    before_retry()
    second = run(spec, session)
    second.seconds += first.seconds
    first_head = first.detail.partition("\n")[0]
    second.metrics["first_attempt"] = {"ok": False, "seconds": round(first.seconds, 2), "detail": first.detail[:4000]}
    second.metrics["first_attempt"]["metrics"] = first.metrics
    head, _, rest = second.detail.partition("\n")
    second.detail = f"{head}\nsecond attempt ({RETRY_WHY}); the first failed: {first_head[:400]}" + (
        "\n" + rest if rest else ""
    )
    return second


def run(spec: Spec, session) -> Check:
    """Run one check, timed, and judge its goals (a lab error is a failed check)."""
    from lab.report import run_check

    fn: Callable[[], Outcome] = lambda: spec.run(session)  # noqa: E731
    check = run_check(spec.name, fn)
    ok = check.ok
    judge(spec, check, session.inputs.ike_version, session.inputs.routing_mode)
    missed = ok and not check.ok
    if missed and spec.fault and diagnostics.FAULT_CONTEXT_MARK not in check.detail and session.world.alive():
        check.detail += "\n" + diagnostics.fault_context(session)  # what a missed goal needs
    return check
