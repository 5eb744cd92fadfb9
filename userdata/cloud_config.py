"""The ECS's `#cloud-config`: built as a dict by pure functions, emitted with PyYAML.

Everything the gateway needs is written as files and enabled as services, so a reboot
brings the link back without cloud-init running again.
"""

from __future__ import annotations

import base64
import gzip
import shlex
from importlib import resources

import deflate
import yaml

from core import paths
from userdata import firewall, frr, keepalived, liveness, swanctl, watchdog
from userdata.model import Gateway

# python3 is cloud-init's own interpreter; listed because the liveness daemon runs on it.
PACKAGES = ("strongswan-swanctl", "charon-systemd", "iptables", "nftables", "python3")
PAIR_PACKAGES = ("keepalived",)  # a gateway of a pair behind a HaVip
BGP_PACKAGES = ("frr",)  # routing: bgp
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
# ECMP over both tunnels (BGP behind a Transit Gateway): flows spread by their ports too, so
# the connections between two hosts use both tunnels (the kernel's default hashes addresses only)
ECMP_SYSCTLS = {"net.ipv4.fib_multipath_hash_policy": 1}


# Alibaba accepts at most this much user-data (RunInstances `UserData`). Its documentation
# reads as the raw size; the check holds the Base64 text to it, which fits either reading.
USER_DATA_MAX_BYTES = 32 * 1024
# The ECS is given its cloud-config gzipped (cloud-init unpacks gzip user-data on every
# datasource) and Base64-encoded: terraform-provider-alicloud passes a value that decodes as
# Base64 to RunInstances as it is (resourceAliCloudInstanceCreate/Update) and encodes anything
# else. libdeflate (PyPI `deflate`, pinned in requirements.txt) compresses, not the machine's
# zlib: its output is the same on every machine, and a changed user-data replaces the gateway.
USER_DATA_GZIP_LEVEL = 12  # libdeflate's strongest


def static_file(name: str) -> str:
    """A script shipped in userdata/files/ (shellchecked as it is)."""
    return resources.files("userdata").joinpath("files", name).read_text()


def shipped_text(entry: dict) -> str:
    """What a write_files entry puts on the gateway (for tests and the lab): its content, as
    every file ships as text (the user-data as a whole is gzipped, `encode_user_data`)."""
    if entry.get("encoding"):
        raise ValueError(f"{entry.get('path')} is written {entry['encoding']}-encoded: every file ships as text")
    return str(entry["content"])


def link_env(gw: Gateway) -> str:
    """Facts shared by the updown, verify and liveness scripts (no secrets; shell syntax)."""
    mtu, mss = gw.crypto.vti_mtu_mss()
    values: dict[str, object] = {
        "AWS_CIDRS": " ".join(gw.aws_prefixes),
        "ALI_CIDRS": " ".join(gw.ali_prefixes),
        "CRYPTO_PROFILE": gw.crypto.name,
        "VTI_MTU": mtu,
        "TCP_MSS": mss,
        "LIVENESS_REQUIRED": "yes" if gw.aws_end_answers else "no",
    }
    if gw.bgp is not None:
        values["ROUTING"] = "bgp"  # the routes to the AWS prefixes are BGP's (zebra's), not liveness's
        values["BGP_HOOK"] = paths.BGP_HOOK_PATH  # what the liveness daemon tells its verdicts
        values["BGP_FAILBACK_HOLD_S"] = frr.failback_hold_s(gw)  # a recovered tunnel's session waits
    if gw.ha is not None:
        # one of a pair: only the active one (keepalived MASTER) holds the tunnels
        values.update({"HA_PAIR": "yes", "HA_VIP": gw.ha.vip, "HA_SELF": gw.ha.self_ip, "HA_PEER": gw.ha.peer_ip})
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


def sysctl_conf(ecmp: bool = False) -> str:
    lines = ["# aws2aliyun-vpc: forwarding on, redirects and source routing off"]
    lines += [f"{k} = {v}" for k, v in (SYSCTLS | (ECMP_SYSCTLS if ecmp else {})).items()]
    return "\n".join(lines) + "\n"


def _file(path: str, content: str, mode: str) -> dict:
    return {"path": path, "owner": "root:root", "permissions": mode, "content": content}


def _script(path: str, name: str) -> dict:
    """A script of userdata/files/, as it is (shellchecked, tested) and readable on the gateway."""
    return _file(path, static_file(name), "0755")


def _pair_files(gw: Gateway) -> list[dict]:
    if gw.ha is None:
        return []
    return [
        _file(paths.KEEPALIVED_CONF_PATH, keepalived.conf(gw), "0600"),
        _file(paths.HA_STANDBY_CONF_PATH, keepalived.standby_conf(), "0644"),
        _file(paths.HA_ESP_ALGORITHMS_PATH, keepalived.esp_algorithms(gw), "0644"),
        _script(paths.HA_PATH, "aws2aliyun-ha.sh"),
    ]


def _bgp_files(gw: Gateway) -> list[dict]:
    """FRR's daemons and configuration, written before the package is installed: cloud-init
    installs with `--force-confold`, so the package keeps them and starts bgpd with them."""
    if gw.bgp is None:
        return []
    return [
        _file(paths.FRR_DAEMONS_PATH, frr.daemons(), "0640"),
        _file(paths.FRR_CONF_PATH, frr.conf(gw), "0640"),
        _script(paths.BGP_HOOK_PATH, "aws2aliyun-bgp.sh"),
    ]


