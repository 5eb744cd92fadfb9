"""A cross-border path on the lab's simulated internet: netem delay, jitter and loss (issue 15).

The internet is one bridge (namespace `internet`, guest/boot.sh) with a port toward the
Alibaba router's EIP (p-ali) and one toward each AWS endpoint (p-awsN). netem shapes what a
port sends, so a qdisc on each port impairs exactly one direction of each tunnel once:
Alibaba -> AWS tunnel N leaves the bridge through p-awsN, AWS -> Alibaba (both tunnels)
through p-ali. A round trip through a tunnel crosses two of them: twice the delay, and a
loss of p on each way, as on the Alibaba mainland <-> AWS overseas path (150-300 ms RTT,
several per cent loss).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lab.probes import last_line_time

if TYPE_CHECKING:
    from lab.vm import ExecResult

NS = "internet"
ALI_PORT = "p-ali"


@dataclass(frozen=True)
class Impairment:
    delay_ms: int  # each way
    jitter_ms: int  # each way, around the delay
    loss_pct: float  # each way, independent per packet

    @property
    def rtt_ms(self) -> int:
        return 2 * self.delay_ms

    @property
    def loss(self) -> float:
        return self.loss_pct / 100

    def describe(self) -> str:
        return f"{self.rtt_ms} ms RTT (+-{2 * self.jitter_ms} ms), {self.loss_pct:g} % loss each way"


# lossy_path's path: where the design before issue 15 measurably gave up within 10 minutes
CROSS_BORDER = Impairment(delay_ms=150, jitter_ms=20, loss_pct=15)


def ports(tunnels: list[int]) -> tuple[str, ...]:
    """The bridge ports to impair: toward the EIP, and toward each tunnel's AWS endpoint."""
    return (ALI_PORT, *(f"p-aws{n}" for n in tunnels))


def apply_script(imp: Impairment, devs: tuple[str, ...]) -> str:
    return "".join(
        f"tc -n {NS} qdisc replace dev {d} root netem delay {imp.delay_ms}ms {imp.jitter_ms}ms "
        f"loss random {imp.loss_pct:g}%\n"
        for d in devs
    )


def clear_script(devs: tuple[str, ...]) -> str:
    return "".join(f"tc -n {NS} qdisc del dev {d} root 2>/dev/null || true\n" for d in devs)


def parse_qdiscs(out: str) -> dict[str, dict]:
    """`tc -j qdisc show` JSON -> {dev: {"drops": n, "sent": packets}} of the netem qdiscs."""
    import json

    try:
        rows = json.loads(out or "[]")
    except ValueError:
        return {}
    return {
        r.get("dev", "?"): {"sent": r.get("packets", 0), "drops": r.get("drops", 0)}
        for r in rows
        if isinstance(r, dict) and r.get("kind") == "netem"
    }


class Netem:
    def __init__(
        self,
        sh: Callable[..., ExecResult],
        tunnels: list[int],
        event: Callable[[str, float], None],
        now: Callable[[], float],
    ):
        self.sh, self.devs, self.event, self.now = sh, ports(tunnels), event, now
        self.active: Impairment | None = None

    def apply(self, imp: Impairment) -> float:
        """Impair every port; returns the guest time."""
        res = self.sh(apply_script(imp, self.devs) + "date +%s.%N", 30)
        if not res.ok:
            raise RuntimeError(f"could not apply netem ({imp.describe()}): {res.text()[-1000:]}")
        self.active = imp
        t = last_line_time(res.out) or self.now()
        self.event(f"netem: {imp.describe()}", t)
        return t

    def stats(self) -> dict[str, dict]:
        """What each netem qdisc has sent and dropped so far."""
        return parse_qdiscs(self.sh(f"tc -j -s -n {NS} qdisc show", 30).out)

    def clear(self) -> float:
        res = self.sh(clear_script(self.devs) + "date +%s.%N", 30)
        t = last_line_time(res.out) or self.now()
        if self.active:
            self.event("netem cleared", t)
        self.active = None
        return t
