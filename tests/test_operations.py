"""Operating the link: per-environment stacks, alarms on tunnel state, PSK storage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import plan_for
from tools import offline, stackfile
from userdata.cloud_config import decode_user_data

ROOT = Path(__file__).resolve().parent.parent
STACK_FILES = sorted(ROOT.glob("Pulumi.*.yaml")) + sorted((ROOT / "lab" / "stacks").glob("Pulumi.*.yaml"))


@pytest.mark.parametrize("path", STACK_FILES, ids=[p.name for p in STACK_FILES])
def test_every_stack_file_plans_offline(path):
    plan = offline.run(stackfile.load(path))
    assert plan.one("aws2aliyun:index:VpnLink")
    assert plan.one("aws:ec2/vpnConnection:VpnConnection")


def test_one_tunnel_state_alarm_per_tunnel(dev_plan):
    vpn = dev_plan.one("aws:ec2/vpnConnection:VpnConnection")
    topic = dev_plan.one("aws:sns/topic:Topic")
    alarms = dev_plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert len(alarms) == 2
    watched = set()
    for alarm in alarms:
        assert alarm.input("namespace") == "AWS/VPN" and alarm.input("metricName") == "TunnelState", alarm.urn
        assert alarm.input("comparisonOperator") == "LessThanThreshold" and alarm.input("threshold") == 1
        assert alarm.input("treatMissingData") == "breaching"
        assert alarm.input("alarmActions") == [topic.output("arn")] == alarm.input("okActions")
        watched.add(alarm.input("dimensions")["TunnelIpAddress"])
    assert watched == {vpn.output("tunnel1Address"), vpn.output("tunnel2Address")}
    assert not dev_plan.of_type("aws:sns/topicSubscription:TopicSubscription"), "dev subscribes no one"


def test_dashboard_shows_both_tunnels(dev_plan):
    vpn = dev_plan.one("aws:ec2/vpnConnection:VpnConnection")
    body = json.loads(dev_plan.one("aws:cloudwatch/dashboard:Dashboard").input("dashboardBody"))
    metrics = body["widgets"][0]["properties"]["metrics"]
    assert [m[3] for m in metrics] == [vpn.output("tunnel1Address"), vpn.output("tunnel2Address")]
    assert all(m[:3] == ["AWS/VPN", "TunnelState", "TunnelIpAddress"] for m in metrics)
    assert "#dashboards:name=aws2aliyun-vpc-dev" in dev_plan.outputs["tunnelStateDashboardUrl"]


def test_prod_is_sturdier_and_protected():
    plan = offline.run(stackfile.load(ROOT / "Pulumi.prod.yaml"))
    ecs = plan.one("alicloud:ecs/instance:Instance")
    assert ecs.input("instanceType") == "ecs.g7.large"
    assert ecs.input("deletionProtection") is False, "replaced by design: see test_day_two"
    assert plan.one("alicloud:ecs/eipAddress:EipAddress").input("deletionProtection") is True
    assert plan.one("aws:cloudwatch/logGroup:LogGroup").input("retentionInDays") == 365
    sub = plan.one("aws:sns/topicSubscription:TopicSubscription")
    assert sub.input("protocol") == "email" and sub.input("topic") == plan.one("aws:sns/topic:Topic").output("arn")
    assert plan.one("aws:ec2/vpnConnection:VpnConnection").input("presharedKeyStorage") == "SecretsManager"


def test_secrets_manager_storage_still_feeds_the_gateway_its_keys():
    plan = plan_for(presharedKeyStorage="SecretsManager")
    vpn = plan.one("aws:ec2/vpnConnection:VpnConnection")
    user_data = decode_user_data(plan.one("alicloud:ecs/instance:Instance").input("userData"))
    for n in (1, 2):
        assert vpn.input(f"tunnel{n}PresharedKey") in user_data
