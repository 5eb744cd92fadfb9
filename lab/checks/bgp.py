"""BGP (issue 14, a `routing: bgp` stack): the sessions, what each side learned, a prefix added
and withdrawn on the AWS side without a deploy, and a BGP session down while IPsec stays up.

Everything is read from FRR's own JSON (`vtysh -c '... json'`) on the gateway and on the lab's
AWS-like ends (guest/frr.sh), and from the kernel's routing tables (`ip -j route`).
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from core import paths
from lab import diagnostics, poll
from lab.inputs import link_env, verify_script_path
from lab.report import Outcome

if TYPE_CHECKING:
    from lab.session import Session

FRR = "/bin/sh /run/lab/frr.sh"
ESTABLISH_TIMEOUT_S = 120
ROUTE_TIMEOUT_S = 60
# AWS's timers (FACTS.md "AWS BGP timers"): what both ends must have agreed on
WANT_KEEPALIVE_S, WANT_HOLD_S = 10, 30
# announced by tunnel 1's AWS end during bgp_routes, none of which the gateway may accept: a
# default route, the tunnels' link-local range, an Alibaba prefix back (the vSwitch, added at run
# time), and a prefix outside every AWS prefix (198.18.0.0/15 is for benchmarks, RFC 2544)
JUNK = ("169.254.0.0/16", "198.18.0.0/24")
# a prefix the AWS side starts announcing in bgp_prefix_added: inside the first AWS prefix, with
# an address on the AWS router that answers
ADDED_PREFIXLEN = 24


def _json(text: str) -> dict:
    """The JSON object at the start of vtysh's output (stderr's complaints follow it), {} if none."""
    try:
        out, _ = json.JSONDecoder().raw_decode((text or "{}").lstrip())
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}


def vtysh_args(*commands: str) -> str:
    return " ".join(f"-c {shlex.quote(c)}" for c in commands)


def ecs_vtysh(s: Session, *commands: str, timeout: float = 30) -> str:
    """The gateway's vtysh: its output (JSON when asked for), what it says on stderr after it."""
    return s.ecs_sh(f"vtysh {vtysh_args(*commands)}", timeout).text()


def aws_vtysh(s: Session, ns: str, *commands: str, timeout: float = 30) -> str:
    """vtysh of the FRR in namespace ns (aws1, aws2, awsrouter), the same way."""
    return s.sh(f"{FRR} exec {ns} vtysh {vtysh_args(*commands)}", timeout).text()


def aws_configure(s: Session, ns: str, *lines: str) -> str:
    asn = s.inputs.bgp.aws_asn if s.inputs.bgp else 64512
    return aws_vtysh(s, ns, "configure terminal", f"router bgp {asn}", "address-family ipv4 unicast", *lines)


def peers(summary: dict) -> dict[str, dict]:
    """`show bgp ipv4 unicast summary json`'s peers (FRR 8: under "peers"; some versions nest it
    under "ipv4Unicast")."""
    return summary.get("peers") or (summary.get("ipv4Unicast") or {}).get("peers") or {}


def states(s: Session) -> tuple[dict[int, str], dict[int, str], dict]:
    """Per tunnel: the gateway's session state, the AWS end's; the gateway's summary."""
    ecs = _json(ecs_vtysh(s, "show bgp ipv4 unicast summary json"))
    gw = {t.number: peers(ecs).get(t.vgw_inside_address, {}).get("state", "absent") for t in s.inputs.tunnels}
    aws = {}
    for t in s.inputs.tunnels:
        summ = _json(aws_vtysh(s, f"aws{t.number}", "show bgp ipv4 unicast summary json"))
        aws[t.number] = peers(summ).get(t.cgw_inside_address, {}).get("state", "absent")
    return gw, aws, ecs


def kernel_bgp_routes(s: Session) -> dict[str, list[str]]:
    """The gateway's kernel routes that zebra installed for BGP: destination -> devices."""
    rows = _json('{"r": ' + (s.ecs_sh("ip -j route show proto bgp", 15).out.strip() or "[]") + "}").get("r", [])
    out: dict[str, list[str]] = {}
    for r in rows:
        devs = [r["dev"]] if r.get("dev") else [h.get("dev", "?") for h in r.get("nexthops", [])]
        out[r.get("dst", "?")] = devs
    return out