def _pair_commands(gw: Gateway) -> list[list[str]]:
    """keepalived last: it may make this gateway MASTER at once, and then initiates the tunnels.
    Debian's package has started it already with the configuration write_files put in place
    (and the notify script loads the connections itself), so it is enabled, not restarted: a
    restart of the gateway that won the first election would hand the pair over for nothing."""
    if gw.ha is None:
        return []
    return [["systemctl", "enable", "--now", paths.KEEPALIVED_SERVICE]]


def cloud_config(gw: Gateway) -> dict:
    """The cloud-config as a dict (see `render` for the text)."""
    return {
        "package_update": True,
        "packages": list(PACKAGES)
        + (list(PAIR_PACKAGES) if gw.ha is not None else [])
        + (list(BGP_PACKAGES) if gw.bgp is not None else []),
        "ssh_pwauth": False,
        "write_files": [
            _file(paths.LINK_ENV_PATH, link_env(gw), "0644"),
            _file(paths.SYSCTL_PATH, sysctl_conf(ecmp=bool(gw.bgp and gw.bgp.ecmp)), "0644"),
            _file(paths.CHARON_CONF_PATH, swanctl.charon_conf(), "0644"),
            _file(paths.SWANCTL_CONF_PATH, swanctl.swanctl_conf(gw), "0644"),
            _file(paths.SWANCTL_SECRETS_PATH, swanctl.secrets_conf(gw), "0600"),
            _file(paths.FIREWALL_PATH, firewall.ruleset(gw), "0644"),
            _file(paths.FIREWALL_UNIT_PATH, firewall.unit(), "0644"),
            _script(paths.UPDOWN_PATH, "aws2aliyun-updown.sh"),
            _script(paths.VERIFY_PATH, "aws2aliyun-verify.sh"),
            _script(paths.WATCHDOG_PATH, "aws2aliyun-watchdog.sh"),
            _file(paths.WATCHDOG_SERVICE_PATH, watchdog.service(gw.crypto.ike_version, pair=gw.ha is not None), "0644"),
            _file(paths.WATCHDOG_TIMER_PATH, watchdog.timer(), "0644"),
            _script(paths.LIVENESS_PATH, "aws2aliyun-liveness.py"),
            _file(paths.LIVENESS_SERVICE_PATH, liveness.service(vty_groups=frr.VTY_GROUPS if gw.bgp else ()), "0644"),
            *_pair_files(gw),
            *_bgp_files(gw),
        ],
        "runcmd": [
            ["sysctl", "--system"],
            # The host firewall first (it admits what is already flowing), then strongSwan.
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", paths.FIREWALL_UNIT],
            # Owns the routes to the AWS prefixes: running before the first tunnel is up.
            ["systemctl", "enable", "--now", paths.LIVENESS_SERVICE],
            # The package starts the daemon on install; make sure it is enabled for reboots
            # and has loaded our connections (files were written before the install).
            ["systemctl", "enable", "--now", "strongswan.service"],
            ["swanctl", "--load-all", "--noprompt"],
            # Re-initiates a tunnel charon has given up on (see userdata/watchdog.py).
            ["systemctl", "enable", "--now", paths.WATCHDOG_TIMER],
            *([["systemctl", "enable", "--now", paths.FRR_SERVICE]] if gw.bgp is not None else []),
            *_pair_commands(gw),
        ],
    }


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings as `|` blocks so the user-data stays readable."""


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_LiteralDumper.add_representer(str, _str_presenter)


def gzip_user_data(text: str) -> bytes:
    """The cloud-config gzipped by libdeflate: what cloud-init reads (the lab's NoCloud seed)."""
    return deflate.gzip_compress(text.encode(), USER_DATA_GZIP_LEVEL)


def encode_user_data(text: str) -> str:
    """The cloud-config as the ECS is given it: `gzip_user_data`, Base64-encoded."""
    return base64.b64encode(gzip_user_data(text)).decode()


def decode_user_data(value: str) -> str:
    """The cloud-config text back from `encode_user_data`'s value (what cloud-init reads)."""
    return gzip.decompress(base64.b64decode(value, validate=True)).decode()


def too_large(user_data: str) -> str | None:
    """Why Alibaba would refuse this cloud-config once encoded (USER_DATA_MAX_BYTES), naming
    the settings that make it grow; None when it fits."""
    size = len(encode_user_data(user_data))
    if size <= USER_DATA_MAX_BYTES:
        return None
    return (
        f"awsCidrs, aliCidrs, sshAllowedCidrs: the gateway's user-data would be {size} bytes (gzipped, Base64) "
        f"and Alibaba accepts at most {USER_DATA_MAX_BYTES}; every prefix is listed in it, so route fewer "
        "(summarize them)"
    )


def dump(doc: dict) -> str:
    """User-data text of a cloud-config document: `#cloud-config` and its YAML."""
    return "#cloud-config\n" + yaml.dump(doc, Dumper=_LiteralDumper, sort_keys=False, width=1000)


def render(gw: Gateway) -> str:
    """The user-data text: `#cloud-config` and the YAML dump of `cloud_config(gw)`."""
    return dump(cloud_config(gw))
