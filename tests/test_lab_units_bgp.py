"""The lab under `routing: bgp` (no VM): the plan's BGP facts, the AWS side's FRR configurations
(lab/bgp.py), the checks each routing runs, and the guest scripts' syntax."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from lab import bgp
from lab.checks.bgp import BGP_HOOK_TAG, added_prefix, prefix_set_problems, vtysh_errors
from lab.inputs import BgpInputs, PlanError, from_plan
from lab.topology import plan_topology, render_env
from tests.conftest import plan_for
from userdata.cloud_config import decode_user_data, encode_user_data

ROOT = Path(__file__).resolve().parent.parent
GUEST = ROOT / "lab" / "guest"


def bgp_inputs(**config):
    return from_plan(plan_for(routing="bgp", **config).to_json(show_secrets=True))


def test_a_bgp_plan_gives_the_asns_and_what_the_gateway_announces():
    i = bgp_inputs(bgpAsn="65010", awsAsn="64600")
    assert i.bgp == BgpInputs(asn=65010, aws_asn=64600, ecmp=False) and i.routing == "bgp"
    # AWS routes what the gateway announces: its FRR `network` statements
    assert i.ali_prefixes == ("172.16.0.0/16",) and i.aws_prefixes == ("10.10.0.0/16",)
    summary = i.summary()
    assert summary["aws_static_routes"] == [] and summary["bgp"]["asn"] == 65010
    static = from_plan(plan_for().to_json(show_secrets=True))
    assert static.bgp is None and static.routing == "static"


def test_a_transit_gateway_plan_is_ecmp_and_keeps_awss_default_asn():
    i = bgp_inputs(awsVpcCidr=None, awsTransitGatewayId="tgw-0123456789abcdef0", awsCidrs=["10.10.0.0/16"])
    assert i.bgp is not None and i.bgp.ecmp and i.bgp.aws_asn == 64512


def test_a_bgp_plan_whose_gateway_announces_nothing_is_refused():
    plan = plan_for(routing="bgp").to_json(show_secrets=True)
    for r in plan["resources"]:
        if r["type"] == "alicloud:ecs/instance:Instance":
            r["inputs"]["userData"] = encode_user_data(
                re.sub(r"^\s*network \S+\n", "", decode_user_data(r["inputs"]["userData"]), flags=re.M)
            )
    with pytest.raises(PlanError, match="announces no prefix"):
        from_plan(plan)


def test_the_aws_ends_speak_ebgp_with_awss_timers_and_the_router_ibgp_to_both():
    i = bgp_inputs(bgpAsn="65010")
    t = plan_topology(i)
    files = bgp.files(i.bgp, t)
    assert set(files) == {f"{ns}.{d}.conf" for ns in ("awsrouter", "aws1", "aws2") for d in ("zebra", "bgpd")}
    for p, tunnel in zip(t.peers, i.tunnels, strict=True):
        conf = files[f"aws{p.number}.bgpd.conf"]
        assert "router bgp 64512" in conf
        assert f" neighbor {tunnel.cgw_inside_address} remote-as 65010" in conf
        assert f" neighbor {tunnel.cgw_inside_address} timers 10 30" in conf
        assert f"  neighbor {p.transit_router} next-hop-self" in conf
    router = files["awsrouter.bgpd.conf"]
    assert [f" neighbor {p.transit_peer} remote-as 64512" in router for p in t.peers] == [True, True]
    assert re.findall(r"^  network (\S+)$", router, re.M) == ["10.10.0.0/16"]
    assert "maximum-paths" not in router  # a virtual private gateway: one path, the shortest AS path
    ecmp = bgp.router_conf(BgpInputs(65010, 64512, ecmp=True), t)
    assert "maximum-paths ibgp 2" in ecmp
    assert "ROUTING='bgp'" in render_env(t) or "ROUTING=bgp" in render_env(t)


def test_the_added_prefix_lies_inside_the_first_aws_prefix_clear_of_the_lab_hosts():
    i = bgp_inputs()
    t = plan_topology(i)

    class S:
        topo = t

    prefix, answer = added_prefix(S())  # type: ignore[arg-type]
    assert prefix == "10.10.255.0/24" and answer == "10.10.255.1"
    assert all(not h.startswith("10.10.255.") for _, h in t.aws_hosts())


def test_bgp_routes_finds_every_difference_from_the_expected_prefixes():
    want = {"10.10.0.0/16"}
    assert prefix_set_problems({"10.10.0.0/16": ["vti1"]}, want, "vti1") == []
    assert prefix_set_problems({}, want, "vti1") == ["missing 10.10.0.0/16"]
    got = {"10.10.0.0/16": ["vti2"], "0.0.0.0/0": ["vti1"]}
    assert prefix_set_problems(got, want, "vti1") == ["accepted 0.0.0.0/0", "10.10.0.0/16 over vti2, not vti1"]


def test_vtysh_errors_are_found_in_the_liveness_journal_and_nothing_else():
    """What the hook's vtysh printed as a confined root missing FRR's frr group (seen on the lab's
    BGP gateway before userdata.frr.VTY_GROUPS had it), among the daemon's own lines."""
    journal = (
        "probing vti1 -> 169.254.10.1, vti2 -> 169.254.11.1 every 0.1s\n"
        "tunnel1: dead (no answer for 1.2s, the other tunnel answers: 12 probes sent since); AWS prefixes over tunnel2\n"
        "Can't open configuration file /etc/frr/vtysh.conf due to 'Permission denied'.\n"
        "tunnel1: alive (3 answers in a row)\n"
    )
    assert vtysh_errors(journal) == ["Can't open configuration file /etc/frr/vtysh.conf due to 'Permission denied'."]
    assert vtysh_errors(journal.replace("Can't open", "Opened").replace("Permission denied", "ok")) == []


