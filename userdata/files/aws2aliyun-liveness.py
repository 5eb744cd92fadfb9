#!/usr/bin/python3
"""aws2aliyun-liveness: probes through each tunnel, and the routes to AWS that follow them.

Every --interval it sends an ICMP echo out of each VTI to the AWS end's inside address. A
tunnel is alive after --rise answers in a row, dead after --down-after without one while
probes went out all along (a stalled host is no verdict) and the other tunnel answers (when
neither does, after --common-down-after: a stall both share moves nothing). The AWS
prefixes are routed over every alive tunnel (tunnel 1's lower metric wins); when none is
alive, over every VTI that is up, as without liveness. With ROUTING=bgp in link.env BGP owns
those routes: each verdict goes to BGP_HOOK (userdata/files/aws2aliyun-bgp.sh). State: STATE_PATH; --status prints it.
"""

import argparse
import collections
import json
import math
import os
import select
import shlex
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass

LINK_ENV = os.environ.get("AWS2ALIYUN_LINK_ENV", "/etc/aws2aliyun/link.env")
STATE_PATH = os.environ.get("AWS2ALIYUN_LIVENESS_STATE", "/run/aws2aliyun/liveness.json")
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
STALE_AFTER_S = 5.0  # --status: an older state file means the daemon is not running


def read_env(path):
    env = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, eq, value = line.strip().partition("=")
            if eq and not key.startswith("#"):
                env[key] = (shlex.split(value) or [""])[0]
    return env


@dataclass
class Tracker:
    """One tunnel's verdict from its probes; the caller's clock."""

    down_after_s: float
    rise: int
    fall: int  # ... and at least this many probes sent since the last answer
    # ... and another tunnel answered within down_after/2 (this tunnel's path is silent, not
    # the gateway's own), else only after this long: a stall both tunnels share (the gateway's
    # NIC, its internet) is no reason to move the traffic, and moving it would gain nothing
    common_down_after_s: float = 0.0
    state: str = "down"  # down (VTI not up) | unknown (not yet answered) | alive | dead
    since: float = 0.0
    last_answer: float | None = None
    last_seq: int = -1
    last_sent: int = -1
    streak: int = 0
    sent: int = 0
    answered: int = 0

    def _to(self, state, now):
        if state == self.state:
            return None
        self.state, self.since = state, now
        return state

    def link(self, up, now):
        if not up:
            self.last_answer, self.last_seq, self.streak = None, -1, 0
            return self._to("down", now)
        return self._to("unknown", now) if self.state == "down" else None

    def on_sent(self, seq):
        self.sent += 1
        self.last_sent = seq

    def on_answer(self, seq, now):
        if self.state == "down" or seq <= self.last_seq:  # late replies change nothing
            return None
        self.answered += 1
        self.streak = self.streak + 1 if seq == self.last_seq + 1 else 1
        self.last_seq, self.last_answer = seq, now
        return self._to("alive", now) if self.streak >= self.rise else None

    def on_tick(self, now, other_answer=None):
        """`other_answer`: when another tunnel last answered (None: none has)."""
        if self.state != "alive" or self.last_answer is None or self.last_sent - self.last_seq < self.fall:
            return None
        quiet = now - self.last_answer
        others = other_answer is not None and now - other_answer <= self.down_after_s / 2
        if quiet >= self.down_after_s and (others or quiet >= max(self.common_down_after_s, self.down_after_s)):
            return self._to("dead", now)
        return None


def routed(states):
    """The tunnels to route over: the alive ones, else every one whose VTI is up."""
    alive = [n for n, st in states.items() if st == "alive"]
    return alive or [n for n, st in states.items() if st != "down"]


def main_table(text):
    """(device, prefix, metric) of each route in /proc/net/route."""
    routes = set()
    for f in (line.split() for line in text.splitlines()[1:]):
        if len(f) >= 8:
            dest = socket.inet_ntoa(struct.pack("=I", int(f[1], 16)))
            routes.add((f[0], f"{dest}/{bin(int(f[7], 16)).count('1')}", int(f[6])))
    return routes


