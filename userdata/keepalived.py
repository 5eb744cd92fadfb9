"""keepalived for a gateway pair behind a HaVip: which of the two holds the address, and so
the tunnels.

VPC networks carry no multicast, so VRRP is unicast between the two private addresses. Both
gateways start as BACKUP with `nopreempt`: the first to win keeps the HaVip, and a recovered
peer stays standby instead of taking the link back (a second outage). The one that becomes
MASTER brings both tunnels up (`aws2aliyun-ha notify`), the others tear theirs down, so only
the active gateway holds IKE SAs.

`aws2aliyun-ha` (userdata/files/aws2aliyun-ha.sh) follows the role. MASTER (this gateway now
holds the HaVip, the address IKE binds to): load the connections and initiate both tunnels.
The IKE identity is the EIP, so AWS sees the same peer, and the INITIAL_CONTACT of a fresh IKE
SA makes it drop the other gateway's SAs at once. Any other state: load an empty connection
set (`standby_conf`, so swanctl unloads the others) and terminate both tunnels, so only the
active gateway holds SAs (and routes: aws2aliyun-liveness routes over VTIs that are up, and a
VTI goes down with its SA). With no connection loaded nothing on a standby initiates: not
dpd_action or close_action = restart after AWS deleted an SA that the active gateway's
INITIAL_CONTACT replaced (which would take the tunnels back from it). Transitions are
serialised (flock) and each acts on the latest role, so a MASTER that turns BACKUP while still
initiating ends with no SA; `check` (every CHECK_INTERVAL_S) releases any SA a standby still holds. It
is light (no strongSwan CLI call: on a TCG guest each takes about a second, and a check that
outran its interval flapped the pair, docs/lab-findings.md #19).

Health: VRRP adverts stop when the active gateway is down or hung (the standby takes over
after 3 * ADVERT_INT_S plus its skew). charon's exit is seen at once: keepalived follows the
process through the kernel's process events (`vrrp_track_process`, weight 0: no charon, FAULT),
and a MASTER entering FAULT sends a priority-0 advert, on which the standby takes over after
its skew alone (RFC 3768; keepalived's vrrp_state_leave_master). Polling could not do that:
the track script, started every second, took over a second on a loaded TCG guest, so two
failed checks in a row came 4-6 s after the kill (docs/lab-findings.md #33). systemd restarts
the killed charon within a second, but its SAs are gone: `aws2aliyun-ha check` (the track
script) also fails when charon does not answer, or was restarted under an active gateway, so
the hand-over happens even when the restart outran the process event. A dead AWS endpoint is not keepalived's business: the
tunnel failover (aws2aliyun-liveness) moves the traffic to the other tunnel.
"""

from __future__ import annotations

from core import paths
from userdata.model import GATEWAY_NIC, Gateway, HaPair

VRRP_INSTANCE = "aws2aliyun"
VIRTUAL_ROUTER_ID = 51  # unicast VRRP: only the pair hears it, so any id works
ADVERT_INT_S = 1
# Gateway 1 wins an election held with both up (a first boot, a healed partition).
PRIORITIES = (101, 100)
STARTUP_DELAY_S = 5  # keepalived 2.2 (Debian 12); 2.4 adds vrrp_delay_after_boot for boots only
# charon's exit is the process tracking's (at once); the script catches what polling must: a
# missing control socket, a restart the process events missed, a standby's stray SAs. Every 2 s:
# on a busy TCG guest a run took over a second, and keepalived skipped the next ones anyway.
CHECK_INTERVAL_S = 2
# aws2aliyun-ha check itself is light (no strongSwan CLI call), but on a standby that still
# holds SAs it releases them, a few swanctl calls of about a second each on a loaded host
CHECK_TIMEOUT_S = 10
CHECK_FALL = 2  # two failed checks in a row: a loaded host may stall one
# the process keepalived follows (its name as /proc/PID/comm has it: Debian's charon-systemd)
CHARON_PROCESS = "charon-systemd"
CHECK_RISE = 2
VRRP_PASSWORD_LENGTH = 8  # VRRPv2 simple-text authentication holds 8 characters
VRRP_PROTOCOL = 112  # IP protocol number of VRRP (for the host firewall)
# How long `pulumi up` waits for the first-replaced gateway to be ready (a boot, cloud-init's
# package install, the tunnels) before it gives up, leaving the other gateway untouched.
READY_TIMEOUT_S = 900
READY_POLL_S = 5


def takeover_s(number: int) -> float:
    """How long the standby waits after the last advert before it takes over (RFC 3768's
    master down interval: three adverts plus a skew that favours the higher priority)."""
    return 3 * ADVERT_INT_S + (256 - PRIORITIES[number - 1]) / 256 * ADVERT_INT_S


