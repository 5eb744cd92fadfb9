"""Dynamic routing (issue 14): the BGP settings and what a `routing: bgp` stack plans on the AWS
side under mocks (customer gateway ASN, a dynamic VPN connection, no static routes)."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
import subprocess
import time

import pytest
import yaml

from core import paths
from core.settings import ASN_MAX, RESERVED_ASNS, SettingsError, load_settings
from tests.conftest import dev_values, plan_for
from tests.test_userdata import FILES, files_of, gateway
from userdata import Bgp, Gateway, cloud_config, frr
from userdata.cloud_config import decode_user_data

CGW = "aws:ec2/customerGateway:CustomerGateway"
VGW = "aws:ec2/vpnGateway:VpnGateway"
VPN = "aws:ec2/vpnConnection:VpnConnection"
VPN_ROUTE = "aws:ec2/vpnConnectionRoute:VpnConnectionRoute"
TGW_ROUTE = "aws:ec2transitgateway/route:Route"
TGW_PROPAGATION = "aws:ec2transitgateway/routeTablePropagation:RouteTablePropagation"
TGW = "tgw-0123456789abcdef0"
TGW_TABLE = "tgw-rtb-0fedcba9876543210"


def problems(**overrides) -> list[str]:
    with pytest.raises(SettingsError) as err:
        load_settings(dev_values(**overrides))
    return err.value.problems


def test_static_stays_the_default_and_keeps_its_gateways(dev_plan):
    """A stack from before BGP plans the same customer gateway ASN (65000) and AWS's own
    default Amazon side ASN (64512): both are ForceNew, so neither gateway is replaced."""
    s = load_settings(dev_values())
    assert (s.routing, s.bgp_asn, s.aws_asn) == ("static", 65000, 64512)
    assert dev_plan.one(CGW).input("bgpAsn") == "65000"
    assert dev_plan.one(VGW).input("amazonSideAsn") == "64512"
    assert dev_plan.one(VPN).input("staticRoutesOnly") is True
    assert dev_plan.of_type(VPN_ROUTE)


def test_a_bgp_stack_plans_a_dynamic_connection_without_static_routes():
    plan = plan_for(routing="bgp", bgpAsn="65010", awsAsn="64600")
    assert plan.one(CGW).input("bgpAsn") == "65010"
    assert plan.one(VGW).input("amazonSideAsn") == "64600"
    assert plan.one(VPN).input("staticRoutesOnly") is False
    assert not plan.of_type(VPN_ROUTE)


def test_a_four_byte_asn_goes_in_bgp_asn_extended():
    plan = plan_for(routing="bgp", bgpAsn="4200000001")
    cgw = plan.one(CGW)
    assert cgw.input("bgpAsnExtended") == "4200000001" and cgw.input("bgpAsn") is None


@pytest.mark.parametrize("table", [None, TGW_TABLE])
def test_bgp_behind_a_transit_gateway_propagates_instead_of_static_routes(table):
    plan = plan_for(
        routing="bgp",
        awsVpcCidr=None,
        awsTransitGatewayId=TGW,
        awsTransitGatewayRouteTableId=table,
        awsCidrs=["10.10.0.0/16", "10.20.0.0/16"],
    )
    assert not plan.of_type(TGW_ROUTE) and not plan.of_type(VGW)
    vpn = plan.one(VPN)
    assert vpn.input("staticRoutesOnly") is False
    propagations = plan.of_type(TGW_PROPAGATION)
    if table is None:  # the Transit Gateway's default propagation applies
        assert not propagations
    else:
        (p,) = propagations
        assert p.input("transitGatewayRouteTableId") == TGW_TABLE
        assert p.input("transitGatewayAttachmentId") == vpn.output("transitGatewayAttachmentId")


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        ({"bgpAsn": "0"}, "bgpAsn", f"expected an ASN from 1 to {ASN_MAX:,}"),
        ({"bgpAsn": str(ASN_MAX + 1)}, "bgpAsn", "expected an ASN from 1"),
        ({"bgpAsn": "7224"}, "bgpAsn", "7224 (AWS, all regions)"),
        ({"bgpAsn": "23456"}, "bgpAsn", "AS_TRANS"),
        ({"bgpAsn": "sixty"}, "bgpAsn", "expected a whole number"),
        ({"awsAsn": "65000", "routing": "bgp"}, "bgpAsn", "must differ from awsAsn (65000)"),
        ({"awsAsn": "100"}, "awsAsn", "expected a private ASN: 64512-65534 or 4200000000-4294967294"),
        ({"routing": "ospf"}, "routing", "static"),
        # a pair's user-data with FRR does not fit Alibaba's 32 KB yet
        ({"routing": "bgp", "gatewayCount": "2"}, "routing", "not available with gatewayCount 2 yet"),
    ],
)
def test_bad_bgp_settings_are_refused_naming_the_key(overrides, key, fragment):
    found = problems(**overrides)
    mine = [p for p in found if p.startswith(f"{key}: ")]
    assert mine and fragment in mine[0], found


def test_every_bgp_problem_at_once():
    found = problems(routing="bgp", bgpAsn="9059", awsAsn="1")
    assert {p.split(":")[0] for p in found} == {"bgpAsn", "awsAsn"}, found


def test_reserved_asns_name_who_reserves_them():
    assert set(RESERVED_ASNS) >= {7224, 9059, 23456, 65535}
    assert all(why for why in RESERVED_ASNS.values())


# --- the gateway: FRR, and what changes beside it ----------------------------------------


def bgp_gateway(ecmp: bool = False, **changes) -> Gateway:
    return dataclasses.replace(gateway(), bgp=Bgp(65010, ecmp=ecmp), **changes)


def prefix_list_permits(text: str, name: str, prefix: str) -> bool:
    """FRR's prefix-list match (permit entries only, as rendered): the prefix lies inside an
    entry's network and its length is the entry's, or up to its `le`."""
    p = ipaddress.ip_network(prefix)
    for net, le in re.findall(rf"^ip prefix-list {name} seq \d+ permit (\S+)(?: le (\d+))?$", text, re.M):
        n = ipaddress.ip_network(net)
        if p.subnet_of(n) and n.prefixlen <= p.prefixlen <= int(le or n.prefixlen):
            return True
    return False


def test_frr_accepts_the_aws_prefixes_and_inside_them_only_and_prefers_tunnel1():
    text = frr.conf(bgp_gateway(aws_prefixes=("10.10.0.0/16", "10.20.0.0/24")))
    accepted = ("10.10.0.0/16", "10.20.0.0/24", "10.10.7.0/24", "10.20.0.128/25", "10.10.1.1/32")
    refused = ("0.0.0.0/0", "10.0.0.0/8", "10.20.0.0/23", "169.254.0.0/16", "169.254.121.0/30", "172.16.0.0/16")
    assert [p for p in accepted if not prefix_list_permits(text, "AWS-IN", p)] == []
    assert [p for p in refused if prefix_list_permits(text, "AWS-IN", p)] == []
    # announced: exactly the Alibaba prefixes, nothing inside or around them
    assert re.findall(r"^ip prefix-list ALI-OUT seq \d+ permit (\S+)", text, re.M) == ["172.16.0.0/16"]
    assert not prefix_list_permits(text, "ALI-OUT", "172.16.1.0/24")  # the halves only (a failover's)
    # what does not match is refused, in and out
    assert "route-map AWS-IN-1 deny 20" in text and "route-map ALI-OUT-2 deny 20" in text
    assert "set local-preference 200" in text and "set as-path prepend 65010 65010" in text
    for peer in ("169.254.121.1", "169.254.122.1"):
        assert f" neighbor {peer} timers 10 30" in text
    assert "maximum-paths" not in text
    ecmp = frr.conf(bgp_gateway(ecmp=True))
    assert "maximum-paths 2" in ecmp and "prepend" not in ecmp and "local-preference 200" not in ecmp


def test_a_bgp_gateway_installs_frr_and_leaves_the_routes_to_it():
    doc = cloud_config(bgp_gateway())
    assert "frr" in doc["packages"]
    files = files_of(doc)
    assert files[paths.FRR_CONF_PATH]["permissions"] == "0640"
    assert "bgpd=yes" in files[paths.FRR_DAEMONS_PATH]["content"]
    assert "ROUTING=bgp" in files[paths.LINK_ENV_PATH]["content"]
    assert ["systemctl", "enable", "--now", paths.FRR_SERVICE] in doc["runcmd"]
    rules = files[paths.FIREWALL_PATH]["content"]
    assert 'iifname "Tunnel1" ip saddr 169.254.121.1 tcp dport 179 accept' in rules
    # a static gateway: none of it
    static = cloud_config(gateway())
    assert "frr" not in static["packages"] and paths.FRR_CONF_PATH not in files_of(static)
    assert "ROUTING" not in files_of(static)[paths.LINK_ENV_PATH]["content"]
    assert "179" not in files_of(static)[paths.FIREWALL_PATH]["content"]


def liveness_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("liveness_script", FILES / "aws2aliyun-liveness.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def liveness_env() -> dict[str, str]:
    env = {"AWS_CIDRS": "10.10.0.0/16"}
    for n in (1, 2):
        env |= {f"TUNNEL{n}_VTI": f"Tunnel{n}", f"TUNNEL{n}_METRIC": str(100 * n)}
        env |= {f"TUNNEL{n}_LOCAL_INSIDE": f"169.254.12{n}.2/30", f"TUNNEL{n}_REMOTE_INSIDE": f"169.254.12{n}.1"}
    return env


def test_the_liveness_daemon_leaves_bgp_routes_alone(tmp_path):
    """With ROUTING=bgp the liveness daemon keeps no route of its own (zebra owns them)."""
    mod = liveness_module()
    env = liveness_env()
    static = mod.Daemon(env, 0.1, 1.2, 3, 3.0)
    assert static.routes(["tunnel1"]) == {("Tunnel1", "10.10.0.0/16", 100)}
    bgp = mod.Daemon({**env, "ROUTING": "bgp"}, 0.1, 1.2, 3, 3.0)
    assert bgp.routes(["tunnel1", "tunnel2"]) == set()


def test_the_liveness_unit_reaches_frrs_sockets_only_on_a_bgp_gateway():
    """The liveness daemon runs as a root without CAP_DAC_OVERRIDE: vtysh reaches bgpd's vty
    socket (frr:frrvty, 0770) through FRR's vty group, which only a BGP gateway has (the lab
    measured `clear ip bgp` exiting 1 without it, and the uplink failing over after the hold
    time: 25 s)."""
    unit = files_of(cloud_config(bgp_gateway()))[paths.LIVENESS_SERVICE_PATH]["content"]
    assert "SupplementaryGroups=frrvty frr" in unit.splitlines()
    static = files_of(cloud_config(gateway()))[paths.LIVENESS_SERVICE_PATH]["content"]
    assert "SupplementaryGroups" not in static


def test_every_liveness_verdict_goes_to_the_bgp_hook_with_the_other_tunnels_state(tmp_path):
    """With BGP_HOOK in link.env (a BGP gateway) the daemon hands each verdict to it, not
    waiting for it (the probes go on), with whether the other tunnel answers; a static
    gateway has no hook."""
    mod = liveness_module()
    calls = tmp_path / "hook.calls"
    hook = tmp_path / "hook"
    hook.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    hook.chmod(0o755)
    env = liveness_env()
    d = mod.Daemon({**env, "ROUTING": "bgp", "BGP_HOOK": str(hook)}, 0.1, 1.2, 3, 3.0)
    t1, t2 = d.tunnels
    t2.tracker.state = "alive"
    d.transition(t1, "dead")
    t1.tracker.state = "dead"
    d.transition(t2, "dead")
    t2.tracker.state = "dead"
    d.transition(t1, "alive")
    deadline = time.monotonic() + 10
    while len(calls.read_text().splitlines() if calls.exists() else []) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(calls.read_text().splitlines()) == [
        "tunnel1 alive False 169.254.121.1",
        "tunnel1 dead True 169.254.121.1",
        "tunnel2 dead False 169.254.122.1",
    ]
    assert mod.Daemon(env, 0.1, 1.2, 3, 3.0).hook is None


def run_bgp_hook(
    tmp_path,
    *args: str,
    both_alive: bool = True,
    for_s: float = 40.0,
    gw: Gateway | None = None,
    shut: tuple[str, ...] = ("169.254.121.1",),
) -> list[str]:
    """userdata/files/aws2aliyun-bgp.sh with stand-in vtysh and logger: their calls (the hold
    a gateway with a 1 s AWS DPD timeout unless GW says otherwise: 3 s; the sessions of the
    peers in SHUT shown shut down in the running configuration: tunnel 1's, as after its failover)."""
    calls = tmp_path / "calls"
    gw = gw or bgp_gateway(ali_prefixes=("172.16.0.0/16", "172.18.0.0/24", "172.19.0.1/32"), aws_dpd_timeout_s=1)
    conf = frr.conf(gw)
    assert " shutdown" not in conf  # the rendered configuration shuts nothing down
    head = next(line for line in conf.splitlines() if line.startswith("router bgp ")) + "\n"
    conf = conf.replace(head, head + "".join(f" neighbor {p} shutdown\n" for p in shut))
    (tmp_path / "frr.conf").write_text(conf)
    for tool in ("vtysh", "logger"):
        fake = tmp_path / tool
        # vtysh's running configuration: what the hook reads the ASN from
        show = (
            f'[ "$2" = "show running-config" ] && cat {tmp_path / "frr.conf"} && exit\n'
            'case $2 in "show bgp neighbors "*) echo \'{"bgpState":"Established"}\'; exit ;; esac\n'
            if tool == "vtysh"
            else ""
        )
        fake.write_text(f'#!/bin/bash\n{show}{{ printf "{tool}"; printf " [%s]" "$@"; echo; }} >> {calls}\n')
        fake.chmod(0o755)
    (tmp_path / "link.env").write_text(files_of(cloud_config(gw))[paths.LINK_ENV_PATH]["content"])
    # the liveness daemon's state: tunnel 1 answering for FOR_S seconds
    states = {
        "tunnel1": {"state": "alive", "for_s": for_s},
        "tunnel2": {"state": (both_alive and "alive") or "dead", "for_s": 300.0},
    }
    (tmp_path / "liveness.json").write_text(json.dumps({"tunnels": states}))
    env = {
        **os.environ,
        "PATH": f"{tmp_path}:{os.environ['PATH']}",
        "AWS2ALIYUN_LINK_ENV": str(tmp_path / "link.env"),
        "AWS2ALIYUN_RUN_DIR": str(tmp_path),
    }
    out = subprocess.run(["bash", str(FILES / "aws2aliyun-bgp.sh"), *args], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = calls.read_text().splitlines() if calls.exists() else []
    calls.unlink(missing_ok=True)
    return lines


def test_the_bgp_hook_shuts_a_dead_tunnels_session_and_announces_the_halves_while_the_other_answers(tmp_path):
    """Tunnel 1 dead, tunnel 2 answering: its session shut down, then each Alibaba prefix's
    halves (a /32 has none) announced in the gateway's own ASN; answering again for the hold:
    its session back, the halves withdrawn; a silence both tunnels share: nothing."""
    bgp = ["configure terminal", "router bgp 65010"]

    def cmd(*lines: str) -> str:
        return "vtysh " + " ".join(f"[-c] [{c}]" for c in (*bgp, *lines))

    dead = run_bgp_hook(tmp_path, "tunnel1", "dead", "True", "169.254.121.1")
    assert dead[0] == cmd("neighbor 169.254.121.1 shutdown")
    halves = ["172.16.0.0/17", "172.16.128.0/17", "172.18.0.0/25", "172.18.0.128/25"]
    assert dead[1] == cmd("address-family ipv4 unicast", *(f"network {h}" for h in halves))
    assert dead[2] == f"logger [-t] [aws2aliyun-bgp] [--] [tunnel1 dead: network {' '.join(halves)}]"
    alive = run_bgp_hook(tmp_path, "tunnel1", "alive", "True", "169.254.121.1")
    assert alive[0] == cmd("no neighbor 169.254.121.1 shutdown")
    assert alive[1] == cmd("address-family ipv4 unicast", *(f"no network {h}" for h in halves))
    assert run_bgp_hook(tmp_path, "tunnel2", "dead", "False", "169.254.122.1") == []
    # its session back but a tunnel dead again meanwhile: the halves stay
    assert run_bgp_hook(tmp_path, "tunnel1", "alive", "True", "169.254.121.1", both_alive=False) == [
        cmd("no neighbor 169.254.121.1 shutdown")
    ]
    # the other tunnel dead: this one's session back at once, no hold, the halves left alone
    alone = run_bgp_hook(tmp_path, "tunnel1", "alive", "False", "169.254.121.1", for_s=0.3)
    assert alone[0] == cmd("no neighbor 169.254.121.1 shutdown") and len(alone) == 2
    assert "session back (the other tunnel is dead)" in alone[1]
    # tunnel 2 dying while tunnel 1 waits out its hold: tunnel 1's session back at once
    both = run_bgp_hook(tmp_path, "tunnel2", "dead", "True", "169.254.122.1", shut=("169.254.121.1",))
    assert both[:2] == [cmd("neighbor 169.254.122.1 shutdown"), cmd("no neighbor 169.254.121.1 shutdown")]
    assert "the other tunnel's session back at once" in both[2]
    assert run_bgp_hook(tmp_path, "tunnel2", "dead", "True", "169.254.122.1", shut=())[:2] == [
        cmd("neighbor 169.254.122.1 shutdown"),
        cmd("address-family ipv4 unicast", *(f"network {h}" for h in halves)),
    ]
    # ... and tunnel 1's hook, when its hold ends, finds it back already: it leaves it alone
    assert run_bgp_hook(tmp_path, "tunnel1", "alive", "True", "169.254.121.1", shut=())[0] == cmd(
        "address-family ipv4 unicast", *(f"no network {h}" for h in halves)
    )
    # what the hook announces, FRR lets out: ALI-OUT permits each prefix's halves
    conf = (tmp_path / "frr.conf").read_text()
    assert all(prefix_list_permits(conf, "ALI-OUT", h) for h in halves)
    assert not prefix_list_permits(conf, "ALI-OUT", "172.16.0.0/18")


def test_a_recovered_tunnels_session_waits_out_the_aws_ends_dpd_timeout(tmp_path):
    """Failing back at once put both directions on a tunnel the AWS end's DPD, begun in the
    outage, dropped 3 s later (findings #35): the session comes back only once the tunnel has
    answered for the AWS end's DPD timeout and a margin, asked of the liveness daemon's state
    again after the wait (dead meanwhile, or dead and back: nothing, a later verdict holds it)."""
    gw = bgp_gateway()
    assert frr.failback_hold_s(gw) == gw.aws_dpd_timeout_s + frr.FAILBACK_HOLD_MARGIN_S == 32
    env = files_of(cloud_config(gw))[paths.LINK_ENV_PATH]["content"]
    assert "BGP_FAILBACK_HOLD_S=32" in env.splitlines()
    longer = dataclasses.replace(gw, aws_dpd_timeout_s=45)
    assert "BGP_FAILBACK_HOLD_S=47" in files_of(cloud_config(longer))[paths.LINK_ENV_PATH]["content"]
    # the hold from the verdict (the daemon's state file lags it by up to a second), then the
    # state asked: answering for less than the hold less 2 s (dead and back meanwhile): nothing
    held = dataclasses.replace(gw, aws_dpd_timeout_s=1)  # a 3 s hold, for the test's sake
    t0 = time.monotonic()
    assert run_bgp_hook(tmp_path, "tunnel1", "alive", "True", "169.254.121.1", for_s=0.5, gw=held) == []
    assert time.monotonic() - t0 >= 3.0
    # the verdict's state not yet in the file when the hook starts: it still waits and asks after
    assert run_bgp_hook(tmp_path, "tunnel1", "alive", "True", "169.254.121.1", for_s=3.0, gw=held)[0] == (
        "vtysh [-c] [configure terminal] [-c] [router bgp 65010] [-c] [no neighbor 169.254.121.1 shutdown]"
    )
    assert "BGP_FAILBACK_HOLD_S" not in files_of(cloud_config(gateway()))[paths.LINK_ENV_PATH]["content"]


def test_a_bgp_stack_renders_frr_into_its_gateways_user_data():
    plan = plan_for(routing="bgp", bgpAsn="65010")
    for ecs in plan.of_type("alicloud:ecs/instance:Instance"):
        files = files_of(yaml.safe_load(decode_user_data(ecs.input("userData"))))
        conf = files[paths.FRR_CONF_PATH]["content"]
        assert "router bgp 65010" in conf and " neighbor 169.254." in conf
        assert "ROUTING=bgp" in files[paths.LINK_ENV_PATH]["content"]


def test_a_bgp_gateway_fits_alibabas_limit_with_as_many_prefixes_as_a_static_one():
    """FRR's configuration lists every prefix again, and the hook costs user-data too: gzipped,
    a BGP gateway takes the static gateway's 40 AWS and 20 Alibaba prefixes (it took 24 and 11
    before); a user-data too large is still refused before anything is created, naming the keys."""
    from tests.test_userdata import many_prefixes, scattered_prefixes
    from userdata import render
    from userdata.cloud_config import too_large

    assert too_large(render(many_prefixes(bgp_gateway()))) is None
    problem = too_large(render(dataclasses.replace(bgp_gateway(), aws_prefixes=scattered_prefixes(2500))))
    assert problem is not None and "awsCidrs" in problem


def test_ecmp_hashes_flows_by_their_ports_and_only_behind_a_transit_gateway():
    """Behind a Transit Gateway both tunnels carry traffic: the gateway hashes each flow's ports
    too (fib_multipath_hash_policy 1), so two hosts' connections spread over both tunnels."""
    from userdata.cloud_config import ECMP_SYSCTLS

    key = next(iter(ECMP_SYSCTLS))
    ecmp = files_of(cloud_config(bgp_gateway(ecmp=True)))[paths.SYSCTL_PATH]["content"]
    assert f"{key} = 1" in ecmp.splitlines()
    for gw in (bgp_gateway(), gateway()):
        assert key not in files_of(cloud_config(gw))[paths.SYSCTL_PATH]["content"]


def test_bgp_counts_each_prefixs_halves_against_awss_route_quota():
    """While a tunnel is down the gateway announces each Alibaba prefix's halves too: three
    routes a prefix (one for a /32) must fit AWS's 100 routes to a virtual private gateway."""
    existing = {"aliVpcCidr": None, "aliVpcId": "vpc-bp1lab0legacy0prefixes0", "aliVswitchCidr": "172.16.1.0/24"}

    def ali(n: int) -> list[str]:
        return ["172.16.0.0/16", *(f"172.17.{i}.0/24" for i in range(n - 1))]

    found = problems(routing="bgp", aliCidrs=ali(34), **existing)
    mine = [p for p in found if p.startswith("aliCidrs: ")]
    assert mine and "102 routes while a tunnel is down" in mine[0] and "at most 100" in mine[0], found
    assert load_settings(dev_values(routing="bgp", aliCidrs=ali(33), **existing)).routing == "bgp"  # 99 routes
