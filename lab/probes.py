"""Traffic through the link, measured: sequence-numbered UDP probes and their analysis.

`guest/seqprobe.py` on alihost and awshost sends sequence-numbered UDP datagrams both ways
at RATE packets per second for the whole of a check. Per direction, the outage is the
longest time between two consecutively received probes (by their send instants) minus the
probe interval, and the loss is the number of sequence numbers never received.
Uplink = Alibaba -> AWS (received on awshost), downlink = AWS -> Alibaba (received on alihost).
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lab import poll

if TYPE_CHECKING:
    from lab.topology import Topology
    from lab.vm import ExecResult

RATE = 10.0  # probes per second, each direction
WARMUP = 10  # probes per direction ignored at the start (the other end may not listen yet)
PROBE_DIR = "/run/lab/probe"
PIDS = "/run/lab/seqprobe.pids"
PORT = 5010
SLOW_S = 0.6  # a probe this much later than its send instant counts as delayed (Probes.delays)


def parse_rx(text: str) -> list[tuple[int, float]]:
    """`SEQ T_SEND [T_RECV]` lines -> [(seq, t_send)], malformed lines ignored."""
    out = []
    for ln in text.splitlines():
        parts = ln.split()
        if len(parts) < 2:
            continue
        try:
            out.append((int(parts[0]), float(parts[1])))
        except ValueError:
            continue
    return out


def parse_rx_dropped(text: str) -> int:
    """The 4th field of a `.tx` state line: datagrams the kernel dropped at that end's full
    receive buffer (0 when absent)."""
    parts = text.split()
    return int(parts[3]) if len(parts) >= 4 and parts[3].isdigit() else 0


def parse_stalled(text: str) -> float:
    """The 5th field of a `.tx` state line: seconds that sender fell behind its schedule in all
    (its VM stalled; the slots it missed were never sent). 0.0 when absent."""
    parts = text.split()
    try:
        return float(parts[4]) if len(parts) >= 5 else 0.0
    except ValueError:
        return 0.0


def parse_tx(text: str) -> tuple[int, float, float] | None:
    """`SENT FIRST_T LAST_T [RX_DROPPED]` -> (sent, first_t, last_t)."""
    parts = text.split()
    if len(parts) < 3:
        return None
    try:
        return int(parts[0]), float(parts[1]), float(parts[2])
    except ValueError:
        return None


@dataclass
class DirectionStats:
    sent: int
    received: int
    lost: int
    outage_s: float  # longest gap minus one interval (0.0 when nothing was lost)
    outage_from: float | None = None  # send instant of the last probe received before the gap
    outage_to: float | None = None  # send instant of the first probe received after it
    recovered: bool = True  # False when the longest gap lasted until the end
    gaps: list[tuple[float, float, int]] = field(default_factory=list)  # (from, to, missing), longest first
    # datagrams the lab's own receiver dropped, its socket buffer full (the warm-up's included)
    rx_dropped: int = 0
    # seconds the sender fell behind its schedule (a stall of its VM): not sent, so not lost
    sender_stalled_s: float = 0.0

    def as_metrics(self, t_ref: float | None = None) -> dict:
        rel = (lambda t: None if t is None else round(t - t_ref, 2)) if t_ref is not None else (lambda t: t)
        return {
            "sent": self.sent,
            "received": self.received,
            "lost": self.lost,
            "outage_s": round(self.outage_s, 2),
            "outage_from": rel(self.outage_from),
            "outage_to": rel(self.outage_to),
            "recovered": self.recovered,
            "gaps": [(rel(a), rel(b), n) for a, b, n in self.gaps],  # (from, to, missing), longest first
            "rx_dropped": self.rx_dropped,
            "sender_stalled_s": round(self.sender_stalled_s, 2),
        }


def direction_stats(
    rx: list[tuple[int, float]], sent: int, first_t: float, last_t: float, interval: float, start_seq: int = 0
) -> DirectionStats:
    """Loss and outage of one direction from what its receiver got.

    rx: (seq, send instant) of every datagram received (duplicates allowed);
    sent: how many the sender sent (seqs 0..sent-1), first_t/last_t: its first and last send
    instants. A gap before the first received probe counts from first_t; one after the last
    counts until last_t and means the direction had not recovered when the probes stopped.
    Probes before start_seq (the warm-up, while the other end was still starting) are ignored.
    """
    start_seq = max(0, min(start_seq, sent))
    first_t += start_seq * interval
    got: dict[int, float] = {}
    for seq, t in rx:
        if start_seq <= seq < sent and seq not in got:
            got[seq] = t
    seqs = sorted(got)
    lost = sent - start_seq - len(seqs)
    gaps: list[tuple[float, float, int, bool]] = []
    if not seqs:
        if sent > start_seq:
            gaps.append((first_t, last_t, sent - start_seq, False))
    else:
        if seqs[0] > start_seq:
            gaps.append((first_t - interval, got[seqs[0]], seqs[0] - start_seq, True))
        for a, b in itertools.pairwise(seqs):
            if b - a > 1:
                gaps.append((got[a], got[b], b - a - 1, True))
        if seqs[-1] < sent - 1:
            gaps.append((got[seqs[-1]], last_t, sent - 1 - seqs[-1], False))

    def length(g):
        # a trailing gap ends at the last send instant, which was itself lost: count it fully
        return g[1] - g[0] - (interval if g[3] else 0.0)

    gaps.sort(key=length, reverse=True)
    if not gaps:
        return DirectionStats(sent - start_seq, len(seqs), lost, 0.0)
    g = gaps[0]
    return DirectionStats(
        sent - start_seq,
        len(seqs),
        lost,
        max(0.0, length(g)),
        g[0],
        g[1] if g[3] else None,
        g[3],
        [(x[0], x[1], x[2]) for x in gaps[:5]],
    )


def received_after(rx: list[tuple[int, float]], t: float) -> bool:
    return any(ts > t for _, ts in rx)


def last_line_time(out: str) -> float | None:
    """The `date +%s.%N` a guest script printed last, None when it printed nothing usable."""
    lines = out.strip().splitlines()
    try:
        return float(lines[-1]) if lines else None
    except ValueError:
        return None


@dataclass
class ProbeResult:
    up: DirectionStats  # Alibaba -> AWS (received on awshost)
    down: DirectionStats  # AWS -> Alibaba (received on alihost)
    t0: float  # guest wall clock when the probes were started
    up_rx: list[float] = field(default_factory=list)  # send instants of the probes awshost received
    down_rx: list[float] = field(default_factory=list)  # ... and alihost received
    t_end: float = 0.0  # the last send instant (either direction)

    def timeline(self, t_ref: float, events: Sequence[tuple[str, float]] = ()) -> dict:
        """For BENCHMARKS.md's plot: received probes' send instants relative to t_ref."""

        def rel(ts):
            return [round(t - t_ref, 2) for t in sorted(set(ts))]

        return {
            "rate_pps": RATE,
            "start": round(self.t0 - t_ref, 2),
            "end": round(self.t_end - t_ref, 2),
            "uplink_rx": rel(self.up_rx),
            "downlink_rx": rel(self.down_rx),
            "events": [(e, round(t - t_ref, 2)) for e, t in events if self.t0 <= t <= self.t_end + 1],
        }


class Probes:
    """Sequence-numbered UDP probes between alihost and awshost (guest/seqprobe.py), both
    ways at RATE per second; `sh` runs a script in the world VM's root namespace."""

    def __init__(self, sh: Callable[..., ExecResult], topo: Topology, now: Callable[[], float]):
        self.sh = sh
        self.topo = topo
        self.now = now

    def start(self) -> float:
        """(Re)start both senders/receivers; returns the guest time."""
        t = self.topo
        script = (
            f"kill $(cat {PIDS} 2>/dev/null) 2>/dev/null; rm -rf {PROBE_DIR} {PIDS}; mkdir -p {PROBE_DIR}; "
            f"for x in 'alihost {t.alihost_ip} {t.awshost_ip} ali' 'awshost {t.awshost_ip} {t.alihost_ip} aws'; do "
            "set -- $x; "
            f"ip netns exec $1 setsid python3 /run/lab/seqprobe.py --bind $2 --peer $3 --port {PORT} "
            f"--rate {RATE} --dir {PROBE_DIR} --name $4 </dev/null >{PROBE_DIR}/$4.log 2>&1 & "
            f"echo $! >>{PIDS}; done; sleep 0.3; date +%s.%N"
        )
        res = self.sh(script, 30)
        return last_line_time(res.out) or self.now()

    def last_rx(self) -> tuple[dict[str, float], float]:
        """Send instant of the newest probe each end received ({'ali': t, 'aws': t}) and the
        guest's clock, in one guest call."""
        res = self.sh(
            f'for n in ali aws; do echo "$n $(tail -n 1 {PROBE_DIR}/$n.rx 2>/dev/null)"; done; date +%s.%N', 15
        )
        return parse_last_rx(res.out), last_line_time(res.out) or self.now()

    def delays(self, over_s: float = SLOW_S) -> dict[str, dict]:
        """One-way delay of the probes received so far, per direction (sender and receiver
        share the guest's clock): the longest, and the probes slower than over_s."""
        res = self.sh(
            f"for n in aws ali; do echo \"=== $n\"; awk 'NF >= 3 {{ print $2, $3 - $2 }}' {PROBE_DIR}/$n.rx; done",
            60,
        )
        return delay_stats(res.out, over_s)

    def stop(self, t0: float) -> ProbeResult:
        """Stop the probes started at guest time t0 (in-flight ones may still arrive for 4 s)."""
        res = self.sh(
            f"touch {PROBE_DIR}/stop; sleep 4; kill $(cat {PIDS}) 2>/dev/null; rm -f {PIDS}; sleep 0.2; "
            f'for n in ali aws; do echo "=== $n.tx"; cat {PROBE_DIR}/$n.tx; '
            f"echo \"=== $n.rx\"; cut -d' ' -f1,2 {PROBE_DIR}/$n.rx; done",
            60,
        )
        return probe_result(res.out, t0)

    def wait_flowing(self, since: float, timeout: float, settle: float = 3.0) -> float | None:
        """Wait until both directions received probes sent after `since` (guest time) and are
        fresh; returns the guest time then (after `settle` more seconds of traffic)."""

        def fresh() -> float | None:
            last, now = self.last_rx()
            ok = all(last.get(k, 0) > since and now - last.get(k, 0) < 1.5 for k in ("ali", "aws"))
            return now if ok else None

        t = poll.until(fresh, timeout, interval=1.0)
        if t is not None:
            time.sleep(settle)
        return t