def conf(gw: Gateway) -> str:
    """/etc/keepalived/keepalived.conf of one gateway of the pair (mode 0600: the password)."""
    ha: HaPair | None = gw.ha
    if ha is None:
        raise ValueError("keepalived is rendered only for a gateway of a pair")
    if len(ha.vrrp_password) != VRRP_PASSWORD_LENGTH or not ha.vrrp_password.isalnum():
        raise ValueError(f"the VRRP password must be {VRRP_PASSWORD_LENGTH} letters or digits")
    return f"""# aws2aliyun-vpc: gateway {ha.number} of the pair behind HaVip {ha.vip} (rendered by userdata/keepalived.py)
global_defs {{
    router_id aws2aliyun-gw{ha.number}
    script_user root
    enable_script_security
    # at boot, listen before taking part: a gateway whose NIC is not passing traffic yet hears
    # no advert and would become MASTER beside the active one (and take its tunnels)
    vrrp_startup_delay {STARTUP_DELAY_S}
    # announce the HaVip again a second after taking it, and every 10 s while holding it
    vrrp_garp_master_delay 1
    vrrp_garp_master_refresh 10
}}

# charon's exit, at once (the kernel's process events): FAULT until systemd has restarted it
vrrp_track_process charon_running {{
    process {CHARON_PROCESS}
    weight 0
    quorum 1
}}

vrrp_script charon_ready {{
    script "{paths.HA_PATH} check"
    interval {CHECK_INTERVAL_S}
    timeout {CHECK_TIMEOUT_S}
    fall {CHECK_FALL}
    rise {CHECK_RISE}
}}

vrrp_instance {VRRP_INSTANCE} {{
    state BACKUP
    nopreempt
    interface {GATEWAY_NIC}
    virtual_router_id {VIRTUAL_ROUTER_ID}
    priority {PRIORITIES[ha.number - 1]}
    advert_int {ADVERT_INT_S}
    unicast_src_ip {ha.self_ip}
    unicast_peer {{
        {ha.peer_ip}
    }}
    authentication {{
        auth_type PASS
        auth_pass {ha.vrrp_password}
    }}
    virtual_ipaddress {{
        {ha.vip}/{ha.prefixlen} dev {GATEWAY_NIC}
    }}
    track_process {{
        charon_running
    }}
    track_script {{
        charon_ready
    }}
    notify "{paths.HA_PATH} notify"
}}
"""


def standby_conf() -> str:
    """The empty connection set a standby gateway loads (`swanctl --load-conns --file`):
    swanctl unloads every connection not in it, so nothing on the standby initiates."""
    return (
        "# aws2aliyun-vpc: a standby gateway of the pair loads no connection (aws2aliyun-ha);\n"
        "# the active one loads /etc/swanctl/conf.d/ again when it takes over\n"
        "connections {\n}\n"
    )


def esp_algorithms(gw: Gateway) -> str:
    """The ESP transforms a standby readies the kernel for, one `ip xfrm state` algorithm
    clause a line (aws2aliyun-ha). The first SA of an algorithm makes the kernel load its
    modules, instantiate it and run its self-tests: in the lab that held a take-over's
    CHILD_SAs back 10 s on a gateway that had never installed one (docs/lab-findings.md #34).
    The keys are zeros: each SA is deleted as soon as it is added, and carries nothing."""
    return (
        "# aws2aliyun-vpc: the ESP transforms of this link (aws2aliyun-ha adds and deletes one SA each\n"
        "# on a standby, so a take-over does not wait for the kernel to load them)\n"
        + "".join(f"{c}\n" for c in gw.crypto.xfrm_algorithms())
    )


def ready_script() -> str:
    """What the Cloud Assistant invocation runs on the gateway `pulumi up` replaced first: it
    exits 0 once that gateway can carry the link alone (`aws2aliyun-ha ready`: cloud-init done,
    charon up with both connections, keepalived BACKUP, or MASTER with both tunnels up), so
    the other gateway is replaced only then. It may start before cloud-init has written the
    script, so it waits for that too."""
    tries = (READY_TIMEOUT_S - 30) // READY_POLL_S
    return f"""#!/bin/bash
# aws2aliyun-vpc: wait until this gateway of the pair can carry the link alone; `pulumi up`
# replaces the other gateway only after this exits 0.
for _ in $(seq 1 {tries}); do
  if [ -x {paths.HA_PATH} ] && {paths.HA_PATH} ready; then
    exit 0
  fi
  sleep {READY_POLL_S}
done
{paths.HA_PATH} ready
exit 1
"""
