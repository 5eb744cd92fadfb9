"""The lab's many-prefix case (no VM): the prefixes read from what the plan routes, a host per
prefix behind its side's router, the rendered lab.env and every Alibaba x AWS host pair."""

from __future__ import annotations

import copy
import functools
import ipaddress
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lab import inputs, session
from lab.checks import traffic
from lab.inputs import LabInputs, PlanError, from_plan
from lab.topology import HostNet, TopologyError, host_net, pairs, plan_topology, render_env
from tests.conftest import plan_for
from tools import offline, stackfile

ROOT = Path(__file__).resolve().parent.parent
LEGACY = ROOT / "lab" / "stacks" / "Pulumi.lab-legacy.yaml"


@functools.lru_cache(maxsize=1)
def _legacy_plan() -> str:
    return json.dumps(offline.run(stackfile.load(LEGACY)).to_json(show_secrets=True))


def legacy_plan() -> dict:
    """The lab's legacy stack planned offline, as `python -m tools.plan --show-secrets --json` writes it."""
    return json.loads(_legacy_plan())


def legacy_inputs() -> LabInputs:
    return from_plan(legacy_plan())


def of_type(plan: dict, rtype: str) -> list[dict]:
    return [r for r in plan["resources"] if r["type"] == rtype]


# ------------------------------------------------------------------ plan -> inputs
def test_legacy_stack_is_existing_networks_with_two_prefixes_a_side():
    plan = legacy_plan()
    assert not of_type(plan, inputs.ALI_VPC) and not of_type(plan, inputs.AWS_VPC)  # both exist
    assert len(of_type(plan, inputs.ALI_VSWITCH)) == 1  # a new vSwitch in the existing VPC
    vpn = of_type(plan, inputs.VPN_CONNECTION)[0]
    assert vpn["inputs"]["tunnel1IkeVersions"] == ["ikev1"]  # the legacy profile, still
    i = legacy_inputs()
    assert i.aws_prefixes == ("10.10.0.0/16", "10.30.0.0/24")
    assert i.ali_prefixes == ("172.16.0.0/16", "172.18.0.0/24")
    assert i.vswitch_cidr == "172.16.1.0/24" and i.private_ip == "172.16.1.10"
    assert i.summary()["route_entries_to_ecs"] == ["10.10.0.0/16", "10.30.0.0/24"]


def test_dev_stack_reads_its_one_prefix_a_side(dev_plan):
    i = from_plan(dev_plan.to_json(show_secrets=True))
    assert i.aws_prefixes == ("10.10.0.0/16",) and i.ali_prefixes == ("172.16.0.0/16",)


def test_transit_gateway_routes_are_the_alibaba_prefixes():
    plan = plan_for(awsVpcCidr=None, awsTransitGatewayId="tgw-0123456789abcdef0", awsCidrs=["10.10.0.0/16"])
    i = from_plan(plan.to_json(show_secrets=True))
    assert i.ali_prefixes == ("172.16.0.0/16",) and i.aws_prefixes == ("10.10.0.0/16",)


def test_every_route_table_must_send_the_same_prefixes():
    plan = legacy_plan()
    entry = copy.deepcopy(of_type(plan, inputs.ALI_ROUTE_ENTRY)[0])
    entry["inputs"]["routeTableId"] = "vtb-another"
    plan["resources"].append(entry)
    with pytest.raises(
        PlanError, match=re.escape("route table vtb-another sends 10.10.0.0/16 to the ECS but route table")
    ):
        from_plan(plan)


def test_missing_routes_are_named():
    plan = legacy_plan()
    plan["resources"] = [
        r for r in plan["resources"] if r["type"] not in (inputs.ALI_ROUTE_ENTRY, inputs.VPN_CONNECTION_ROUTE)
    ]
    with pytest.raises(PlanError) as e:
        from_plan(plan)
    assert [p.split(" ", 3)[:3] for p in e.value.problems] == [["plan", "has", "no"], ["plan", "has", "no"]]
    assert "AWS would route nothing to the Alibaba side" in str(e.value)


def test_routes_into_another_vpn_connection_do_not_count():
    plan = legacy_plan()
    for r in of_type(plan, inputs.VPN_CONNECTION_ROUTE):
        r["inputs"]["vpnConnectionId"] = "vpn-someone-else"
    with pytest.raises(PlanError, match="no aws:ec2/vpnConnectionRoute:VpnConnectionRoute of the VPN connection"):
        from_plan(plan)


def test_a_created_vpc_must_be_the_one_routed_prefix(dev_plan):
    plan = dev_plan.to_json(show_secrets=True)
    of_type(plan, inputs.ALI_VPC)[0]["inputs"]["cidrBlock"] = "172.20.0.0/16"
    with pytest.raises(
        PlanError, match=re.escape("AWS routes into the VPN 172.16.0.0/16, not the created VPC's CIDR 172.20")
    ):
        from_plan(plan)