def route_changes(want, ours, table):
    """`ip -batch` lines making the routes among `ours` present exactly when in `want`."""
    have = table & ours
    return [f"route replace {p} dev {d} metric {m}" for d, p, m in sorted(want - have)] + [
        f"route del {p} dev {d} metric {m}" for d, p, m in sorted(have - want)
    ]


def checksum(data):
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def echo_request(ident, seq):
    body = struct.pack("!HH", ident, seq & 0xFFFF) + b"aws2aliyun-liveness"
    return struct.pack("!BBH", 8, 0, checksum(b"\x08\0\0\0" + body)) + body


def parse_reply(packet):
    """(source, identifier, sequence) of an echo reply read from a raw socket (IP header first)."""
    ihl = (packet[0] & 0x0F) * 4 if packet else 0
    if len(packet) < max(ihl, 20) + 8 or packet[ihl] != 0:
        return None
    return (socket.inet_ntoa(packet[12:16]), *struct.unpack("!HH", packet[ihl + 4 : ihl + 8]))


class Tunnel:
    def __init__(self, env, n, tracker):
        self.name, self.vti, self.tracker = f"tunnel{n}", env[f"TUNNEL{n}_VTI"], tracker
        self.target = env[f"TUNNEL{n}_REMOTE_INSIDE"]
        self.metric = int(env[f"TUNNEL{n}_METRIC"])
        self.ident = (os.getpid() & 0xFFF0) | n
        self.sock, self.ifindex, self.seq = None, None, 0
        self.send_errors, self.last_error = 0, ""  # since the last answer (for a verdict's log line)

    def link_up(self):
        """The VTI's ifindex while it exists and is up."""
        try:
            with open(f"/sys/class/net/{self.vti}/flags") as fl, open(f"/sys/class/net/{self.vti}/ifindex") as ix:
                return int(ix.read()) if int(fl.read(), 16) & 1 else None
        except (OSError, ValueError):
            return None

    def reopen(self, ifindex):
        if self.sock:
            self.sock.close()
        self.sock, self.ifindex = None, ifindex
        if ifindex is not None:
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, self.vti.encode())
            s.setblocking(False)
            self.sock = s


