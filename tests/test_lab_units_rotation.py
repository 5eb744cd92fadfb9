"""Quick tests of psk_rotation's pure helpers and the multi-VM plumbing (no VM)."""
# ruff: noqa: S311 - seeded generators make the key tests reproducible; the lab uses SystemRandom

from __future__ import annotations

import dataclasses
import io
import random
import tarfile
from pathlib import Path

import pytest
import yaml

from lab import gateways, vswitch
from lab.checks import rotation
from lab.inputs import LabInputs, Tunnel
from lab.registry import BY_NAME, FAULT_CHECKS
from lab.seed import labcfg_tar
from lab.topology import ALI_LAN_MAC, ALI_WAN_MAC, ECS_MAC, gateway_mac
from lab.vm import VM, gateway_netdevs, world_netdevs
from lab.vswitch import VSwitchPort


def test_new_psks_follow_aws_rules_and_differ():
    rng = random.Random(7)
    for _ in range(200):
        k = rotation.new_psk(rng)
        assert rotation.psk_valid(k) and len(k) == 40 and not k.startswith("0")
    old = ("kOldKeyOne.1234", "kOldKeyTwo_5678")
    a, b = rotation.new_psks(old, random.Random(1))
    assert a != b and not {a, b} & set(old)
    assert rotation.new_psks(old, random.Random(1)) == (a, b)  # seeded: reproducible
    assert len(rotation.new_psks(old)) == 2  # system randomness by default


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("abcdefgh", True),
        ("0abcdefg", False),
        ("abc", False),
        ("a" * 64, True),
        ("a" * 65, False),
        ("ab-cdefgh", False),
    ],
)
def test_psk_rule(key: str, ok: bool):
    assert rotation.psk_valid(key) is ok


def test_new_psk_length_bounds():
    with pytest.raises(ValueError):
        rotation.new_psk(random.Random(), 7)


def test_rotated_stack_sets_both_keys_and_keeps_the_rest():
    text = (
        "# comment\nconfig:\n  aws:region: ap-southeast-1\n  aws2aliyun-vpc:awsVpcCidr: 10.10.0.0/16\n"
        "  tunnel1PresharedKey:\n    secure: AAAA\n"
    )
    doc = yaml.safe_load(rotation.rotated_stack(text, ("k1.new.key.aaaa", "k2.new.key.bbbb")))
    cfg = doc["config"]
    assert cfg["aws2aliyun-vpc:tunnel1PresharedKey"] == "k1.new.key.aaaa"
    assert cfg["aws2aliyun-vpc:tunnel2PresharedKey"] == "k2.new.key.bbbb"
    assert "tunnel1PresharedKey" not in cfg  # the short, encrypted form replaced
    assert cfg["aws:region"] == "ap-southeast-1" and cfg["aws2aliyun-vpc:awsVpcCidr"] == "10.10.0.0/16"


def _tunnel(n: int, psk: str) -> Tunnel:
    return Tunnel(
        number=n,
        outside_address=f"198.51.100.{n}",
        vgw_inside_address=f"169.254.1{n}.1",
        cgw_inside_address=f"169.254.1{n}.2",
        inside_cidr=f"169.254.1{n}.0/30",
        preshared_key=psk,
        ike_versions=("ikev2",),
        phase1_encryption=("AES256-GCM-16",),
        phase1_integrity=("SHA2-256",),
        phase1_dh_groups=(20,),
        phase2_encryption=("AES256-GCM-16",),
        phase2_integrity=("SHA2-256",),
        phase2_dh_groups=(20,),
        phase1_lifetime_s=28800,
        phase2_lifetime_s=3600,
        rekey_margin_s=540,
        rekey_fuzz_percent=100,
        replay_window=1024,
        dpd_timeout_s=30,
        dpd_timeout_action="restart",
        startup_action="add",
    )


