"""Fault injection: deliberate, documented breakage of the rendered user-data.

Only for proving that the lab's checks catch real mistakes (`python -m lab run --mutate
NAME`). A mutated run says so in the report's `config` (user_data_mutated, mutation,
both hashes). Each mutation must change the text, or the run stops: a mutation that
silently stops applying would make its test pass for the wrong reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from lab.inputs import LabInputs


class MutationError(ValueError):
    pass


@dataclass(frozen=True)
class Mutation:
    name: str
    description: str
    expect_failing: tuple[str, ...]  # checks that must fail
    expect_detail: str  # a regex the failing checks' detail (before the diagnostics dump) must match
    apply: Callable[[str, LabInputs], str]


def _wrong_mark(text: str, i: LabInputs) -> str:
    """tunnel1's CHILD_SA marks 100 -> 101, while its VTI keeps key 100."""
    first = re.search(r"mark_in = (\d+)", text)
    if not first:
        raise MutationError("wrong-mark: no 'mark_in = N' in the user-data")
    mark = first.group(1)
    new, n = re.subn(rf"(mark_(?:in|out) = ){mark}\b", rf"\g<1>{int(mark) + 1}", text, count=2)
    if n != 2:
        raise MutationError(f"wrong-mark: expected mark_in and mark_out = {mark}, changed {n}")
    return new


def _wrong_identity(text: str, i: LabInputs) -> str:
    """The ECS's local IKE identity: the EIP -> its private address (the classic NAT mistake)."""
    pattern = re.compile(r"(local \{[^{}]*?\bid = )" + re.escape(i.eip) + r"\b")
    new, n = pattern.subn(rf"\g<1>{i.private_ip}", text)
    if n == 0:
        raise MutationError(f"wrong-identity: no 'local {{ ... id = {i.eip}' in the user-data")
    return new


def _no_mss_clamp(text: str, i: LabInputs) -> str:
    """Every TCPMSS target becomes a plain ACCEPT: the rules stay, nothing is clamped."""
    new, n = re.subn(r"-j TCPMSS\b[^\n\\]*", "-j ACCEPT", text)
    if n == 0:
        raise MutationError("no-mss-clamp: no '-j TCPMSS' in the user-data")
    return new


MUTATIONS: dict[str, Mutation] = {
    m.name: m
    for m in (
        Mutation(
            "wrong-mark",
            _wrong_mark.__doc__ or "",
            ("icmp_ali_to_aws", "icmp_aws_to_ali"),
            r"MARK MISMATCH: ECS VTI Tunnel1 has key 100",
            _wrong_mark,
        ),
        Mutation(
            "wrong-identity",
            _wrong_identity.__doc__ or "",
            ("tunnels_established",),
            r"the ECS presented IKE identity [0-9.]+, but the AWS side expects",
            _wrong_identity,
        ),
        Mutation("no-mss-clamp", _no_mss_clamp.__doc__ or "", ("bulk_tcp_mtu",), r"no TCPMSS rule", _no_mss_clamp),
    )
}


def apply(name: str, user_data: str, inputs: LabInputs) -> str:
    try:
        m = MUTATIONS[name]
    except KeyError:
        raise MutationError(f"unknown mutation {name!r} (known: {', '.join(MUTATIONS)})") from None
    new = m.apply(user_data, inputs)
    if new == user_data:
        raise MutationError(f"{name}: did not change the user-data")
    return new
