"""The gateway's user-data: structure, validity (cloud-init schema, shellcheck), golden files."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from core import paths, settings
from core.crypto import LEGACY, MODERN
from userdata import Bgp, Gateway, Tunnel, cloud_config, frr, render
from userdata import swanctl as sw
from userdata.cloud_config import (
    USER_DATA_MAX_BYTES,
    decode_user_data,
    encode_user_data,
    link_env,
    shipped_text,
    static_file,
    too_large,
)

GOLDEN = Path(__file__).parent / "golden"
FILES = Path(__file__).resolve().parent.parent / "userdata" / "files"

PSK1 = "Tunnel1.Key_for_tests"
PSK2 = "Tunnel2.Key_for_tests"


def gateway(profile=MODERN) -> Gateway:
    return Gateway(
        eip="198.51.100.10",
        private_ip="172.16.1.10",
        aws_prefixes=("10.10.0.0/16",),
        ali_prefixes=("172.16.0.0/16",),
        crypto=profile,
        tunnels=(
            Tunnel(1, "192.0.2.10", "169.254.121.0/30", "169.254.121.2", "169.254.121.1", PSK1),
            Tunnel(2, "192.0.2.20", "169.254.122.0/30", "169.254.122.2", "169.254.122.1", PSK2),
        ),
    )


def files_of(doc: dict) -> dict[str, dict]:
    return {f["path"]: f for f in doc["write_files"]}


def test_user_data_is_a_cloud_config_document():
    text = render(gateway())
    assert text.startswith("#cloud-config\n")
    assert yaml.safe_load(text) == cloud_config(gateway())


def test_installs_strongswan_with_charon_systemd_and_swanctl():
    doc = cloud_config(gateway())
    assert {"strongswan-swanctl", "charon-systemd"} <= set(doc["packages"])
    assert ["systemctl", "enable", "--now", "strongswan.service"] in doc["runcmd"]
    assert doc["ssh_pwauth"] is False


def test_secrets_live_only_in_the_0600_file():
    files = files_of(cloud_config(gateway()))
    secrets = files[paths.SWANCTL_SECRETS_PATH]
    assert secrets["permissions"] == "0600" and secrets["owner"] == "root:root"
    assert PSK1 in secrets["content"] and PSK2 in secrets["content"]
    for path, f in files.items():
        if path != paths.SWANCTL_SECRETS_PATH:
            assert PSK1 not in shipped_text(f) and PSK2 not in shipped_text(f), path


def test_one_route_based_connection_per_tunnel():
    conf = files_of(cloud_config(gateway()))[paths.SWANCTL_CONF_PATH]["content"]
    for n, peer, mark in ((1, "192.0.2.10", 100), (2, "192.0.2.20", 200)):
        conn = sw.connection(gateway(), gateway().tunnels[n - 1])
        child = conn["children"][f"tunnel{n}"]
        assert conn["local_addrs"] == "172.16.1.10", "IKE binds the private address (1:1 NAT)"
        assert conn["local"] == {"auth": "psk", "id": "198.51.100.10"}, "the EIP is our identity"
        assert conn["remote_addrs"] == peer and conn["remote"]["id"] == peer
        assert (child["local_ts"], child["remote_ts"]) == ("0.0.0.0/0", "0.0.0.0/0")
        assert child["mark_in"] == child["mark_out"] == mark
        assert child["start_action"] == "start", "the ECS initiates"
        assert child["updown"] == f"{paths.UPDOWN_PATH} tunnel{n}"
        assert f"tunnel{n} {{" in conf


def test_charon_keeps_out_of_routing():
    conf = sw.charon_conf()
    assert "install_routes = no" in conf
    assert "routing_table = 0" in conf


def test_link_env_carries_vti_facts_and_no_secret():
    env = files_of(cloud_config(gateway()))[paths.LINK_ENV_PATH]["content"]
    assert "TUNNEL1_LOCAL_INSIDE=169.254.121.2/30" in env
    assert "TUNNEL2_PEER=192.0.2.20" in env
    assert "VTI_MTU=1438" in env and "TCP_MSS=1398" in env
    legacy_env = files_of(cloud_config(gateway(LEGACY)))[paths.LINK_ENV_PATH]["content"]
    assert "VTI_MTU=1422" in legacy_env and "TCP_MSS=1382" in legacy_env


def test_values_that_would_break_the_config_are_refused():
    with pytest.raises(ValueError):
        sw.serialize({"x": 'a"b'})


@pytest.mark.skipif(shutil.which("cloud-init") is None, reason="cloud-init not installed (make deps)")
@pytest.mark.parametrize("profile", [MODERN, LEGACY], ids=["modern", "legacy"])
def test_cloud_init_schema_accepts_the_user_data(tmp_path, profile):
    path = tmp_path / "user-data"
    path.write_text(render(gateway(profile)))
    out = subprocess.run(["cloud-init", "schema", "--config-file", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Valid" in out.stdout


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed (make deps)")
@pytest.mark.parametrize("script", sorted(p.name for p in FILES.glob("*.sh")))
def test_gateway_scripts_pass_shellcheck(script):
    out = subprocess.run(["shellcheck", "--severity=style", str(FILES / script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout


@pytest.mark.parametrize(
    ("name", "render_fn"),
    [
        ("cloud-config.modern.yaml", lambda: render(gateway(MODERN))),
        ("cloud-config.legacy.yaml", lambda: render(gateway(LEGACY))),
        ("swanctl.modern.conf", lambda: sw.swanctl_conf(gateway(MODERN))),
        ("swanctl.legacy.conf", lambda: sw.swanctl_conf(gateway(LEGACY))),
        ("charon.conf", sw.charon_conf),
        # routing: bgp (tests/test_bgp.py)
        ("frr.vgw.conf", lambda: frr.conf(dataclasses.replace(gateway(), bgp=Bgp(65010)))),
        (
            "frr.tgw-ecmp.conf",
            lambda: frr.conf(
                dataclasses.replace(gateway(), bgp=Bgp(65010, ecmp=True), aws_prefixes=("10.10.0.0/16", "10.20.0.0/16"))
            ),
        ),
        ("frr.daemons", frr.daemons),
    ],
)
def test_golden(name, render_fn):
    """Rendered configuration against golden files; `make golden` rewrites them on purpose."""
    path = GOLDEN / name
    text = render_fn()
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"{path} missing: run `make golden`"
    assert text == path.read_text(), f"{name} differs from its golden file: review, then `make golden`"


# A large stack the user-data must still fit for (each prefix is listed in link.env and the
# host firewall); beyond, `pulumi up` stops with `too_large` naming the keys.
MANY_AWS_PREFIXES = tuple(f"10.{i}.0.0/16" for i in range(40))
MANY_ALI_PREFIXES = tuple(f"172.{16 + i}.0.0/16" for i in range(20))


def many_prefixes(gw: Gateway) -> Gateway:
    return dataclasses.replace(
        gw, aws_prefixes=MANY_AWS_PREFIXES, ali_prefixes=MANY_ALI_PREFIXES, ssh_allowed_cidrs=("203.0.113.0/24",) * 5
    )


def test_user_data_fits_alibabas_limit_with_many_prefixes():
    for profile in (MODERN, LEGACY):
        size = len(encode_user_data(render(many_prefixes(gateway(profile)))))
        assert size <= USER_DATA_MAX_BYTES, f"{profile.name}: {size} bytes of user-data"
        assert too_large(render(many_prefixes(gateway(profile)))) is None


def scattered_prefixes(count: int) -> tuple[str, ...]:
    """`count` distinct /24s in 10.0.0.0/8 in no order gzip could exploit."""
    rng = random.Random(14)  # noqa: S311 (a fixed, reproducible scatter, not a secret)
    return tuple(f"10.{b >> 8}.{b & 255}.0/24" for b in rng.sample(range(1 << 16), count))


def test_user_data_beyond_alibabas_limit_is_refused_naming_the_keys():
    huge = dataclasses.replace(gateway(), aws_prefixes=scattered_prefixes(3000))
    problem = too_large(render(huge))
    assert problem is not None and "awsCidrs" in problem and str(USER_DATA_MAX_BYTES) in problem
    assert "gzipped" in problem


@pytest.mark.parametrize("kind", ["modern", "legacy", "bgp", "pair"])
def test_the_most_prefixes_the_quotas_allow_fit_alibabas_limit(kind):
    """As many prefixes as AWS's and Alibaba's quotas let the settings admit, scattered so gzip
    gains little on them, and 20 SSH sources: every kind of gateway's user-data still fits, so
    `too_large` guards only what the quotas would refuse anyway."""
    from tests.test_bgp import bgp_gateway
    from tests.test_gateway_pair import pair_gateway

    base = {"modern": gateway(), "legacy": gateway(LEGACY), "bgp": bgp_gateway(), "pair": pair_gateway(1)}[kind]
    rng = random.Random(3)  # noqa: S311 (a fixed, reproducible scatter, not a secret)
    ali = tuple(
        f"172.{16 + b % 16}.{b >> 4}.0/24" for b in rng.sample(range(1 << 12), settings.AWS_STATIC_ROUTES_PER_VPN)
    )
    gw = dataclasses.replace(
        base,
        aws_prefixes=scattered_prefixes(settings.ALI_ROUTE_ENTRIES_PER_TABLE),
        ali_prefixes=ali,
        ssh_allowed_cidrs=tuple(f"203.0.{i}.0/24" for i in range(20)),
    )
    assert too_large(render(gw)) is None


def test_user_data_is_gzipped_and_base64_the_same_bytes_every_time():
    """What the ECS is given: Base64 (the provider passes it as is) of gzip (cloud-init unpacks
    it); libdeflate's fixed header (mtime 0, OS unknown), so no machine or moment shows in it."""
    text = render(gateway())
    value = encode_user_data(text)
    raw = base64.b64decode(value, validate=True)
    assert raw[:10] == bytes.fromhex("1f8b08000000000002ff")
    assert gzip.decompress(raw).decode() == text == decode_user_data(value)
    assert encode_user_data(text) == value
    assert len(value) < len(text.encode())


