"""single_sa_pair (sa_pairs) against stand-ins for charon's SA list and the kernel's xfrm states."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lab.checks.basic import sa_pairs, single_sa_pair
from lab.checks.rekeys import unquiet

EIP, ECS_IP, AWS1 = "198.51.100.10", "172.16.1.10", "192.0.2.10"


def _xfrm(src: str, dst: str, n: int) -> str:
    return "".join(f"src {src} dst {dst}\n\tproto esp spi 0x{k:08x} reqid 1 mode tunnel\n" for k in range(n))


def _sa(remote: str, states: list[str]) -> dict:
    kids = {f"tunnel1-{k}": {"name": "tunnel1", "state": st} for k, st in enumerate(states)}
    return {"remote-host": remote, "state": "ESTABLISHED", "child-sas": kids}


def _session(ecs_kids, ecs_in, aws_kids, aws_in):
    """One tunnel: the ECS (behind the EIP's NAT) and aws1, their CHILD_SA states and inbound
    xfrm states (one outbound each)."""
    ecs_x = _xfrm(AWS1, ECS_IP, ecs_in) + _xfrm(ECS_IP, AWS1, 1)
    aws_x = _xfrm(EIP, AWS1, aws_in) + _xfrm(AWS1, EIP, 1)
    return SimpleNamespace(
        inputs=SimpleNamespace(tunnels=[SimpleNamespace(number=1, outside_address=AWS1)], eip=EIP, ingress_ip=ECS_IP),
        ecs_sas=lambda: [_sa(AWS1, ecs_kids)],
        ecs_sh=lambda cmd, timeout: SimpleNamespace(out=ecs_x),
        peer_sas=lambda n: [_sa(EIP, aws_kids)],
        sh=lambda cmd, timeout: SimpleNamespace(out=aws_x),
    )


@pytest.mark.parametrize(
    ("ecs", "aws", "aws_rekeyed_ok", "ok"),
    [
        ((["INSTALLED"], 1), (["INSTALLED"], 1), False, True),
        # the AWS end kept a REKEYED CHILD_SA's inbound SA: only IKEv1's allowance accepts it
        ((["INSTALLED"], 1), (["INSTALLED", "REKEYED"], 2), False, False),
        ((["INSTALLED"], 1), (["INSTALLED", "REKEYED"], 2), True, True),
        ((["INSTALLED"], 1), (["INSTALLED", "REKEYED"], 1), True, True),  # its inbound SA already gone
        # an extra inbound SA charon does not list as REKEYED, or two INSTALLED: never
        ((["INSTALLED"], 1), (["INSTALLED"], 2), True, False),
        ((["INSTALLED"], 1), (["INSTALLED", "INSTALLED"], 2), True, False),
        # the ECS gets no allowance: its watchdog deletes its REKEYED leftovers
        ((["INSTALLED", "REKEYED"], 2), (["INSTALLED"], 1), True, False),
        # the orphan of findings #23: the AWS end without a CHILD_SA
        ((["INSTALLED"], 1), ([], 0), True, False),
    ],
)
def test_one_sa_pair_per_tunnel(ecs, aws, aws_rekeyed_ok, ok):
    s = _session(ecs[0], ecs[1], aws[0], aws[1])
    got, detail, metrics = sa_pairs(s, aws_rekeyed_ok)  # type: ignore[arg-type]
    if not aws_rekeyed_ok:
        assert single_sa_pair(s)[0] is ok  # type: ignore[arg-type]
    assert got is ok, detail
    assert metrics["tunnel1_aws"]["rekeyed_inbound_allowed"] == (aws[0].count("REKEYED") if aws_rekeyed_ok else 0)


@pytest.mark.parametrize(
    ("ecs", "aws", "busy"),
    [
        ([("ESTABLISHED", ["INSTALLED"])], [("ESTABLISHED", ["INSTALLED"])], []),
        # done rekeys' leftovers do not hold the next rekey back
        ([("ESTABLISHED", ["INSTALLED", "DELETED"])], [("ESTABLISHED", ["REKEYED", "INSTALLED"])], []),
        # a CHILD_SA rekey under way on either end
        ([("ESTABLISHED", ["REKEYING"])], [("ESTABLISHED", ["INSTALLED"])], ["ECS"]),
        ([("ESTABLISHED", ["INSTALLED"])], [("ESTABLISHED", ["INSTALLED", "INSTALLING"])], ["AWS end"]),
        # an IKEv1 reauthentication: the new IKE SA is up, the old one not yet deleted
        (
            [("ESTABLISHED", ["INSTALLED"]), ("ESTABLISHED", [])],
            [("REKEYING", []), ("ESTABLISHED", ["INSTALLED"])],
            ["ECS", "AWS end"],
        ),
        ([("CONNECTING", [])], [("ESTABLISHED", ["INSTALLED"])], ["ECS"]),
        # no CHILD_SA, or two INSTALLED ones
        ([("ESTABLISHED", [])], [("ESTABLISHED", ["INSTALLED"])], ["ECS"]),
        ([("ESTABLISHED", ["INSTALLED", "INSTALLED"])], [("ESTABLISHED", ["INSTALLED"])], ["ECS"]),
        ([], [("ESTABLISHED", ["INSTALLED"])], ["ECS"]),
    ],
)
def test_rekey_step_waits_until_both_ends_are_quiet(ecs, aws, busy):
    def sas(remote, ike):
        return [{**_sa(remote, kids), "state": state} for state, kids in ike]

    other = {"remote-host": "192.0.2.20", "state": "CONNECTING", "child-sas": {}}  # tunnel 2: not looked at
    why = unquiet([*sas(AWS1, ecs), other], sas(EIP, aws), AWS1, EIP)
    assert [part.split(":")[0] for part in why.split("; ") if part] == busy, why
