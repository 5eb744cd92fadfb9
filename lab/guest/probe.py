#!/usr/bin/env python3
"""Traffic probes between the lab's namespaces (runs in the VM's root namespace).

Each top-level command prints one JSON object on stdout. Servers run in one namespace
and clients in another through `ip netns exec`; the coordinator never sends traffic itself.
"""

import argparse
import contextlib
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time

ME = os.path.abspath(__file__)


def ns_cmd(ns, *argv):
    return ["ip", "netns", "exec", ns, *argv]


def out(obj):
    print(json.dumps(obj))
    sys.stdout.flush()


# --------------------------------------------------------------------------- servers
def serve_tcp(a):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.bind, a.port))
    s.listen(1)
    s.settimeout(a.timeout)
    print("READY", flush=True)
    try:
        conn, peer = s.accept()
    except TimeoutError:
        print(json.dumps({"error": "no connection"}), flush=True)
        return
    conn.settimeout(a.timeout)
    with conn:
        if a.mode == "echo":
            h, n = hashlib.sha256(), 0
            while True:
                b = conn.recv(65536)
                if not b:
                    break
                h.update(b)
                n += len(b)
            conn.sendall(json.dumps({"peer": peer[0], "bytes": n, "sha256": h.hexdigest()}).encode())
        else:  # send: stream N deterministic bytes
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


def serve_udp(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a.bind, a.port))
    s.settimeout(a.timeout)
    print("READY", flush=True)
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
    print(json.dumps({"peers": sorted(seen)}), flush=True)


# --------------------------------------------------------------------------- clients
def client_tcp(a):
    payload = os.urandom(a.bytes)
    t0 = time.monotonic()
    try:
        s = socket.create_connection((a.server, a.port), timeout=a.timeout)
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
        out({"ok": ok, "sent": len(payload), "server_saw": r, "seconds": round(time.monotonic() - t0, 3)})
    except (OSError, ValueError) as e:
        out({"ok": False, "error": f"{type(e).__name__}: {e}", "seconds": round(time.monotonic() - t0, 3)})


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


def client_udp(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    sizes = [64, 512, 1000, 1200]
    ok_n, seen = 0, set()
    for k in range(a.count):
        body = f"{k}:".encode() + os.urandom(sizes[k % len(sizes)])
        try:
            s.sendto(body, (a.server, a.port))
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
        s.sendto(b"END", (a.server, a.port))
    out({"sent": a.count, "echoed": ok_n, "server_saw": sorted(seen)})


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


def cmd_ping(a):
    r = subprocess.run(
        ns_cmd(a.src_ns, "ping", "-n", "-c", str(a.count), "-i", "0.3", "-W", "2", "-s", str(a.size), a.dst),
        capture_output=True,
        text=True,
        timeout=a.count * 3 + 10,
    )
    m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
    rtt = re.search(r"= [\d.]+/([\d.]+)/", r.stdout)
    out(
        {
            "transmitted": int(m.group(1)) if m else 0,
            "received": int(m.group(2)) if m else 0,
            "rtt_avg_ms": float(rtt.group(1)) if rtt else None,
            "output": r.stdout[-600:] + r.stderr[-300:],
        }
    )


def cmd_tcp(a):
    srv = start_server(
        a.server_ns,
        ["serve-tcp", "--bind", a.server, "--port", str(a.port), "--mode", "echo", "--timeout", str(a.timeout)],
    )
    res = run_client(
        a.client_ns,
        [
            "client-tcp",
            "--server",
            a.server,
            "--port",
            str(a.port),
            "--bytes",
            str(a.bytes),
            "--timeout",
            str(a.timeout),
        ],
        a.timeout + 10,
    )
    srv.kill()
    stop_server(srv)
    out(res)


def cmd_bulk(a):
    srv = start_server(
        a.server_ns,
        ["serve-tcp", "--bind", a.server, "--port", str(a.port), "--mode", "send", "--timeout", str(a.timeout)],
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


def cmd_udp(a):
    srv = start_server(
        a.server_ns, ["serve-udp", "--bind", a.server, "--port", str(a.port), "--timeout", str(a.timeout)]
    )
    res = run_client(
        a.client_ns,
        ["client-udp", "--server", a.server, "--port", str(a.port), "--count", str(a.count)],
        a.count * 2 + 10,
    )
    res["server"] = stop_server(srv)
    out(res)


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
    s.add_argument("--mode")
    s.add_argument("--timeout", type=float, default=60)
    s = sub.add_parser("serve-udp")
    s.add_argument("--bind")
    s.add_argument("--port", type=int)
    s.add_argument("--timeout", type=float, default=60)
    s = sub.add_parser("client-tcp")
    s.add_argument("--server")
    s.add_argument("--port", type=int)
    s.add_argument("--bytes", type=int)
    s.add_argument("--timeout", type=float, default=30)
    s = sub.add_parser("client-bulk")
    s.add_argument("--server")
    s.add_argument("--port", type=int)
    s.add_argument("--bytes", type=int)
    s.add_argument("--stall", type=float, default=20)
    s.add_argument("--timeout", type=float, default=180)
    s = sub.add_parser("client-udp")
    s.add_argument("--server")
    s.add_argument("--port", type=int)
    s.add_argument("--count", type=int)
    s = sub.add_parser("ping")
    s.add_argument("src_ns")
    s.add_argument("dst")
    s.add_argument("--count", type=int, default=5)
    s.add_argument("--size", type=int, default=56)
    for name in ("tcp", "bulk", "udp"):
        s = sub.add_parser(name)
        s.add_argument("client_ns")
        s.add_argument("client")
        s.add_argument("server_ns")
        s.add_argument("server")
        s.add_argument("--port", type=int, default=5001)
        s.add_argument("--bytes", type=int, default=65536)
        s.add_argument("--count", type=int, default=20)
        s.add_argument("--timeout", type=float, default=30)
        s.add_argument("--stall", type=float, default=20)
    s = sub.add_parser("natt")
    s.add_argument("capture_ns")
    s.add_argument("iface")
    s.add_argument("--src-ns", action="append", default=[])
    s.add_argument("--dst", action="append", default=[])
    a = p.parse_args()
    {
        "serve-tcp": serve_tcp,
        "serve-udp": serve_udp,
        "client-tcp": client_tcp,
        "client-bulk": client_bulk,
        "client-udp": client_udp,
        "ping": cmd_ping,
        "tcp": cmd_tcp,
        "bulk": cmd_bulk,
        "udp": cmd_udp,
        "natt": cmd_natt,
    }[a.cmd](a)


if __name__ == "__main__":
    main()