def test_static_scripts_ship_unchanged_in_the_user_data():
    files = files_of(cloud_config(gateway()))
    assert shipped_text(files[paths.UPDOWN_PATH]) == static_file("aws2aliyun-updown.sh")
    assert files[paths.VERIFY_PATH]["permissions"] == "0755"


def test_host_firewall_is_installed_and_enabled_before_strongswan():
    from userdata import firewall

    doc = cloud_config(gateway())
    files = files_of(doc)
    assert "nftables" in doc["packages"]
    assert files[paths.FIREWALL_PATH]["content"] == firewall.ruleset(gateway())
    assert "WantedBy=multi-user.target" in files[paths.FIREWALL_UNIT_PATH]["content"]
    runcmd = doc["runcmd"]
    fw = runcmd.index(["systemctl", "enable", "--now", paths.FIREWALL_UNIT])
    assert fw < runcmd.index(["systemctl", "enable", "--now", "strongswan.service"])


def test_watchdog_is_installed_and_enabled_after_the_connections_are_loaded():
    from userdata import watchdog

    doc = cloud_config(gateway())
    files = files_of(doc)
    assert shipped_text(files[paths.WATCHDOG_PATH]) == static_file("aws2aliyun-watchdog.sh")
    assert files[paths.WATCHDOG_PATH]["permissions"] == "0755"
    assert f"ExecStart={paths.WATCHDOG_PATH}" in files[paths.WATCHDOG_SERVICE_PATH]["content"]
    timer = files[paths.WATCHDOG_TIMER_PATH]["content"]
    assert f"OnUnitInactiveSec={watchdog.INTERVAL_S}" in timer
    assert "WantedBy=timers.target" in timer
    runcmd = doc["runcmd"]
    enable = runcmd.index(["systemctl", "enable", "--now", paths.WATCHDOG_TIMER])
    assert enable > runcmd.index(["swanctl", "--load-all", "--noprompt"])


