#!/usr/bin/env python3
"""Traffic probes between the lab's namespaces (runs in the VM's root namespace).

Each top-level command prints one JSON line on stdout; the coordinator never sends traffic
itself. `pairs` runs ping/tcp/udp for several host pairs at once in one process: each pair's
thread moves itself into the server's namespace to listen and then into the client's (setns
is per thread), so no further Python starts (each costs about a second of CPU in a TCG guest).
`bulk` runs its server and client as processes of their own through `ip netns exec`.
"""

import argparse
import contextlib
import ctypes
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

ME = os.path.abspath(__file__)
CLONE_NEWNET = 0x40000000


def ns_cmd(ns, *argv):
    return ["ip", "netns", "exec", ns, *argv]


def out(obj):
    print(json.dumps(obj))
    sys.stdout.flush()


def enter_netns(ns):
    """Move the calling thread (only it, and what it starts) into `ip netns` namespace ns."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {ns}: {os.strerror(err)}")
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- servers
def tcp_listener(bind, port, timeout):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((bind, port))
    s.listen(1)
    s.settimeout(timeout)
    return s


def echo_digest(conn, peer):
    """Read to EOF, answer with what arrived: the client's address, byte count and sha256."""
    h, n = hashlib.sha256(), 0
    while True:
        b = conn.recv(65536)
        if not b:
            break
        h.update(b)
        n += len(b)
    conn.sendall(json.dumps({"peer": peer[0], "bytes": n, "sha256": h.hexdigest()}).encode())


def serve_tcp(a):
    """Stream the number of deterministic bytes the client asks for (`SEND N`)."""
    s = tcp_listener(a.bind, a.port, a.timeout)
    print("READY", flush=True)
    try:
        conn, peer = s.accept()
    except TimeoutError:
        print(json.dumps({"error": "no connection"}), flush=True)
        return
    conn.settimeout(a.timeout)
    with conn:
        line = b""
        while not line.endswith(b"\n"):
            chunk = conn.recv(64)
            if not chunk:
                return
            line += chunk
        total = int(line.split()[1])
        block = hashlib.sha256(b"lab").digest() * 2048  # 64 KiB
        sent = 0
        while sent < total:
            piece = block[: min(len(block), total - sent)]
            conn.sendall(piece)
            sent += len(piece)
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)
    print(json.dumps({"served": peer[0]}), flush=True)