def _inputs(psks: tuple[str, str], user_data: str | None = None) -> LabInputs:
    return LabInputs(
        user_data=user_data or f"#cloud-config\n# {psks[0]} {psks[1]}\n",
        private_ip="172.16.1.10",
        hostname="gw",
        eip="198.51.100.10",
        vswitch_cidr="172.16.1.0/24",
        aws_prefixes=("10.10.0.0/16",),
        ali_prefixes=("172.16.0.0/16",),
        tunnels=(_tunnel(1, psks[0]), _tunnel(2, psks[1])),
    )


def test_replacement_problems():
    old = _inputs(("kOld.one.1111", "kOld.two.2222"))
    keys = ("kNew.one.1111", "kNew.two.2222")
    new = _inputs(keys)
    assert rotation.replacement_problems(old, new, keys) == []
    same = rotation.replacement_problems(old, old, ("kOld.one.1111", "kOld.two.2222"))
    assert any("did not change" in p for p in same)
    assert any("would not replace" in p for p in same)
    moved = dataclasses.replace(new, private_ip="172.16.1.11")
    assert any("topology" in p for p in rotation.replacement_problems(old, moved, keys))
    t2 = dataclasses.replace(new.tunnels[1], dpd_timeout_s=40)
    other = dataclasses.replace(new, tunnels=(new.tunnels[0], t2))
    assert any("other than the PSK" in p for p in rotation.replacement_problems(old, other, keys))
    stale = _inputs(keys, user_data="#cloud-config\n# kOld.one.1111\n")
    assert any("old PSK" in p for p in rotation.replacement_problems(old, stale, keys))


def test_psk_files_verdict():
    out = (
        "new1 /etc/swanctl/conf.d/aws2aliyun.conf \n"
        "new2 /etc/swanctl/conf.d/aws2aliyun.conf \n"
        "old1 \nold2 \nold-anywhere \n"
        "mode 600 root /etc/swanctl/conf.d/aws2aliyun.conf\n"
    )
    ok, text = rotation.psk_files_verdict(rotation.parse_psk_files(out))
    assert ok, text
    bad = out.replace("old2 \n", "old2 /etc/swanctl/conf.d/aws2aliyun.conf\n")
    ok, text = rotation.psk_files_verdict(rotation.parse_psk_files(bad))
    assert not ok and "OLD key" in text
    missing = out.replace("new2 /etc/swanctl/conf.d/aws2aliyun.conf", "new2")
    ok, text = rotation.psk_files_verdict(rotation.parse_psk_files(missing))
    assert not ok and "tunnel2's NEW key" in text


def test_labcfg_tar_is_block_padded_and_holds_the_files():
    data = labcfg_tar({"boot.sh": (gateways.GATEWAY_BOOT_SH.encode(), 0o755), "x": (b"1", 0o600)}, mtime=0)
    assert len(data) % 4096 == 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["boot.sh"].mode == 0o755 and members["x"].mode == 0o600
        assert tar.extractfile("boot.sh").read().startswith(b"#!/bin/sh")


def test_gateway_macs_are_new_and_distinct():
    macs = [gateway_mac(k) for k in range(1, 5)]
    assert len(set(macs)) == 4 and not set(macs) & {ECS_MAC, ALI_LAN_MAC, ALI_WAN_MAC}
    assert all(int(m.split(":")[0], 16) & 0x02 and not int(m.split(":")[0], 16) & 0x01 for m in macs)
    with pytest.raises(ValueError):
        gateway_mac(0)


