"""FRR for `routing: bgp`: bgpd only, one eBGP session per tunnel to AWS's inside address over
its VTI, as AWS's generated customer gateway configurations set it up.

- Timers: keepalive 10 s, hold 30 s (AWS's; FACTS.md "AWS BGP timers"). There is no BFD on a
  VPN, so a dead session is found by the hold timer, or at once when its VTI goes down
  (FRR's fast external failover, on by default).
- What is accepted: the expected AWS prefixes (`awsCidrs`) and prefixes inside them, nothing
  else: never a default route, never 169.254.0.0/16, never the Alibaba prefixes back (prefix
  list AWS-IN; the settings keep `awsCidrs` clear of all three). Inside them, because the
  Alibaba route entries send exactly `awsCidrs` to the gateway: a subnet or VPC the AWS side
  adds within that space (a Transit Gateway propagating a new attachment) is routed at once,
  without a deploy, and nothing outside it could be reached anyway.
  What is announced: exactly the Alibaba prefixes (`aliCidrs`, ALI-OUT). `network` statements
  without the import check: the gateway has no route to the whole VPC, it forwards into it.
- A dead tunnel moves both directions at once. The liveness daemon finds it in about 1.2 s
  and calls aws2aliyun-bgp, which shuts that tunnel's session down (the gateway's routes over it
  go now, not after the 30 s hold time) and announces the two halves of every Alibaba prefix
  (ALI-OUT lets them out: `le` one bit longer). Only the answering tunnel's session is up, so
  only it carries them, and AWS routes by the longest prefix first (before AS path), so it
  moves too instead of waiting for its own hold time on the dead tunnel. Without them AWS's
  side would move only when its hold time or dead-peer detection gives up (about 25 s).
- Failing back waits. The dead tunnel's session is shut down (not only reset) and comes back
  once the tunnel has answered for the AWS end's DPD timeout and a margin
  (`failback_hold_s`); then the halves are withdrawn and tunnel 1 is preferred again. A DPD
  the AWS end began during the outage ends within its timeout of the outage's end, and when
  its last retransmit went into the outage it gives up and clears the tunnel's SAs after the
  path is back, without a word to the gateway (docs/lab-findings.md #35): failing back at
  once put both directions on a tunnel the AWS end was about to drop. Tunnel 2 carries
  everything meanwhile; if the other tunnel is dead the session comes back at once.
- Tunnel 1 is preferred both ways, as AWS documents it for a virtual private gateway: inbound
  by local preference (200 against 100), outbound by prepending our ASN twice on tunnel 2, so
  AWS sends the Alibaba prefixes over tunnel 1 while it is up. Behind a Transit Gateway
  (`Bgp.ecmp`) both tunnels are equal and both carry traffic: the same preference, no prepend,
  `maximum-paths 2`.
- The peer's ASN is not pinned (`remote-as external`): the session is authenticated by its
  IPsec tunnel, and a Transit Gateway's ASN need not be repeated in this program's settings.
- Routes come from BGP only: strongSwan installs none (`install_routes = no`), the updown
  script manages the VTIs, and the liveness daemon probes but leaves the routes to zebra.
"""

from __future__ import annotations

import ipaddress

from userdata.model import Bgp, Gateway

KEEPALIVE_S = 10
HOLD_S = 30
LOCAL_PREF = {1: 200, 2: 100}  # tunnel -> local preference of what it learns (ECMP: both 100)
# a session down (its tunnel was) is tried again this often, not every 120 s (FRR's default)
CONNECT_RETRY_S = 5
# a recovered tunnel's session comes back this long after the AWS end's DPD timeout would have
# ended any DPD the outage began (see above)
FAILBACK_HOLD_MARGIN_S = 2
PREPEND = 2  # times our ASN is prepended to what tunnel 2 announces (not behind a Transit Gateway)
# Debian's FRR, for vtysh as a confined root (no CAP_DAC_OVERRIDE): its daemons' vty sockets
# belong to frrvty, and its postinst makes /etc/frr/vtysh.conf frr:frr 0640 (without the frr
# group every vtysh call logs "Can't open configuration file ... Permission denied")
VTY_GROUPS = ("frrvty", "frr")
DAEMONS = ("bgpd",)  # besides zebra and staticd, which FRR always runs


