"""The pair's hand-over checks (lab/checks/ha.py): their pure parts, without a VM."""

from __future__ import annotations

import json
from types import SimpleNamespace

import yaml

from lab import gateways, registry
from lab.checks import ha

HAVIP = "172.16.1.12"
SAS = """tunnel1 {
  state = ESTABLISHED
  remote-host = 192.0.2.10
  child-sas {
    tunnel1-1 {
      state = INSTALLED
    }
  }
}
"""


def state_out(role: str, addrs: list[str], sas: str = "") -> str:
    link = [{"ifname": "eth0", "addr_info": [{"local": a, "prefixlen": 24} for a in addrs]}]
    return f"role {role}\n=== addr\n{json.dumps(link)}\n=== sas\n{sas}"


def test_parse_state_reads_role_havip_and_sas():
    st = ha.parse_state(state_out("MASTER", ["172.16.1.10", HAVIP], SAS), HAVIP)
    assert st["role"] == "MASTER" and st["holds_havip"] and st["ike_sas"] == 1
    st = ha.parse_state(state_out("BACKUP", ["172.16.1.11"]), HAVIP)
    assert st["role"] == "BACKUP" and not st["holds_havip"] and st["ike_sas"] == 0
    assert ha.parse_state("garbage", HAVIP)["role"] == "UNKNOWN"


def test_parse_role_accepts_keepalived_words_only():
    assert gateways.parse_role("MASTER\n") == "MASTER"
    assert gateways.parse_role("") == "UNKNOWN"
    assert gateways.parse_role("cat: no such file\nNONE") == "NONE"
    assert gateways.parse_role("master") == "UNKNOWN"


def _session():
    return SimpleNamespace(topo=SimpleNamespace(havip=HAVIP))


def test_pair_verdict_wants_one_master_holding_the_havip_and_every_sa():
    s = _session()
    good = {
        1: {"role": "MASTER", "holds_havip": True, "ike_sas": 2},
        2: {"role": "BACKUP", "holds_havip": False, "ike_sas": 0},
    }
    assert ha.pair_verdict(s, good) == []
    split = {n: {**st, "role": "MASTER", "holds_havip": True} for n, st in good.items()}
    assert any("2 gateways are MASTER" in p for p in ha.pair_verdict(s, split))
    stale = {1: good[1], 2: {**good[2], "ike_sas": 1}}
    assert any("standby gateway 2 holds 1 IKE SAs" in p for p in ha.pair_verdict(s, stale))
    fault = {1: good[1], 2: {**good[2], "role": "FAULT"}}
    assert any("standby gateway 2 is FAULT" in p for p in ha.pair_verdict(s, fault))
    lost_vip = {1: {**good[1], "holds_havip": False}, 2: good[2]}
    assert any("HaVip" in p for p in ha.pair_verdict(s, lost_vip))


def test_the_rolling_replacement_changes_only_ssh_allowed_cidrs():
    text = "config:\n  aws2aliyun-vpc:gatewayCount: '2'\n  aws2aliyun-vpc:sshAllowedCidrs: ['10.0.0.1/32']\n"
    doc = yaml.safe_load(ha.changed_stack(text))
    assert doc["config"]["aws2aliyun-vpc:sshAllowedCidrs"] == ["10.0.0.1/32", ha.ROLLING_SSH_CIDR]
    assert doc["config"]["aws2aliyun-vpc:gatewayCount"] == "2"
    doc = yaml.safe_load(ha.changed_stack("config:\n  aws2aliyun-vpc:gatewayCount: '2'\n"))
    assert doc["config"]["aws2aliyun-vpc:sshAllowedCidrs"] == [ha.ROLLING_SSH_CIDR]


def test_a_pair_runs_the_ha_checks_the_traffic_and_the_tunnel_failover():
    """Issue 13, item 5: every ha_* check the issue names, and the existing traffic and
    tunnel-failover checks, on a pair stack; none of the ha_* checks on one gateway."""
    pair = registry.for_ike(2, 2)
    for name in (
        "ha_established",
        "ha_active_killed",
        "ha_strongswan_killed",
        "ha_recovered_no_preempt",
        "ha_partition",
        "ha_rolling_replacement",
        "icmp_ali_to_aws",
        "tcp_aws_to_ali",
        "failover_tunnel1",
        "failback",
    ):
        assert name in pair
    assert not [n for n in registry.for_ike(2, 1) if n.startswith("ha_")]
    # the killed gateway comes back after it was killed; the rolling replacement is last
    assert pair.index("ha_active_killed") < pair.index("ha_recovered_no_preempt")
    assert pair[-1] == ha.ROLLING_CHECK
    for name in ("ha_active_killed", "ha_strongswan_killed"):
        assert {g.metric for g in registry.BY_NAME[name].goals} == {"ha_uplink_outage_s", "ha_downlink_outage_s"}
        assert all(g.limit == 10.0 for g in registry.BY_NAME[name].goals)


def test_benchmarks_put_one_gateway_and_a_pair_side_by_side():
    from lab import benchmarks

    def rep(pair: bool, checks: dict) -> dict:
        plan = {"havip": "172.16.1.12"} if pair else {}
        return {
            "config": {"crypto_profile": "modern", "plan": plan},
            "checks": [{"name": n, "ok": True, "metrics": m} for n, m in checks.items()],
        }

    single = rep(False, {"reboot_persistence": {"reboot_to_established_s": 55.0}})
    pair = rep(True, {"ha_active_killed": {"ha_uplink_outage_s": 4.2, "ha_downlink_outage_s": 6.5}})
    text = "\n".join(benchmarks.availability_section([single, pair]))
    assert "55.0 s (`reboot_persistence`)" in text and "6.5 s (`ha_active_killed`)" in text
    assert "not measured (`ha_rolling_replacement`)" in text  # a missing metric says so
    assert benchmarks.profile_name(pair) == "modern, gateway pair" and benchmarks.profile_name(single) == "modern"
    assert benchmarks.availability_section([single]) == []  # no pair report: no section


def test_takeover_steps_from_the_new_active_gateways_journal():
    from lab.checks.ha import takeover_steps

    journal = """Dec 06 08:18:40.100 gw1 aws2aliyun-ha[10]: keepalived: MASTER (priority 101): taking the tunnels
Dec 06 08:18:41.300 gw1 aws2aliyun-ha[11]: MASTER: connections loaded in 0.9s; initiating the tunnels
Dec 06 08:18:45.000 gw1 aws2aliyun-ha[12]: MASTER: tunnel2: initiate completed successfully (4.6s after taking over)
Dec 06 08:18:47.000 gw1 aws2aliyun-ha[13]: MASTER: tunnel1: initiate completed successfully (6.1s after taking over)
Dec 06 08:19:10.000 gw1 aws2aliyun-ha[14]: BACKUP: connections unloaded, both tunnels torn down (the active gateway holds them)
"""
    assert takeover_steps(journal) == {
        "connections_loaded_s": 0.9,
        "tunnel2_initiated_s": 4.6,
        "tunnel1_initiated_s": 6.1,
    }
    # a second hand-over in the same journal: its own steps only
    again = (
        journal
        + "Dec 06 08:20:00.000 gw1 aws2aliyun-ha[20]: MASTER: connections loaded in 1.4s; initiating the tunnels\n"
    )
    assert takeover_steps(again) == {"connections_loaded_s": 1.4}
    assert takeover_steps("") == {}