def delay_stats(out: str, over_s: float = SLOW_S, keep: int = 20) -> dict[str, dict]:
    """`=== aws` / `=== ali` sections of `T_SEND DELAY` lines -> per direction (uplink is what
    awshost received): the longest delay and the send instants of the slowest probes over over_s."""
    found: dict[str, list[tuple[float, float]]] = {"uplink": [], "downlink": []}
    cur = None
    for ln in out.splitlines():
        if ln.startswith("=== "):
            cur = {"aws": "uplink", "ali": "downlink"}.get(ln[4:].strip())
            continue
        parts = ln.split()
        if cur and len(parts) == 2:
            with contextlib.suppress(ValueError):
                found[cur].append((float(parts[0]), float(parts[1])))
    out_: dict[str, dict] = {}
    for d, rows in found.items():
        slow = sorted((r for r in rows if r[1] > over_s), key=lambda r: -r[1])
        out_[d] = {
            "max_delay_s": round(max((r[1] for r in rows), default=0.0), 3),
            f"over_{over_s:g}s": len(slow),
            "slowest": [(round(ts, 2), round(dl, 3)) for ts, dl in slow[:keep]],
        }
    return out_


def parse_last_rx(out: str) -> dict[str, float]:
    """`NAME SEQ T_SEND [T_RECV]` lines (the newest probe each end received) -> {name: t_send}."""
    found = {}
    for ln in out.splitlines():
        parts = ln.split()
        if len(parts) >= 3:
            with contextlib.suppress(ValueError):
                found[parts[0]] = float(parts[2])
    return found


