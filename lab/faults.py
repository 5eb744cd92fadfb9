"""Faults and failover, measured (issue 4): opt-in lab checks (`python -m lab run --faults`).

Traffic: `guest/seqprobe.py` on alihost and awshost sends sequence-numbered UDP datagrams
both ways at RATE packets per second for the whole of a check. Per direction, the outage is
the longest time between two consecutively received probes (by their send instants) minus
the probe interval, and the loss is the number of sequence numbers never received.
Uplink = Alibaba -> AWS (received on awshost), downlink = AWS -> Alibaba (received on alihost).

Faults are injected outside the ECS: a blackhole of a tunnel endpoint's outside address
(nftables drop, both directions, in the forward path of the Alibaba router between the EIP
and the internet), so the ECS's own configuration is what has to cope.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import time
from dataclasses import dataclass, field

FAULT_CHECKS = (
    "failover_tunnel1",
    "failback",
    "failover_tunnel2",
    "verify_script_detects_down",
    "both_down_recover",
    "charon_restart_ecs",
    "rekey_forced",
    "rekey_collision",
    "reboot_persistence",
    "aws_endpoint_restart",
    # it reconfigures both ends with seed 000's settings (lab/baseline.py), on the first ECS
    "baseline_failover_tunnel1",
    # last: it replaces the ECS (lab/rotation.py); no check after it could run on the first one
    "psk_rotation",
)

RATE = 10.0  # probes per second, each direction
WARMUP = 10  # probes per direction ignored at the start (the other end may not listen yet)
PROBE_DIR = "/run/lab/probe"
PIDS = "/run/lab/seqprobe.pids"
PORT = 5010
NFT = "ip netns exec alirouter chroot /opt/labroot nft"


# --------------------------------------------------------------------------- pure analysis
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


def parse_tx(text: str) -> tuple[int, float, float] | None:
    """`SENT FIRST_T LAST_T` -> (sent, first_t, last_t)."""
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


# --------------------------------------------------------------------------- in the VM
@dataclass
class ProbeResult:
    up: DirectionStats  # Alibaba -> AWS (received on awshost)
    down: DirectionStats  # AWS -> Alibaba (received on alihost)
    t0: float  # guest wall clock when the probes were started
    up_rx: list[float] = field(default_factory=list)  # send instants of the probes awshost received
    down_rx: list[float] = field(default_factory=list)  # ... and alihost received
    t_end: float = 0.0  # the last send instant (either direction)

    def timeline(self, t_ref: float, events: list[tuple[str, float]] = ()) -> dict:
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


class Faults:
    """The fault checks, driving a running `lab.run.Lab`."""

    def __init__(self, lab):
        self.lab = lab
        self.topo = lab.topo
        self.inputs = lab.inputs
        self.blocked: set[int] = set()
        self.events: list[tuple[str, float]] = []
        # probe results of each failover measurement ("ours", "baseline") and the block instant
        self.timelines: dict[str, tuple[ProbeResult, float]] = {}
        self.baseline_applied = False  # the ECS's own files are kept as PATH.lab-ours meanwhile

    # helpers --------------------------------------------------------------
    def sh(self, script: str, timeout: float = 60):
        return self.lab.sh(script, timeout)

    def now(self) -> float:
        out = self.sh("date +%s.%N", 15).out.strip()
        try:
            return float(out)
        except ValueError:
            return time.time()

    def addr(self, n: int) -> str:
        return next(t.outside_address for t in self.inputs.tunnels if t.number == n)

    def block(self, n: int) -> float:
        """Blackhole tunnel n's AWS outside address both ways; returns the guest time."""
        a = self.addr(n)
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
        self.events.append((f"block tunnel{n}", t))
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
        self.events.append((f"unblock tunnel{n}", t))
        return t

    def unblock_all(self) -> None:
        self.sh(f"{NFT} delete table inet labfault 2>/dev/null; true", 30)
        self.blocked.clear()

    def block_counters(self) -> str:
        return self.sh(f"{NFT} list table inet labfault 2>&1 | grep -E 'counter' || true", 30).out.strip()

    def start_probes(self) -> float:
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

    def last_rx(self) -> dict[str, float]:
        """Send instant of the newest probe each end received ({'ali': t, 'aws': t})."""
        res = self.sh(f'for n in ali aws; do echo "$n $(tail -n 1 {PROBE_DIR}/$n.rx 2>/dev/null)"; done', 15)
        out = {}
        for ln in res.out.splitlines():
            parts = ln.split()
            if len(parts) >= 3:
                with contextlib.suppress(ValueError):
                    out[parts[0]] = float(parts[2])
        return out

    def stop_probes(self, t0: float) -> ProbeResult:
        res = self.sh(
            f"touch {PROBE_DIR}/stop; sleep 4; kill $(cat {PIDS}) 2>/dev/null; rm -f {PIDS}; sleep 0.2; "
            f'for n in ali aws; do echo "=== $n.tx"; cat {PROBE_DIR}/$n.tx; '
            f"echo \"=== $n.rx\"; cut -d' ' -f1,2 {PROBE_DIR}/$n.rx; done",
            60,
        )
        parts: dict[str, str] = {}
        cur = None
        for ln in res.out.splitlines():
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
            return st, [t for seq, t in rx if WARMUP <= seq < tx[0]], tx[2]

        up, up_rx, up_end = stats("ali", "aws")
        down, down_rx, down_end = stats("aws", "ali")
        return ProbeResult(up=up, down=down, t0=t0, up_rx=up_rx, down_rx=down_rx, t_end=max(up_end, down_end))

    def wait_flowing(self, since: float, timeout: float, settle: float = 3.0) -> float | None:
        """Wait until both directions received probes sent after `since` and are fresh."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = self.last_rx()
            now = self.now()
            if all(last.get(k, 0) > since and now - last.get(k, 0) < 1.5 for k in ("ali", "aws")):
                time.sleep(settle)
                return now
            time.sleep(1.0)
        return None

    def ecs_route(self) -> str:
        return self.lab.ecs_sh(f"ip route show {self.topo.aws_vpc_cidr}", 15).out.strip()

    def aws_route_tunnel(self) -> int | None:
        """Which tunnel the AWS router sends the Alibaba side to (from its route's next hop)."""
        out = self.sh(f"ip -n awsrouter route show {self.topo.aws_routes_to_ali[0]}", 15).out
        for p in self.topo.peers:
            if re.search(rf"via {re.escape(p.transit_peer)}\b", out):
                return p.number
        return None

    def ecs_tunnel_preferred(self) -> int | None:
        """The ECS VTI that carries the AWS VPC route with the lowest metric."""
        best = None
        for ln in self.ecs_route().splitlines():
            m = re.search(r"dev (\S+)(?:.*metric (\d+))?", ln)
            if m:
                metric = int(m.group(2) or 0)
                if best is None or metric < best[0]:
                    best = (metric, m.group(1))
        if not best:
            return None
        m = re.search(r"(\d+)$", best[1])
        return int(m.group(1)) if m else None

    def tunnel_state(self) -> dict:
        """Per tunnel: ECS established + installed, peer xfrm pair present."""
        from lab import swan

        ecs = self.lab.ecs_sas()
        st = {}
        for t in self.inputs.tunnels:
            px = self.sh(f"ip -n aws{t.number} xfrm state | grep -c '^src'", 15).out.strip()
            st[t.number] = {
                "ecs_established": swan.established(ecs, t.outside_address),
                "peer_xfrm_states": int(px) if px.isdigit() else 0,
            }
        return st

    def wait_both_up(self, timeout: float) -> float | None:
        """Both tunnels established on the ECS, tunnel 1 preferred on both ends."""
        t_start = time.monotonic()
        deadline = t_start + timeout
        while time.monotonic() < deadline:
            st = self.tunnel_state()
            if (
                all(v["ecs_established"] and v["peer_xfrm_states"] >= 2 for v in st.values())
                and self.ecs_tunnel_preferred() == 1
                and self.aws_route_tunnel() == 1
            ):
                return time.monotonic() - t_start
            time.sleep(2)
        return None

    def context(self) -> str:
        """What an engineer looks at first after a failover problem."""
        return self.sh(
            f"echo '## ECS route to the AWS VPC'; ip route show {self.topo.aws_vpc_cidr}; "
            "echo '## ECS SAs'; swanctl --list-sas 2>&1 | grep -v \"^plugin '\" | head -30; "
            "echo '## updown log'; journalctl -t aws2aliyun-updown --no-pager -n 12 2>&1; "
            "echo '## ECS charon (last lines)'; journalctl -u strongswan --no-pager -n 25 2>&1; "
            "echo '## ECS charon, tunnel events of the last 6 min (not DPD)'; "
            "journalctl -u strongswan --no-pager --since -6min 2>&1 | grep -vE 'DPD|INFORMATIONAL|packet:' "
            "| grep -iE 'tunnel|NO_PROP|AUTH|giving up|retransmit|delet|initiat|establish|error|fail' | tail -40; "
            "echo '## aws1 charon, the last 6 min without vici'; grep -v vici /run/lab/log/aws1-charon.log | tail -40; "
            "echo '## aws1 swanctl --load-all log'; tail -n 8 /run/lab/log/aws1-swanctl.log 2>&1; "
            "echo '## awsrouter'; tail -n 6 /run/lab/log/awsrouter.log; "
            f"echo '## blackhole'; {NFT} list table inet labfault 2>&1",
            60,
        ).out

    # the checks -----------------------------------------------------------
    def precondition(self) -> str | None:
        wait = self.wait_both_up(120)
        if wait is None:
            return (
                "precondition failed: both tunnels up with tunnel 1 preferred on both ends not reached "
                f"in 120 s; state {self.tunnel_state()}, ECS route {self.ecs_route()!r}, "
                f"AWS router via tunnel {self.aws_route_tunnel()}"
            )
        return None

    def _measure_failover(self, what: str):
        """Blackhole tunnel 1 while it carries the traffic; outage per direction."""
        aws_dpd = max((t.dpd_timeout_s for t in self.inputs.tunnels), default=30)
        goal_up, goal_down = 10.0, aws_dpd + 5.0
        t0 = self.start_probes()
        time.sleep(5)
        tb = self.block(1)
        flowing = self.wait_flowing(tb + 0.5, timeout=goal_down + 120)
        route_after = self.ecs_route()
        aws_after = self.aws_route_tunnel()
        counters = self.block_counters()
        r = self.stop_probes(t0)
        self.timelines["failover" if what == "ours" else what] = (r, tb)
        metrics = {
            "uplink_outage_s": round(r.up.outage_s, 2),
            "downlink_outage_s": round(r.down.outage_s, 2),
            "uplink_lost": r.up.lost,
            "downlink_lost": r.down.lost,
            "goal_uplink_s": goal_up,
            "goal_downlink_s": goal_down,
            "aws_dpd_timeout_s": aws_dpd,
            "probe_rate_pps": RATE,
            "uplink": r.up.as_metrics(tb),
            "downlink": r.down.as_metrics(tb),
        }
        detail = (
            f"tunnel 1 ({self.addr(1)}) blackholed both ways at t=0 while carrying the traffic: "
            f"uplink (Alibaba->AWS) outage {r.up.outage_s:.1f}s (goal <= {goal_up:.0f}s, {r.up.lost} lost), "
            f"downlink (AWS->Alibaba) outage {r.down.outage_s:.1f}s (goal <= {goal_down:.0f}s = AWS DPD "
            f"timeout {aws_dpd}s + 5s, {r.down.lost} lost); after: ECS route {route_after!r}, "
            f"AWS router via tunnel {aws_after}"
        )
        recovered = flowing is not None and r.up.recovered and r.down.recovered
        if not recovered:
            detail = "traffic did not flow both ways again after the block\n" + detail
        return r, recovered, detail, metrics, counters

    def check_failover_tunnel1(self):
        bad = self.precondition()
        if bad:
            return False, bad, {}
        r, recovered, detail, metrics, counters = self._measure_failover("ours")
        self.failover_result = r
        ok = recovered and r.up.outage_s <= metrics["goal_uplink_s"] and r.down.outage_s <= metrics["goal_downlink_s"]
        if not ok:
            detail += f"\nblackhole counters: {counters}\n" + self.context()
        # tunnel 1 stays blocked for failback
        return ok, detail, metrics

    def apply_baseline(self) -> str:
        """Both ends reconfigured with seed 000's settings (lab/baseline.py); both restarted."""
        import base64

        from lab import baseline, peer

        i = self.inputs
        files = {
            baseline.ECS_SWANCTL_PATH: baseline.ecs_swanctl_conf(i, self.lab.user_data),
            baseline.ECS_CHARON_PATH: baseline.ecs_charon_conf(),
        }
        for t, p in zip(i.tunnels, self.topo.peers, strict=False):
            files[f"/run/lab/aws{t.number}.swanctl.conf"] = peer.swanctl_conf(baseline.aws_tunnel(t), i.eip, p.mark)
        script = "set -e\n"
        for path in files:
            if not path.startswith("/run/lab/"):  # the ECS's own files: kept for restore_ours()
                script += f"[ ! -e {path} ] || cp -p {path} {path}.lab-ours\n"
        for path, text in files.items():
            b64 = base64.b64encode(text.encode()).decode()
            script += f"echo {b64} | base64 -d > {path}\n"
        nums = " ".join(str(t.number) for t in i.tunnels)
        script += (
            # no watchdog in the seed
            "systemctl stop aws2aliyun-watchdog.timer 2>/dev/null || true\n"
            f"for n in {nums}; do /bin/sh /run/lab/peer.sh stop $n; done; sleep 1\n"
            f"for n in {nums}; do /bin/sh /run/lab/peer.sh start $n; done\n"
            "systemctl restart strongswan\n"
            "echo applied\n"
        )
        res = self.sh(script, 120)
        self.baseline_applied = True
        if not res.ok or "applied" not in res.out:
            raise RuntimeError("could not apply seed 000's configuration: " + res.text()[-1500:])
        self.events.append(("baseline (seed 000) configured", self.now()))
        return res.text()

    def restore_ours(self) -> str:
        """Undo apply_baseline: the ECS's own files and watchdog back, the AWS ends configured
        from the plan again, both restarted."""
        import base64

        from lab import baseline, peer

        i = self.inputs
        script = "set -e\n"
        for path in (baseline.ECS_SWANCTL_PATH, baseline.ECS_CHARON_PATH):
            script += f"if [ -e {path}.lab-ours ]; then mv -f {path}.lab-ours {path}; else rm -f {path}; fi\n"
        for t, p in zip(i.tunnels, self.topo.peers, strict=False):
            b64 = base64.b64encode(peer.swanctl_conf(t, i.eip, p.mark).encode()).decode()
            script += f"echo {b64} | base64 -d > /run/lab/aws{t.number}.swanctl.conf\n"
        nums = " ".join(str(t.number) for t in i.tunnels)
        script += (
            f"for n in {nums}; do /bin/sh /run/lab/peer.sh stop $n; done; sleep 1\n"
            f"for n in {nums}; do /bin/sh /run/lab/peer.sh start $n; done\n"
            "systemctl restart strongswan\n"
            "systemctl start aws2aliyun-watchdog.timer 2>/dev/null || true\n"
            "echo restored\n"
        )
        res = self.sh(script, 120)
        if not res.ok or "restored" not in res.out:
            raise RuntimeError("could not restore the program's configuration: " + res.text()[-1500:])
        self.baseline_applied = False
        self.events.append(("program's configuration restored", self.now()))
        return res.text()

    def check_baseline_failover_tunnel1(self):
        """failover_tunnel1 again, with seed 000's settings on both ends: the reference."""
        from lab import baseline

        self.apply_baseline()
        wait = self.wait_both_up(240)
        if wait is None:
            return False, "seed 000's configuration: both tunnels not up within 240s\n" + self.context(), {}
        time.sleep(5)
        r, recovered, detail, metrics, counters = self._measure_failover("baseline")
        ours = getattr(self, "failover_result", None)
        up_ratio = baseline.ratio(ours.up.outage_s if ours else None, r.up.outage_s)
        down_ratio = baseline.ratio(ours.down.outage_s if ours else None, r.down.outage_s)
        metrics = {
            "baseline_uplink_outage_s": metrics["uplink_outage_s"],
            "baseline_downlink_outage_s": metrics["downlink_outage_s"],
            "uplink_ratio": up_ratio,
            "downlink_ratio": down_ratio,
            "baseline_settings": "seed 000: IKEv1 aes128-sha1-modp1024, DPD 10s/30s restart, charon defaults",
            **{k: v for k, v in metrics.items() if k not in ("uplink_outage_s", "downlink_outage_s")},
        }
        # ours must beat the reference on the uplink (the ECS's own detection) and not be
        # worse on the downlink (both are bounded by the AWS end's DPD; 10% for noise)
        beats = ours is not None and up_ratio is not None and up_ratio < 1.0 and (down_ratio or 0) <= 1.1
        ok = recovered and beats
        detail = (
            "seed 000's settings on the ECS (IKEv1, DPD 10s/30s, charon defaults): "
            + detail.replace("(goal <=", "(our goal <=")
            + "; ours/baseline: "
            + (f"uplink {up_ratio}, downlink {down_ratio}" if ours else "not measured (failover_tunnel1 not run)")
        )
        if not ok:
            detail += f"\nblackhole counters: {counters}\n" + self.context()
        return ok, detail, metrics

    def check_psk_rotation(self):
        from lab import rotation

        return rotation.check_psk_rotation(self)

    def check_failback(self):
        if 1 not in self.blocked:
            bad = self.precondition()
            if bad:
                return False, bad, {}
            t0 = self.start_probes()
            time.sleep(2)
            self.block(1)
            # wait for the ECS to fail over (route via tunnel 2) before lifting
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self.ecs_tunnel_preferred() == 1:
                time.sleep(1)
            self.stop_probes(t0)
        t0 = self.start_probes()
        time.sleep(3)
        tu = self.unblock(1)
        t_unblock_mono = time.monotonic()
        back = self.wait_both_up(150)
        back_s = time.monotonic() - t_unblock_mono if back is not None else None
        time.sleep(5)  # traffic over the re-established tunnel for a while
        r = self.stop_probes(t0)
        self.timelines["failback"] = (r, tu)
        st = self.tunnel_state()
        lost = r.up.lost + r.down.lost
        metrics = {
            "failback_lost": lost,
            "uplink_lost": r.up.lost,
            "downlink_lost": r.down.lost,
            "unblock_to_preferred_s": round(back_s, 1) if back_s is not None else None,
            "uplink": r.up.as_metrics(tu),
            "downlink": r.down.as_metrics(tu),
        }
        ok = back is not None and lost == 0
        when = f"after {back_s:.0f}s" if back_s is not None else "NOT within 150s"
        detail = (
            f"block on tunnel 1 lifted at t=0: tunnel 1 re-established and preferred on both ends {when}; "
            f"{lost} probes lost (uplink {r.up.lost}, downlink {r.down.lost}; goal 0); state {st}"
        )
        if not ok:
            detail += "\n" + self.context()
        return ok, detail, metrics

    def check_failover_tunnel2(self):
        bad = self.precondition()
        if bad:
            return False, bad, {}
        t0 = self.start_probes()
        time.sleep(3)
        tb = self.block(2)
        time.sleep(40)  # long enough for both ends to declare tunnel 2 dead
        st = self.tunnel_state()
        pref = (self.ecs_tunnel_preferred(), self.aws_route_tunnel())
        self.unblock(2)
        back = self.wait_both_up(150)  # tunnel 2 coming back must not disturb tunnel 1 either
        r = self.stop_probes(t0)
        lost = r.up.lost + r.down.lost
        metrics = {
            "lost": lost,
            "uplink_lost": r.up.lost,
            "downlink_lost": r.down.lost,
            "uplink": r.up.as_metrics(tb),
            "downlink": r.down.as_metrics(tb),
        }
        ok = lost == 0 and pref == (1, 1)
        detail = (
            f"idle tunnel 2 ({self.addr(2)}) blackholed for 40s, then lifted until both tunnels were up: "
            f"{lost} probes lost on tunnel 1 "
            f"(goal 0); preferred tunnel ECS/AWS {pref}; state {st}"
        )
        if not ok:
            detail += "\n" + self.context()
        metrics["unblock_to_both_up_s"] = round(back, 1) if back is not None else None
        if back is None:
            ok = False
            detail += "\ntunnel 2 did not come back within 150s after the block was lifted"
        return ok, detail, metrics

    def check_verify_script_detects_down(self):
        from lab.run import verify_script_path

        path = verify_script_path(self.lab.user_data)
        if not path:
            return False, "no write_files entry ending in '-verify' in the user-data", {}
        bad = self.precondition()
        if bad:
            return False, bad, {}
        self.block(2)
        try:
            # wait until the ECS has declared tunnel 2 dead (its SA gone)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and self.tunnel_state()[2]["ecs_established"]:
                time.sleep(2)
            res = self.sh(path, 200)
        finally:
            self.unblock(2)
        text = res.text()
        names = bool(re.search(r"tunnel ?2|Tunnel2", text, re.I))
        ok = res.rc not in (0, None) and names
        detail = (
            f"tunnel 2 blackholed: `{path}` exited {res.rc} "
            f"({'names tunnel 2' if names else 'does NOT name tunnel 2'}; want non-zero and naming it)\n" + text[-2000:]
        )
        back = self.wait_both_up(150)
        if back is None:
            detail += "\ntunnel 2 did not come back within 150s after the block was lifted"
        return ok, detail, {"exit_code": res.rc, "names_tunnel": names}

    def check_both_down_recover(self):
        bad = self.precondition()
        if bad:
            return False, bad, {}
        t0 = self.start_probes()
        time.sleep(3)
        self.block(1)
        self.block(2)
        time.sleep(60)
        tu = self.unblock_all_timed()
        flowing = self.wait_flowing(tu, timeout=120, settle=1.0)
        r = self.stop_probes(t0)
        # time from the unblock to the first probe received after it, per direction
        up_back = _first_after(r, "up", tu)
        down_back = _first_after(r, "down", tu)
        rec = max(up_back, down_back) if up_back is not None and down_back is not None else None
        metrics = {
            "both_down_recover_s": round(rec, 2) if rec is not None else None,
            "uplink_back_s": round(up_back, 2) if up_back is not None else None,
            "downlink_back_s": round(down_back, 2) if down_back is not None else None,
            "goal_s": 15,
            "uplink": r.up.as_metrics(tu),
            "downlink": r.down.as_metrics(tu),
        }
        ok = flowing is not None and rec is not None and rec <= 15
        detail = (
            f"both tunnels blackholed for 60s, then lifted: traffic back both ways after "
            f"{rec if rec is None else round(rec, 1)}s (goal <= 15s; uplink {metrics['uplink_back_s']}s, "
            f"downlink {metrics['downlink_back_s']}s)"
        )
        if not ok:
            detail += "\n" + self.context()
        return ok, detail, metrics

    def _restart(self, what: str, script: str, metric: str, isolate: bool = False):
        """Restart a daemon under traffic; both tunnels must come back (tunnel 1 preferred),
        with one SA pair per tunnel on both ends."""
        bad = self.precondition()
        if bad:
            return False, bad, {}
        t0 = self.start_probes()
        time.sleep(3)
        if isolate:
            self.block(1)  # like a replaced endpoint: not reachable until it is configured
        res = self.sh(script + "; date +%s.%N", 90)
        if isolate:
            self.unblock(1)
        tr = last_line_time(res.out) or self.now()
        self.events.append((what, tr))
        t_mono = time.monotonic()
        back = self.wait_both_up(180)
        back_s = time.monotonic() - t_mono if back is not None else None
        flowing = self.wait_flowing(tr, timeout=60, settle=2.0)
        r = self.stop_probes(t0)
        pair_ok, pair_detail, pairs, _settle = self.settle_single_pair()
        metrics = {
            metric: round(back_s, 1) if back_s is not None else None,
            "uplink_outage_s": round(r.up.outage_s, 2),
            "downlink_outage_s": round(r.down.outage_s, 2),
            "uplink_lost": r.up.lost,
            "downlink_lost": r.down.lost,
            "sa_pairs": pairs,
        }
        ok = back is not None and flowing is not None and pair_ok
        detail = (
            f"{what} under traffic: both tunnels back, tunnel 1 preferred on both ends "
            f"{f'after {back_s:.0f}s' if back_s is not None else 'NOT within 180s'}; outage uplink "
            f"{r.up.outage_s:.1f}s / downlink {r.down.outage_s:.1f}s; one SA pair per tunnel on both ends: "
            + ("yes" if pair_ok else "NO\n" + pair_detail)
        )
        if not ok:
            detail += "\n" + res.text()[-500:] + "\n" + self.context()
        return ok, detail, metrics

    def check_charon_restart_ecs(self):
        return self._restart(
            "ECS strongSwan restarted (systemctl restart strongswan)",
            "systemctl restart strongswan",
            "charon_restart_to_established_s",
        )

    def check_aws_endpoint_restart(self):
        # endpoint replacement: the AWS side loses every SA and will not initiate
        return self._restart(
            "AWS tunnel 1 endpoint daemon restarted (all its SAs lost)",
            "/bin/sh /run/lab/peer.sh stop 1; sleep 2; /bin/sh /run/lab/peer.sh start 1",
            "aws_endpoint_restart_to_established_s",
            isolate=True,
        )

    def settle_single_pair(self, timeout: float = 60) -> tuple[bool, str, dict, float]:
        """Poll the lab's single_sa_pair check until it passes (old SAs go after a rekey)."""
        t0 = time.monotonic()
        while True:
            ok, detail, metrics = self.lab.check_single_sa_pair()
            if ok or time.monotonic() - t0 > timeout:
                return ok, detail, metrics, time.monotonic() - t0
            time.sleep(3)

    def _rekey(self, collision: bool):
        bad = self.precondition()
        if bad:
            return False, bad, {}
        ecs_child, peer_child = "tunnel1", "aws1"
        ecs = "swanctl --rekey"
        aws = "/bin/sh /run/lab/peer.sh exec 1 swanctl --rekey"
        if collision:
            steps = [
                (
                    f"collision {k + 1}: CHILD_SA rekey from both ends at once",
                    f"{ecs} --child {ecs_child} & {aws} --child {peer_child} & wait",
                )
                for k in range(3)
            ]
        else:
            steps = [
                (f"{who} {kind} rekey {k + 1}", f"{cmd} --{kind} {ecs_child if who == 'ECS' else peer_child}")
                for who, cmd in (("ECS", ecs), ("AWS", aws))
                for kind in ("child", "ike")
                for k in range(3)
            ]
        t0 = self.start_probes()
        time.sleep(3)
        outputs = []
        for label, cmd in steps:
            res = self.sh(cmd + ' 2>&1 | grep -v "^plugin \'"', 90)
            self.events.append((label, self.now()))
            outputs.append(f"{label}: {res.out.strip().splitlines()[-1:] or res.text()[-200:]}")
            time.sleep(4)
        pair_ok, pair_detail, pair_metrics, settle_s = self.settle_single_pair()
        flowing = self.wait_flowing(t0 + 1, timeout=30, settle=1.0)
        r = self.stop_probes(t0)
        lost = r.up.lost + r.down.lost
        key = "collision_lost" if collision else "rekey_lost"
        metrics = {
            key: lost,
            "uplink_lost": r.up.lost,
            "downlink_lost": r.down.lost,
            "uplink_outage_s": round(r.up.outage_s, 2),
            "downlink_outage_s": round(r.down.outage_s, 2),
            "rekeys": len(steps),
            "uplink": r.up.as_metrics(t0),
            "downlink": r.down.as_metrics(t0),
            "settle_to_single_pair_s": round(settle_s, 1),
            "sa_pairs": pair_metrics,
        }
        ok = pair_ok and flowing is not None and (collision or lost == 0)
        what = (
            "3 simultaneous CHILD_SA rekeys of tunnel 1 from the ECS and the AWS end"
            if collision
            else "CHILD_SA and IKE_SA rekeys of tunnel 1, 3 each from the ECS and from the AWS end"
        )
        detail = (
            f"{what}, under traffic: {lost} probes lost (uplink {r.up.lost}, downlink {r.down.lost}"
            f"{'' if collision else '; goal 0'}); one SA pair per tunnel afterwards: "
            f"{'yes' if pair_ok else 'NO'} (settled after {settle_s:.0f}s)"
        )
        if not ok:
            detail += "\n" + pair_detail + "\n" + "\n".join(outputs) + "\n" + self.context()
        return ok, detail, metrics

    def check_rekey_forced(self):
        return self._rekey(collision=False)

    def check_rekey_collision(self):
        return self._rekey(collision=True)

    SEMS = "/var/lib/cloud/instance/sem"

    def check_reboot_persistence(self):
        """The ECS rebooted: cloud-init must not run the user-data again (its per-instance
        semaphores untouched), both tunnels must come back by themselves."""
        vm = self.lab.vm
        bad = self.precondition()
        if bad:
            return False, bad, {}
        before = self.sh(f"cd {self.SEMS} && stat -c '%n %Y' * 2>&1 | sort", 30).out.strip()
        boot_before = self.sh("cat /proc/sys/kernel/random/boot_id", 15).out.strip()
        self.sh("(sleep 1; systemctl reboot) >/dev/null 2>&1 &", 15)
        t_mono = time.monotonic()
        time.sleep(15)
        vm.agent.close()
        try:
            vm.wait_agent(timeout=300)
        except Exception as e:
            return False, f"the VM did not come back after the reboot: {e}", {}
        agent_s = time.monotonic() - t_mono
        back = self.wait_both_up(300)
        back_s = time.monotonic() - t_mono if back is not None else None
        after = self.sh(f"cd {self.SEMS} && stat -c '%n %Y' * 2>&1 | sort", 30).out.strip()
        ci = self.sh(
            "cloud-init status 2>&1 | head -1; grep -c 'already ran' /var/log/cloud-init.log; "
            "cat /proc/sys/kernel/random/boot_id",
            60,
        ).out
        flow_t = self.now()
        t0 = self.start_probes()
        flowing = self.wait_flowing(flow_t, timeout=30, settle=2.0)
        r = self.stop_probes(t0)
        rebooted = bool(ci.strip()) and boot_before != ci.strip().splitlines()[-1]
        reran = before != after
        metrics = {
            "reboot_to_established_s": round(back_s, 1) if back_s is not None else None,
            "reboot_to_agent_s": round(agent_s, 1),
            "user_data_ran_again": reran,
            "lost_after": r.up.lost + r.down.lost,
        }
        ok = back is not None and not reran and flowing is not None and rebooted
        detail = (
            f"ECS rebooted{'' if rebooted else ' (boot id UNCHANGED: did it reboot?)'}: both tunnels back, tunnel 1 "
            f"preferred, {f'{back_s:.0f}s' if back_s is not None else 'NOT within 300s'} after the reboot "
            f"command (guest agent after {agent_s:.0f}s); cloud-init per-instance semaphores "
            f"{'CHANGED: the user-data ran again' if reran else 'untouched: the user-data did not run again'}; "
            f"traffic both ways afterwards: {'yes' if flowing is not None else 'NO'}\n"
            f"cloud-init status / 'already ran' log lines / boot id: {ci.strip()}"
        )
        if reran:
            detail += f"\nsemaphores before:\n{before}\nafter:\n{after}"
        if not ok:
            detail += "\n" + self.context()
        return ok, detail, metrics

    def unblock_all_timed(self) -> float:
        self.unblock_all()
        t = self.now()
        self.events.append(("unblock all", t))
        return t


def _first_after(r: ProbeResult, direction: str, t: float) -> float | None:
    """Seconds from t to the send instant of the first probe received after t (per direction)."""
    s = r.up if direction == "up" else r.down
    # the longest gap spans the unblock instant when traffic was down; its end is the answer
    for a, b, _missing in s.gaps:
        if a <= t <= b:
            return max(0.0, b - t)
    return 0.0 if s.recovered else None


def run_fault_checks(lab, wanted: set[str]) -> None:
    """Run the wanted fault checks in order on the running lab, adding them to its report."""
    from lab.report import Check, run_check

    f = Faults(lab)
    for name in FAULT_CHECKS:
        if name not in wanted:
            continue
        if not lab.vm or not lab.vm.alive():
            lab.report.add(Check(name, False, 0.0, "VM not running", {}))
            continue
        c = run_check(name, getattr(f, "check_" + name))
        lab.report.add(c)
        lab.p.say(f"{'PASS' if c.ok else 'FAIL'} {name} ({c.seconds:.1f}s): {c.detail.splitlines()[0][:200]}")
        # failover_tunnel1 leaves tunnel 1 blocked for failback (which lifts it); else no block stays
        if f.blocked and not (name == "failover_tunnel1" and "failback" in wanted):
            f.unblock_all()
    if f.blocked:
        f.unblock_all()
    lab.report.metrics["fault_events"] = [(e, round(t, 3)) for e, t in f.events]
    if f.timelines:
        lab.report.metrics["failover_timelines"] = {
            name: r.timeline(t_ref, f.events) for name, (r, t_ref) in f.timelines.items()
        }
    for key, check, metric in (
        ("uplink_outage_s", "failover_tunnel1", "uplink_outage_s"),
        ("downlink_outage_s", "failover_tunnel1", "downlink_outage_s"),
        ("failback_lost", "failback", "failback_lost"),
        ("both_down_recover_s", "both_down_recover", "both_down_recover_s"),
        ("charon_restart_to_established_s", "charon_restart_ecs", "charon_restart_to_established_s"),
        ("aws_endpoint_restart_to_established_s", "aws_endpoint_restart", "aws_endpoint_restart_to_established_s"),
        ("rekey_lost", "rekey_forced", "rekey_lost"),
        ("collision_lost", "rekey_collision", "collision_lost"),
        ("reboot_to_established_s", "reboot_persistence", "reboot_to_established_s"),
        ("baseline_uplink_outage_s", "baseline_failover_tunnel1", "baseline_uplink_outage_s"),
        ("baseline_downlink_outage_s", "baseline_failover_tunnel1", "baseline_downlink_outage_s"),
        ("baseline_uplink_ratio", "baseline_failover_tunnel1", "uplink_ratio"),
        ("baseline_downlink_ratio", "baseline_failover_tunnel1", "downlink_ratio"),
        ("rotation_outage_s", "psk_rotation", "rotation_outage_s"),
        ("rotation_uplink_outage_s", "psk_rotation", "rotation_uplink_outage_s"),
        ("rotation_downlink_outage_s", "psk_rotation", "rotation_downlink_outage_s"),
        ("rotation_to_established_s", "psk_rotation", "rotation_to_established_s"),
    ):
        c = lab.report.get(check)
        if c and c.metrics.get(metric) is not None:
            lab.report.metrics[key] = c.metrics[metric]
