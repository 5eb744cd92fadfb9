"""The re-initiation watchdog: a systemd timer that brings back a tunnel charon gave up on.

The ECS is the only initiator (AWS only responds), and `keyingtries = 0` with
`dpd_action`/`close_action = restart` covers most deaths, but not all: an IKE_SA_INIT
answered with an error notify (NO_PROPOSAL_CHOSEN from a replaced AWS endpoint that has not
loaded its configuration yet, AUTHENTICATION_FAILED during a key rotation) is final for
charon, and after a DPD death against a restarted endpoint the lab saw tunnels left with no
IKE_SA at all. Nothing would ever initiate them again.

Every INTERVAL_S the watchdog initiates a tunnel's CHILD_SA only when charon holds no IKE_SA
for it at all (not even CONNECTING), or an ESTABLISHED IKE_SA without any CHILD_SA: so it
never creates a duplicate and the "one SA pair per tunnel" property holds. Anything else
(established, connecting, rekeying) is left alone.

When a tunnel's newest INSTALLED CHILD_SA is DUPLICATE_AGE_S old, every other CHILD_SA of it
is superseded and deleted (charon sends the DELETE, so both ends drop it):
- older INSTALLED ones: IKEv1 has no rekey collision handling, both ends rekeying at once
  leaves two, and AWS keeps one SA per tunnel and would drop traffic on the other;
- REKEYED or DELETED ones: after rekey collisions under load the lab saw one left behind, its
  inbound SA installed, for minutes (IKEv1 REKEYED on both ends, IKEv2 DELETED on the ECS;
  docs/lab-findings.md #21), where charon keeps them a few seconds by design.
A CHILD_SA being created or rekeyed (any other state) is left alone.

A tunnel whose data plane has been dead (aws2aliyun-liveness: no answer through it) for
`dead_child_after_s` while charon still holds it established is re-created: its CHILD_SA
terminated and initiated again, at most once per that time. That is longer than charon takes
to declare a silent peer dead (dpd_delay plus the IKEv2 retransmissions or the IKEv1 DPD
timeout), so in an outage DPD acts first; a tunnel still established after it answers IKE but
not ESP: an SA the AWS end no longer has. The lab met one after the AWS end reauthenticated an
IKEv1 SA during forced rekeys: the ECS kept a CHILD_SA the AWS end had deleted, tunnel 1
delivered nothing for over a minute, and only the ECS's next rekey (half an hour on) would
have healed it (docs/lab-findings.md #23).
"""

from __future__ import annotations

import math

from core import paths
from userdata import swanctl

INTERVAL_S = 15
INITIATE_TIMEOUT_S = 10  # how long one `swanctl --initiate` may block the watchdog
DUPLICATE_AGE_S = 10  # how old the newest INSTALLED CHILD_SA must be before the others go
DEAD_CHILD_MARGIN_S = 8  # past charon's own dead-peer verdict


def dead_child_after_s(ike_version: int) -> int:
    """Seconds of a dead data plane under an established tunnel before its CHILD_SA is
    re-created: charon's longest wait for a dead-peer verdict, plus a margin."""
    verdict = swanctl.ECS_DPD_DELAY_S + (
        swanctl.ECS_IKEV1_DPD_TIMEOUT_S if ike_version == 1 else swanctl.ecs_dpd_give_up_s()
    )
    return math.ceil(verdict + DEAD_CHILD_MARGIN_S)


def heals_within_s(ike_version: int) -> int:
    """The longest a CHILD_SA dead underneath an established tunnel lasts: dead_child_after_s,
    then the timer's next run and the initiation."""
    return dead_child_after_s(ike_version) + INTERVAL_S + INITIATE_TIMEOUT_S


def service(ike_version: int, pair: bool = False) -> str:
    """On a gateway of a pair only the active one (keepalived MASTER) holds tunnels: systemd
    skips the run on the others (ExecCondition), and on the active one while it is still
    taking over (its own initiations under way: a run then would start a second IKE SA)."""
    condition = f"ExecCondition={paths.HA_PATH} is-master\n" if pair else ""
    return f"""[Unit]
Description=aws2aliyun-vpc: re-initiate a tunnel strongSwan gave up on
After=strongswan.service
Requisite=strongswan.service

[Service]
Type=oneshot
Environment=INITIATE_TIMEOUT={INITIATE_TIMEOUT_S}
Environment=DUPLICATE_AGE={DUPLICATE_AGE_S}
Environment=DEAD_CHILD_AFTER={dead_child_after_s(ike_version)}
Environment=LIVENESS={paths.LIVENESS_PATH}
{condition}ExecStart={paths.WATCHDOG_PATH}
"""


def timer() -> str:
    return f"""[Unit]
Description=aws2aliyun-vpc: tunnel re-initiation watchdog, every {INTERVAL_S}s

[Timer]
OnBootSec=60
OnUnitInactiveSec={INTERVAL_S}
AccuracySec=1s

[Install]
WantedBy=timers.target
"""
