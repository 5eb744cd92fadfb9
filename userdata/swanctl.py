"""strongSwan configuration: swanctl connections, secrets and charon settings, as text.

Built as nested dicts and serialized by one function, so the format's quoting and
nesting rules live in one place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Union

from core import paths
from userdata import liveness
from userdata.model import Gateway, Tunnel

Section = Mapping[str, Union[str, int, float, "Section"]]

# Dead-peer detection on the ECS: the backstop, not the failover. The data-plane liveness
# daemon (userdata/liveness.py) moves the traffic within about a second; DPD only has to clean
# up a tunnel that stays dead, and must not tear down a working one on a lossy cross-border
# path. Through a VTI charon sends a DPD request every dpd_delay, busy or not; it gives up
# when all 1 + tries transmissions of one exchange go unanswered, each timeout
# retransmit_timeout * base**n capped at retransmit_limit: 2 + 2.6 + 3.4 + 4.4 + 5 * 4 = 32.4 s,
# so a dead tunnel is cleared within dpd_delay + 32.4 s, about 42 s. With loss p each way
# an exchange fails with (1 - (1 - p)**2)**8: 0.3 false teardowns a day per tunnel at 15 %
# loss, 1e-4 at 5 % (today's hard settings, 4 transmissions every 2 s: 4 a day at 5 %).
# The cap also bounds the wait for the next IKE_SA_INIT once a blocked path heals (5 s).
ECS_DPD_DELAY_S = 10
ECS_RETRANSMIT_TRIES = 7
ECS_RETRANSMIT_TIMEOUT_S = 2.0
ECS_RETRANSMIT_BASE = 1.3
ECS_RETRANSMIT_LIMIT_S = 5
# IKEv1 has its own DPD timer instead of retransmissions: dead after this long without an
# answer to its R_U_THERE requests (one every dpd_delay, none retransmitted). A 90 s timeout
# with a liveness-driven stale-SA check was tried (calm on a lossy path) and taken back: under
# `make test` load the legacy runs then failed to settle after forced rekeys and, once on CI,
# to establish at boot (docs/lab-findings.md #18). So IKEv1 is not calm on a lossy path yet.
ECS_IKEV1_DPD_TIMEOUT_S = 30


def ecs_dpd_transmissions() -> int:
    return 1 + ECS_RETRANSMIT_TRIES


def ecs_dpd_false_teardowns_per_day(p: float, ike_version: int) -> float:
    """The ECS's own false dead-peer verdicts per tunnel per day at loss p each way, with the
    settings above (userdata/liveness.py has the arithmetic)."""
    if ike_version == 1:
        return liveness.ikev1_dpd_false_teardowns_per_day(p, ECS_DPD_DELAY_S, ECS_IKEV1_DPD_TIMEOUT_S)
    return liveness.dpd_false_teardowns_per_day(p, ECS_DPD_DELAY_S, ecs_dpd_transmissions())


def ecs_dpd_give_up_s() -> float:
    """Seconds from the first DPD request to charon's verdict of a dead peer (IKEv2)."""
    return sum(
        min(ECS_RETRANSMIT_TIMEOUT_S * ECS_RETRANSMIT_BASE**n, ECS_RETRANSMIT_LIMIT_S)
        for n in range(ecs_dpd_transmissions())
    )


_BARE = re.compile(r"^[A-Za-z0-9_./:%,-]+$")


def _value(v: str | int | float) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    text = str(v)
    if _BARE.match(text):
        return text
    if '"' in text or "\\" in text or "\n" in text:
        raise ValueError(f"value cannot be written to strongSwan config: {text!r}")
    return f'"{text}"'


def serialize(section: Section, indent: int = 0) -> str:
    """strongswan.conf/swanctl.conf syntax: `key = value` and `name { ... }`."""
    pad = "    " * indent
    lines: list[str] = []
    for key, value in section.items():
        if isinstance(value, Mapping):
            lines.append(f"{pad}{key} {{")
            body = serialize(value, indent + 1)
            if body:
                lines.append(body.rstrip("\n"))
            lines.append(f"{pad}}}")
        else:
            lines.append(f"{pad}{key} = {_value(value)}")
    return "\n".join(lines) + "\n"


def _seconds(n: int | float) -> str:
    return f"{n}s"


