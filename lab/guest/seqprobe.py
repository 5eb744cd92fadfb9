#!/usr/bin/env python3
"""Continuous sequence-numbered UDP probes between two lab hosts (one per namespace).

Each end sends `SEQ T_SEND` datagrams to the other at --rate packets per second (on a
schedule: packet k at t0 + k/rate, wall clock, which all namespaces of the VM share) and
logs every datagram it receives as `SEQ T_SEND T_RECV` in DIR/NAME.rx. DIR/NAME.tx holds
`SENT FIRST_T LAST_T RX_DROPPED STALLED_S` (rewritten every second and at exit): RX_DROPPED is
how many datagrams the kernel dropped because this receiver's socket buffer was full
(SO_RXQ_OVFL), a loss of the lab's own receiver, not of the path; STALLED_S how long this sender
fell behind its schedule in all.

A sender more than MAX_BEHIND_S behind (its VM stalled: the lab's host is loaded) does not
catch up with a burst: the schedule slips, the slots it missed are never sent. A stall of the
lab's host is then not counted as loss of the path; a catch-up burst of 75 datagrams after a
7.5 s stall of the world VM was (docs/lab-findings.md #26). It stops when DIR/stop exists, on
SIGTERM, or after --max seconds (after the stop file: 2.5 s more receiving, no sending).
"""

import argparse
import contextlib
import os
import select
import signal
import socket
import struct
import time

RCVBUF = 4 << 20  # bytes; the default (about 200 KiB) holds only some 90 small datagrams from a virtio NIC
SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)  # Linux: the socket's drop counter as ancillary data
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # as root: past net.core.rmem_max
MAX_BEHIND_S = 0.5  # past this, the schedule slips instead of a burst catching up


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bind", required=True)
    p.add_argument("--peer", required=True)
    p.add_argument("--port", type=int, default=5010)
    p.add_argument("--rate", type=float, default=10.0)
    p.add_argument("--dir", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--max", type=float, default=1200.0)
    a = p.parse_args()
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__("now", True))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.bind, a.port))
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    s.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
    cmsg_space = socket.CMSG_SPACE(4)
    s.setblocking(False)
    rx = open(os.path.join(a.dir, a.name + ".rx"), "a", buffering=1)  # noqa: SIM115 (whole run)
    txpath = os.path.join(a.dir, a.name + ".tx")
    stopfile = os.path.join(a.dir, "stop")
    interval = 1.0 / a.rate
    t0 = time.time()
    seq, first_t, last_t, last_state, dropped, stalled = 0, None, None, 0.0, 0, 0.0

    def write_state():
        tmp = txpath + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{seq} {first_t or 0:.6f} {last_t or 0:.6f} {dropped} {stalled:.3f}\n")
        os.replace(tmp, txpath)

    draining_until = None  # after the stop: send no more, keep receiving the other end's last probes
    while not stop["now"]:
        now = time.time()
        if now - t0 > a.max or (draining_until is not None and now >= draining_until):
            break
        due = t0 + seq * interval if draining_until is None else min(now + 0.2, draining_until)
        if draining_until is None and now - due > MAX_BEHIND_S:
            stalled += now - due
            t0 += now - due
            due = now
        if now >= due:
            t = time.time()
            # counted as sent even on an error: that is an outage like any other
            with contextlib.suppress(OSError):
                s.sendto(f"{seq} {t:.6f}".encode(), (a.peer, a.port))
            first_t = first_t if first_t is not None else t
            last_t = t
            seq += 1
            if t - last_state >= 1.0:
                last_state = t
                write_state()
                if os.path.exists(stopfile):
                    draining_until = t + 2.5
            continue
        r, _, _ = select.select([s], [], [], max(0.0, due - now))
        if r:
            while True:
                try:
                    data, anc, _flags, _addr = s.recvmsg(256, cmsg_space)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                for level, kind, value in anc:
                    if level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL and len(value) >= 4:
                        dropped = struct.unpack("I", value[:4])[0]
                tr = time.time()
                parts = data.split()
                if len(parts) == 2:
                    rx.write(f"{parts[0].decode()} {parts[1].decode()} {tr:.6f}\n")
    write_state()
    rx.close()


if __name__ == "__main__":
    main()