def probe_result(out: str, t0: float) -> ProbeResult:
    """The `=== NAME.tx` / `=== NAME.rx` sections Probes.stop prints -> both directions."""
    parts: dict[str, str] = {}
    cur = None
    for ln in out.splitlines():
        if ln.startswith("=== "):
            cur = ln[4:]
            parts[cur] = ""
        elif cur:
            parts[cur] += ln + "\n"
    iv = 1.0 / RATE

    def stats(sender: str, receiver: str) -> tuple[DirectionStats, list[float], float]:
        tx = parse_tx(parts.get(f"{sender}.tx", "")) or (0, t0, t0)
        rx = parse_rx(parts.get(f"{receiver}.rx", ""))
        st = direction_stats(rx, tx[0], tx[1], tx[2], iv, start_seq=WARMUP)
        st.rx_dropped = parse_rx_dropped(parts.get(f"{receiver}.tx", ""))
        st.sender_stalled_s = parse_stalled(parts.get(f"{sender}.tx", ""))
        return st, [t for seq, t in rx if WARMUP <= seq < tx[0]], tx[2]

    up, up_rx, up_end = stats("ali", "aws")
    down, down_rx, down_end = stats("aws", "ali")
    return ProbeResult(up=up, down=down, t0=t0, up_rx=up_rx, down_rx=down_rx, t_end=max(up_end, down_end))


def first_after(r: ProbeResult, direction: str, t: float) -> float | None:
    """Seconds from t to the send instant of the first probe received after t (per direction)."""
    s = r.up if direction == "up" else r.down
    # the longest gap spans the unblock instant when traffic was down; its end is the answer
    for a, b, _missing in s.gaps:
        if a <= t <= b:
            return max(0.0, b - t)
    return 0.0 if s.recovered else None