def vti(s: Session, n: int) -> str:
    return link_env(s.user_data)[f"TUNNEL{n}_VTI"]


def bgp_established(s: Session) -> Outcome:
    """Both BGP sessions Established on both ends, with AWS's timers (keepalive 10 s, hold 30 s)
    in force on the gateway's side. Metrics: seconds this check waited, timers, peer ASNs."""
    t0 = time.monotonic()
    last: list = []

    def up() -> bool:
        last[:] = [states(s)]
        gw, aws, _ = last[0]
        return all(v == "Established" for v in (*gw.values(), *aws.values()))

    ok = bool(poll.until(up, ESTABLISH_TIMEOUT_S, interval=3.0))
    waited = time.monotonic() - t0
    gw, aws, summary = last[0]
    neighbors = _json(ecs_vtysh(s, "show bgp neighbors json"))
    timers, lines = {}, []
    for t in s.inputs.tunnels:
        nb = neighbors.get(t.vgw_inside_address, {})
        hold = nb.get("bgpTimerHoldTimeMsecs", 0) / 1000
        keep = nb.get("bgpTimerKeepAliveIntervalMsecs", 0) / 1000
        timers[f"tunnel{t.number}"] = {"hold_s": hold, "keepalive_s": keep, "remote_as": nb.get("remoteAs")}
        good = (hold, keep) == (WANT_HOLD_S, WANT_KEEPALIVE_S)
        ok = ok and good
        lines.append(
            f"tunnel{t.number}: gateway {gw[t.number]}, AWS end {aws[t.number]}, hold {hold:g}s keepalive "
            f"{keep:g}s{'' if good else f' (want {WANT_HOLD_S}/{WANT_KEEPALIVE_S})'}, peer AS {nb.get('remoteAs')}"
        )
    want_as = s.inputs.bgp.aws_asn if s.inputs.bgp else None
    wrong_as = [k for k, v in timers.items() if v["remote_as"] != want_as]
    if wrong_as:
        ok = False
        lines.append(f"peer AS of {', '.join(wrong_as)} is not the Amazon side's {want_as}")
    detail = (
        f"both sessions Established after {waited:.0f}s: " if ok else "BGP sessions not all as expected: "
    ) + "; ".join(lines)
    if not ok:
        detail += "\n" + ecs_vtysh(s, "show bgp ipv4 unicast summary") + "\n" + diagnostics.path_analysis(s)
    return ok, detail, {"waited_s": round(waited, 1), "timers": timers, "local_as": summary.get("as")}


def _advertised(s: Session, ns: str, neighbor: str) -> set[str]:
    got = _json(aws_vtysh(s, ns, f"show bgp ipv4 unicast neighbors {neighbor} advertised-routes json"))
    return set((got.get("advertisedRoutes") or {}).keys())


def _learned(s: Session, ns: str, neighbor: str) -> set[str]:
    """What the AWS end in ns accepted from the gateway."""
    got = _json(aws_vtysh(s, ns, f"show bgp ipv4 unicast neighbors {neighbor} routes json"))
    return set((got.get("routes") or {}).keys())


def _as_paths(s: Session, prefix: str) -> dict[str, str]:
    """The AWS router's paths to prefix: next hop -> AS path (best marked with *)."""
    got = _json(aws_vtysh(s, "awsrouter", f"show bgp ipv4 unicast {prefix} json"))
    out = {}
    for p in got.get("paths", []):
        hop = (p.get("nexthops") or [{}])[0].get("ip", "?")
        best = (p.get("bestpath") or {}).get("overall")
        out[hop] = ("*" if best else "") + ((p.get("aspath") or {}).get("string") or "")
    return out


