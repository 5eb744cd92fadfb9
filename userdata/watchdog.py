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
"""

from __future__ import annotations

from core import paths

INTERVAL_S = 15
INITIATE_TIMEOUT_S = 10  # how long one `swanctl --initiate` may block the watchdog
DUPLICATE_AGE_S = 10  # how old the newest INSTALLED CHILD_SA must be before the others go


def service(pair: bool = False) -> str:
    """On a gateway of a pair only the active one (keepalived MASTER) holds tunnels: systemd
    skips the run on the others (ExecCondition)."""
    condition = f"ExecCondition={paths.HA_PATH} is-master\n" if pair else ""
    return f"""[Unit]
Description=aws2aliyun-vpc: re-initiate a tunnel strongSwan gave up on
After=strongswan.service
Requisite=strongswan.service

[Service]
Type=oneshot
Environment=INITIATE_TIMEOUT={INITIATE_TIMEOUT_S}
Environment=DUPLICATE_AGE={DUPLICATE_AGE_S}
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