def connection(gw: Gateway, t: Tunnel) -> dict:
    """One swanctl connection: ECS private address local, EIP identity, AWS endpoint remote."""
    p = gw.crypto
    ike: dict = {
        "version": p.ike_version,
        **({"local_addrs": gw.ike_address} if gw.ike_address else {}),
        "remote_addrs": t.outside_address,
        "proposals": p.ike_proposals(),
        "dpd_delay": _seconds(ECS_DPD_DELAY_S),
    }
    if p.ike_version == 1:
        # IKEv1 cannot rekey an IKE SA in place; strongSwan re-authenticates instead.
        ike["dpd_timeout"] = _seconds(ECS_IKEV1_DPD_TIMEOUT_S)
        ike["aggressive"] = "no"
        ike["rekey_time"] = "0"
        ike["reauth_time"] = _seconds(p.ecs_ike_rekey_time_s())
    else:
        ike["rekey_time"] = _seconds(p.ecs_ike_rekey_time_s())
        ike["reauth_time"] = "0"
    ike.update(
        {
            "over_time": _seconds(p.phase1_lifetime_s - p.ecs_ike_rekey_time_s()),
            "rand_time": _seconds(p.ecs_rand_time_s()),
            "keyingtries": 0,  # forever: the ECS is the only initiator, it must never give up
            "unique": "replace",
            "mobike": "no",
            "local": {"auth": "psk", "id": gw.eip},
            "remote": {"auth": "psk", "id": t.outside_address},
            "children": {
                t.name: {
                    # Route-based: 0/0 selectors; only packets marked by this tunnel's VTI
                    # match its policies, so one SA pair carries every protocol.
                    "local_ts": "0.0.0.0/0",
                    "remote_ts": "0.0.0.0/0",
                    "mode": "tunnel",
                    "esp_proposals": p.esp_proposals(),
                    "mark_in": t.mark,
                    "mark_out": t.mark,
                    "rekey_time": _seconds(p.ecs_child_rekey_time_s()),
                    "life_time": _seconds(p.phase2_lifetime_s),
                    "rand_time": _seconds(p.ecs_rand_time_s()),
                    "replay_window": 1024,
                    "updown": f"{paths.UPDOWN_PATH} {t.name}",
                    # One of a pair: the active gateway initiates (aws2aliyun-ha, keepalived MASTER).
                    "start_action": "none" if gw.ha is not None else "start",
                    "dpd_action": "restart",
                    "close_action": "restart",
                }
            },
        }
    )
    return ike


def swanctl_conf(gw: Gateway) -> str:
    header = "# aws2aliyun-vpc: the two AWS tunnels (rendered by userdata/swanctl.py; do not edit)\n"
    return header + serialize({"connections": {t.name: connection(gw, t) for t in gw.tunnels}})


def secrets_conf(gw: Gateway) -> str:
    """PSKs keyed by both identities; the file is written 0600."""
    section = {
        "secrets": {
            f"ike-{t.name}": {"id-ali": gw.eip, "id-aws": t.outside_address, "secret": t.preshared_key}
            for t in gw.tunnels
        }
    }
    return "# aws2aliyun-vpc: tunnel pre-shared keys (mode 0600)\n" + serialize(section)


SWANCTL_PLUGINS = ""  # what swanctl loads (strongswan.conf swanctl.load): nothing


def charon_conf() -> str:
    """Daemon settings: no policy routes of its own (VTIs route), calm dead-peer detection."""
    section: Section = {
        "charon": {
            "install_routes": "no",
            # install_routes=no can still leave the routing rule for table 220 (strongswan #1626).
            "routing_table": 0,
            "install_virtual_ip": "no",
            "retransmit_tries": ECS_RETRANSMIT_TRIES,
            "retransmit_timeout": ECS_RETRANSMIT_TIMEOUT_S,
            "retransmit_base": ECS_RETRANSMIT_BASE,
            "retransmit_limit": ECS_RETRANSMIT_LIMIT_S,
            # IKEv1 only: delete a CHILD_SA once rekeyed instead of keeping it until it
            # expires, so a tunnel has one SA pair (AWS keeps one).
            "delete_rekeyed": "yes",
        },
        # swanctl itself: the tunnels authenticate with pre-shared keys, so loading
        # connections and keys, initiating and listing are plain vici messages and need none
        # of the plugins swanctl loads by default (Debian's whole list, each call: about a
        # second of a small, busy instance's CPU; the watchdog calls it every 15 s, a pair's
        # hand-over three times on its way).
        "swanctl": {"load": SWANCTL_PLUGINS},
    }
    return "# aws2aliyun-vpc: charon settings for route-based tunnels to AWS\n" + serialize(section)
