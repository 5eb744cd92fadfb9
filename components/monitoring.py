"""Alarms on tunnel state: AWS drops a tunnel without telling anyone, so tell someone.

One CloudWatch `TunnelState` alarm per tunnel (AWS/VPN, dimension TunnelIpAddress) feeding
an SNS topic with an optional e-mail subscription, and a dashboard showing both tunnels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.naming import stack_scoped
from core.settings import Settings

# TunnelState is 1 when the tunnel is up, 0 when down; AWS publishes it every 5 minutes
# at most, so judge on 5-minute periods and treat silence as down.
ALARM_PERIOD_S = 300
ALARM_EVALUATION_PERIODS = 1


@dataclass
class Monitoring:
    topic: aws.sns.Topic
    alarms: list[aws.cloudwatch.MetricAlarm]
    dashboard: aws.cloudwatch.Dashboard


def tunnel_state_alarm_args(n: int, tunnel_address: pulumi.Input[str], topic_arn: pulumi.Input[str]) -> dict:
    return {
        "alarm_description": f"AWS VPN tunnel {n} of the aws2aliyun-vpc link is down",
        "namespace": "AWS/VPN",
        "metric_name": "TunnelState",
        "dimensions": {"TunnelIpAddress": tunnel_address},
        "statistic": "Maximum",
        "period": ALARM_PERIOD_S,
        "evaluation_periods": ALARM_EVALUATION_PERIODS,
        "threshold": 1,
        "comparison_operator": "LessThanThreshold",
        "treat_missing_data": "breaching",
        "alarm_actions": [topic_arn],
        "ok_actions": [topic_arn],
    }


def dashboard_body(region: str, tunnel_addresses: list[str]) -> str:
    """A CloudWatch dashboard with TunnelState of both tunnels on one graph."""
    metrics = [
        ["AWS/VPN", "TunnelState", "TunnelIpAddress", a, {"label": f"tunnel {i}"}]
        for i, a in enumerate(tunnel_addresses, 1)
    ]
    widget = {
        "type": "metric",
        "x": 0,
        "y": 0,
        "width": 24,
        "height": 6,
        "properties": {
            "title": "aws2aliyun-vpc tunnel state (1 = up)",
            "region": region,
            "metrics": metrics,
            "stat": "Maximum",
            "period": ALARM_PERIOD_S,
            "yAxis": {"left": {"min": 0, "max": 1}},
        },
    }
    return json.dumps({"widgets": [widget]}, sort_keys=True)


def create(
    name: str,
    s: Settings,
    region: pulumi.Input[str],
    tunnel_addresses: tuple[pulumi.Output[str], pulumi.Output[str]],
    parent: pulumi.Resource,
) -> Monitoring:
    opts = pulumi.ResourceOptions(parent=parent)
    topic = aws.sns.Topic(f"{name}-alarms", tags={"managed-by": "aws2aliyun-vpc"}, opts=opts)
    if s.alarm_email:
        aws.sns.TopicSubscription(
            f"{name}-alarms-email", topic=topic.arn, protocol="email", endpoint=s.alarm_email, opts=opts
        )
    alarms = [
        aws.cloudwatch.MetricAlarm(
            f"{name}-tunnel{n}-state", **tunnel_state_alarm_args(n, address, topic.arn), opts=opts
        )
        for n, address in enumerate(tunnel_addresses, start=1)
    ]
    dashboard = aws.cloudwatch.Dashboard(
        f"{name}-dashboard",
        dashboard_name=stack_scoped(),  # unique per account: one per stack
        dashboard_body=pulumi.Output.all(region, *tunnel_addresses).apply(lambda a: dashboard_body(a[0], list(a[1:]))),
        opts=opts,
    )
    return Monitoring(topic=topic, alarms=alarms, dashboard=dashboard)


def dashboard_url(region: pulumi.Input[str], dashboard_name: pulumi.Input[str]) -> pulumi.Output[str]:
    return pulumi.Output.format(
        "https://{0}.console.aws.amazon.com/cloudwatch/home?region={0}#dashboards:name={1}", region, dashboard_name
    )