def udp_listener(bind, port, timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((bind, port))
    s.settimeout(timeout)
    return s


def udp_echo(s):
    """Echo each datagram prefixed with its source address until END (or the timeout); the
    sources seen."""
    seen = set()
    try:
        while True:
            data, peer = s.recvfrom(65535)
            if data == b"END":
                break
            seen.add(peer[0])
            s.sendto(peer[0].encode() + b"|" + data, peer)
    except TimeoutError:
        pass
    return sorted(seen)


# --------------------------------------------------------------------------- clients
def tcp_client(server, port, nbytes, timeout):
    payload = os.urandom(nbytes)
    t0 = time.monotonic()
    try:
        s = socket.create_connection((server, port), timeout=timeout)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            reply += b
        s.close()
        r = json.loads(reply.decode())
        ok = r["bytes"] == len(payload) and r["sha256"] == hashlib.sha256(payload).hexdigest()
        return {"ok": ok, "sent": len(payload), "server_saw": r, "seconds": round(time.monotonic() - t0, 3)}
    except (OSError, ValueError) as e:
        return {"ok": False, "error": f"{type(e).__name__}: {e}", "seconds": round(time.monotonic() - t0, 3)}


def client_bulk(a):
    t0 = time.monotonic()
    got, h = 0, hashlib.sha256()
    expect = hashlib.sha256()
    block = hashlib.sha256(b"lab").digest() * 2048
    left = a.bytes
    while left:
        piece = block[: min(len(block), left)]
        expect.update(piece)
        left -= len(piece)
    last_progress = t0
    err = None
    try:
        s = socket.create_connection((a.server, a.port), timeout=a.stall)
        s.sendall(f"SEND {a.bytes}\n".encode())
        while True:
            if time.monotonic() - t0 > a.timeout:
                err = f"timeout after {a.timeout}s"
                break
            try:
                b = s.recv(262144)
            except TimeoutError:
                err = f"stalled: no data for {a.stall}s"
                break
            if not b:
                break
            got += len(b)
            h.update(b)
            last_progress = time.monotonic()
        mss = None
        with contextlib.suppress(OSError):
            mss = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
        s.close()
    except OSError as e:
        err = f"{type(e).__name__}: {e}"
        mss = None
    secs = max(last_progress - t0, 1e-6)
    ok = err is None and got == a.bytes and h.hexdigest() == expect.hexdigest()
    out(
        {
            "ok": ok,
            "bytes": got,
            "expected": a.bytes,
            "error": err,
            "seconds": round(secs, 3),
            "mbit_s": round(got * 8 / secs / 1e6, 2),
            "receiver_mss": mss,
        }
    )


def udp_client(server, port, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    sizes = [64, 512, 1000, 1200]
    ok_n, seen = 0, set()
    for k in range(count):
        body = f"{k}:".encode() + os.urandom(sizes[k % len(sizes)])
        try:
            s.sendto(body, (server, port))
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                data, _ = s.recvfrom(65535)
                src, _, echoed = data.partition(b"|")
                if echoed == body:
                    ok_n += 1
                    seen.add(src.decode())
                    break
        except (TimeoutError, OSError):
            pass
    with contextlib.suppress(OSError):
        s.sendto(b"END", (server, port))
    return {"sent": count, "echoed": ok_n, "server_saw": sorted(seen)}


# --------------------------------------------------------------------------- coordinators
def start_server(ns, argv, timeout=15):
    p = subprocess.Popen(
        ns_cmd(ns, sys.executable, ME, *argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = p.stdout.readline()
    if line.strip() != "READY":
        p.kill()
        raise RuntimeError(f"server in {ns} did not start: {line!r} {p.stderr.read()[-500:]!r}")
    return p


def stop_server(p):
    try:
        o, _ = p.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        o, _ = p.communicate()
    return o.strip()


def run_client(ns, argv, timeout):
    r = subprocess.run(ns_cmd(ns, sys.executable, ME, *argv), capture_output=True, text=True, timeout=timeout)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"ok": False, "error": f"client failed: {r.stdout[-300:]} {r.stderr[-500:]}"}


def ping(dst, count, size):
    """ping's summary, from the calling thread's namespace."""
    r = subprocess.run(
        ["ping", "-n", "-c", str(count), "-i", "0.3", "-W", "2", "-s", str(size), dst],
        capture_output=True,
        text=True,
        timeout=count * 3 + 10,
    )
    m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
    rtt = re.search(r"= [\d.]+/([\d.]+)/", r.stdout)
    return {
        "transmitted": int(m.group(1)) if m else 0,
        "received": int(m.group(2)) if m else 0,
        "rtt_avg_ms": float(rtt.group(1)) if rtt else None,
        "output": r.stdout[-600:] + r.stderr[-300:],
    }


def cmd_bulk(a):
    srv = start_server(
        a.server_ns,
        ["serve-tcp", "--bind", a.server, "--port", str(a.port), "--timeout", str(a.timeout)],
    )
    res = run_client(
        a.client_ns,
        [
            "client-bulk",
            "--server",
            a.server,
            "--port",
            str(a.port),
            "--bytes",
            str(a.bytes),
            "--stall",
            str(a.stall),
            "--timeout",
            str(a.timeout),
        ],
        a.timeout + 20,
    )
    if not res.get("ok"):
        # what the sender's TCP thinks of the path (mss, pmtu, retransmissions)
        ss = subprocess.run(ns_cmd(a.server_ns, "ss", "-tni", "dst", a.client), capture_output=True, text=True)
        res["sender_ss"] = ss.stdout[-1500:]
    srv.kill()
    stop_server(srv)
    out(res)


# --------------------------------------------------------------------------- pairs at once
def pair_ping(p, a):
    enter_netns(p["client_ns"])
    return ping(p["server"], a.count, a.size)


def pair_tcp(p, a):
    enter_netns(p["server_ns"])
    srv = tcp_listener(p["server"], p["port"], a.timeout)

    def serve():
        with contextlib.suppress(OSError), srv:
            conn, peer = srv.accept()
            conn.settimeout(a.timeout)
            with conn:
                echo_digest(conn, peer)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    enter_netns(p["client_ns"])
    res = tcp_client(p["server"], p["port"], a.bytes, a.timeout)
    t.join(5)
    return res


def pair_udp(p, a):
    enter_netns(p["server_ns"])
    srv = udp_listener(p["server"], p["port"], a.timeout)
    seen = []
    t = threading.Thread(target=lambda: seen.extend(udp_echo(srv)), daemon=True)
    t.start()
    enter_netns(p["client_ns"])
    res = udp_client(p["server"], p["port"], a.count)
    t.join(5)
    srv.close()
    res["server"] = {"peers": seen}
    return res


def cmd_pairs(a):
    """One result per --pair (CLIENT_NS,CLIENT,SERVER_NS,SERVER,PORT), all run at once."""
    run = {"ping": pair_ping, "tcp": pair_tcp, "udp": pair_udp}[a.kind]
    keys = ("client_ns", "client", "server_ns", "server", "port")
    pairs = [dict(zip(keys, spec.split(","), strict=True)) for spec in a.pair]
    for p in pairs:
        p["port"] = int(p["port"])
    results = [{"ok": False, "error": "did not finish"} for _ in pairs]

    def one(k):
        try:
            results[k] = run(pairs[k], a)
        except Exception as e:  # any failure is this pair's result
            results[k] = {"ok": False, "error": f"{type(e).__name__}: {e}"}

    threads = [threading.Thread(target=one, args=(k,), daemon=True) for k in range(len(pairs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(a.timeout + 30)
    out(results)


def cmd_natt(a):
    """Capture IKE/ESP on the internet between the EIP and AWS while hosts ping."""
    cap = subprocess.Popen(
        ns_cmd(
            a.capture_ns,
            "chroot",
            "/opt/labroot",
            "tcpdump",
            "-nn",
            "-l",
            "-i",
            a.iface,
            "udp port 500 or udp port 4500 or ip proto 50",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    t0 = time.monotonic()
    line = ""
    while time.monotonic() - t0 < 15:
        line = cap.stderr.readline()
        if "listening on" in line or not line:
            break
    for src_ns, dst in zip(a.src_ns, a.dst, strict=False):
        subprocess.run(
            ns_cmd(src_ns, "ping", "-n", "-c", "4", "-i", "0.3", "-W", "2", dst), capture_output=True, timeout=30
        )
    time.sleep(1)
    cap.terminate()
    try:
        o, _ = cap.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        cap.kill()
        o, _ = cap.communicate()
    lines = o.splitlines()
    esp_udp = [x for x in lines if "UDP-encap: ESP" in x]
    esp_raw = [x for x in lines if re.search(r": ESP\(spi", x) and "UDP-encap" not in x]
    ike500 = [x for x in lines if re.search(r"\.500 > |\.500: ", x)]
    ike4500 = [x for x in lines if "NONESP-encap" in x]
    out(
        {
            "esp_in_udp_4500": len(esp_udp),
            "esp_raw": len(esp_raw),
            "udp_500": len(ike500),
            "ike_4500": len(ike4500),
            "sample": lines[:12],
        }
    )


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve-tcp")
    s.add_argument("--bind")
    s.add_argument("--port", type=int)
    s.add_argument("--timeout", type=float, default=60)
    s = sub.add_parser("client-bulk")
    s.add_argument("--server")
    s.add_argument("--port", type=int)
    s.add_argument("--bytes", type=int)
    s.add_argument("--stall", type=float, default=20)
    s.add_argument("--timeout", type=float, default=180)
    s = sub.add_parser("bulk")
    s.add_argument("client_ns")
    s.add_argument("client")
    s.add_argument("server_ns")
    s.add_argument("server")
    s.add_argument("--port", type=int, default=5003)
    s.add_argument("--bytes", type=int, default=65536)
    s.add_argument("--timeout", type=float, default=30)
    s.add_argument("--stall", type=float, default=20)
    s = sub.add_parser("pairs")
    s.add_argument("kind", choices=("ping", "tcp", "udp"))
    s.add_argument("--pair", action="append", default=[])
    s.add_argument("--count", type=int, default=5)
    s.add_argument("--size", type=int, default=56)
    s.add_argument("--bytes", type=int, default=65536)
    s.add_argument("--timeout", type=float, default=30)
    s = sub.add_parser("natt")
    s.add_argument("capture_ns")
    s.add_argument("iface")
    s.add_argument("--src-ns", action="append", default=[])
    s.add_argument("--dst", action="append", default=[])
    a = p.parse_args()
    {
        "serve-tcp": serve_tcp,
        "client-bulk": client_bulk,
        "bulk": cmd_bulk,
        "pairs": cmd_pairs,
        "natt": cmd_natt,
    }[a.cmd](a)


if __name__ == "__main__":
    main()
