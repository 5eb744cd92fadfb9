"""The gateway's host firewall: what it admits, what it forwards, and that nft accepts it."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess

import pytest

from tests.test_userdata import gateway
from userdata import firewall


def test_ike_only_from_the_two_aws_peers():
    rules = firewall.ruleset(gateway())
    assert "elements = { 192.0.2.10, 192.0.2.20 }" in rules
    assert "ip saddr @aws_peers udp dport { 500, 4500 } accept" in rules
    assert "policy drop;" in rules.split("chain input")[1].split("}")[0]


def test_forwards_only_between_the_vpcs():
    forward = firewall.ruleset(gateway()).split("chain forward {")[1]
    assert "policy drop;" in forward
    accepts = [line.strip() for line in forward.splitlines() if line.strip().endswith("accept")]
    assert accepts == [
        "ct state established,related accept",
        "ip saddr 172.16.0.0/16 ip daddr 10.10.0.0/16 accept",
        "ip saddr 10.10.0.0/16 ip daddr 172.16.0.0/16 accept",
    ]


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
    path.write_text(firewall.ruleset(dataclasses.replace(gateway(), ssh_allowed_cidrs=("203.0.113.0/24",))))
    out = subprocess.run(["nft", "--check", "-f", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