_SAS = {
    "established": (
        "{c}: #3, ESTABLISHED, IKEv2, 1a2b_i* 3c4d_r\n"
        "  local  '198.51.100.10' @ 172.16.1.10[4500]\n"
        "  {c}: #7, reqid 1, INSTALLED, TUNNEL, ESP:AES_GCM_16-256\n"
    ),
    "connecting": "{c}: #4, CONNECTING, IKEv2, 1a2b_i* 0000_r\n",
    "none": "",
    "childless": "{c}: #5, ESTABLISHED, IKEv2, 1a2b_i* 3c4d_r\n  local  '198.51.100.10' @ 172.16.1.10[4500]\n",
    "duplicate": (
        "{c}: #6, ESTABLISHED, IKEv1, 1a2b_i* 3c4d_r\n"
        "  {c}: #8, reqid 1, INSTALLED, TUNNEL, ESP:AES_CBC-128/HMAC_SHA1_96\n"
        "    installed 95s ago, rekeying in 1500s, expires in 3400s\n"
        "  {c}: #12, reqid 1, INSTALLED, TUNNEL, ESP:AES_CBC-128/HMAC_SHA1_96\n"
        "    installed 31s ago, rekeying in 1700s, expires in 3500s\n"
        "  {c}: #9, reqid 1, INSTALLED, TUNNEL, ESP:AES_CBC-128/HMAC_SHA1_96\n"
        "    installed 60s ago, rekeying in 1600s, expires in 3450s\n"
    ),
    "fresh-duplicate": (
        "{c}: #6, ESTABLISHED, IKEv1, 1a2b_i* 3c4d_r\n"
        "  {c}: #8, reqid 1, INSTALLED, TUNNEL, ESP:AES_CBC-128/HMAC_SHA1_96\n"
        "    installed 95s ago, rekeying in 1500s, expires in 3400s\n"
        "  {c}: #12, reqid 1, INSTALLED, TUNNEL, ESP:AES_CBC-128/HMAC_SHA1_96\n"
        "    installed 3s ago, rekeying in 1700s, expires in 3500s\n"
    ),
    # rekey collisions under load (docs/lab-findings.md #21): a superseded SA left behind
    "stale-rekeyed": (
        "{c}: #14, ESTABLISHED, IKEv1, 1a2b_i* 3c4d_r\n"
        "  {c}: #11, reqid 2, REKEYED, TUNNEL-in-UDP, ESP:AES_CBC-128/HMAC_SHA1_96/MODP_1024\n"
        "    installed 75s ago, rekeying in 1905s, expires in 3527s\n"
        "  {c}: #15, reqid 2, INSTALLED, TUNNEL-in-UDP, ESP:AES_CBC-128/HMAC_SHA1_96/MODP_1024\n"
        "    installed 69s ago, rekeying in 1923s, expires in 3531s\n"
    ),
    "stale-deleted": (
        "{c}: #8, ESTABLISHED, IKEv2, 4a57_i 982d_r*\n"
        "  {c}: #7, reqid 1, DELETED, TUNNEL-in-UDP, ESP:AES_GCM_16-256/ECP_256\n"
        "    installed 95s ago, rekeying in 1854s, expires in 3505s\n"
        "  {c}: #8, reqid 1, INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16-256/ECP_256\n"
        "    installed 89s ago, rekeying in 1858s, expires in 3511s\n"
    ),
    # charon's own few seconds after a rekey: not the watchdog's business yet
    "just-rekeyed": (
        "{c}: #8, ESTABLISHED, IKEv2, 4a57_i 982d_r*\n"
        "  {c}: #7, reqid 1, DELETED, TUNNEL-in-UDP, ESP:AES_GCM_16-256\n"
        "    installed 95s ago, rekeying in 1854s, expires in 3505s\n"
        "  {c}: #9, reqid 1, INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16-256\n"
        "    installed 2s ago, rekeying in 1858s, expires in 3511s\n"
    ),
    "rekeyed-only": (
        "{c}: #8, ESTABLISHED, IKEv1, 4a57_i 982d_r*\n"
        "  {c}: #7, reqid 1, REKEYED, TUNNEL-in-UDP, ESP:AES_CBC-128/HMAC_SHA1_96\n"
        "    installed 95s ago, rekeying in 1854s, expires in 3505s\n"
    ),
    "rekeying": (
        "{c}: #6, ESTABLISHED, IKEv2, 1a2b_i* 3c4d_r\n"
        "  {c}: #8, reqid 1, REKEYING, TUNNEL, ESP:AES_GCM_16-256\n"
        "  {c}: #9, reqid 1, INSTALLED, TUNNEL, ESP:AES_GCM_16-256\n"
    ),
}


