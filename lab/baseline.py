"""Seed 000's configuration, the reference our failover is measured against (issue 4).

Seed 000 (`../shared/seeds/000_*`, the hand-made AWS <-> Aliyun recipe) configures each
tunnel in ipsec.conf as:

    keyexchange=ikev1  ike=aes128-sha1-modp1024  ikelifetime=8h
    esp=aes128-sha1-modp1024  lifetime=1h  keyingtries=%forever
    leftsubnet=rightsubnet=0.0.0.0/0  dpddelay=10s  dpdtimeout=30s  dpdaction=restart
    mark=100 (200 for Tunnel2)  auto=start  (uniqueids=no)

and charon.conf with `install_routes = no` only: no retransmission tuning. This module
writes that, in swanctl's syntax (Debian 12 ships swanctl, not the stroke `ipsec.conf`
starter), with ipsec.conf's documented defaults where the seed is silent (margintime 9m,
rekeyfuzz 100%). The VTIs, marks and route metrics stay the program's; the seed has no
data-plane liveness, so its routes follow the tunnels' SAs as its own updown script routes
them: the program's updown script for the VTI, then the VPC route with metric = mark on
up-client (SEED_UPDOWN_PATH wraps it; the liveness daemon is stopped meanwhile). So the
comparison isolates the IKE and dead-peer timers and the liveness daemon.

The AWS end of the baseline is the stack's own AWS end narrowed to what the seed proposes
(IKEv1, AES128/SHA1/DH2 both phases, 8h/1h). Its dead-peer detection stays the stack's
(`dpdTimeoutSeconds` and its action): that is the AWS side's setting, not the seed's, so
the baseline's downlink is measured against the same AWS end as ours (issue 15, item 5).
"""

from __future__ import annotations

import dataclasses
import re

from core import paths
from lab.inputs import LabInputs, Tunnel, link_env

# The gateway's files the baseline overwrites.
ECS_SWANCTL_PATH = paths.SWANCTL_CONF_PATH
ECS_CHARON_PATH = paths.CHARON_CONF_PATH

# The seed's updown: the program's, then the routes on up-client (lab/baseline.py). /run is
# mounted noexec: charon runs it through sh.
SEED_UPDOWN_PATH = "/run/lab/seed-updown"
SEED_UPDOWN_COMMAND = f"/bin/sh {SEED_UPDOWN_PATH}"

# ipsec.conf(5) defaults where the seed is silent
MARGIN_S = 9 * 60
IKE_LIFETIME_S = 8 * 3600
CHILD_LIFETIME_S = 3600
DPD_DELAY_S = 10
DPD_TIMEOUT_S = 30
PROPOSAL = "aes128-sha1-modp1024"


def updown_command(user_data: str, conn: str) -> str:
    """The `updown = ...` command the program configured for connection `conn`."""
    m = re.search(rf"^\s*updown = \"?([^\"\n]*\b{re.escape(conn)})\"?\s*$", user_data, re.M)
    if not m:
        raise ValueError(f"no 'updown = ... {conn}' in the user-data")
    return m.group(1)


def ecs_swanctl_conf(i: LabInputs, user_data: str) -> str:
    """Seed 000's two connections for the ECS (names as the program's: tunnel1, tunnel2)."""
    env = link_env(user_data)
    lines = ["# seed 000's ipsec.conf, in swanctl syntax (lab/baseline.py)", "connections {"]
    for t in i.tunnels:
        conn = f"tunnel{t.number}"
        mark = env[f"TUNNEL{t.number}_MARK"]
        lines += [
            f"    {conn} {{",
            "        version = 1",
            f"        local_addrs = {i.private_ip}",
            f"        remote_addrs = {t.outside_address}",
            f"        proposals = {PROPOSAL}",
            # IKEv1: ikelifetime is a reauthentication, margintime before it
            "        rekey_time = 0",
            f"        reauth_time = {IKE_LIFETIME_S - MARGIN_S}s",
            f"        over_time = {MARGIN_S}s",
            f"        rand_time = {MARGIN_S}s",
            "        keyingtries = 0",
            "        unique = no",
            f"        dpd_delay = {DPD_DELAY_S}s",
            f"        dpd_timeout = {DPD_TIMEOUT_S}s",
            "        local {",
            "            auth = psk",
            f"            id = {i.eip}",
            "        }",
            "        remote {",
            "            auth = psk",
            f"            id = {t.outside_address}",
            "        }",
            "        children {",
            f"            {conn} {{",
            "                local_ts = 0.0.0.0/0",
            "                remote_ts = 0.0.0.0/0",
            "                mode = tunnel",
            f"                esp_proposals = {PROPOSAL}",
            f"                mark_in = {mark}",
            f"                mark_out = {mark}",
            f"                rekey_time = {CHILD_LIFETIME_S - MARGIN_S}s",
            f"                life_time = {CHILD_LIFETIME_S}s",
            f"                rand_time = {MARGIN_S}s",
            f'                updown = "{SEED_UPDOWN_COMMAND} {updown_command(user_data, conn)}"',
            "                start_action = start",
            "                dpd_action = restart",
            "            }",
            "        }",
            "    }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def seed_updown() -> str:
    """The program's updown command (the arguments), then seed 000's routes: every AWS prefix
    over the tunnel's VTI with its metric on up-client (down-client takes the VTI down, and
    its routes with it)."""
    return f"""#!/bin/sh
# seed 000's updown (lab/baseline.py): the program's updown, then the routes as the seed does
"$@" || exit $?
[ "$PLUTO_VERB" = up-client ] || exit 0
. {paths.LINK_ENV_PATH}
for tunnel; do :; done
case $tunnel in
  tunnel1) vti=$TUNNEL1_VTI metric=$TUNNEL1_METRIC ;;
  tunnel2) vti=$TUNNEL2_VTI metric=$TUNNEL2_METRIC ;;
  *) exit 0 ;;
esac
for cidr in $AWS_CIDRS; do ip route replace "$cidr" dev "$vti" metric "$metric"; done
"""


def ecs_charon_conf() -> str:
    """The seed's only daemon change: install_routes = no (no retransmission tuning)."""
    return "# seed 000: charon.conf with install_routes = no (lab/baseline.py)\ncharon {\n    install_routes = no\n}\n"


def aws_tunnel(t: Tunnel) -> Tunnel:
    """The AWS end for the seed: IKEv1 aes128-sha1-modp1024, 8h/1h; DPD as the stack's."""
    return dataclasses.replace(
        t,
        ike_versions=("ikev1",),
        phase1_encryption=("AES128",),
        phase1_integrity=("SHA1",),
        phase1_dh_groups=(2,),
        phase2_encryption=("AES128",),
        phase2_integrity=("SHA1",),
        phase2_dh_groups=(2,),
        phase1_lifetime_s=IKE_LIFETIME_S,
        phase2_lifetime_s=CHILD_LIFETIME_S,
    )


def ratio(ours: float | None, baseline: float | None) -> float | None:
    """ours / baseline, None when either is missing or the baseline is 0."""
    if ours is None or not baseline:
        return None
    return round(ours / baseline, 2)
