"""VpnLink as a package (issue 12): other programs build it from typed arguments, and the
component provider host serves it, with its schema, to programs in any language."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from components.args import VpnLinkArgs
from components.link import OUTPUTS, TYPE_TOKEN, VpnLink, VpnLinkArgsError, settings_from_args
from core.settings import KEYS
from tests import consumer_program
from tools import offline, stackfile
from userdata.cloud_config import decode_user_data

ROOT = Path(__file__).resolve().parent.parent
REGIONS = {"aws:region": "ap-southeast-1", "alicloud:region": "cn-hangzhou"}


def consumer_stack() -> stackfile.StackConfig:
    """A stack of the consumer's own project: the providers' regions and nothing of ours."""
    return stackfile.StackConfig(
        name="consumer", path=ROOT / "Pulumi.dev.yaml", values=dict(REGIONS), secret_keys=set()
    )


@pytest.fixture(scope="module")
def consumer_plan() -> offline.Plan:
    return offline.run(consumer_stack(), program=consumer_program.program)


def by_name(plan: offline.Plan, type_: str) -> dict[str, offline.Resource]:
    return {r.name: r for r in plan.of_type(type_)}


def test_a_consumer_program_links_its_own_networks(consumer_plan):
    plan = consumer_plan
    ali_vpc = by_name(plan, "alicloud:vpc/network:Network")["apps"]
    vswitch = by_name(plan, "alicloud:vpc/switch:Switch")["apps-a"]
    tgw = plan.one("aws:ec2transitgateway/transitGateway:TransitGateway")
    # nothing of its networks is created twice: one VPC and one vSwitch each, no VGW
    assert len(plan.of_type("alicloud:vpc/network:Network")) == len(plan.of_type("alicloud:vpc/switch:Switch")) == 1
    assert not plan.of_type("aws:ec2/vpnGateway:VpnGateway")
    ecs = plan.one("alicloud:ecs/instance:Instance")
    assert ecs.input("vswitchId") == vswitch.id
    assert plan.one("alicloud:ecs/securityGroup:SecurityGroup").input("vpcId") == ali_vpc.id
    # Alibaba: each AWS CIDR to the gateway, in the VPC's system route table
    entries = plan.of_type("alicloud:vpc/routeEntry:RouteEntry")
    assert {(r.input("routeTableId"), r.input("destinationCidrblock")) for r in entries} == {
        (ali_vpc.output("routeTableId"), cidr) for cidr in consumer_program.AWS_CIDRS
    }
    assert all(r.input("nexthopId") == ecs.id for r in entries)
    # AWS: the VPN on the Transit Gateway, the Alibaba CIDR routed to its attachment in the
    # route table the program passed (an Output of its Transit Gateway)
    vpn = plan.one("aws:ec2/vpnConnection:VpnConnection")
    assert vpn.input("transitGatewayId") == tgw.id
    (route,) = plan.of_type("aws:ec2transitgateway/route:Route")
    assert route.input("destinationCidrBlock") == consumer_program.ALI_CIDR
    assert route.input("transitGatewayRouteTableId") == tgw.output("associationDefaultRouteTableId")
    assert route.input("transitGatewayAttachmentId") == vpn.output("transitGatewayAttachmentId")
    # the gateway routes both AWS CIDRs over each tunnel
    assert "AWS_CIDRS='10.30.0.0/16 10.31.0.0/16'" in decode_user_data(ecs.input("userData"))
    assert plan.outputs["vpnConnectionId"] == vpn.id


def test_bad_arguments_are_refused_with_the_field_named_before_anything_exists():
    with pytest.raises(VpnLinkArgsError) as err:
        offline.run(
            consumer_stack(),
            program=lambda: VpnLink(
                "bad",
                VpnLinkArgs(
                    aws_transit_gateway_id="tgw-0123456789abcdef0",
                    aws_vpc_id="vpc-0123456789abcdef0",
                    aws_cidrs=["10.30.0.0/16"],
                    ali_cidrs=["10.30.5.0/24"],
                    ali_vpc_id="vpc-bp1opxu1zkhn00gzv26cc",
                    ali_vswitch_id="not-a-vswitch",
                    dpd_timeout_seconds=5,
                    **{"aws_cidr": ["10.0.0.0/8"]},  # type: ignore[typeddict-unknown-key]
                ),
            ),
        )
    text = str(err.value)
    for wanted in (
        "aws_cidr: is not an argument of VpnLink (did you mean aws_cidrs?)",
        "awsVpcId: 'vpc-0123456789abcdef0' is invalid: does not apply with awsTransitGatewayId",
        "aliCidrs[0]: '10.30.5.0/24' is invalid: must not overlap awsCidrs[0] 10.30.0.0/16",
        "aliVswitchId: 'not-a-vswitch' is invalid: expected an Alibaba vSwitch id",
        "dpdTimeoutSeconds: 5 is invalid: AWS requires at least 30 seconds",
    ):
        assert wanted in text, text
    assert "Traceback" not in text


def test_a_plain_value_that_decides_resources_cannot_be_an_output():
    import pulumi

    with pytest.raises(VpnLinkArgsError) as err:
        offline.run(
            consumer_stack(),
            program=lambda: settings_from_args({"aws_cidrs": pulumi.Output.from_input(["10.0.0.0/16"])}),
        )
    assert "awsCidrs: '(an Output)' is invalid: must be a plain value" in str(err.value)


@pytest.fixture(scope="module")
def schema() -> dict:
    """The schema the provider host serves over gRPC, as `pulumi package add` reads it."""
    host = subprocess.Popen(
        [sys.executable, str(ROOT / "provider" / "__main__.py"), "127.0.0.1:1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert host.stdout is not None
        port = host.stdout.readline().strip()
        assert port.isdigit(), f"no port from the provider host: {port!r} {host.stderr.read() if host.stderr else ''}"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            reply = stub.GetSchema(provider_pb2.GetSchemaRequest(version=0), timeout=60)
        return json.loads(reply.schema)
    finally:
        host.terminate()
        host.wait(timeout=10)


def test_provider_host_serves_the_schema_with_every_input_and_output_documented(schema):
    assert schema["name"] == "aws2aliyun"
    component = schema["resources"][TYPE_TOKEN]
    assert component["isComponent"] is True
    inputs, outputs = component["inputProperties"], component["properties"]
    # every stack config key is an input, named as the key; nothing is required
    assert set(inputs) == {k.name for k in KEYS}
    assert not component.get("requiredInputs")
    for name, prop in {**inputs, **outputs}.items():
        assert prop.get("description"), f"{name} has no description"
    # ids and secrets take Outputs, CIDR lists are plain (they decide how many routes exist)
    assert "plain" not in inputs["aliVpcId"] and "plain" not in inputs["tunnel1PresharedKey"]
    assert inputs["awsCidrs"]["type"] == "array" and inputs["awsCidrs"].get("plain") is True
    assert inputs["aliRouteTableIds"]["items"]["type"] == "string"
    assert "plain" not in inputs["aliRouteTableIds"]["items"]
    assert inputs["dpdTimeoutSeconds"]["type"] == "integer" and inputs["verify"]["type"] == "boolean"
    assert set(outputs) >= {"eipAddress", "vpnConnectionId", "tunnel1Address", "tunnel2Address", "awsCidrs"}
    assert len(outputs) == len(OUTPUTS)