def prefix_set_problems(routes: dict[str, list[str]], want: set[str], dev: str) -> list[str]:
    """How the gateway's BGP routes differ from exactly `want`, each over `dev` (devices joined
    by commas for ECMP, in order)."""
    out = [f"missing {p}" for p in sorted(want - set(routes))]
    out += [f"accepted {p}" for p in sorted(set(routes) - want)]
    out += [
        f"{p} over {', '.join(routes[p])}, not {dev}"
        for p in sorted(want & set(routes))
        if ",".join(sorted(routes[p])) != dev
    ]
    return out


def aws_router_hops(s: Session, prefix: str) -> list[str]:
    """The AWS router's next hops to prefix (two with ECMP), sorted."""
    rows = _json('{"r": ' + (s.sh(f"ip -j -n awsrouter route show {prefix}", 15).out.strip() or "[]") + "}").get(
        "r", []
    )
    hops = [h.get("gateway") for r in rows for h in (r.get("nexthops") or [r])]
    return sorted(str(h) for h in hops if h)


def bgp_routes(s: Session) -> Outcome:
    """Each side learned exactly the other's prefixes, nothing else, the preferred tunnel first.

    The gateway: its kernel has a BGP route for every AWS prefix, over tunnel 1, and no other;
    while tunnel 1's AWS end also announces what no customer gateway should accept (a default
    route, 169.254.0.0/16, an Alibaba prefix back, a prefix outside the AWS prefixes), the
    gateway's kernel still has exactly the AWS prefixes. AWS: each tunnel end learned exactly
    the Alibaba prefixes; the AWS router prefers tunnel 1 (the gateway prepends on tunnel 2)."""
    i, topo = s.inputs, s.topo
    want_aws, want_ali = set(topo.aws_prefixes), set(i.ali_prefixes)
    ecmp = bool(i.bgp and i.bgp.ecmp)
    vti1 = ",".join(vti(s, n) for n in ((1, 2) if ecmp else (1,)))  # ECMP: both, in order
    problems, lines = [], []

    def settled() -> dict | None:
        got = kernel_bgp_routes(s)
        return got if not prefix_set_problems(got, want_aws, vti1) else None

    routes = poll.until(settled, ROUTE_TIMEOUT_S, interval=2.0) or kernel_bgp_routes(s)
    lines.append(f"gateway's BGP routes: {routes or 'none'}")
    problems += [f"gateway: {p}" for p in prefix_set_problems(routes, want_aws, vti1)]
    for t in i.tunnels:
        learned = _learned(s, f"aws{t.number}", t.cgw_inside_address)
        lines.append(f"AWS end {t.number} learned {sorted(learned)}")
        if learned != want_ali:
            problems.append(f"AWS end of tunnel {t.number} learned {sorted(learned)}, want {sorted(want_ali)}")
    paths = _as_paths(s, i.ali_prefixes[0])
    lines.append(f"AWS router's paths to {i.ali_prefixes[0]}: {paths}")
    if ecmp:
        hops = aws_router_hops(s, i.ali_prefixes[0])
        if hops != sorted(p.transit_peer for p in topo.peers):
            problems.append(f"the AWS router sends {i.ali_prefixes[0]} via {hops}, want both tunnel ends (ECMP)")
    else:
        aws_via = s.aws_route_tunnel()
        if aws_via != 1:
            problems.append(f"the AWS router sends {i.ali_prefixes[0]} via tunnel {aws_via}, want 1 (shortest AS path)")

    # what the gateway must refuse, announced by tunnel 1's AWS end for a moment
    junk = (*JUNK, topo.vswitch_cidr)
    neighbor = i.tunnels[0].cgw_inside_address
    aws_configure(s, "aws1", *(f"network {p}" for p in junk), "exit", f"neighbor {neighbor} default-originate")
    try:
        # (FRR lists a default-originate's route in no advertised-routes: the gateway's kernel shows it)
        sent = poll.until(lambda: set(junk) <= _advertised(s, "aws1", neighbor) or None, 30, interval=2.0)
        time.sleep(3)  # the gateway has had them (an UPDATE is one round trip)
        after = kernel_bgp_routes(s)
        refused = prefix_set_problems(after, want_aws, vti1)
        lines.append(
            f"with {', '.join(['0.0.0.0/0', *junk])} announced too ({'sent' if sent else 'NOT seen sent'}): "
            f"gateway's BGP routes {sorted(after)}"
        )
        if not sent:
            problems.append("tunnel 1's AWS end did not announce the prefixes to refuse")
        problems += [f"gateway, with the prefixes to refuse announced: {p}" for p in refused]
    finally:
        aws_configure(
            s, "aws1", *(f"no network {p}" for p in junk), "exit", f"no neighbor {neighbor} default-originate"
        )
    ok = not problems
    detail = ("; ".join(problems) + "\n" if problems else "") + "; ".join(lines)
    if not ok:
        detail += "\n" + ecs_vtysh(s, "show bgp ipv4 unicast")
    return ok, detail, {"gateway_routes": routes, "aws_router_paths": paths}