@pytest.mark.parametrize(
    ("state1", "state2", "initiated", "terminated"),
    [
        ("established", "established", [], []),
        ("none", "established", ["tunnel1"], []),
        ("connecting", "none", ["tunnel2"], []),
        ("childless", "rekeying", ["tunnel1"], []),
        ("none", "none", ["tunnel1", "tunnel2"], []),
        ("established", "duplicate", [], ["8", "9"]),  # all but the newest (#12)
        ("fresh-duplicate", "established", [], []),  # maybe a rekey in progress: wait
        ("stale-rekeyed", "stale-deleted", [], ["11", "7"]),
        ("just-rekeyed", "rekeyed-only", [], []),
    ],
)
def test_watchdog_initiates_only_a_tunnel_without_sas(tmp_path, state1, state2, initiated, terminated):
    """The watchdog script itself, against a stand-in `swanctl` printing charon's list format."""
    calls, syslog = _run_watchdog(tmp_path, {1: state1, 2: state2}, None, {"INITIATE_TIMEOUT": "7"})
    assert [c.split()[2] for c in calls if c.startswith("--initiate")] == initiated
    assert all("--timeout 7" in c for c in calls if c.startswith("--initiate"))
    assert [c.split()[2] for c in calls if c.startswith("--terminate --child-id")] == terminated
    for conn in initiated:
        assert f"{conn}: " in syslog and "initiating" in syslog


