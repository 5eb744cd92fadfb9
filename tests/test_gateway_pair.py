"""A gateway pair behind a HaVip (issue 13): settings, the plan under mocks, both gateways'
user-data (keepalived checked by keepalived itself), and the rolling replacement replayed with
`tools.rollout`."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from components import gateway_pair
from core import crypto, paths
from core.settings import SettingsError, load_settings, pair_addresses
from tests.conftest import dev_values, plan_for, stack_with
from tests.test_userdata import GOLDEN, files_of, gateway, many_prefixes
from tools import offline, rollout
from tools.mocks import CloudMocks
from userdata import HaPair, keepalived, render
from userdata import swanctl as sw
from userdata.cloud_config import USER_DATA_MAX_BYTES, decode_user_data, encode_user_data, shipped_text
from userdata.firewall import ruleset
from userdata.watchdog import service as watchdog_service

ROOT = Path(__file__).resolve().parent.parent
ECS = "alicloud:ecs/instance:Instance"
HAVIP = "alicloud:vpc/haVipv2:HaVipv2"
ATTACHMENT = "alicloud:vpc/hAVipAttachment:HAVipAttachment"
EIP_ASSOC = "alicloud:ecs/eipAssociation:EipAssociation"
ROUTE = "alicloud:vpc/routeEntry:RouteEntry"
INVOCATION = "alicloud:ecs/ecsInvocation:EcsInvocation"
COMMAND = "alicloud:ecs/command:Command"
SG_RULE = "alicloud:ecs/securityGroupRule:SecurityGroupRule"
PASSWORD = "Ab3dE6gH"


def pair_gateway(number: int):
    return dataclasses.replace(
        gateway(), ha=HaPair(number, ("172.16.1.10", "172.16.1.11"), "172.16.1.12", 24, PASSWORD)
    )


def pair_plan(**overrides) -> offline.Plan:
    return plan_for(gatewayCount="2", **overrides)


def named(plan: offline.Plan, name: str) -> offline.Resource:
    return next(r for r in plan.resources if r.name == name)


# --- settings -------------------------------------------------------------------------


def test_one_gateway_stays_the_default():
    s = load_settings(dev_values())
    assert s.gateway_count == 1 and not s.is_pair and s.havip_address is None


@pytest.mark.parametrize(
    ("vswitch", "expected"),
    [
        ("172.16.1.0/24", ("172.16.1.10", "172.16.1.11", "172.16.1.12")),
        ("172.16.1.0/28", ("172.16.1.10", "172.16.1.11", "172.16.1.12")),
        # /29: Alibaba reserves the first and the last three, hosts 1 to 4 are free
        ("172.16.1.8/29", ("172.16.1.10", "172.16.1.11", "172.16.1.12")),
        ("10.0.0.0/29", ("10.0.0.2", "10.0.0.3", "10.0.0.4")),
    ],
)
def test_pair_addresses_are_free_hosts_of_the_vswitch(vswitch, expected):
    net = ipaddress.ip_network(vswitch)
    got = pair_addresses(net)
    assert tuple(map(str, got)) == expected
    usable = list(net)[1 : net.num_addresses - 3]
    assert all(a in usable for a in got)


def test_a_pair_takes_its_addresses_from_the_vswitch_and_keeps_gateway_1_where_one_was():
    s = load_settings(dev_values(gatewayCount="2"))
    assert s.is_pair
    assert [str(a) for a in s.gateway_private_ips] == ["172.16.1.10", "172.16.1.11"]
    assert str(s.havip_address) == "172.16.1.12"
    assert s.gateway_private_ips[0] == load_settings(dev_values()).ecs_private_ip


@pytest.mark.parametrize("bad", ["3", "0"])
def test_gateway_count_must_be_1_or_2(bad):
    with pytest.raises(SettingsError) as e:
        load_settings(dev_values(gatewayCount=bad))
    assert any(re.match(r"gatewayCount: .* is invalid: expected 1 .* or 2 ", line) for line in e.value.problems), (
        e.value.problems
    )


def test_a_pair_in_an_existing_vswitch_is_refused_naming_both_keys():
    with pytest.raises(SettingsError) as e:
        load_settings(
            dev_values(
                gatewayCount="2",
                aliVpcId="vpc-bp1opxu1zkhn00gzv26cc",
                aliVswitchId="vsw-bp1s5fnvk4gn2tws03624",
                aliVswitchCidr=None,
                aliVpcCidr=None,
            )
        )
    problem = next(p for p in e.value.problems if p.startswith("gatewayCount"))
    assert "aliVswitchId" in problem and "aliVswitchCidr" in problem


# --- the plan ---------------------------------------------------------------------------


def test_a_pair_plans_two_gateways_behind_one_havip():
    plan = pair_plan()
    gateways = sorted(plan.of_type(ECS), key=lambda r: r.name)
    assert [g.name for g in gateways] == ["link-gateway", "link-gateway-2"]
    assert [g.input("privateIp") for g in gateways] == ["172.16.1.10", "172.16.1.11"]
    assert [g.input("hostName") for g in gateways] == ["aws2aliyun-gw1", "aws2aliyun-gw2"]
    assert all(g.options["deleteBeforeReplace"] and "userData" in g.options["replaceOnChanges"] for g in gateways)
    havip = plan.one(HAVIP)
    assert havip.input("ipAddress") == "172.16.1.12"
    assert havip.input("vswitchId") == plan.one("alicloud:vpc/switch:Switch").id
    attached = sorted(a.input("instanceId") for a in plan.of_type(ATTACHMENT))
    assert attached == sorted(g.id for g in gateways)
    assert {a.input("haVipId") for a in plan.of_type(ATTACHMENT)} == {havip.id}
    assert all(a.input("instanceType") == "EcsInstance" for a in plan.of_type(ATTACHMENT))


def test_the_eip_and_the_route_entries_point_at_the_havip():
    plan = pair_plan()
    havip = plan.one(HAVIP)
    assoc = plan.one(EIP_ASSOC)
    assert (assoc.input("instanceType"), assoc.input("instanceId")) == ("HaVip", havip.id)
    routes = plan.of_type(ROUTE)
    assert routes and all((r.input("nexthopType"), r.input("nexthopId")) == ("HaVip", havip.id) for r in routes)
    # AWS still sees one customer gateway and one connection with two tunnels
    assert len(plan.of_type("aws:ec2/customerGateway:CustomerGateway")) == 1
    assert len(plan.of_type("aws:ec2/vpnConnection:VpnConnection")) == 1
    assert plan.outputs["haVipAddress"] == "172.16.1.12"
    assert plan.outputs["ecsPrivateIps"] == ["172.16.1.10", "172.16.1.11"]


def test_one_gateway_has_no_pair_resources():
    plan = plan_for()
    for t in (HAVIP, ATTACHMENT, INVOCATION, COMMAND):
        assert plan.of_type(t) == []
    assert plan.one(EIP_ASSOC).input("instanceType") == "EcsInstance"
    assert plan.outputs["haVipAddress"] == ""
    assert not [r for r in plan.of_type(SG_RULE) if "-ha-" in r.name]


def test_the_security_group_admits_vrrp_from_each_gateway_only():
    rules = {r.name: r for r in pair_plan().of_type(SG_RULE)}
    ha = {n: r for n, r in rules.items() if "-sg-ha-" in n}
    assert {r.input("cidrIp") for r in ha.values()} == {"172.16.1.10/32", "172.16.1.11/32"}
    assert all(r.input("ipProtocol") == "all" and r.input("type") == "ingress" for r in ha.values())


def test_the_vrrp_password_is_a_generated_secret_in_both_user_datas():
    plan = pair_plan()
    password = named(plan, "link-vrrp-auth")
    assert password.input("length") == keepalived.VRRP_PASSWORD_LENGTH and password.input("special") is False
    secret = password.output("result")
    for g in plan.of_type(ECS):
        assert offline.is_secret(g.inputs["userData"])
        conf = shipped_text(files_of(yaml.safe_load(decode_user_data(g.input("userData"))))[paths.KEEPALIVED_CONF_PATH])
        assert f"auth_pass {secret}" in conf


def test_the_two_user_datas_differ_only_in_the_gateways_place_in_the_pair():
    g1, g2 = sorted(pair_plan().of_type(ECS), key=lambda r: r.name)
    c1 = shipped_text(files_of(yaml.safe_load(decode_user_data(g1.input("userData"))))[paths.KEEPALIVED_CONF_PATH])
    c2 = shipped_text(files_of(yaml.safe_load(decode_user_data(g2.input("userData"))))[paths.KEEPALIVED_CONF_PATH])
    assert "unicast_src_ip 172.16.1.10" in c1 and "unicast_src_ip 172.16.1.11" in c2
    assert re.search(r"unicast_peer \{\s+172\.16\.1\.11\s+\}", c1)
    assert re.search(r"unicast_peer \{\s+172\.16\.1\.10\s+\}", c2)
    strip = re.compile(r"gw[12]|gateway [12]|172\.16\.1\.1[01]|priority \d+")
    assert strip.sub("", c1) == strip.sub("", c2)


# --- the gateways' configuration -------------------------------------------------------------


def test_keepalived_is_unicast_authenticated_and_never_preempts():
    conf = keepalived.conf(pair_gateway(1))
    assert "state BACKUP" in conf and "nopreempt" in conf
    assert "unicast_src_ip 172.16.1.10" in conf
    assert "auth_type PASS" in conf and f"auth_pass {PASSWORD}" in conf
    assert "172.16.1.12/24 dev eth0" in conf
    assert f'notify "{paths.HA_PATH} notify"' in conf
    assert keepalived.takeover_s(2) < 4


def test_charons_exit_is_tracked_as_a_process_not_only_polled():
    """A dead charon puts the active gateway in FAULT at once (the kernel's process events),
    which sends the priority-0 advert the standby takes over on; the track script stays."""
    conf = keepalived.conf(pair_gateway(1))
    block = re.search(r"vrrp_track_process (\w+) \{(.*?)\n\}", conf, re.S)
    assert block and f"process {keepalived.CHARON_PROCESS}" in block.group(2)
    assert re.search(r"weight 0\b", block.group(2))  # weight 0: FAULT, not a lower priority
    assert re.search(r"track_process \{\s+" + block.group(1) + r"\s+\}", conf)
    assert re.search(r"track_script \{\s+charon_ready\s+\}", conf)


@pytest.mark.parametrize("bad", ["short", "has space", "x" * 9])
def test_a_bad_vrrp_password_is_refused(bad):
    gw = dataclasses.replace(gateway(), ha=HaPair(1, ("172.16.1.10", "172.16.1.11"), "172.16.1.12", 24, bad))
    with pytest.raises(ValueError, match="VRRP password"):
        keepalived.conf(gw)


@pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived not installed (make deps)")
@pytest.mark.parametrize("number", [1, 2])
def test_keepalived_accepts_the_rendered_configuration(tmp_path, number):
    """keepalived's own config test, the track and notify script pointing at the shipped one."""
    conf = keepalived.conf(pair_gateway(number)).replace(paths.HA_PATH, str(ROOT / "userdata/files/aws2aliyun-ha.sh"))
    path = tmp_path / "keepalived.conf"
    path.write_text(conf)
    out = subprocess.run(["keepalived", "-t", "-l", "-f", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    broken = tmp_path / "broken.conf"
    broken.write_text(conf.replace("nopreempt", "no_preempt_please"))
    out = subprocess.run(["keepalived", "-t", "-l", "-f", str(broken)], capture_output=True, text=True)
    assert out.returncode != 0, "the config test must be able to fail"


def test_on_a_pair_ike_binds_to_the_havip_and_only_the_active_one_initiates():
    conf = sw.swanctl_conf(pair_gateway(2))
    assert conf.count("local_addrs = 172.16.1.12") == 2
    assert "start_action = none" in conf and "start_action = start" not in conf
    # the IKE identity stays the EIP: AWS sees one peer whichever gateway is active
    assert conf.count("id = 198.51.100.10") == 2


def test_the_watchdog_runs_only_on_the_active_gateway_of_a_pair():
    assert f"ExecCondition={paths.HA_PATH} is-master" in watchdog_service(2, pair=True)
    assert "ExecCondition" not in watchdog_service(2)


def test_the_host_firewall_admits_vrrp_from_the_peer_only():
    rules = ruleset(pair_gateway(1))
    assert "ip saddr 172.16.1.11 ip protocol 112 accept" in rules
    assert "protocol 112" not in ruleset(gateway())


def test_a_pair_gateway_ships_keepalived_and_its_scripts():
    doc = yaml.safe_load(render(pair_gateway(1)))
    assert "keepalived" in doc["packages"]
    files = files_of(doc)
    assert files[paths.KEEPALIVED_CONF_PATH]["permissions"] == "0600"
    assert files[paths.HA_PATH]["permissions"] == "0755"
    # keepalived starts last: once strongSwan has loaded the connections it may initiate
    assert doc["runcmd"][-1] == ["systemctl", "enable", "--now", paths.KEEPALIVED_SERVICE]
    assert len(encode_user_data(render(many_prefixes(pair_gateway(1))))) <= USER_DATA_MAX_BYTES


def test_one_gateway_user_data_is_unchanged_by_the_pair():
    """Existing single gateways are not replaced by this feature (their golden files hold)."""
    assert render(gateway()) == (GOLDEN / "cloud-config.modern.yaml").read_text()


@pytest.mark.parametrize("number", [1, 2])
def test_golden_pair(number):
    path = GOLDEN / f"keepalived.gateway{number}.conf"
    text = keepalived.conf(pair_gateway(number))
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"{path} missing: run `make golden`"
    assert text == path.read_text(), f"{path.name} differs from its golden file: review, then `make golden`"


def test_the_ready_gate_waits_for_the_script_and_gives_up_in_time():
    script = keepalived.ready_script()
    assert f"{paths.HA_PATH} ready" in script
    tries = int(re.search(r"seq 1 (\d+)", script).group(1))
    assert tries * keepalived.READY_POLL_S < keepalived.READY_TIMEOUT_S


# --- rolling replacement ---------------------------------------------------------------------


def test_pulumi_up_creates_the_standby_and_gates_the_other_on_it():
    plan = pair_plan()
    first, second = named(plan, "link-gateway-2"), named(plan, "link-gateway")
    gate = plan.one(INVOCATION)
    assert gate.input("instanceIds") == [first.id]
    assert gate.input("commandId") == plan.one(COMMAND).id
    assert gate.urn in second.depends_on
    assert plan.one(COMMAND).input("timeout") == keepalived.READY_TIMEOUT_S


def test_the_order_follows_which_gateway_holds_the_havip():
    mocks = CloudMocks(active_gateway="aws2aliyun-vpc-dev-link-gateway-2")
    plan = offline.run(stack_with(gatewayCount="2"), mocks=mocks)
    gate = plan.one(INVOCATION)
    assert gate.input("instanceIds") == [named(plan, "link-gateway").id], "gateway 2 is active: gateway 1 first"
    assert gate.urn in named(plan, "link-gateway-2").depends_on
    assert gateway_pair.rollout_order(None) == (2, 1) and gateway_pair.rollout_order(1) == (2, 1)


@pytest.mark.parametrize("active", [None, "aws2aliyun-vpc-dev-link-gateway-2"])
def test_a_user_data_change_replaces_the_standby_then_the_active_one(active):
    """Item 3: one hand-over, never both gateways down. A new PSK changes both user-datas."""
    mocks = CloudMocks(active_gateway=active)
    psks = {"tunnel1PresharedKey": "Rotated.tunnel1_key", "tunnel2PresharedKey": "Rotated.tunnel2_key"}
    before = offline.run(stack_with(gatewayCount="2"), mocks=mocks)
    after = offline.run(stack_with(gatewayCount="2", **psks), mocks=mocks)
    steps = rollout.simulate(before, after)
    assert steps.problems == []
    standby, active_one = ("link-gateway", "link-gateway-2") if active else ("link-gateway-2", "link-gateway")
    for g in (standby, active_one):
        assert steps.ops(g) == ["delete", "create"]
    gate = "link-standby-ready"
    assert steps.ops(gate) == ["delete", "create"], "the gate runs again on the new standby"
    assert steps.index("create", standby) < steps.index("create", gate) < steps.index("delete", active_one)
    # the HaVip, the EIP association and the route entries stay where they are
    for kept in ("link-havip", "link-eip-assoc", "link-route-to-aws-10-10-0-0-16"):
        assert steps.ops(kept) == []
    # each gateway's own attachment follows it (instance_id is ForceNew); the other's stays
    attachment = {"link-gateway": "link-havip-gateway-1", "link-gateway-2": "link-havip-gateway-2"}
    for g in (standby, active_one):
        assert steps.index("delete", attachment[g]) < steps.index("delete", g) < steps.index("create", attachment[g])


def test_moving_from_one_gateway_to_a_pair_keeps_gateway_1s_resource():
    before, after = plan_for(), pair_plan()
    steps = rollout.simulate(before, after)
    assert steps.problems == []
    assert steps.ops("link-gateway") == ["delete", "create"]
    assert steps.ops("link-gateway-2") == ["create"]
    assert steps.ops("link-havip") == ["create"]
    assert steps.ops("link-eip-assoc") == ["delete", "create"], "from the instance to the HaVip"


# --- aws2aliyun-ha, run with fake tools -------------------------------------------------------


def ha_env(tmp_path: Path, *, charon_pid: str = "100", cloud_init: str = "done", conns: int = 2, sas: int = 0) -> dict:
    """A PATH of fakes for the tools aws2aliyun-ha calls; every call is logged to calls.log."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    calls = tmp_path / "calls.log"
    (tmp_path / "pid").write_text(charon_pid)
    listing = "".join(f"tunnel{n}: IKEv2, no reauthentication\\n" for n in range(1, conns + 1))
    held = "".join(f"tunnel{n}: #{n}, ESTABLISHED, IKEv2\\n" for n in range(1, sas + 1))
    vici = tmp_path / "vici.sock"
    if not vici.exists():
        import socket

        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(vici))  # a socket file, as charon's control socket
    fakes = {
        "pidof": f'p=$(cat {tmp_path}/pid); [ -n "$p" ] && echo "$p"',
        "swanctl": f'echo "swanctl $*" >> {calls}; case "$*" in *--list-conns*) printf "{listing}";; '
        + f'*--list-sas*) printf "{held}";; esac; exit 0',
        "cloud-init": f'echo "status: {cloud_init}"',
        "ip": f'echo "ip $*" >> {calls}; echo "IPsec SA count {2 * sas}"',
        "systemctl": f'echo "systemctl $*" >> {calls}',
        "modprobe": f'echo "modprobe $*" >> {calls}',
        "logger": f'echo "logger $*" >> {calls}',
        "verify": "exit 0",
        "updown": f'echo "updown $*" >> {calls}',
    }
    esp = tmp_path / "esp-algorithms"
    esp.write_text(keepalived.esp_algorithms(pair_gateway(1)))
    for name, body in fakes.items():
        (bindir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bindir / name).chmod(0o755)
    return {
        "PATH": f"{bindir}:/usr/bin:/bin",
        "AWS2ALIYUN_RUN_DIR": str(tmp_path / "run"),
        "AWS2ALIYUN_STANDBY_CONF": str(tmp_path / "standby.conf"),
        "AWS2ALIYUN_ESP_ALGORITHMS": str(esp),
        "AWS2ALIYUN_VICI_SOCKET": str(vici),
        "VERIFY": str(bindir / "verify"),
        "AWS2ALIYUN_UPDOWN": str(bindir / "updown"),
    }


def ha(tmp_path: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    script = ROOT / "userdata" / "files" / "aws2aliyun-ha.sh"
    return subprocess.run(["bash", str(script), *args], env=env, capture_output=True, text=True, timeout=30)


def calls(tmp_path: Path) -> str:
    path = tmp_path / "calls.log"
    return path.read_text() if path.exists() else ""


def test_becoming_master_takes_both_tunnels(tmp_path):
    env = ha_env(tmp_path)
    assert ha(tmp_path, env, "notify", "INSTANCE", "aws2aliyun", "MASTER", "101").returncode == 0
    assert (tmp_path / "run" / "ha-role").read_text().strip() == "MASTER"
    log = calls(tmp_path)
    assert "swanctl --load-conns" in log and "--file" not in log  # the connections, from /etc/swanctl
    for t in ("tunnel1", "tunnel2"):
        assert f"swanctl --initiate --child {t}" in log
    # no SA in the kernel: charon is not asked which it holds (a swanctl call less to hand over)
    assert "--list-sas" not in log
    assert ha(tmp_path, env, "is-master").returncode == 0


def test_becoming_master_again_initiates_only_a_tunnel_without_an_sa(tmp_path):
    env = ha_env(tmp_path, sas=1)  # tunnel1 has an IKE SA
    ha(tmp_path, env, "notify", "INSTANCE", "aws2aliyun", "MASTER", "101")
    log = calls(tmp_path)
    assert "swanctl --initiate --child tunnel2" in log and "--initiate --child tunnel1" not in log


def test_the_active_gateway_is_not_master_for_the_watchdog_while_it_takes_over(tmp_path):
    """The watchdog runs only when `is-master` says so: not while a transition holds the lock
    (the hand-over's own initiations under way; the lab saw the watchdog start a second IKE SA
    for tunnel 1 a second after a take-over began)."""
    env = ha_env(tmp_path)
    ha(tmp_path, env, "notify", "INSTANCE", "aws2aliyun", "BACKUP", "101")
    # keepalived said MASTER, the take-over has not run yet (the role is written first)
    (tmp_path / "run" / "ha-role").write_text("MASTER\n")
    assert ha(tmp_path, env, "is-master").returncode != 0
    ha(tmp_path, env, "notify", "INSTANCE", "aws2aliyun", "MASTER", "101")
    assert ha(tmp_path, env, "is-master").returncode == 0
    lock = tmp_path / "run" / "ha.lock"
    holder = subprocess.Popen(["flock", str(lock), "sleep", "30"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["flock", "-n", str(lock), "true"]).returncode == 0:
            assert time.monotonic() < deadline, "the stand-in transition never took the lock"
            time.sleep(0.05)
        assert ha(tmp_path, env, "is-master").returncode != 0
    finally:
        os.killpg(holder.pid, signal.SIGKILL)  # flock and the sleep that holds the lock
        holder.wait()
    assert ha(tmp_path, env, "is-master").returncode == 0


@pytest.mark.parametrize("state", ["BACKUP", "FAULT", "STOP"])
def test_any_other_state_releases_both_tunnels(tmp_path, state):
    env = ha_env(tmp_path)
    ha(tmp_path, env, "notify", "INSTANCE", "aws2aliyun", "MASTER", "101")
    assert ha(tmp_path, env, "notify", "INSTANCE", "aws2aliyun", state, "101").returncode == 0
    assert (tmp_path / "run" / "ha-role").read_text().strip() == state
    log = calls(tmp_path)
    # the connections unloaded first (nothing left to initiate, not even a DPD or close restart)
    assert f"swanctl --load-conns --file {tmp_path / 'standby.conf'}" in log
    for t in ("tunnel1", "tunnel2"):
        assert f"swanctl --terminate --ike {t} --force" in log
        assert log.rindex("--load-conns") < log.rindex(f"--terminate --ike {t}")
    assert ha(tmp_path, env, "is-master").returncode != 0


def test_a_standby_turning_standby_again_does_not_release_twice(tmp_path):
    """charon killed under the active gateway: keepalived goes FAULT, then BACKUP once systemd
    restarted it; the second transition costs no strongSwan call (the new active needs the CPU
    on a shared host)."""
    env = ha_env(tmp_path)
    ha(tmp_path, env, "notify", "INSTANCE", "aws2aliyun", "MASTER", "101")
    ha(tmp_path, env, "notify", "INSTANCE", "aws2aliyun", "FAULT", "101")
    assert "--terminate" in calls(tmp_path)
    (tmp_path / "calls.log").write_text("")
    assert ha(tmp_path, env, "notify", "INSTANCE", "aws2aliyun", "BACKUP", "101").returncode == 0
    assert "swanctl" not in calls(tmp_path) and "already standby" in calls(tmp_path)
    ha(tmp_path, env, "notify", "INSTANCE", "aws2aliyun", "MASTER", "101")
    (tmp_path / "calls.log").write_text("")
    ha(tmp_path, env, "notify", "INSTANCE", "aws2aliyun", "BACKUP", "101")
    assert "--terminate --ike tunnel1" in calls(tmp_path)  # from MASTER it releases again


def test_a_standby_that_still_holds_sas_releases_them_at_its_next_check(tmp_path):
    """A MASTER that turned BACKUP while its initiation was still running (or any SA a
    standby gets) is released by the track script, which keepalived runs every CHECK_INTERVAL_S."""
    env = ha_env(tmp_path, sas=2)
    ha(tmp_path, env, "notify", "INSTANCE", "aws2aliyun", "BACKUP", "100")
    (tmp_path / "calls.log").write_text("")
    assert ha(tmp_path, env, "check").returncode == 0  # a healthy standby: no hand-over
    log = calls(tmp_path)
    assert "still holds SAs" in log and "swanctl --terminate --ike tunnel1 --force" in log
    # what charon did not hold (a killed charon's SAs stay in the kernel) is flushed, after
    assert "ip xfrm state flush" in log and "ip xfrm policy flush" in log
    assert log.rindex("--terminate --ike tunnel2") < log.index("ip xfrm state flush")
    ha(tmp_path, env, "notify", "INSTANCE", "aws2aliyun", "MASTER", "101")
    (tmp_path / "calls.log").write_text("")
    assert ha(tmp_path, env, "check").returncode == 0
    assert "--terminate" not in calls(tmp_path)  # the active gateway keeps its SAs


def test_a_standby_readying_its_kernel_is_not_asked_for_its_sas(tmp_path):
    """While a standby readies its kernel (the lock held, every IPsec netlink call waiting for
    the module loads), the track script does not count SAs: in the lab it timed out doing so
    and keepalived went FAULT."""
    env = ha_env(tmp_path, sas=2)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "ha-role").write_text("BACKUP\n")
    assert ha(tmp_path, env, "check").returncode == 0
    assert "ip xfrm" not in calls(tmp_path) and "still holds SAs" not in calls(tmp_path)


def test_the_standby_connection_set_is_empty_and_where_the_script_loads_it():
    from core import paths
    from userdata import keepalived

    script = (ROOT / "userdata" / "files" / "aws2aliyun-ha.sh").read_text()
    assert f"AWS2ALIYUN_STANDBY_CONF:-{paths.HA_STANDBY_CONF_PATH}" in script
    conf = keepalived.standby_conf()
    assert "connections {\n}" in conf and "children" not in conf
    # the check is light: keepalived runs it every CHECK_INTERVAL_S (no swanctl in it)
    check = script[script.index("check() {") : script.index("# Ready to carry")]
    assert "swanctl --" not in check.replace("become_standby", "")


def test_check_fails_without_charon_and_when_it_restarted_under_the_active_gateway(tmp_path):
    env = ha_env(tmp_path)
    assert ha(tmp_path, env, "check").returncode == 0
    ha(tmp_path, env, "notify", "INSTANCE", "aws2aliyun", "MASTER", "101")
    assert ha(tmp_path, env, "check").returncode == 0
    (tmp_path / "pid").write_text("200")  # systemd restarted charon: its SAs are gone
    out = ha(tmp_path, env, "check")
    assert out.returncode == 1 and "restarted" in out.stdout
    (tmp_path / "pid").write_text("")
    out = ha(tmp_path, env, "check")
    assert out.returncode == 1 and "not running" in out.stdout


def test_a_standby_readies_the_kernel_for_a_take_over_once_a_boot(tmp_path):
    """The first SA of an ESP algorithm loads and self-tests it in the kernel (10 s of a lab
    take-over, docs/lab-findings.md #34): a standby adds and deletes one SA of each of the
    link's transforms and loads the VTI module, once; the active gateway never does."""
    env = ha_env(tmp_path)
    ha(tmp_path, env, "notify", "INSTANCE", "aws2aliyun", "MASTER", "101")
    assert "xfrm state add" not in calls(tmp_path) and "modprobe" not in calls(tmp_path)
    ha(tmp_path, env, "notify", "INSTANCE", "aws2aliyun", "BACKUP", "100")
    log = calls(tmp_path)
    assert "modprobe ip_vti" in log
    gcm = "ip xfrm state add src 127.0.0.1 dst 127.0.0.1 proto esp spi 257 mode tunnel aead rfc4106(gcm(aes)) 0x"
    assert gcm in log
    assert log.index(gcm) < log.index("ip xfrm state delete src 127.0.0.1 dst 127.0.0.1 proto esp spi 257")
    assert log.index("--terminate") < log.index("modprobe")  # after the tunnels are released
    # each tunnel's VTI (down) and MSS rules, which load modules of their own (the updown's verb)
    assert "updown tunnel1 prepare" in log and "updown tunnel2 prepare" in log
    assert "kernel ready for a take-over" in log
    for state in ("MASTER", "BACKUP"):  # a second time a standby this boot: nothing to load
        ha(tmp_path, env, "notify", "INSTANCE", "aws2aliyun", state, "100")
    assert calls(tmp_path).count("modprobe") == 1


def test_the_esp_transforms_a_standby_readies_are_the_profiles():
    """Written from the crypto profile, in `ip xfrm`'s words and key lengths (GCM's key with
    its 32-bit salt)."""
    modern, legacy = crypto.PROFILES["modern"].xfrm_algorithms(), crypto.PROFILES["legacy"].xfrm_algorithms()
    assert modern == ("aead rfc4106(gcm(aes)) 0x" + "00" * 36 + " 128",)
    assert legacy == ("enc cbc(aes) 0x" + "00" * 16 + " auth-trunc hmac(sha1) 0x" + "00" * 20 + " 96",)
    text = keepalived.esp_algorithms(pair_gateway(1))
    assert [ln for ln in text.splitlines() if not ln.startswith("#")] == list(modern)


def test_ready_needs_cloud_init_charon_and_a_role(tmp_path):
    env = ha_env(tmp_path, cloud_init="running")
    out = ha(tmp_path, env, "ready")
    assert out.returncode == 1 and "cloud-init" in out.stdout
    env = ha_env(tmp_path)
    out = ha(tmp_path, env, "ready")
    assert out.returncode == 1 and "role UNKNOWN" in out.stdout
    (tmp_path / "run").mkdir(exist_ok=True)
    (tmp_path / "run" / "ha-role").write_text("BACKUP\n")  # keepalived's word, before the script's work
    out = ha(tmp_path, env, "ready")
    assert out.returncode == 1 and "readying the kernel" in out.stdout
    ha(tmp_path, env, "notify", "INSTANCE", "aws2aliyun", "BACKUP", "100")
    out = ha(tmp_path, env, "ready")
    assert out.returncode == 0 and "standby" in out.stdout


def test_the_lab_reads_a_pair_plan_both_gateways_and_the_havip():
    """The lab boots a pair (issue 13, item 4): each gateway from its own planned user-data, the
    EIP's NAT and the route entries to the HaVip, the world VM's root namespace a bystander."""
    from lab.inputs import from_plan
    from lab.topology import gateway_mac, plan_topology, render_env

    plan = pair_plan().to_json(show_secrets=True)
    i = from_plan(plan)
    assert i.pair and [g.number for g in i.gateways] == [1, 2]
    assert len({g.private_ip for g in i.gateways} | {i.havip}) == 3
    assert all(g.user_data.startswith("#cloud-config") for g in i.gateways)
    assert i.gateways[0].user_data != i.gateways[1].user_data  # keepalived's own addresses and priority
    assert i.ingress_ip == i.havip
    t = plan_topology(i)
    assert t.pair and t.ingress_ip == i.havip
    assert [(g.mac, g.ip) for g in t.gateways] == [(gateway_mac(n), g.private_ip) for n, g in enumerate(i.gateways, 1)]
    taken = {g.private_ip for g in i.gateways} | {i.havip}
    assert t.private_ip not in taken and t.alihost_ip not in taken and t.private_ip != t.alihost_ip
    env = render_env(t)
    assert f"INGRESS_IP={i.havip}" in env
    for g in t.gateways:
        assert f"{g.mac},{g.ip}" in env


@pytest.mark.parametrize("vti_exists", [False, True])
def test_a_standby_prepares_each_tunnels_vti_down_and_its_mss_rules(tmp_path, vti_exists):
    """`aws2aliyun-updown TUNNEL prepare` (a standby's ready_kernel): the VTI as the take-over's
    up-client will want it (the HaVip to the tunnel's peer, its mark), left down and without its
    inside address, and the MSS rules, whose first iptables call loads modules; a VTI that exists
    (a former active gateway's) is left as it is."""
    from userdata.cloud_config import link_env

    gw = pair_gateway(2)
    bindir, calls, sys_net = tmp_path / "bin", tmp_path / "calls", tmp_path / "sys-class-net"
    bindir.mkdir()
    sys_net.mkdir()
    if vti_exists:
        (sys_net / "Tunnel1").mkdir()
    env_file = tmp_path / "link.env"
    env_file.write_text(link_env(gw))
    (bindir / "ip").write_text(
        f'#!/bin/bash\nif [ "$*" = "-batch -" ]; then while read -r l; do echo "ip $l" >> {calls}; done; exit 0; fi\n'
        f'echo "ip $*" >> {calls}\n'
        'case "$*" in "-o route get "*) echo "192.0.2.10 via 172.16.1.1 dev eth0 src 172.16.1.11" ;; esac\n'
    )
    # iptables -C: no such rule yet, so it is added
    (bindir / "iptables").write_text(
        f'#!/bin/sh\necho "iptables $*" >> {calls}\ncase "$*" in *" -C "*) exit 1;; esac\n'
    )
    (bindir / "logger").write_text(f'#!/bin/sh\necho "logger $*" >> {calls}\n')
    for f in bindir.iterdir():
        f.chmod(0o755)
    proc_conf = tmp_path / "conf"
    for nic in ("Tunnel1", "eth0"):
        (proc_conf / nic).mkdir(parents=True)
    env = {
        "PATH": f"{bindir}:/usr/bin:/bin",
        "AWS2ALIYUN_LINK_ENV": str(env_file),
        "PROC_CONF": str(proc_conf),
        "SYS_NET": str(sys_net),
    }
    script = ROOT / "userdata" / "files" / "aws2aliyun-updown.sh"
    out = subprocess.run(
        ["bash", str(script), "tunnel1", "prepare"], env=env, capture_output=True, text=True, timeout=10
    )
    assert out.returncode == 0, out.stderr
    text = calls.read_text()
    t1 = gw.tunnels[0]
    created = f"ip link add Tunnel1 type vti local {gw.ha.vip} remote {t1.outside_address} key {t1.mark}"
    assert (created in text) is not vti_exists, text
    assert "up" not in [w for line in text.splitlines() if line.startswith("ip ") for w in line.split()]
    assert "addr add" not in text
    for d in ("-o", "-i"):
        assert f"iptables -w -t mangle -A FORWARD {d} Tunnel1 -p tcp --tcp-flags SYN,RST SYN" in text
    assert "-j TCPMSS" in text and "prepared: Tunnel1" in text
    if not vti_exists:
        assert (proc_conf / "Tunnel1" / "disable_policy").read_text().strip() == "1"
    # a single gateway has no HaVip: nothing to prepare for
    env_file.write_text(link_env(gateway()))
    out = subprocess.run(
        ["bash", str(script), "tunnel1", "prepare"], env=env, capture_output=True, text=True, timeout=10
    )
    assert out.returncode == 1