def failback_hold_s(gw: Gateway) -> int:
    """How long a recovered tunnel answers before its BGP session comes back (see above)."""
    return gw.aws_dpd_timeout_s + FAILBACK_HOLD_MARGIN_S


def _bgp(gw: Gateway) -> Bgp:
    if gw.bgp is None:
        raise ValueError("FRR is rendered only for routing: bgp")
    return gw.bgp


def _halves(prefix: str) -> str:
    """ALI-OUT's `le` for a prefix: its two halves may go out too (a failover's, see above)."""
    n = ipaddress.ip_network(prefix)
    return f" le {n.prefixlen + 1}" if n.prefixlen < n.max_prefixlen else ""


def daemons() -> str:
    """/etc/frr/daemons: bgpd on, every other routing daemon off (Debian's defaults otherwise)."""
    others = (
        *("ospfd", "ospf6d", "ripd", "ripngd", "isisd", "pimd", "ldpd", "nhrpd", "eigrpd", "babeld"),
        *("sharpd", "pbrd", "bfdd", "fabricd", "vrrpd", "pathd"),
    )
    lines = ["# aws2aliyun-vpc: FRR's daemons (rendered by userdata/frr.py): bgpd only"]
    lines += [f"{d}={'yes' if d in DAEMONS else 'no'}" for d in ("bgpd", *others)]
    lines += [
        "vtysh_enable=yes",
        'zebra_options="  -A 127.0.0.1 -s 90000000"',
        'bgpd_options="   -A 127.0.0.1"',
        'staticd_options="-A 127.0.0.1"',
    ]
    return "\n".join(lines) + "\n"


def conf(gw: Gateway) -> str:
    """/etc/frr/frr.conf, FRR's integrated configuration (loaded by `vtysh -b` at start)."""
    bgp = _bgp(gw)
    lines = [
        "! aws2aliyun-vpc: BGP over both tunnels to AWS (rendered by userdata/frr.py)",
        "frr defaults traditional",
        "hostname aws2aliyun-gw",
        "log syslog informational",
        "service integrated-vtysh-config",
        "!",
    ]
    lines += [f"ip prefix-list AWS-IN seq {5 * k} permit {p} le 32" for k, p in enumerate(gw.aws_prefixes, 1)]
    lines += [f"ip prefix-list ALI-OUT seq {5 * k} permit {p}{_halves(p)}" for k, p in enumerate(gw.ali_prefixes, 1)]
    lines.append("!")
    for t in gw.tunnels:
        pref = 100 if bgp.ecmp else LOCAL_PREF[t.number]
        lines += [
            f"route-map AWS-IN-{t.number} permit 10",
            " match ip address prefix-list AWS-IN",
            f" set local-preference {pref}",
            f"route-map AWS-IN-{t.number} deny 20",
            f"route-map ALI-OUT-{t.number} permit 10",
            " match ip address prefix-list ALI-OUT",
        ]
        if t.number == 2 and not bgp.ecmp:
            lines.append(" set as-path prepend " + " ".join([str(bgp.asn)] * PREPEND))
        lines += [f"route-map ALI-OUT-{t.number} deny 20", "!"]
    lines += [
        f"router bgp {bgp.asn}",
        f" bgp router-id {gw.tunnels[0].cgw_inside_address}",
        " bgp log-neighbor-changes",
        " no bgp network import-check",
    ]
    for t in gw.tunnels:
        lines += [
            f" neighbor {t.vgw_inside_address} remote-as external",
            f" neighbor {t.vgw_inside_address} description tunnel{t.number}",
            f" neighbor {t.vgw_inside_address} timers {KEEPALIVE_S} {HOLD_S}",
            f" neighbor {t.vgw_inside_address} timers connect {CONNECT_RETRY_S}",
        ]
    lines.append(" address-family ipv4 unicast")
    lines += [f"  network {p}" for p in gw.ali_prefixes]
    if bgp.ecmp:
        lines.append("  maximum-paths 2")
    for t in gw.tunnels:
        lines += [
            f"  neighbor {t.vgw_inside_address} route-map AWS-IN-{t.number} in",
            f"  neighbor {t.vgw_inside_address} route-map ALI-OUT-{t.number} out",
        ]
    lines += [" exit-address-family", "exit", "!"]
    return "\n".join(lines) + "\n"
