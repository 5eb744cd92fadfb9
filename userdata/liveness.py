"""Data-plane liveness: the gateway's probes through each tunnel, and what they cost on a lossy path.

`aws2aliyun-liveness` (userdata/files/aws2aliyun-liveness.py, a systemd service) sends an ICMP
echo request every INTERVAL_S out of each VTI to the AWS end of that tunnel, its inside
address: the virtual private gateway answers there (AWS's own generated configurations probe
it, e.g. the Cisco ASA one's `sla monitor ... type echo protocol ipIcmpEcho <vgw inside>`). A
tunnel is dead once DOWN_AFTER_S pass without an answer and alive again after RISE answers in
a row; the daemon owns the routes to the AWS prefixes and moves them at once. IKE dead-peer
detection stays as the backstop, calm (userdata/swanctl.py), since it no longer carries the
failover.

The false-teardown arithmetic for both designs lives here, next to the numbers it is about,
for the docs and BENCHMARKS.md: with loss p each way, one probe or one IKE exchange fails with
probability q = 1 - (1 - p)**2.
"""

from __future__ import annotations

import math

from core import paths

INTERVAL_S = 0.1  # per tunnel: 10 echo requests a second, about 1 KB/s of ESP each way
DOWN_AFTER_S = 1.2  # dead after this long without an answer: 12 probes lost in a row
RISE = 3  # alive after this many answers in a row (both ends have their SAs)
# When the other tunnel has not answered either for DOWN_AFTER_S / 2, the silence is the
# gateway's own (its NIC, its internet, a starved host: the lab saw 1.4 s delivery stalls
# shared by both tunnels under load) and moving the traffic would gain nothing: dead only after
# this long. A tunnel that dies alone is still dead after DOWN_AFTER_S: the other one answers.
COMMON_DOWN_AFTER_S = 3.0

SECONDS_PER_DAY = 86_400


def exchange_loss(p: float) -> float:
    """A request/response pair fails when either packet is lost."""
    return 1 - (1 - p) ** 2


def liveness_false_downs_per_day(p: float, interval_s: float = INTERVAL_S, down_after_s: float = DOWN_AFTER_S) -> float:
    """Expected false 'dead' verdicts per tunnel per day on a path that loses p each way and
    is otherwise fine: a run of down_after/interval failed probes, counted once per run."""
    q = exchange_loss(p)
    n = math.ceil(down_after_s / interval_s - 1e-9)
    return SECONDS_PER_DAY / interval_s * (1 - q) * q**n


def dpd_false_teardowns_per_day(p: float, delay_s: float, transmissions: int) -> float:
    """Expected false IKEv2 dead-peer verdicts per tunnel per day: a DPD exchange every
    delay_s (charon sends one whenever it has heard nothing for that long; through a VTI it
    does so busy or not), each lost when all its transmissions fail."""
    return SECONDS_PER_DAY / delay_s * exchange_loss(p) ** transmissions


def ikev1_dpd_false_teardowns_per_day(p: float, delay_s: float, timeout_s: float) -> float:
    """Expected false IKEv1 dead-peer verdicts per tunnel per day, at one end. charon sends an
    R_U_THERE once it has heard nothing for delay_s (through a VTI: busy or not), never
    retransmits it, and as it sends one checks whether timeout_s have passed since it last heard
    the peer: the request timed timeout_s after the last answer finds them passed, so
    timeout_s / delay_s - 1 exchanges lost in a row tear the tunnel down. Each such run of
    losses, counted once per run like the liveness verdicts."""
    q = exchange_loss(p)
    n = max(1, round(timeout_s / delay_s) - 1)
    return SECONDS_PER_DAY / delay_s * (1 - q) * q**n


def poisson_upper(mean: float, confidence: float = 0.999) -> int:
    """The smallest k with P(X <= k) >= confidence for X ~ Poisson(mean): a bound a count of
    independent rare events (false teardowns) exceeds by chance once in 1 / (1 - confidence) runs."""
    k, term = 0, math.exp(-mean)
    total = term
    while total < confidence:
        k += 1
        term *= mean / k
        total += term
    return k


def service(
    interval_s: float = INTERVAL_S,
    down_after_s: float = DOWN_AFTER_S,
    rise: int = RISE,
    common_down_after_s: float = COMMON_DOWN_AFTER_S,
    vty_groups: tuple[str, ...] = (),
) -> str:
    """The unit. With BGP (`vty_groups`: FRR's groups) its hook uses vtysh to shut down a dead
    tunnel's session: without CAP_DAC_OVERRIDE, root reaches FRR's sockets and reads vtysh's
    configuration through those groups."""
    vty = f"SupplementaryGroups={' '.join(vty_groups)}\n" if vty_groups else ""
    return f"""[Unit]
Description=aws2aliyun-vpc: data-plane liveness of the tunnels, and the routes that follow it
After=network-online.target {paths.FIREWALL_UNIT}
Wants=network-online.target

[Service]
ExecStart={paths.LIVENESS_PATH} --interval {interval_s:g} --down-after {down_after_s:g} --rise {rise} \\
    --common-down-after {common_down_after_s:g}
Restart=always
RestartSec=1
# Raw ICMP sockets and the routing table, nothing else.
CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN
RuntimeDirectory=aws2aliyun
RuntimeDirectoryPreserve=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
NoNewPrivileges=yes
{vty}
[Install]
WantedBy=multi-user.target
"""