def added_prefix(s: Session) -> tuple[str, str]:
    """A /24 inside the first AWS prefix clear of the lab's hosts (its last one), and the address
    the AWS router answers on in it."""
    import ipaddress

    first = ipaddress.IPv4Network(s.topo.aws_prefixes[0])
    sub = list(first.subnets(new_prefix=max(first.prefixlen, ADDED_PREFIXLEN)))[-1]
    return str(sub), str(sub.network_address + 1)


def bgp_prefix_added(s: Session) -> Outcome:
    """A prefix the AWS side starts announcing (the AWS router originates a new /24 inside the
    first AWS prefix) reaches the gateway's kernel over tunnel 1 without a deploy, and Alibaba's
    host reaches an address in it; withdrawn, it leaves the gateway's kernel. Metrics: seconds
    from each change on the AWS router to the gateway's kernel."""
    prefix, answer = added_prefix(s)
    vti1 = vti(s, 1)
    s.sh(f"ip -n awsrouter addr add {answer}/32 dev lo", 15)
    t0 = time.monotonic()
    aws_configure(s, "awsrouter", f"network {prefix}")
    there = poll.until(lambda: kernel_bgp_routes(s).get(prefix) == [vti1], ROUTE_TIMEOUT_S, interval=0.5)
    added_s = time.monotonic() - t0
    ping = s.sh(f"ip netns exec alihost ping -c 3 -i 0.3 -W 2 {answer}", 30)
    reached = ping.rc == 0
    t1 = time.monotonic()
    aws_configure(s, "awsrouter", f"no network {prefix}")
    gone = poll.until(lambda: prefix not in kernel_bgp_routes(s), ROUTE_TIMEOUT_S, interval=0.5)
    gone_s = time.monotonic() - t1
    s.sh(f"ip -n awsrouter addr del {answer}/32 dev lo", 15)
    ok = bool(there) and reached and bool(gone)
    detail = (
        f"{prefix} announced by the AWS router: on the gateway over {vti1} "
        + (f"after {added_s:.1f}s" if there else f"NOT within {ROUTE_TIMEOUT_S}s")
        + f"; alihost -> {answer}: {'answered' if reached else 'no answer'}; withdrawn: gone from the gateway "
        + (f"after {gone_s:.1f}s" if gone else f"NOT within {ROUTE_TIMEOUT_S}s")
    )
    if not ok:
        detail += "\n" + ping.text()[-800:] + "\n" + ecs_vtysh(s, "show bgp ipv4 unicast")
    return (
        ok,
        detail,
        {
            "announce_to_route_s": round(added_s, 1) if there else None,
            "withdraw_to_gone_s": round(gone_s, 1) if gone else None,
            "prefix": prefix,
        },
    )


def guest_time_of(s: Session, command: str) -> float:
    """Run command in the world VM; the guest's clock just before it (the probes' time base)."""
    out = s.sh(f"date +%s.%N; {command}", 60).out.split()
    return float(out[0]) if out else time.time()


BGP_HOOK_TAG = PurePosixPath(paths.BGP_HOOK_PATH).name  # the hook logs under its own name
# what vtysh prints when it cannot read its configuration or reach a daemon (a confined caller
# missing one of FRR's groups, userdata.frr.VTY_GROUPS)
VTYSH_ERRORS = ("Can't open configuration file", "Permission denied", "failed to connect to any daemons")


