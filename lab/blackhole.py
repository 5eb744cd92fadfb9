"""The lab's network faults: a tunnel's AWS endpoint blackholed on the simulated internet.

An nftables drop of the endpoint's outside address, both directions, in the forward path of
the Alibaba router between the EIP and the internet: outside the ECS, so the ECS's own
configuration is what has to cope.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from lab.probes import last_line_time

if TYPE_CHECKING:
    from lab.vm import ExecResult

NFT = "ip netns exec alirouter chroot /opt/labroot nft"


class Blackhole:
    def __init__(
        self,
        sh: Callable[..., ExecResult],
        addresses: dict[int, str],
        event: Callable[[str, float], None],
        now: Callable[[], float],
    ):
        self.sh = sh
        self.addresses = addresses  # tunnel number -> the AWS endpoint's outside address
        self.event = event
        self.now = now
        self.blocked: set[int] = set()

    def block(self, n: int) -> float:
        """Blackhole tunnel n's AWS outside address both ways; returns the guest time."""
        a = self.addresses[n]
        rules = (
            "add table inet labfault\n"
            "add chain inet labfault blackhole { type filter hook forward priority -10; policy accept; }\n"
            f'add rule inet labfault blackhole ip daddr {a} counter drop comment "t{n}"\n'
            f'add rule inet labfault blackhole ip saddr {a} counter drop comment "t{n}"\n'
        )
        res = self.sh(f"{NFT} -f - <<'EOF'\n{rules}EOF\ndate +%s.%N", 30)
        if not res.ok:
            raise RuntimeError(f"could not blackhole tunnel {n} ({a}): {res.text()}")
        self.blocked.add(n)
        t = last_line_time(res.out) or self.now()
        self.event(f"block tunnel{n}", t)
        return t

    def unblock(self, n: int) -> float:
        res = self.sh(
            f"{NFT} -a list chain inet labfault blackhole 2>/dev/null | "
            f"sed -n 's/.*comment \"t{n}\" # handle \\([0-9]*\\).*/\\1/p' | "
            f"while read h; do {NFT} delete rule inet labfault blackhole handle $h; done; date +%s.%N",
            30,
        )
        self.blocked.discard(n)
        t = last_line_time(res.out) or self.now()
        self.event(f"unblock tunnel{n}", t)
        return t

    def unblock_all(self, record: bool = False) -> float:
        res = self.sh(f"{NFT} delete table inet labfault 2>/dev/null; date +%s.%N", 30)
        self.blocked.clear()
        t = last_line_time(res.out) or self.now()
        if record:
            self.event("unblock all", t)
        return t

    def counters(self) -> str:
        return self.sh(f"{NFT} list table inet labfault 2>&1 | grep -E 'counter' || true", 30).out.strip()
