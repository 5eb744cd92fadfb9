"""The link after boot: cloud-init, both tunnels, one SA pair each, NAT-T, the verify script."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from core import paths
from lab import cloudinit, diagnostics, poll, swan
from lab.inputs import link_env, verify_script_path
from lab.report import Outcome

if TYPE_CHECKING:
    from lab.session import Session


def cloud_init_clean(s: Session) -> Outcome:
    """On the ECS, or on each gateway of a pair."""
    if not s.gateways:
        return _cloud_init_clean(s.sh)
    # side by side: `cloud-init status` is a Python start-up, many seconds in a TCG guest
    with ThreadPoolExecutor(max_workers=len(s.gateways)) as pool:
        futures = {n: pool.submit(_cloud_init_clean, vm.sh) for n, vm in sorted(s.gateways.items())}
        outcomes = {n: f.result() for n, f in futures.items()}
    ok = all(o[0] for o in outcomes.values())
    detail = (
        "; ".join(f"gateway {n}: {o[1]}" for n, o in outcomes.items() if o[0])
        if ok
        else "\n".join(f"gateway {n}: {o[1]}" for n, o in outcomes.items() if not o[0])
    )
    metrics: dict = {f"gateway{n}": o[2] for n, o in outcomes.items()}
    took = [o[2]["packages_s"] for o in outcomes.values() if o[2].get("packages_s") is not None]
    metrics["packages_s"] = max(took) if took else None  # the slower gateway's (they boot together)
    return ok, detail, metrics


ANALYZE_MARK = "=== analyze"


def _cloud_init_clean(sh) -> Outcome:
    res = sh(
        "cloud-init status --format json 2>&1; "
        "echo '=== failed units'; systemctl --failed --no-legend --plain 2>&1; "
        "echo '=== warnings'; grep -E ' (WARNING|ERROR|CRITICAL)' /var/log/cloud-init.log | tail -n 30; "
        f"echo '{ANALYZE_MARK}'; {cloudinit.ANALYZE_SCRIPT}",
        150,
    )
    text, _, dump = res.out.partition(ANALYZE_MARK + "\n")
    try:  # cloud-init's own JSON: status and the errors of every stage
        ci = json.loads(text.split("=== failed units", 1)[0])
        status_s, errors = str(ci.get("status") or "unknown"), list(ci.get("errors") or [])
    except ValueError:
        status_s, errors = "unknown", ["`cloud-init status --format json` unreadable (cloud-init did not run?)"]
    f = re.search(r"=== failed units\n(.*?)=== warnings", text, re.S)
    failed_units = [ln.split()[0] for ln in (f.group(1) if f else "").splitlines() if ln.strip()]
    warn_lines = text.split("=== warnings\n", 1)[1].strip().splitlines() if "=== warnings\n" in text else []
    serious = [w for w in warn_lines if " ERROR" in w or " CRITICAL" in w]
    # The lab image boots without a single cloud-init warning or failed unit, so any comes
    # from the user-data (schema problems, failed modules, a unit it installed): "clean"
    # means none at all.
    ok = status_s == "done" and not errors and not warn_lines and not failed_units
    metrics = {
        "status": status_s,
        "errors": len(errors),
        "log_warnings": len(warn_lines) - len(serious),
        "log_errors": len(serious),
        "failed_units": failed_units,
        # the package module's time (`apt-get update` and the installs), cloud-init's own count
        "packages_s": cloudinit.event_seconds(dump, cloudinit.PACKAGES_EVENT),
        "slowest_modules_s": cloudinit.slowest_modules(dump),
    }
    if ok:
        return True, "status done, no errors, no warnings in cloud-init.log, no failed systemd unit", metrics
    detail = (
        f"cloud-init status '{status_s}', {len(errors)} errors, {len(serious)} ERROR and "
        f"{len(warn_lines) - len(serious)} WARNING lines in cloud-init.log, failed units: "
        f"{', '.join(failed_units) or 'none'}\n"
        + "\n".join(str(e) for e in errors)
        + "\n"
        + "\n".join(warn_lines[-20:])
    )
    if failed_units:
        detail += "\n" + sh(f"systemctl status --no-pager -n 15 {' '.join(failed_units)} 2>&1", 30).out
    return False, detail + "\n" + text[:3000], metrics


def tunnels_established(s: Session) -> Outcome:
    ecs = s.ecs_sas()
    problems, lines = [], []
    metrics: dict = {"boot_to_established_s": round(s.boot.established_s, 1) if s.boot.established_s else None}
    for t in s.inputs.tunnels:
        metrics[f"tunnel{t.number}_established_s"] = (
            round(s.boot.tunnel_up_s[t.number], 1) if t.number in s.boot.tunnel_up_s else None
        )
        peer_sas = s.peer_sas(t.number)
        e_ok = swan.established(ecs, t.outside_address)
        p_ok = swan.established(peer_sas, s.inputs.eip)
        states = [sa.get("state") for sa in swan.sas_to(ecs, t.outside_address)]
        lines.append(
            f"tunnel{t.number}: ECS {'ESTABLISHED' if e_ok else 'not established'} "
            f"(IKE SA states {states or 'none'}), AWS-like peer aws{t.number} "
            f"{'ESTABLISHED' if p_ok else 'not established'}"
        )
        if not (e_ok and p_ok):
            problems.append(t.number)
    if not problems:
        return (
            True,
            (
                f"both tunnels ESTABLISHED with a CHILD_SA on both ends, "
                f"{metrics['boot_to_established_s']}s after VM start\n" + "\n".join(lines)
            ),
            metrics,
        )
    detail = "not established: " + ", ".join(f"tunnel{n}" for n in problems) + "\n" + "\n".join(lines)
    detail += "\n" + diagnostics.auth_analysis(s, problems)
    return False, detail, metrics


# IKEv1 has no rekey collision handling: the end that did not initiate a rekey keeps the old
# CHILD_SA as REKEYED (its inbound SA installed) until the initiator's DELETE arrives, and
# after colliding rekeys under load the lab's AWS end kept one for minutes (findings #21, #24).
# It carries nothing (no outbound SA) and the ECS's own are deleted by its watchdog; the AWS
# end is not ours to change. So on IKEv1 an AWS end may hold one extra inbound SA per REKEYED
# CHILD_SA charon lists there; the ECS may not.
AWS_END_REKEYED_IKEV1 = "IKEv1: an inbound SA of a REKEYED CHILD_SA on the AWS end allowed"


def single_sa_pair(s: Session) -> Outcome:
    return sa_pairs(s)


def sa_pairs(s: Session, aws_rekeyed_ok: bool = False) -> Outcome:
    """One IKE SA and one CHILD_SA pair per tunnel on both ends (aws_rekeyed_ok: on the AWS
    end, also the inbound SA of each REKEYED CHILD_SA, see AWS_END_REKEYED_IKEV1)."""
    i = s.inputs
    ecs = s.ecs_sas()
    ecs_x = swan.parse_xfrm_states(s.ecs_sh("ip xfrm state", 30).out)
    problems, metrics = [], {}
    for t in i.tunnels:
        peer_sas = s.peer_sas(t.number)
        peer_x = swan.parse_xfrm_states(s.sh(f"ip -n aws{t.number} xfrm state", 30).out)
        for end, sas, remote, xs, me in (
            ("ECS", ecs, t.outside_address, ecs_x, i.ingress_ip),  # IKE binds to a pair's HaVip
            (f"aws{t.number}", peer_sas, i.eip, peer_x, t.outside_address),
        ):
            ike = swan.sas_to(sas, remote)
            kids = [c for sa in ike for c in swan.children(sa) if c.get("state") == "INSTALLED"]
            rekeyed = [c for sa in ike for c in swan.children(sa) if c.get("state") == "REKEYED"]
            x_in = [x for x in xs if x.src == remote and x.dst == me]
            x_out = [x for x in xs if x.src == me and x.dst == remote]
            spare = len(rekeyed) if aws_rekeyed_ok and end != "ECS" else 0
            key = f"tunnel{t.number}_{'ecs' if end == 'ECS' else 'aws'}"
            metrics[key] = {
                "ike_sas": len(ike),
                "child_sas": len(kids),
                "xfrm_in": len(x_in),
                "xfrm_out": len(x_out),
                "rekeyed_inbound_allowed": spare,
            }
            if (len(ike), len(kids), len(x_out)) != (1, 1, 1) or not 1 <= len(x_in) <= 1 + spare:
                problems.append(
                    f"tunnel{t.number} on {end}: {len(ike)} IKE SAs, {len(kids)} CHILD_SAs "
                    f"INSTALLED, xfrm states in/out {len(x_in)}/{len(x_out)} (want 1, 1, "
                    f"{1 + spare}/1{f'; {AWS_END_REKEYED_IKEV1}' if spare else ''})"
                )
    if problems:
        return False, "\n".join(problems), metrics
    return True, "one IKE SA and one CHILD_SA pair per tunnel on both ends", metrics


def nat_t(s: Session) -> Outcome:
    i = s.inputs
    ecs = s.ecs_sas()
    ecs_x = swan.parse_xfrm_states(s.ecs_sh("ip xfrm state", 30).out)
    problems, facts = [], []
    for t in i.tunnels:
        sas = swan.sas_to(ecs, t.outside_address)
        psas = swan.sas_to(s.peer_sas(t.number), i.eip)
        for end, group, nat_key in (("ECS", sas, "nat-local"), (f"aws{t.number}", psas, "nat-remote")):
            if not group:
                problems.append(f"tunnel{t.number}: no IKE SA on {end}")
            for sa in group:
                ports = (sa.get("local-port"), sa.get("remote-port"))
                if ports != ("4500", "4500") or sa.get(nat_key) != "yes":
                    problems.append(
                        f"tunnel{t.number} on {end}: IKE ports {ports[0]}->{ports[1]}, "
                        f"{nat_key}={sa.get(nat_key, 'no')} (want 4500->4500, NAT detected)"
                    )
                for c in swan.children(sa):
                    if c.get("encap") != "yes":
                        problems.append(f"tunnel{t.number} on {end}: CHILD_SA {c.get('name')} not UDP-encapsulated")
        xs = [x for x in ecs_x if t.outside_address in (x.src, x.dst)]
        bad = [x for x in xs if x.encap != "espinudp sport 4500 dport 4500"]
        if not xs or bad:
            problems.append(
                f"tunnel{t.number}: ECS xfrm states without espinudp 4500/4500: "
                f"{[(x.src, x.dst, x.encap or 'none') for x in bad] or 'no states'}"
            )
        facts.append(f"tunnel{t.number}: {len(xs)} ECS xfrm states espinudp 4500/4500")
    ali_ns, ali_ip, aws_ns, aws_ip = s.hosts("ali_to_aws")
    obs = s.probe(f"natt internet p-ali --src-ns {ali_ns} --dst {aws_ip} --src-ns {aws_ns} --dst {ali_ip}", 90)
    metrics = {k: obs.get(k) for k in ("esp_in_udp_4500", "esp_raw", "udp_500", "ike_4500")}
    if not obs.get("esp_in_udp_4500"):
        problems.append(f"no ESP-in-UDP/4500 seen between the EIP and AWS while hosts pinged: {obs}")
    if obs.get("esp_raw"):
        problems.append(f"{obs['esp_raw']} raw ESP (IP proto 50) packets on the internet side: {obs.get('sample')}")
    if problems:
        return False, "\n".join(problems), metrics
    return (
        True,
        (
            "IKE and ESP on UDP 4500 both ways (ECS behind the EIP's NAT); internet capture: "
            f"{obs.get('esp_in_udp_4500')} ESP-in-UDP, {obs.get('esp_raw')} raw ESP\n" + "\n".join(facts)
        ),
        metrics,
    )


def verify_script(s: Session) -> Outcome:
    """The command the program's pulumi-command step runs when the plan has one (stacks
    with `verify: true`), else the user-data's verify script as is."""

    path = verify_script_path(s.user_data)
    if not path:
        return False, "no write_files entry ending in '-verify' in the user-data", {}
    planned = [c for c in s.inputs.verify_commands if path in c]
    command = planned[0] if planned else path
    res = s.ecs_sh(command, timeout=400 if planned else 150)
    ok = res.rc == 0 and not res.timed_out
    head = f"`{command}` ({'the planned pulumi-command step' if planned else 'from the user-data'}) exited {res.rc}"
    if res.timed_out:
        head += " (timed out)"
    return ok, head + "\n" + res.text()[-3000:], {"exit_code": res.rc}