def vtysh_errors(journal: str) -> list[str]:
    """The lines of the liveness daemon's journal (where its BGP hook's output goes) that say
    vtysh failed."""
    return [line for line in journal.splitlines() if any(e in line for e in VTYSH_ERRORS)]


def bgp_down_ipsec_up(s: Session) -> Outcome:
    """FRR stopped on tunnel 1's AWS end (its IPsec stays up) while probes run: the verify script
    names it ("tunnel1: IPsec up, BGP down"), traffic moves to tunnel 2 both ways; FRR started
    again: the session comes back and tunnel 1 is preferred again. Metrics: outage each way,
    probes lost after the restart. Last, the BGP hook (which shut tunnel 1's session down and
    back up in the failover checks before) ran vtysh without an error."""
    bad = s.precondition()
    if bad:
        return False, bad, {}
    t0 = s.probes.start()
    time.sleep(3)
    ts = guest_time_of(s, f"{FRR} stop aws1")
    t_stop = time.monotonic()
    moved = poll.until(lambda: s.ecs_tunnel_preferred() == 2 and s.aws_route_tunnel() == 2, 60, interval=1.0)
    moved_s = time.monotonic() - t_stop
    time.sleep(3)
    path = verify_script_path(s.user_data) or ""
    verify = s.ecs_sh(f"{path} 2>&1", 150)
    named = "tunnel1: IPsec up, BGP down" in verify.out
    sas_up = s.tunnel_state()
    r = s.probes.stop(t0)
    s.timelines["bgp_down"] = (r, ts)
    t1 = s.probes.start()
    time.sleep(2)
    tr = guest_time_of(s, f"{FRR} start aws1")
    back = s.wait_both_up(120)
    time.sleep(3)
    r2 = s.probes.stop(t1)
    lost_back = r2.up.lost + r2.down.lost
    # the hook's own lines (it logs every verdict it acted on) and what its vtysh printed (on the
    # daemon's stderr, so in the unit's journal)
    hook_log, _, journal = s.ecs_sh(
        f"journalctl -b -t {BGP_HOOK_TAG} --no-pager -o cat; echo ---; "
        f"journalctl -b -u {paths.LIVENESS_SERVICE} --no-pager -o cat",
        60,
    ).out.partition("---\n")
    hook_runs, hook_errors = len(hook_log.splitlines()), vtysh_errors(journal)
    metrics = {
        "uplink_outage_s": round(r.up.outage_s, 2),
        "downlink_outage_s": round(r.down.outage_s, 2),
        "uplink_lost": r.up.lost,
        "downlink_lost": r.down.lost,
        "moved_after_s": round(moved_s, 1) if moved else None,
        "verify_exit": verify.rc,
        "restart_lost": lost_back,
        "hook_runs": hook_runs,
        "hook_vtysh_errors": len(hook_errors),
        "uplink": r.up.as_metrics(ts),
        "downlink": r.down.as_metrics(ts),
        "restart": {"uplink": r2.up.as_metrics(tr), "downlink": r2.down.as_metrics(tr)},
    }
    ok = bool(moved) and named and verify.rc != 0 and r.up.recovered and r.down.recovered and back is not None
    ok = ok and hook_runs >= 2 and not hook_errors  # the failover checks before: a dead and an alive verdict
    detail = (
        f"FRR stopped on tunnel 1's AWS end at t=0 (IPsec state {sas_up}): both ends on tunnel 2 "
        + (f"after {moved_s:.1f}s" if moved else "NOT within 60s")
        + f", uplink outage {r.up.outage_s:.1f}s ({r.up.lost} lost), downlink {r.down.outage_s:.1f}s "
        f"({r.down.lost} lost); verify script exit {verify.rc}, "
        + ("names it" if named else "does NOT say 'tunnel1: IPsec up, BGP down'")
        + "; FRR started again: tunnel 1 preferred again "
        + (f"after {back:.0f}s" if back is not None else "NOT within 120s")
        + f", {lost_back} probes lost; the BGP hook ran {hook_runs} times, its vtysh "
        + (f"printed {len(hook_errors)} errors, e.g. {hook_errors[0]!r}" if hook_errors else "without an error")
    )
    if not ok:
        detail += "\n" + verify.text()[-1500:] + "\n" + diagnostics.fault_context(s)
    return ok, detail, metrics


