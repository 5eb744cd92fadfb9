"""Gateway VMs of their own: a replacement ECS (psk_rotation) and both gateways of a pair
behind a HaVip (gatewayCount 2).

A gateway VM boots the lab's cached image with its own NoCloud seed (its user-data byte for
byte, a fresh instance-id) and one NIC, `eth0`, on a spare port of the world VM's vSwitch hub
(`lab.vswitch`); the Alibaba router's DHCP gives it its private address by MAC, as
Alibaba gives an instance its configured privateIp. Nothing of the lab runs in it.

A pair's world VM has no ECS in its root namespace: it boots WORLD_USER_DATA (cloud-init with
nothing to do) and its root namespace is a bystander on the vSwitch at a lab address.
"""

from __future__ import annotations

from pathlib import Path

from core import paths
from lab import vswitch
from lab.image import Image
from lab.seed import labcfg_tar, write_seed
from lab.vm import VM, gateway_netdevs
from userdata.cloud_config import gzip_user_data

GATEWAY_BOOT_SH = """#!/bin/sh
# A gateway VM of its own (lab/gateways.py): no lab network to build around it; its one
# NIC is eth0 on the world VM's vSwitch, addressed by DHCP like any ECS.
mkdir -p /run/lab/log
echo "=== gateway VM boot $(date +%T): nothing to build" >>/run/lab/log/boot.log
"""

# The world VM of a pair: cloud-init runs (the image is a cloud image) with nothing to install.
WORLD_USER_DATA = (
    "#cloud-config\n# aws2aliyun lab: the world VM of a gateway pair (the gateways run in VMs of their own)\n{}\n"
)

# A pair's gateways get one vCPU each (the world VM keeps --cpus): four vCPU threads on the
# lab's two cores instead of six. (It was meant to shorten a hand-over's 8 s wait for its
# CHILD_SAs, #33, and did not: that was the kernel loading ESP's algorithms, #34.)
PAIR_GATEWAY_CPUS = 1

# keepalived's role on a gateway of a pair (aws2aliyun-ha writes it on every transition)
ROLE_SCRIPT = f"cat {paths.HA_ROLE_PATH} 2>/dev/null || echo NONE"


def gateway_vm(
    run_dir: Path,
    image: Image,
    slirp_net: str,
    *,
    key: str,
    port: int,
    mac: str,
    user_data: str,
    hostname: str,
    memory_mb: int,
    cpus: int,
) -> VM:
    """A gateway VM (not started): its own directory `run_dir/key`, seed and config disk,
    its NIC `mac` on the world VM's spare vSwitch port `port`."""
    d = run_dir / key
    d.mkdir(mode=0o700, exist_ok=True)
    seed = write_seed(d, gzip_user_data(user_data), hostname)
    labcfg = d / "labcfg.tar"
    labcfg.write_bytes(labcfg_tar({"boot.sh": (GATEWAY_BOOT_SH.encode(), 0o755)}))
    nic = vswitch.port(run_dir, port)  # this VM's end of its vSwitch port
    return VM(
        d,
        image.kernel,
        image.initrd,
        image.disk,
        seed,
        labcfg,
        slirp_net,
        memory_mb,
        cpus,
        name=f"aws2aliyun-lab-{key}",
        netdevs=gateway_netdevs(mac, nic),
        pass_fds=(nic.gateway.fileno(),),
    )


def parse_role(out: str) -> str:
    """keepalived's word for a gateway's role (MASTER, BACKUP, FAULT, STOP), or NONE/UNKNOWN."""
    word = out.strip().splitlines()[-1].strip() if out.strip() else ""
    return word if word in ("MASTER", "BACKUP", "FAULT", "STOP", "NONE") else "UNKNOWN"