def test_watchdog_asks_again_before_initiating_a_tunnel_whose_ike_sa_is_busy(tmp_path):
    """`--list-sas --noblock` leaves out an IKE SA that is checked out (its updown running): the
    watchdog asks again, waiting, before it takes that for "no IKE SA" (the lab saw it start a
    duplicate on the gateway that had just taken over)."""
    (tmp_path / "tunnel1.busy").touch()
    calls, _ = _run_watchdog(tmp_path, {1: "established", 2: "established"}, None)
    assert not [c for c in calls if c.startswith("--initiate")]
    assert "--list-sas --ike tunnel1" in calls  # the second, blocking, question
    (tmp_path / "calls").unlink()
    calls, _ = _run_watchdog(tmp_path, {1: "none", 2: "established"}, None)
    assert [c.split()[2] for c in calls if c.startswith("--initiate")] == ["tunnel1"]


def _run_watchdog(tmp_path, states: dict[int, str], liveness: dict | None, extra_env: dict | None = None):
    """The watchdog script against a stand-in `swanctl` (charon's list format), with the
    liveness daemon's state file; returns the swanctl calls and what it logged."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    log = tmp_path / "calls"
    for n, state in states.items():
        (tmp_path / f"tunnel{n}.sas").write_text(_SAS[state].format(c=f"tunnel{n}"))
    (bindir / "swanctl").write_text(
        "#!/bin/bash\n"
        f'echo "$*" >> {log}\n'
        "echo \"plugin 'x': failed to load\"\n"
        'if [ "$1" = --list-sas ]; then for a; do case $a in tunnel*) '
        # a busy IKE SA (checked out) is left out of what --noblock lists
        f'[ -e {tmp_path}/$a.busy ] && [ "$2" = --noblock ] || cat {tmp_path}/$a.sas;; esac; done; fi\n'
        'if [ "$1" = --initiate ]; then echo "initiate completed successfully"; fi\n'
    )
    (bindir / "logger").write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/syslog\n')
    for f in bindir.iterdir():
        f.chmod(0o755)
    state_file = tmp_path / "liveness.json"
    if liveness is not None:
        state_file.write_text(json.dumps(liveness))
    # the shipped liveness script's own --dead-for, reading that state file
    liveness_cli = bindir / "aws2aliyun-liveness"
    liveness_cli.write_text(
        f'#!/bin/sh\nAWS2ALIYUN_LIVENESS_STATE={state_file} exec python3 {FILES / "aws2aliyun-liveness.py"} "$@"\n'
    )
    liveness_cli.chmod(0o755)
    env = {
        "PATH": f"{bindir}:/usr/bin:/bin",
        "LIVENESS": str(liveness_cli),
        "WATCHDOG_RUN_DIR": str(tmp_path / "run"),
        "DEAD_CHILD_AFTER": "48",
        **(extra_env or {}),
    }
    out = subprocess.run(["bash", str(FILES / "aws2aliyun-watchdog.sh")], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    calls = log.read_text().splitlines() if log.exists() else []
    syslog = (tmp_path / "syslog").read_text() if (tmp_path / "syslog").exists() else ""
    return calls, syslog


def _liveness(state: str, for_s: float, age_s: float = 0.5) -> dict:
    t = {"vti": "Tunnel1", "target": "169.254.121.1", "state": state, "for_s": for_s}
    return {"updated": time.time() - age_s, "routed": [], "tunnels": {"tunnel1": t}}


@pytest.mark.parametrize(
    ("liveness", "recreated"),
    [
        (("dead", 61.7), True),  # the lab's orphan: IKE answers, ESP does not
        (("dead", 30.0), False),  # an outage DPD has not judged yet: DPD's business
        (("alive", 300.0), False),
        (("dead", 61.7, 60), False),  # the daemon is not running: no evidence
        (None, False),
    ],
)
def test_watchdog_recreates_a_child_sa_dead_underneath_an_established_tunnel(tmp_path, liveness, recreated):
    liveness = _liveness(*liveness) if liveness else None  # its clock: now, not at collection
    calls, syslog = _run_watchdog(tmp_path, {1: "established", 2: "established"}, liveness)
    terminated = [c.split()[2] for c in calls if c.startswith("--terminate --child-id")]
    initiated = [c.split()[2] for c in calls if c.startswith("--initiate")]
    assert (terminated, initiated) == ((["7"], ["tunnel1"]) if recreated else ([], []))
    if recreated:
        assert "tunnel1: established, but nothing answered through it for 61s" in syslog
        # at most once per DEAD_CHILD_AFTER: the next run leaves it to the new CHILD_SA
        again, _ = _run_watchdog(tmp_path, {1: "established", 2: "established"}, liveness)
        assert not [c for c in again[len(calls) :] if c.startswith(("--terminate", "--initiate"))]


XFRM_STATE = "src 172.16.1.10 dst 192.0.2.10\\tproto esp spi 0x{spi} reqid 2 mode tunnel\\tmark 0x64/0xffffffff\n"


@pytest.mark.parametrize(
    ("verb", "sas", "vti_down"),
    [
        ("up-client", 1, False),
        ("down-client", 1, True),  # the tunnel's last CHILD_SA: the VTI goes down, its routes with it
        ("down-client", 2, False),  # a duplicate or a collision's loser closing: the other keeps the VTI
    ],
)
def test_updown_manages_the_vti_and_leaves_the_routes_to_the_liveness_daemon(tmp_path, verb, sas, vti_down):
    """The updown script itself, against stand-ins for ip/iptables/logger (and /proc, /sys)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "calls"
    env_file = tmp_path / "link.env"
    env_file.write_text(link_env(gateway()))
    proc_conf = tmp_path / "conf"
    for nic in ("Tunnel1", "eth0"):
        (proc_conf / nic).mkdir(parents=True)
    (bindir / "ip").write_text(
        "#!/bin/bash\n"
        f'echo "exec ip $*" >> {calls}\n'
        'if [ "$*" = "-batch -" ]; then while read -r line; do echo "ip $line" >> '
        + str(calls)
        + "; done; exit 0; fi\n"
        f'echo "ip $*" >> {calls}\n'
        'case "$*" in\n'
        '  "-o route get "*) echo "192.0.2.10 via 172.16.1.1 dev eth0 src 172.16.1.10 uid 0 \\    cache " ;;\n'
        f"  \"-o xfrm state list src 172.16.1.10 dst 192.0.2.10 proto esp\") printf '{''.join(XFRM_STATE.format(spi=f'c0ffee0{i}') for i in range(sas))}' ;;\n"
        "esac\n"
    )
    for name in ("iptables", "logger"):
        (bindir / name).write_text(f'#!/bin/sh\necho "exec {name}" >> {calls}\necho "{name} $*" >> {calls}\n')
    for f in bindir.iterdir():
        f.chmod(0o755)
    env = {
        "PATH": f"{bindir}:/usr/bin:/bin",
        "AWS2ALIYUN_LINK_ENV": str(env_file),
        "PROC_CONF": str(proc_conf),
        "SYS_NET": str(tmp_path / "sys-class-net"),  # no VTI yet
        "PLUTO_VERB": verb,
        "PLUTO_ME": "172.16.1.10",
        "PLUTO_PEER": "192.0.2.10",
    }
    out = subprocess.run(
        ["bash", str(FILES / "aws2aliyun-updown.sh"), "tunnel1"], env=env, capture_output=True, text=True, timeout=10
    )
    assert out.returncode == 0, out.stderr
    text = calls.read_text()
    if verb == "up-client":
        assert "ip link add Tunnel1 type vti local 172.16.1.10 remote 192.0.2.10 key 100" in text
        assert "ip addr add 169.254.121.2/30 dev Tunnel1" in text
        assert "ip link set dev Tunnel1 mtu" in text and "TCPMSS" in text
        sysctls = {str(f.relative_to(proc_conf)): f.read_text().strip() for f in proc_conf.glob("*/*")}
        assert sysctls == {
            "Tunnel1/disable_policy": "1",
            "Tunnel1/rp_filter": "2",
            "eth0/disable_xfrm": "1",
            "eth0/disable_policy": "1",
        }
        # few processes: charon holds its event bus while the script runs
        assert text.count("exec ") <= 6, text
    else:
        assert "cannot" not in text
    if verb == "down-client" and not vti_down:
        assert f"one of {sas} CHILD_SAs closed" in text
    assert "ip route" not in text, "routes belong to aws2aliyun-liveness"