# bgp_ecmp: flows from one host to the other, each on a source port of its own, 1000-byte datagrams
ECMP_FLOWS = 64
ECMP_DATAGRAMS = 20
ECMP_BYTES = 1000
# each tunnel must carry at least this share of the bytes sent each way (the liveness probes,
# 84-byte pings at 10 a second per tunnel, are a few kB against 1.28 MB; 64 flows hashed
# evenly leave a tunnel under 10 % with a probability of about 1e-10)
ECMP_MIN_SHARE = 0.10
FLOWS_PY = (
    "import socket, sys, time\n"
    "dst, base, flows, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])\n"
    "socks = []\n"
    "for k in range(flows):\n"
    "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('', base + k)); socks.append(s)\n"
    "for i in range(n):\n"
    "    for s in socks:\n"
    "        s.sendto(b'x' * size, (dst, 9)); time.sleep(0.002)\n"
)


def vti_bytes(s: Session) -> dict[str, dict[str, int]]:
    """The gateway's VTIs' byte counters: {vti: {"tx": ..., "rx": ...}}."""
    out = {}
    for n in (1, 2):
        dev = vti(s, n)
        rows = _json('{"r": ' + (s.ecs_sh(f"ip -j -s link show dev {dev}", 15).out.strip() or "[]") + "}").get("r", [])
        st = (rows[0] if rows else {}).get("stats64") or {}
        out[dev] = {d: int((st.get(d) or {}).get("bytes", 0)) for d in ("tx", "rx")}
    return out


def bgp_ecmp(s: Session) -> Outcome:
    """Behind a Transit Gateway (ECMP) both tunnels carry traffic each way: 64 UDP flows from
    alihost to awshost and 64 back, and each tunnel's VTI on the gateway counts at least 10 % of
    the bytes sent each way. Metrics: each tunnel's share per direction."""
    t = s.topo
    sent = ECMP_FLOWS * ECMP_DATAGRAMS * ECMP_BYTES
    py = shlex.quote(FLOWS_PY)
    args = f"{ECMP_FLOWS} {ECMP_DATAGRAMS} {ECMP_BYTES}"
    before = vti_bytes(s)
    up = s.sh(f"ip netns exec alihost python3 -c {py} {t.awshost_ip} 40000 {args}", 120)
    mid = vti_bytes(s)
    down = s.sh(f"ip netns exec awshost python3 -c {py} {t.alihost_ip} 41000 {args}", 120)
    after = vti_bytes(s)
    shares = {
        dev: {
            "uplink": round((mid[dev]["tx"] - before[dev]["tx"]) / sent, 3),
            "downlink": round((after[dev]["rx"] - mid[dev]["rx"]) / sent, 3),
        }
        for dev in before
    }
    low = [f"{dev} {d} {v:.0%}" for dev, sh in shares.items() for d, v in sh.items() if v < ECMP_MIN_SHARE]
    ok = up.rc == 0 and down.rc == 0 and not low
    detail = (
        f"{ECMP_FLOWS} flows each way ({sent // 1000} kB): share of the bytes per tunnel "
        + "; ".join(f"{dev} uplink {sh['uplink']:.0%}, downlink {sh['downlink']:.0%}" for dev, sh in shares.items())
        + (f"; under {ECMP_MIN_SHARE:.0%}: {', '.join(low)}" if low else "; both tunnels carry traffic both ways")
    )
    if up.rc != 0 or down.rc != 0:
        detail += "\n" + up.text()[-800:] + "\n" + down.text()[-800:]
    if not ok:
        detail += "\n" + s.ecs_sh("ip route; sysctl net.ipv4.fib_multipath_hash_policy", 15).text()
    return ok, detail, {"shares": shares, "sent_bytes_each_way": sent}
