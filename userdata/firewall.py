"""The gateway's host firewall (nftables): a second layer behind the security group.

Input: IKE/NAT-T (and raw ESP) only from the two AWS tunnel endpoints, SSH only from
sshAllowedCidrs, the ICMP that path-MTU discovery and diagnostics need, DHCP renewals, and
replies to what the host itself started (package installs, DNS). Forward: only between
the Alibaba prefixes and the AWS prefixes. Output is open except to the instance metadata service, which only root
(cloud-init) may reach: the user-data there holds the PSKs, and on images whose cloud-init
is too old for metadata hardened mode it is served without a session token. The table is
the project's own, replaced whole on every load, so nothing else's rules are touched.
"""

from __future__ import annotations

from core import paths
from userdata import keepalived
from userdata.model import Gateway

TABLE = "aws2aliyun"
# Alibaba's instance metadata service (user-data included).
METADATA_ADDRESS = "100.100.100.200"


def ruleset(gw: Gateway) -> str:
    peers = ", ".join(t.outside_address for t in gw.tunnels)
    lines = [
        "#!/usr/sbin/nft -f",
        "# aws2aliyun-vpc: host firewall of the gateway (rendered by userdata/firewall.py)",
        f"table inet {TABLE}",
        f"delete table inet {TABLE}",
        f"table inet {TABLE} {{",
        "    set aws_peers {",
        "        type ipv4_addr",
        f"        elements = {{ {peers} }}",
        "    }",
    ]
    for set_name, prefixes in (("aws_prefixes", gw.aws_prefixes), ("ali_prefixes", gw.ali_prefixes)):
        lines += [
            f"    set {set_name} {{",
            "        type ipv4_addr",
            "        flags interval",
            f"        elements = {{ {', '.join(prefixes)} }}",
            "    }",
        ]
    if gw.ssh_allowed_cidrs:
        lines += [
            "    set ssh_allowed {",
            "        type ipv4_addr",
            "        flags interval",
            f"        elements = {{ {', '.join(gw.ssh_allowed_cidrs)} }}",
            "    }",
        ]
    lines += [
        "    chain input {",
        "        type filter hook input priority filter; policy drop;",
        "        ct state established,related accept",
        "        ct state invalid drop",
        '        iif "lo" accept',
        "        ip saddr @aws_peers udp dport { 500, 4500 } accept",
        "        ip saddr @aws_peers meta l4proto esp accept",
        "        icmp type { echo-request, destination-unreachable, time-exceeded, parameter-problem } accept",
        "        udp sport 67 udp dport 68 accept",
    ]
    if gw.ssh_allowed_cidrs:
        lines.append("        ip saddr @ssh_allowed tcp dport 22 accept")
    if gw.bgp is not None:
        # each tunnel's BGP session, from AWS's inside address over its own VTI only
        for t in gw.tunnels:
            lines.append(f'        iifname "{t.vti}" ip saddr {t.vgw_inside_address} tcp dport 179 accept')
    if gw.ha is not None:
        # the pair's VRRP adverts, from the other gateway only
        lines.append(f"        ip saddr {gw.ha.peer_ip} ip protocol {keepalived.VRRP_PROTOCOL} accept")
    lines += [
        "    }",
        "    chain forward {",
        "        type filter hook forward priority filter; policy drop;",
        "        ct state established,related accept",
        "        ip saddr @ali_prefixes ip daddr @aws_prefixes accept",
        "        ip saddr @aws_prefixes ip daddr @ali_prefixes accept",
        "    }",
        "    chain output {",
        "        type filter hook output priority filter; policy accept;",
        f"        ip daddr {METADATA_ADDRESS} meta skuid != 0 reject with icmpx type admin-prohibited",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def unit() -> str:
    """A oneshot unit loading the ruleset early at every boot, before strongSwan."""
    return f"""[Unit]
Description=aws2aliyun-vpc host firewall (nftables table {TABLE})
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target strongswan.service shutdown.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/nft -f {paths.FIREWALL_PATH}
ExecReload=/usr/sbin/nft -f {paths.FIREWALL_PATH}
ExecStop=/usr/sbin/nft delete table inet {TABLE}

[Install]
WantedBy=multi-user.target
"""