def settle_single_pair(s: Session, timeout: float = 60, aws_rekeyed_ok: bool = False) -> tuple[bool, str, dict, float]:
    """Poll single_sa_pair until it passes (old SAs go after a rekey): (ok, detail, metrics, seconds)."""
    t0 = time.monotonic()
    last: list[Outcome] = []

    def passed() -> bool:
        last[:] = [sa_pairs(s, aws_rekeyed_ok)]
        return last[0][0]

    poll.until(passed, timeout, interval=3.0)
    ok, detail, metrics = last[0]
    return ok, detail, metrics, time.monotonic() - t0


def routes_prefer_tunnel1(s: Session) -> Outcome:
    """Both tunnels up: the ECS routes each AWS prefix through each tunnel's VTI with that
    tunnel's metric from the user-data's link.env, the lowest through tunnel 1 (`ip -j route`).
    Metrics: the first prefix's routes and preferred tunnel."""
    env = link_env(s.user_data)
    want = {int(env[f"TUNNEL{t.number}_METRIC"]): env[f"TUNNEL{t.number}_VTI"] for t in s.inputs.tunnels}
    wanted = ", ".join(f"dev {d} metric {m}" for m, d in sorted(want.items()))
    oks, lines, firsts = [], [], []
    for prefix in s.topo.aws_prefixes:
        routes = s.ecs_routes(prefix)
        got = {int(r.get("metric", 0)): r.get("dev") for r in routes}
        preferred = swan.preferred_tunnel(routes)
        shown = [f"dev {d} metric {m}" for m, d in sorted(got.items())]
        ok = got == want and preferred == 1
        oks.append(ok)
        firsts.append({"routes": shown, "preferred_tunnel": preferred})
        verdict = ", tunnel 1 preferred" if ok else f" (want {wanted})"
        lines.append(f"ECS routes to {prefix}: {', '.join(shown) or 'none'}{verdict}")
    detail = "; ".join(lines)
    if not all(oks):
        # the liveness daemon routes only over tunnels that answer: why does one not?
        detail += "\n" + s.ecs_sh(f"{paths.LIVENESS_PATH} --status 2>&1", 15).out.rstrip()
        detail += "\n" + diagnostics.path_analysis(s)
    return all(oks), detail, firsts[0]