class Daemon:
    def __init__(self, env, interval_s, down_after_s, rise, common_down_after_s):
        self.interval_s, self.down_after_s, self.rise = interval_s, down_after_s, rise
        # with BGP, zebra owns the routes to the AWS prefixes: none of ours to keep
        self.hook = env.get("BGP_HOOK")
        self.prefixes = [] if env.get("ROUTING") == "bgp" else env["AWS_CIDRS"].split()
        fall = math.ceil(down_after_s / interval_s - 1e-9)
        self.tunnels = [Tunnel(env, n, Tracker(down_after_s, rise, fall, common_down_after_s)) for n in (1, 2)]
        self.routed = None
        self.written = 0.0
        self.pauses = collections.deque(maxlen=64)  # (when, seconds) of the loop's late rounds

    def longest_pause(self, now, within_s):
        """The longest time the loop did not run, in the last within_s (a starved host)."""
        return max((gap for when, gap in self.pauses if now - when <= within_s), default=0.0)

    def routes(self, names):
        return {(t.vti, p, t.metric) for t in self.tunnels if t.name in names for p in self.prefixes}

    def update_routes(self, why):
        want = routed({t.name: t.tracker.state for t in self.tunnels})
        try:
            with open("/proc/net/route") as f:
                table = main_table(f.read())
        except OSError:
            table = set()
        lines = route_changes(self.routes(want), self.routes([t.name for t in self.tunnels]), table)
        if lines:  # -force: go on past a line that fails (a VTI gone meanwhile)
            subprocess.run(["ip", "-force", "-batch", "-"], input="\n".join(lines) + "\n", text=True, check=False)
        over = ", ".join(want) or "no tunnel"
        if want != self.routed:
            fallback = want and not any(t.tracker.state == "alive" for t in self.tunnels)
            if not self.prefixes:  # BGP routes
                log(why)
            else:
                log(f"{why}; AWS prefixes over {over}" + (" (none answers: every VTI that is up)" if fallback else ""))
            self.routed = want
        elif lines:
            log(f"routes over {over} put back ({len(lines)} changes)")

    def transition(self, t, new):
        if new:
            why = {"alive": f"{self.rise} answers in a row", "dead": self.silence(t)}
            self.update_routes(f"{t.name}: {new} ({why.get(new, t.vti + ' ' + ('up' if t.sock else 'down'))})")
            if self.hook:  # not waited for: the probes go on
                other = any(o.tracker.state == "alive" for o in self.tunnels if o is not t)
                subprocess.Popen([self.hook, t.name, new, str(other), t.target])

    def other_answer(self, t):
        """When a tunnel other than t last answered (None: none has)."""
        return max((o.tracker.last_answer for o in self.tunnels if o is not t and o.tracker.last_answer), default=None)

    def silence(self, t):
        """What a dead verdict rests on: the path's silence, or the gateway's own trouble."""
        now, tr = time.monotonic(), t.tracker
        quiet = now - tr.last_answer if tr.last_answer is not None else 0.0
        other = self.other_answer(t)
        failed = f", {t.send_errors} failed to send ({t.last_error})" if t.send_errors else ""
        answers = other is not None and now - other <= self.down_after_s / 2
        others = "the other tunnel answers" if answers else "no tunnel answers"
        return (
            f"no answer for {quiet:.1f}s, {others}: {tr.last_sent - tr.last_seq} probes sent since{failed}, "
            f"longest pause of this daemon {self.longest_pause(now, quiet + 1):.2f}s"
        )

    def write_state(self, now):
        tunnels = {
            t.name: {
                "vti": t.vti,
                "target": t.target,
                "state": t.tracker.state,
                "for_s": round(now - t.tracker.since, 1),
                "last_answer_s_ago": None if t.tracker.last_answer is None else round(now - t.tracker.last_answer, 2),
                "sent": t.tracker.sent,
                "answered": t.tracker.answered,
            }
            for t in self.tunnels
        }
        os.makedirs(os.path.dirname(STATE_PATH), exist_ok=True)
        with open(STATE_PATH + ".tmp", "w") as f:
            json.dump({"updated": time.time(), "routed": self.routed or [], "tunnels": tunnels}, f)
        os.replace(STATE_PATH + ".tmp", STATE_PATH)
        self.written = now

    def send(self, now):
        for t in self.tunnels:
            ifindex = t.link_up()
            if ifindex != t.ifindex:
                try:
                    t.reopen(ifindex)
                except OSError as e:
                    log(f"{t.name}: cannot probe through {t.vti}: {e}")
            self.transition(t, t.tracker.link(t.sock is not None, now))
            if t.sock:
                t.tracker.on_sent(t.seq)
                try:
                    t.sock.sendto(echo_request(t.ident, t.seq), (t.target, 0))
                except OSError as e:  # a VTI going down: counts as unanswered
                    t.send_errors, t.last_error = t.send_errors + 1, e.strerror or str(e)
                t.seq += 1
        self.update_routes("started")

    def receive(self, t, now):
        while True:
            try:
                src, ident, seq16 = parse_reply(t.sock.recv(2048)) or ("", 0, 0)
            except OSError:
                return
            if src == t.target and ident == t.ident:
                seq = t.seq - ((t.seq - seq16) & 0xFFFF)  # unwrap the 16-bit sequence number
                before = t.tracker.last_seq
                self.transition(t, t.tracker.on_answer(seq, now))
                if t.tracker.last_seq != before:
                    t.send_errors = 0

    def run(self):
        log(f"probing {', '.join(f'{t.vti} -> {t.target}' for t in self.tunnels)} every {self.interval_s:g}s")
        next_send = last_round = time.monotonic()
        while True:
            socks = {t.sock: t for t in self.tunnels if t.sock}
            timeout = max(0.0, min(next_send, time.monotonic() + 0.05) - time.monotonic())
            if socks:
                for s in select.select(list(socks), [], [], timeout)[0]:
                    self.receive(socks[s], time.monotonic())
            else:
                time.sleep(timeout)
            now = time.monotonic()
            if now - last_round > 2 * self.interval_s:
                self.pauses.append((now, now - last_round))
            last_round = now
            for t in self.tunnels:  # judged after every answer that has come in was read
                self.transition(t, t.tracker.on_tick(now, self.other_answer(t)))
            if now >= next_send:
                self.send(now)
                next_send = max(next_send + self.interval_s, now)  # no burst after a stall
            if now - self.written >= 1.0:
                self.write_state(now)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def status():
    """One line per tunnel; 0 only when the daemon runs and both tunnels are alive."""
    try:
        with open(STATE_PATH) as f:
            st = json.load(f)
    except (OSError, ValueError) as e:
        print(f"liveness: no state ({e}): is aws2aliyun-liveness.service running?")
        return 1
    ok = time.time() - st["updated"] <= STALE_AFTER_S
    if not ok:
        print(f"liveness: state {time.time() - st['updated']:.0f}s old: aws2aliyun-liveness.service is not running")
    for name, t in sorted(st["tunnels"].items()):
        last = t["last_answer_s_ago"]
        print(
            f"{name}: liveness {t['state']} for {t['for_s']}s ({t['target']} via {t['vti']}: "
            + ("never answered" if last is None else f"last answer {last}s ago")
            + f", {t['answered']}/{t['sent']} answered; {'' if name in st['routed'] else 'not '}routed)"
        )
        ok = ok and t["state"] == "alive"
    return 0 if ok else 1


