"""The gateway's design before data-plane liveness (issue 15), kept as the lossy path's baseline.

Until issue 15 the ECS found a dead tunnel by IKE dead-peer detection tuned hard: a DPD
request after 2 s of silence (through a VTI charon sends one every 2 s, busy or not), charon
giving up after 3 retransmissions at 0.8 s x 1.4^n (6.0 s uplink failover), IKEv1's
`dpd_timeout` 8 s, and routes that followed the SAs (the updown script routed on up-client;
down-client took the VTI and its routes away). This module rewrites the program's own
rendered swanctl.conf and charon.conf to those values, so everything else (proposals,
lifetimes, marks, VTIs) stays the program's and the lossy path compares the two ways of
finding a dead tunnel only. The liveness daemon is stopped meanwhile (lab/checks/baseline.py
`reconfigure`), and the routes follow the SAs through seed 000's updown wrapper
(lab/baseline.py), as they did.
"""

from __future__ import annotations

import re

from core import paths
from lab import baseline
from lab.inputs import written_file
from userdata import liveness

DPD_DELAY_S = 2
RETRANSMIT_TRIES = 3
RETRANSMIT_TIMEOUT_S = 0.8
RETRANSMIT_BASE = 1.4
IKEV1_DPD_TIMEOUT_S = 8

SETTINGS = (
    f"DPD every {DPD_DELAY_S} s, {1 + RETRANSMIT_TRIES} transmissions at {RETRANSMIT_TIMEOUT_S:g} s x "
    f"{RETRANSMIT_BASE:g}^n (IKEv1: dpd_timeout {IKEV1_DPD_TIMEOUT_S} s), routes following the SAs"
)


def transmissions() -> int:
    return 1 + RETRANSMIT_TRIES


def false_teardowns_per_day(p: float) -> float:
    """Expected false dead-peer verdicts per tunnel per day at loss p each way (IKEv2)."""
    return liveness.dpd_false_teardowns_per_day(p, DPD_DELAY_S, transmissions())


def _sub(pattern: str, repl: str, text: str, what: str, count: int = 0) -> str:
    out, n = re.subn(pattern, repl, text, flags=re.M)
    if not n:
        raise ValueError(f"the program's {what} has no line matching {pattern!r}")
    return out


def ecs_swanctl_conf(user_data: str) -> str:
    """The program's swanctl.conf with the old dead-peer timers and the seed's routing updown."""
    text = written_file(user_data, paths.SWANCTL_CONF_PATH)
    text = _sub(r"^(\s*dpd_delay = ).*$", rf"\g<1>{DPD_DELAY_S}s", text, "swanctl.conf")
    if re.search(r"^\s*dpd_timeout = ", text, re.M):  # IKEv1 only
        text = _sub(r"^(\s*dpd_timeout = ).*$", rf"\g<1>{IKEV1_DPD_TIMEOUT_S}s", text, "swanctl.conf")
    return _sub(
        r'^(\s*updown = )"?([^"\n]*)"?\s*$',
        rf'\g<1>"{baseline.SEED_UPDOWN_COMMAND} \g<2>"',
        text,
        "swanctl.conf",
    )


def ecs_charon_conf(user_data: str) -> str:
    """The program's charon.conf with the old retransmissions (and no cap on them)."""
    text = written_file(user_data, paths.CHARON_CONF_PATH)
    for key, value in (
        ("retransmit_tries", RETRANSMIT_TRIES),
        ("retransmit_timeout", RETRANSMIT_TIMEOUT_S),
        ("retransmit_base", RETRANSMIT_BASE),
    ):
        text = _sub(rf"^(\s*{key} = ).*$", rf"\g<1>{value:g}", text, "charon.conf")
    return _sub(r"^\s*retransmit_limit = .*\n", "", text, "charon.conf")


def files(user_data: str) -> dict[str, str]:
    """Every file the old design changes on the ECS."""
    return {
        paths.SWANCTL_CONF_PATH: ecs_swanctl_conf(user_data),
        paths.CHARON_CONF_PATH: ecs_charon_conf(user_data),
        baseline.SEED_UPDOWN_PATH: baseline.seed_updown(),
    }