def test_vswitch_outside_every_alibaba_prefix_and_overlaps_are_problems():
    plan = legacy_plan()
    of_type(plan, inputs.ALI_VSWITCH)[0]["inputs"]["cidrBlock"] = "172.17.1.0/24"
    of_type(plan, inputs.ECS_INSTANCE)[0]["inputs"]["privateIp"] = "172.17.1.10"
    of_type(plan, inputs.VPN_CONNECTION_ROUTE)[1]["inputs"]["destinationCidrBlock"] = "10.30.0.0/25"
    with pytest.raises(PlanError) as e:
        from_plan(plan)
    text = str(e.value)
    assert "vSwitch 172.17.1.0/24 is inside none of the Alibaba prefixes" in text
    assert "Alibaba prefix 10.30.0.0/25 overlaps the AWS prefix 10.30.0.0/24" in text


# ------------------------------------------------------------------ topology
def test_legacy_topology_has_a_host_per_extra_prefix():
    t = plan_topology(legacy_inputs())
    assert t.ali_host_nets == (HostNet("alihost2", "172.18.0.0/24", "172.18.0.0/28", "172.18.0.1", "172.18.0.10"),)
    assert t.aws_host_nets == (HostNet("awshost2", "10.30.0.0/24", "10.30.0.0/28", "10.30.0.1", "10.30.0.10"),)
    assert t.ali_hosts() == (("alihost", "172.16.1.11"), ("alihost2", "172.18.0.10"))
    assert t.aws_hosts() == (("awshost", "10.10.0.10"), ("awshost2", "10.30.0.10"))
    lab_own = [ipaddress.ip_network(n) for n in (t.slirp_net, "10.255.250.0/24")]
    for h in t.ali_host_nets + t.aws_host_nets:
        assert not any(ipaddress.ip_network(h.subnet).overlaps(n) for n in lab_own)
        assert ipaddress.ip_network(h.subnet).subnet_of(ipaddress.ip_network(h.prefix))


def test_legacy_lab_env_routes_every_prefix():
    env = dict(line.split("=", 1) for line in render_env(plan_topology(legacy_inputs())).splitlines()[1:])
    assert env["AWS_PREFIXES"] == "'10.10.0.0/16 10.30.0.0/24'"
    assert env["ALI_PREFIXES"] == "'172.16.0.0/16 172.18.0.0/24'"
    assert env["ALI_HOST_NETS"] == "alihost2,h-alihost2,172.18.0.1,172.18.0.10,28"
    assert env["AWS_HOST_NETS"] == "awshost2,h-awshost2,10.30.0.1,10.30.0.10,28"
    assert env["AWS_PREFIXLEN"] == "16" and env["AWSHOST_IP"] == "10.10.0.10"


def test_dev_topology_has_no_extra_hosts(dev_plan):
    t = plan_topology(from_plan(dev_plan.to_json(show_secrets=True)))
    assert t.ali_host_nets == () and t.aws_host_nets == ()
    env = render_env(t)
    assert "ALI_HOST_NETS=''" in env and "AWS_HOST_NETS=''" in env
    assert "AWS_PREFIXES=10.10.0.0/16" in env and "ALI_PREFIXES=172.16.0.0/16" in env


def test_host_net_avoids_the_labs_addresses_and_fits_small_prefixes():
    taken = [ipaddress.IPv4Network("192.0.2.10/32")]
    assert host_net("awshost2", "192.0.2.0/24", taken).subnet == "192.0.2.16/28"
    small = host_net("alihost2", "10.1.2.4/30", [])
    assert (small.subnet, small.router_ip, small.host_ip) == ("10.1.2.4/30", "10.1.2.5", "10.1.2.6")
    with pytest.raises(TopologyError, match=re.escape("no subnet of 203.0.113.0/24")):
        host_net("awshost2", "203.0.113.0/24", [ipaddress.IPv4Network("203.0.113.0/24")])


def test_pairs_every_alibaba_host_with_every_aws_host():
    t = plan_topology(legacy_inputs())
    up = pairs(t, "ali_to_aws")
    down = pairs(t, "aws_to_ali")
    assert len(up) == len(down) == 4
    assert up[0] == ("alihost", "172.16.1.11", "awshost", "10.10.0.10")
    assert down[0] == ("awshost", "10.10.0.10", "alihost", "172.16.1.11")
    assert {(c, s) for c, _, s, _ in up} == {(a, w) for a in ("alihost", "alihost2") for w in ("awshost", "awshost2")}
    assert {(s, c) for c, _, s, _ in down} == {(c, s) for c, _, s, _ in up}
    with pytest.raises(ValueError, match="neither"):
        pairs(t, "sideways")


def test_single_prefix_stack_has_one_pair_as_before(dev_plan):
    t = plan_topology(from_plan(dev_plan.to_json(show_secrets=True)))
    assert pairs(t, "ali_to_aws") == [("alihost", t.alihost_ip, "awshost", t.awshost_ip)]