def test_world_vm_command_unchanged_without_spare_ports_and_extended_with_them():
    world = world_netdevs("10.0.2.0/24")
    assert world == [
        "-netdev",
        "hubport,id=ecs,hubid=0",
        "-device",
        f"virtio-net-pci,netdev=ecs,mac={ECS_MAC}",
        "-netdev",
        "hubport,id=alilan,hubid=0",
        "-device",
        f"virtio-net-pci,netdev=alilan,mac={ALI_LAN_MAC}",
        "-netdev",
        "user,id=aliwan,net=10.0.2.0/24",
        "-device",
        f"virtio-net-pci,netdev=aliwan,mac={ALI_WAN_MAC}",
    ]
    port = VSwitchPort.open(1)
    try:
        spare = world_netdevs("10.0.2.0/24", (port,))
        i = spare.index(f"dgram,id=vswsock1,local.type=fd,local.str={port.world.fileno()}")
        assert spare[i + 2] == "hubport,id=vsw1,hubid=0,netdev=vswsock1"  # the socket before its hub port
        gw = gateway_netdevs(gateway_mac(1), port)
        assert f"dgram,id=eth0,local.type=fd,local.str={port.gateway.fileno()}" in gw
        assert f"virtio-net-pci,netdev=eth0,mac={gateway_mac(1)}" in gw
    finally:
        port.close()


def test_a_vswitch_port_is_a_connected_datagram_pair_that_never_pushes_back():
    """What one end sends the other receives; what the other never reads (a gateway VM that is
    off or booting) is dropped, never blocks the sender (the world VM's main loop: findings #36)."""
    port = VSwitchPort.open(1)
    try:
        assert port.world.getpeername() == port.gateway.getsockname()
        assert port.gateway.getpeername() == port.world.getsockname()
        assert port.world.get_inheritable() and port.gateway.get_inheritable()
        port.world.send(b"frame")
        assert port.gateway.recv(100) == b"frame"
        port.world.setblocking(True)  # as QEMU might hold it
        port.world.settimeout(5)
        for _ in range(5000):  # far more than the receiver's buffer holds
            port.world.send(b"x" * 1400)
    finally:
        port.close()


def test_a_runs_ports_are_opened_once_and_known(tmp_path: Path):
    try:
        assert not vswitch.opened(tmp_path, 2)
        p = vswitch.port(tmp_path, 2)
        assert vswitch.port(tmp_path, 2) is p and vswitch.opened(tmp_path, 2)
        assert vswitch.port(tmp_path, 3) is not p
    finally:
        vswitch.close_all()


def test_vms_keep_their_files_apart(tmp_path: Path):
    a = VM(tmp_path, Path("k"), Path("i"), Path("d"), Path("s"), Path("c"), "10.0.2.0/24")
    b = VM(
        tmp_path / rotation.GATEWAY_DIR,
        Path("k"),
        Path("i"),
        Path("d"),
        Path("s2"),
        Path("c2"),
        "10.0.2.0/24",
        name="gw1",
        netdevs=gateway_netdevs(gateway_mac(1), vswitch.port(tmp_path, rotation.VSWITCH_PORT)),
    )
    vswitch.close_all()
    assert {a.qga_path, a.qmp_path, a.overlay, a.console}.isdisjoint({b.qga_path, b.qmp_path, b.overlay, b.console})
    assert "aws2aliyun-lab" in a.command() and "gw1" in b.command()
    assert "hubport,id=ecs,hubid=0" in a.command() and "hubport,id=ecs,hubid=0" not in b.command()


def test_psk_rotation_runs_last():
    # it replaces the ECS every other check (the baselines included) measures
    single = [n for n in FAULT_CHECKS if 1 in BY_NAME[n].gateway_counts]
    assert single[-1] == "psk_rotation"
    pair = [n for n in FAULT_CHECKS if 2 in BY_NAME[n].gateway_counts]
    assert pair[-1] == "ha_rolling_replacement"  # it replaces both gateways of a pair
    # the baselines reconfigure the ECS: after every check of ours that is not itself a soak
    # (lossy_path puts the program's configuration back first)
    order = list(FAULT_CHECKS)
    assert order.index("aws_endpoint_restart") < order.index("baseline_failover_tunnel1")
    assert order.index("baseline_failover_tunnel1") < order.index("lossy_path") < order.index("baseline_lossy_path")
