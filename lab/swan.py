"""Parsers for what the lab reads back: `swanctl --list-sas --pretty` and `ip xfrm state`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


def parse_pretty(text: str) -> list[dict]:
    """`swanctl --list-sas --pretty` -> one dict per IKE SA: {name, ...fields, child-sas: {...}}.

    The format is vici's pretty print: `name {` ... `}`, `key = value`, `key [` items `]`.
    """
    sas: list[dict] = []
    stack: list[dict] = []
    list_key: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if list_key is not None:
            if line == "]":
                list_key = None
            else:
                stack[-1][list_key].append(line)
            continue
        if line.endswith("{"):
            name = line[:-1].strip()
            if not stack:  # "list-sa event {"
                stack.append({})
                continue
            node: dict = {}
            stack[-1][name] = node
            stack.append(node)
            continue
        if line == "}":
            if stack:
                done = stack.pop()
                if not stack:
                    for name, sa in done.items():
                        if isinstance(sa, dict):
                            sas.append({"name": name, **sa})
            continue
        if line.endswith("["):
            list_key = line[:-1].strip()
            if stack:
                stack[-1][list_key] = []
            continue
        m = re.match(r"^([\w-]+) = (.*)$", line)
        if m and stack:
            stack[-1][m.group(1)] = m.group(2)
    return sas


def children(sa: dict) -> list[dict]:
    c = sa.get("child-sas") or {}
    return [v for v in c.values() if isinstance(v, dict)]


def sas_to(sas: list[dict], remote: str) -> list[dict]:
    return [sa for sa in sas if sa.get("remote-host") == remote]


def established(sas: list[dict], remote: str) -> bool:
    return any(
        sa.get("state") == "ESTABLISHED" and any(c.get("state") == "INSTALLED" for c in children(sa))
        for sa in sas_to(sas, remote)
    )


def not_up_on_both_ends(
    gateways: Iterable[list[dict]], peers: Mapping[int, list[dict]], tunnels: Mapping[int, str], eip: str
) -> list[int]:
    """The tunnels (number -> the AWS end's outside address) not established on some gateway
    and on their AWS-like peer (whose remote is the EIP) at once."""
    gws = list(gateways)
    return [
        n
        for n, outside in sorted(tunnels.items())
        if not (any(established(sas, outside) for sas in gws) and established(peers.get(n, []), eip))
    ]


@dataclass
class XfrmState:
    src: str
    dst: str
    spi: str = ""
    mark: str = ""
    encap: str = ""
    lines: list[str] = field(default_factory=list)


def parse_xfrm_states(text: str) -> list[XfrmState]:
    states: list[XfrmState] = []
    for line in text.splitlines():
        m = re.match(r"^src (\S+) dst (\S+)", line)
        if m:
            states.append(XfrmState(m.group(1), m.group(2)))
            continue
        if not states:
            continue
        s = states[-1]
        s.lines.append(line.strip())
        m = re.search(r"proto esp spi (0x[0-9a-f]+)", line)
        if m:
            s.spi = m.group(1)
        m = re.match(r"^\s*mark (0x[0-9a-f]+)", line)
        if m:
            s.mark = m.group(1)
        m = re.match(r"^\s*encap type (\S+ sport \d+ dport \d+)", line)
        if m:
            s.encap = m.group(1)
    return states


def redact_keys(text: str) -> str:
    """ESP keys out of `ip xfrm state` output (reports must not carry secrets)."""
    return re.sub(r"0x[0-9a-f]{16,}", "[key]", text)


def parse_xfrm_policy_marks(text: str) -> list[tuple[str, str]]:
    """(dir, mark) for each policy in `ip xfrm policy`."""
    out: list[tuple[str, str]] = []
    cur_dir = None
    for line in text.splitlines():
        m = re.search(r"\bdir (in|out|fwd)\b", line)
        if m:
            cur_dir = m.group(1)
            mk = re.search(r"\bmark (0x[0-9a-f]+)", line)
            if mk:
                out.append((cur_dir, mk.group(1)))
            continue
        mk = re.match(r"^\s*mark (0x[0-9a-f]+)", line)
        if mk and cur_dir:
            out.append((cur_dir, mk.group(1)))
    return out


def parse_vti_keys(text: str) -> dict[str, tuple[int, int]]:
    """`ip -d link show type vti` -> {name: (ikey, okey)} (keys printed as ints or dotted quads)."""
    keys: dict[str, tuple[int, int]] = {}
    name = None
    for line in text.splitlines():
        m = re.match(r"^\d+: ([^:@]+)[@:]", line)
        if m:
            name = m.group(1)
            continue
        if name and "vti" in line:
            ik = re.search(r"\bikey (\S+)", line)
            ok = re.search(r"\bokey (\S+)", line)
            if ik and ok:
                keys[name] = (_key(ik.group(1)), _key(ok.group(1)))
    return keys


def _key(s: str) -> int:
    if "." in s:
        a, b, c, d = (int(x) for x in s.split("."))
        return (a << 24) | (b << 16) | (c << 8) | d
    return int(s, 0)


def xfrm_state_count(text: str) -> int:
    """`ip xfrm state count` ("SAD count N") -> N (0 when unreadable)."""
    m = re.search(r"SAD count (\d+)", text)
    return int(m.group(1)) if m else 0


def preferred_tunnel(routes: list[dict]) -> int | None:
    """The tunnel number of the `ip -j route` entry with the lowest metric (its device's
    trailing digits: vti1, Tunnel2, ...)."""
    best = min(routes, key=lambda r: int(r.get("metric", 0)), default=None)
    if not best:
        return None
    m = re.search(r"(\d+)$", str(best.get("dev", "")))
    return int(m.group(1)) if m else None