# ------------------------------------------------------------------ concurrent pairs
def test_pairs_run_in_one_guest_command_and_parse():
    ps = [
        ("alihost", "172.16.1.11", "awshost", "10.10.0.10", 5001),
        ("alihost", "172.16.1.11", "awshost2", "10.30.0.10", 5011),
    ]
    assert session.pairs_command("tcp", ps, "--bytes 1") == (
        "python3 /run/lab/probe.py pairs tcp --pair alihost,172.16.1.11,awshost,10.10.0.10,5001 "
        "--pair alihost,172.16.1.11,awshost2,10.30.0.10,5011 --bytes 1"
    )
    assert session.parse_pairs('noise\n[{"received": 5}, {"ok": false}]\n', 2) == [{"received": 5}, {"ok": False}]
    for broken in ("", "Traceback: boom", '[{"received": 5}]'):
        got = session.parse_pairs(broken, 2, "context")
        assert len(got) == 2 and all(r["ok"] is False and "context" in r["error"] for r in got)


def test_probe_pairs_runs_each_pair_in_its_namespaces():
    """guest/probe.py's `pairs` on this machine when it may create network namespaces: two
    namespaces joined by a veth, two pairs at once (tcp and udp), each server sees its client."""
    probe = ROOT / "lab" / "guest" / "probe.py"
    a, b = (f"lab-test-pairs-{os.getpid()}-{x}" for x in "ab")
    setup = [
        ["ip", "netns", "add", a],
        ["ip", "netns", "add", b],
        ["ip", "-n", a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b],
        ["ip", "-n", a, "addr", "add", "10.77.0.1/24", "dev", "eth0"],
        ["ip", "-n", b, "addr", "add", "10.77.0.2/24", "dev", "eth0"],
        ["ip", "-n", a, "link", "set", "eth0", "up"],
        ["ip", "-n", b, "link", "set", "eth0", "up"],
    ]
    try:
        for cmd in setup:
            if subprocess.run(cmd, capture_output=True).returncode != 0:
                pytest.skip(f"cannot build network namespaces here ({' '.join(cmd)})")
        pairs = ["--pair", f"{a},10.77.0.1,{b},10.77.0.2,5001", "--pair", f"{b},10.77.0.2,{a},10.77.0.1,5011"]
        for kind, opts in (("tcp", ["--bytes", "65536"]), ("udp", ["--count", "5"])):
            out = subprocess.run(
                [sys.executable, str(probe), "pairs", kind, *pairs, *opts, "--timeout", "10"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            results = session.parse_pairs(out.stdout, 2, out.stderr)
            if kind == "tcp":
                assert [r["ok"] for r in results] == [True, True], results
                assert [r["server_saw"]["peer"] for r in results] == ["10.77.0.1", "10.77.0.2"]
            else:
                assert [(r["echoed"], r["server_saw"]) for r in results] == [(5, ["10.77.0.1"]), (5, ["10.77.0.2"])]
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_summarize_names_every_failed_pair():
    ps = pairs(plan_topology(legacy_inputs()), "ali_to_aws")
    verdicts = [(k != 3, f"line {k}", {"received": 5 if k != 3 else 0}) for k in range(4)]
    ok, detail, metrics = traffic.summarize(ps, verdicts)
    lines = detail.splitlines()
    assert not ok
    assert lines[0] == "1 of 4 pairs failed: alihost2 172.18.0.10 -> awshost2 10.30.0.10"
    assert lines[1:] == ["PASS  line 0", "PASS  line 1", "PASS  line 2", "FAIL  line 3"]
    assert metrics["received"] == 5 and [p["ok"] for p in metrics["pairs"]] == [True, True, True, False]
    ok, detail, _ = traffic.summarize(ps, [(True, f"line {k}", {}) for k in range(4)])
    assert ok and detail.splitlines()[0] == "all 4 pairs passed"


def test_one_pair_keeps_the_single_prefix_detail_and_metrics():
    pair = [("alihost", "172.16.1.11", "awshost", "10.10.0.10")]
    assert traffic.summarize(pair, [(True, "the line", {"received": 5})]) == (True, "the line", {"received": 5})


def test_pairs_of_a_check_use_their_own_ports():
    ps = pairs(plan_topology(legacy_inputs()), "ali_to_aws")
    tcp = {traffic._tcp_port(k) for k in range(len(ps))}
    udp = {traffic._udp_port(k) for k in range(len(ps))}
    assert len(tcp) == len(udp) == len(ps) and not tcp & udp
    ok, line, _ = traffic._tcp_judge(1, ps[1], {"ok": True, "server_saw": {"peer": ps[1][1]}, "sent": 1})
    assert ok and line.startswith("alihost 172.16.1.11 -> awshost2 10.30.0.10:5011,")
