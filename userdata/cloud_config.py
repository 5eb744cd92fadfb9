"""The ECS's `#cloud-config`: built as a dict by pure functions, emitted with PyYAML.

Everything the gateway needs is written as files and enabled as services, so a reboot
brings the link back without cloud-init running again.
"""

from __future__ import annotations

import shlex
from importlib import resources

import yaml

from core import paths
from userdata import firewall, swanctl, watchdog
from userdata.model import Gateway

PACKAGES = ("strongswan-swanctl", "charon-systemd", "iptables", "nftables")
# A recovered tunnel takes the traffic back this long after it is up (the updown script),
# when the other tunnel carries it: the AWS end may install its inbound SA last.
FAILBACK_HOLD_S = 2

SYSCTLS = {
    "net.ipv4.ip_forward": 1,
    # A router must not be steered by, nor send, ICMP redirects, nor honour source routes.
    "net.ipv4.conf.all.accept_redirects": 0,
    "net.ipv4.conf.default.accept_redirects": 0,
    "net.ipv4.conf.all.secure_redirects": 0,
    "net.ipv4.conf.default.secure_redirects": 0,
    "net.ipv4.conf.all.send_redirects": 0,
    "net.ipv4.conf.default.send_redirects": 0,
    "net.ipv4.conf.all.accept_source_route": 0,
    "net.ipv4.conf.default.accept_source_route": 0,
}


def static_file(name: str) -> str:
    """A script shipped in userdata/files/ (shellchecked as it is)."""
    return resources.files("userdata").joinpath("files", name).read_text()


def link_env(gw: Gateway) -> str:
    """Shell-sourced facts shared by the updown and verify scripts (no secrets)."""
    mtu, mss = gw.crypto.vti_mtu_mss()
    values: dict[str, object] = {
        "AWS_CIDRS": " ".join(gw.aws_prefixes),
        "ALI_CIDRS": " ".join(gw.ali_prefixes),
        "CRYPTO_PROFILE": gw.crypto.name,
        "VTI_MTU": mtu,
        "TCP_MSS": mss,
        "FAILBACK_HOLD_S": FAILBACK_HOLD_S,
    }
    for t in gw.tunnels:
        p = f"TUNNEL{t.number}_"
        values.update(
            {
                p + "VTI": t.vti,
                p + "MARK": t.mark,
                p + "METRIC": t.metric,
                p + "PEER": t.outside_address,
                p + "LOCAL_INSIDE": t.cgw_inside_interface,
                p + "REMOTE_INSIDE": t.vgw_inside_address,
            }
        )
    lines = ["# aws2aliyun-vpc: link facts for aws2aliyun-updown and aws2aliyun-verify"]
    lines += [f"{k}={shlex.quote(str(v))}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def sysctl_conf() -> str:
    lines = ["# aws2aliyun-vpc: forwarding on, redirects and source routing off"]
    lines += [f"{k} = {v}" for k, v in SYSCTLS.items()]
    return "\n".join(lines) + "\n"


def _file(path: str, content: str, mode: str) -> dict:
    return {"path": path, "owner": "root:root", "permissions": mode, "content": content}


def cloud_config(gw: Gateway) -> dict:
    """The cloud-config as a dict (see `render` for the text)."""
    return {
        "package_update": True,
        "packages": list(PACKAGES),
        "ssh_pwauth": False,
        "write_files": [
            _file(paths.LINK_ENV_PATH, link_env(gw), "0644"),
            _file(paths.SYSCTL_PATH, sysctl_conf(), "0644"),
            _file(paths.CHARON_CONF_PATH, swanctl.charon_conf(), "0644"),
            _file(paths.SWANCTL_CONF_PATH, swanctl.swanctl_conf(gw), "0644"),
            _file(paths.SWANCTL_SECRETS_PATH, swanctl.secrets_conf(gw), "0600"),
            _file(paths.FIREWALL_PATH, firewall.ruleset(gw), "0644"),
            _file(paths.FIREWALL_UNIT_PATH, firewall.unit(), "0644"),
            _file(paths.UPDOWN_PATH, static_file("aws2aliyun-updown.sh"), "0755"),
            _file(paths.VERIFY_PATH, static_file("aws2aliyun-verify.sh"), "0755"),
            _file(paths.WATCHDOG_PATH, static_file("aws2aliyun-watchdog.sh"), "0755"),
            _file(paths.WATCHDOG_SERVICE_PATH, watchdog.service(), "0644"),
            _file(paths.WATCHDOG_TIMER_PATH, watchdog.timer(), "0644"),
        ],
        "runcmd": [
            ["sysctl", "--system"],
            # The host firewall first (it admits what is already flowing), then strongSwan.
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", paths.FIREWALL_UNIT],
            # The package starts the daemon on install; make sure it is enabled for reboots
            # and has loaded our connections (files were written before the install).
            ["systemctl", "enable", "--now", "strongswan.service"],
            ["swanctl", "--load-all", "--noprompt"],
            # Re-initiates a tunnel charon has given up on (see userdata/watchdog.py).
            ["systemctl", "enable", "--now", paths.WATCHDOG_TIMER],
        ],
    }


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings as `|` blocks so the user-data stays readable."""


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_LiteralDumper.add_representer(str, _str_presenter)


def render(gw: Gateway) -> str:
    """The user-data text: `#cloud-config` and the YAML dump of `cloud_config(gw)`."""
    body = yaml.dump(cloud_config(gw), Dumper=_LiteralDumper, sort_keys=False, width=1000)
    return "#cloud-config\n" + body