def test_bgp_down_ipsec_up_counts_the_hooks_runs_by_the_tag_it_logs_under():
    script = (Path(__file__).resolve().parent.parent / "userdata" / "files" / "aws2aliyun-bgp.sh").read_text()
    tags = re.findall(r"logger -t (\S+)", script)
    assert tags and set(tags) == {BGP_HOOK_TAG}


@pytest.mark.parametrize("script", ["frr.sh", "boot.sh", "peer.sh"])
def test_guest_scripts_parse(script):
    proc = subprocess.run(["sh", "-n", str(GUEST / script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_a_static_stack_keeps_the_awsrouter_monitor_and_a_bgp_one_runs_frr():
    text = (GUEST / "boot.sh").read_text()
    assert re.search(r'if \[ "\$ROUTING" = bgp \]; then\n.*frr\.sh start.*\nelse\n.*awsrouter-monitor\.sh', text, re.S)
    assert json.dumps(bgp_inputs().summary())  # the report's config stays JSON


def test_benchmarks_put_static_routing_and_bgp_side_by_side():
    """BENCHMARKS.md's "Static routing or BGP": the same faults per direction, from the first
    single-gateway report of each routing on the same IKE version (issue 14, item 4)."""
    from lab import benchmarks

    def rep(routing: str, ike: int, checks: dict, havip: str | None = None) -> dict:
        return {
            "config": {"crypto_profile": "modern", "plan": {"routing": routing, "ike_version": ike, "havip": havip}},
            "checks": [{"name": n, "ok": True, "metrics": m} for n, m in checks.items()],
        }

    fail = {"failover_tunnel1": {"uplink_outage_s": 1.3, "downlink_outage_s": 26.0}, "failback": {"failback_lost": 0}}
    legacy = rep("static", 1, {"failover_tunnel1": {"uplink_outage_s": 9.9}})
    pair = rep("static", 2, {"failover_tunnel1": {"uplink_outage_s": 8.8}}, havip="172.16.1.12")
    static = rep("static", 2, fail)
    bgp = rep("bgp", 2, {**fail, "failover_tunnel1": {"uplink_outage_s": 1.7, "downlink_outage_s": 24.7}})
    bgp["checks"].append({"name": "bgp_down_ipsec_up", "ok": True, "metrics": {"uplink_outage_s": 0.0}})
    text = "\n".join(benchmarks.routing_section([legacy, pair, static, bgp]))
    assert "| tunnel 1 blackholed, uplink outage | 1.3 s | 1.7 s |" in text  # not legacy's, not the pair's
    assert "| block lifted: probes lost | 0 | 0 |" in text
    assert "BGP down on tunnel 1's AWS end (IPsec up), uplink outage | no BGP | 0.0 s |" in text
    assert "downlink outage | no BGP | not measured |" in text  # a missing metric says so
    assert benchmarks.profile_name(bgp) == "modern, BGP"
    assert benchmarks.routing_section([static, legacy]) == []  # no BGP report: no section
