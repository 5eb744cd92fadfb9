"""The gateway's host firewall: what it admits, what it forwards, and that nft accepts it."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time

import pytest

from tests.test_userdata import gateway
from userdata import firewall


def test_ike_only_from_the_two_aws_peers():
    rules = firewall.ruleset(gateway())
    assert "elements = { 192.0.2.10, 192.0.2.20 }" in rules
    assert "ip saddr @aws_peers udp dport { 500, 4500 } accept" in rules
    assert "policy drop;" in rules.split("chain input")[1].split("}")[0]


def test_forwards_only_between_the_two_sides_prefixes():
    forward = firewall.ruleset(gateway()).split("chain forward {")[1]
    assert "policy drop;" in forward
    accepts = [line.strip() for line in forward.splitlines() if line.strip().endswith("accept")]
    assert accepts == [
        "ct state established,related accept",
        "ip saddr @ali_prefixes ip daddr @aws_prefixes accept",
        "ip saddr @aws_prefixes ip daddr @ali_prefixes accept",
    ]


def test_every_prefix_of_each_side_is_in_its_set():
    gw = dataclasses.replace(
        gateway(), aws_prefixes=("10.10.0.0/16", "10.20.0.0/16"), ali_prefixes=("172.16.0.0/16", "192.168.8.0/24")
    )
    rules = firewall.ruleset(gw)
    sets = {name: rules.split(f"set {name} {{")[1].split("\n    }")[0] for name in ("aws_prefixes", "ali_prefixes")}
    assert "elements = { 10.10.0.0/16, 10.20.0.0/16 }" in sets["aws_prefixes"]
    assert "elements = { 172.16.0.0/16, 192.168.8.0/24 }" in sets["ali_prefixes"]
    assert all("flags interval" in s for s in sets.values())


def test_ssh_is_closed_unless_cidrs_are_allowed():
    assert "dport 22" not in firewall.ruleset(gateway())
    open_gw = dataclasses.replace(gateway(), ssh_allowed_cidrs=("203.0.113.7/32",))
    rules = firewall.ruleset(open_gw)
    assert "elements = { 203.0.113.7/32 }" in rules
    assert "ip saddr @ssh_allowed tcp dport 22 accept" in rules


def test_the_table_is_replaced_whole_on_reload():
    lines = firewall.ruleset(gateway()).splitlines()
    assert lines[2:5] == ["table inet aws2aliyun", "delete table inet aws2aliyun", "table inet aws2aliyun {"]


@pytest.mark.skipif(shutil.which("nft") is None, reason="nft not installed (make deps)")
def test_nft_accepts_the_ruleset(tmp_path):
    path = tmp_path / "firewall.nft"
    gw = dataclasses.replace(
        gateway(), ssh_allowed_cidrs=("203.0.113.0/24",), aws_prefixes=("10.10.0.0/16", "10.20.0.0/16")
    )
    path.write_text(firewall.ruleset(gw))
    out = subprocess.run(["nft", "--check", "-f", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_only_root_reaches_the_metadata_service():
    output = firewall.ruleset(gateway()).split("chain output {")[1].split("}")[0]
    assert "policy accept;" in output
    assert "ip daddr 100.100.100.200 meta skuid != 0 reject" in output


NETNS_TOOLS = all(shutil.which(t) for t in ("nft", "ip", "setpriv"))


@pytest.mark.skipif(not NETNS_TOOLS or os.geteuid() != 0, reason="needs root, nft, ip and setpriv")
def test_the_loaded_ruleset_refuses_metadata_to_non_root(tmp_path):
    """In a network namespace of its own: the ruleset loaded by nft, a stand-in metadata
    service on 100.100.100.200:80; root connects, an unprivileged user is refused."""
    ns = f"aws2aliyun-fw-{os.getpid()}"
    path = tmp_path / "firewall.nft"
    path.write_text(firewall.ruleset(gateway()))
    probe = (
        "import socket,sys\n"
        "s=socket.socket(); s.settimeout(3)\n"
        "try:\n s.connect(('100.100.100.200', 80)); print('connected')\n"
        "except OSError as e:\n print(type(e).__name__, e.strerror)\n"
    )
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:

        def run(*cmd: str) -> subprocess.CompletedProcess:
            return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=20)

        assert run("ip", "link", "set", "lo", "up").returncode == 0
        assert run("ip", "addr", "add", "100.100.100.200/32", "dev", "lo").returncode == 0
        loaded = run("nft", "-f", str(path))
        assert loaded.returncode == 0, loaded.stderr
        server = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c",
             "import socket,time\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
             "s.bind(('100.100.100.200', 80)); s.listen(8); time.sleep(30)"],
        )  # fmt: skip
        try:
            for _ in range(50):
                if run(sys.executable, "-c", probe).stdout.strip() == "connected":
                    break
                time.sleep(0.1)
            assert run(sys.executable, "-c", probe).stdout.strip() == "connected", "root reaches the metadata service"
            nobody = run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", probe)
            assert nobody.stdout.strip() == "OSError No route to host", (
                nobody.stdout + nobody.stderr
            )  # admin-prohibited
        finally:
            server.kill()
            server.wait()
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)