def dead_for(name):
    """Print how many seconds tunnel `name` has been dead (no answer through its VTI while it
    is up); 0 only when it is dead and the daemon is running (the watchdog asks)."""
    try:
        with open(STATE_PATH) as f:
            st = json.load(f)
        t = st["tunnels"][name]
    except (OSError, ValueError, KeyError):
        return 1
    if time.time() - st["updated"] > STALE_AFTER_S or t["state"] != "dead":
        return 1
    print(int(t["for_s"]))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # no defaults: the service unit passes what userdata/liveness.py declares
    ap.add_argument("--interval", type=float, help="seconds between probes per tunnel")
    ap.add_argument("--down-after", type=float, help="dead after this long without an answer")
    ap.add_argument("--rise", type=int, help="alive after this many answers in a row")
    ap.add_argument(
        "--common-down-after", type=float, help="dead after this long without an answer when no tunnel answers"
    )
    ap.add_argument("--status", action="store_true", help="print each tunnel's liveness (exit 0: both alive)")
    ap.add_argument("--dead-for", metavar="TUNNEL", help="print the seconds TUNNEL has been dead (exit 1: it is not)")
    a = ap.parse_args(argv)
    if a.status:
        return status()
    if a.dead_for:
        return dead_for(a.dead_for)
    if None in (a.interval, a.down_after, a.rise, a.common_down_after) or not (
        0 < a.interval < a.down_after <= a.common_down_after and a.rise >= 1
    ):
        ap.error("need --interval < --down-after <= --common-down-after, and --rise >= 1")
    try:
        daemon = Daemon(read_env(LINK_ENV), a.interval, a.down_after, a.rise, a.common_down_after)
    except (OSError, KeyError, ValueError) as e:
        log(f"aws2aliyun-liveness: cannot read the link's facts from {LINK_ENV}: {e}")
        return 1
    daemon.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
