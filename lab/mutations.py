"""Fault injection: deliberate, documented breakage of the rendered user-data.

Only for proving that the lab's checks catch real mistakes (`python -m lab run --mutate
NAME`). A mutated run says so in the report's `config` (user_data_mutated, mutation,
both hashes). Each mutation must change the text, or the run stops: a mutation that
silently stops applying would make its test pass for the wrong reason.

Several mutations can share one VM (`--mutate A,B,C`): the first boots with its mutated
user-data through cloud-init; each next one writes the files its user-data's `write_files`
has differently from the one before (`changed_files`) and reboots the VM, so the kernel's
SAs, VTIs and firewall start clean and the gateway comes up from the services the user-data
enabled, as `reboot_persistence` proves it does at every boot. That is only the same as a
boot with the mutated user-data when the mutation changes nothing but file contents, so
`changed_files` refuses any other difference.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import yaml

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
    # the checks that show it: the ones that must fail and what must still pass beside them
    checks: tuple[str, ...]


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
        # Nothing the gateway sends into tunnel 1 matches an SA (what comes in decrypts by SPI
        # under NAT-T, marks or not). Its liveness daemon never hears tunnel 1 answer, so it
        # routes over tunnel 2 only: traffic flows both ways, and the route check and the
        # verify script say which tunnel is broken and why.
        Mutation(
            "wrong-mark",
            _wrong_mark.__doc__ or "",
            ("routes_prefer_tunnel1", "verify_script"),
            r"MARK MISMATCH: ECS VTI Tunnel1 has key 100|tunnel1: IPsec up, no answer through the tunnel",
            _wrong_mark,
            ("tunnels_established", "icmp_ali_to_aws", "icmp_aws_to_ali", "routes_prefer_tunnel1", "verify_script"),
        ),
        Mutation(
            "wrong-identity",
            _wrong_identity.__doc__ or "",
            ("tunnels_established",),
            r"the ECS presented IKE identity [0-9.]+, but the AWS side expects",
            _wrong_identity,
            ("tunnels_established",),
        ),
        Mutation(
            "no-mss-clamp",
            _no_mss_clamp.__doc__ or "",
            ("bulk_tcp_mtu",),
            r"no TCPMSS rule",
            _no_mss_clamp,
            ("tunnels_established", "tcp_ali_to_aws", "bulk_tcp_mtu"),
        ),
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


def parse_names(text: str) -> tuple[str, ...]:
    """`--mutate A,B,C`: the names in order, each known and given once."""
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    unknown = [n for n in names if n not in MUTATIONS]
    if not names or unknown:
        raise MutationError(f"unknown mutation(s) {', '.join(unknown) or repr(text)} (known: {', '.join(MUTATIONS)})")
    if len(set(names)) != len(names):
        raise MutationError(f"a mutation given twice in {text!r}")
    return names


def _cloud_config(user_data: str) -> dict:
    cfg = yaml.safe_load(user_data)
    if not isinstance(cfg, dict) or not isinstance(cfg.get("write_files"), list):
        raise MutationError("the user-data is not a #cloud-config with write_files")
    return cfg


def changed_files(before: str, after: str) -> list[dict]:
    """The `write_files` entries of `after` whose content differs from `before`'s: what a
    running gateway booted from `before` must be given (then a reboot) to be what a boot
    from `after` makes. Refused (MutationError) when the two differ in anything else
    (another key, a path, an owner, a mode): that would need cloud-init to run again."""
    b, a = _cloud_config(before), _cloud_config(after)
    problems = [k for k in sorted(set(a) | set(b)) if k != "write_files" and a.get(k) != b.get(k)]
    bf, af = b["write_files"], a["write_files"]

    def shape(files: list[dict]) -> list[dict]:
        return [{k: v for k, v in f.items() if k != "content"} for f in files]

    if shape(bf) != shape(af):
        problems.append("write_files (paths, owners or modes)")
    if problems:
        raise MutationError(
            "the mutated user-data differs in more than file contents, so a reboot cannot apply it: "
            + ", ".join(problems)
        )
    return [f for f, old in zip(af, bf, strict=True) if f.get("content") != old.get("content")]
