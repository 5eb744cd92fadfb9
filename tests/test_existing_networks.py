"""The networks users already have (issue 12): an existing Alibaba VPC and vSwitch, several
prefixes per side, a Transit Gateway; under mocks, and their settings refused when wrong."""

from __future__ import annotations

import pytest
import yaml

from core import paths
from core.settings import SettingsError, load_settings
from tests.conftest import dev_values, plan_for
from tools import mocks, offline
from userdata.cloud_config import decode_user_data

ECS = "alicloud:ecs/instance:Instance"
ROUTE_ENTRY = "alicloud:vpc/routeEntry:RouteEntry"
SG_RULE = "alicloud:ecs/securityGroupRule:SecurityGroupRule"
VPN = "aws:ec2/vpnConnection:VpnConnection"
VPN_ROUTE = "aws:ec2/vpnConnectionRoute:VpnConnectionRoute"
TGW_ROUTE = "aws:ec2transitgateway/route:Route"

ALI_VPC = "vpc-bp1opxu1zkhn00gzv26cc"
ALI_VSWITCH = "vsw-bp1s5fnvk4gn2tws03624"
ALI_TABLES = ["vtb-bp145q7glnuzdvzu2ctof", "vtb-bp1k9rq0pl4myjv6kzn2w"]
AWS_VPC = "vpc-0123456789abcdef0"
AWS_TABLE = "rtb-0123456789abcdef0"
TGW = "tgw-0123456789abcdef0"
TGW_TABLE = "tgw-rtb-0fedcba9876543210"
AWS_CIDRS = ["10.10.0.0/16", "10.20.0.0/16"]
ALI_CIDRS = ["172.16.0.0/16", "192.168.8.0/24"]

# Both sides existing, two prefixes each (awsVpcCidr/aliVpcCidr give way to the lists).
BROWNFIELD = {
    "awsVpcCidr": None,
    "aliVpcCidr": None,
    "aliVswitchCidr": None,
    "awsVpcId": AWS_VPC,
    "awsRouteTableIds": [AWS_TABLE],
    "awsCidrs": AWS_CIDRS,
    "aliVpcId": ALI_VPC,
    "aliVswitchId": ALI_VSWITCH,
    "aliCidrs": ALI_CIDRS,
}


def written(plan: offline.Plan) -> dict[str, str]:
    doc = yaml.safe_load(decode_user_data(plan.one(ECS).input("userData")))
    return {f["path"]: f["content"] for f in doc["write_files"]}


def routes(plan: offline.Plan) -> set[tuple[str, str]]:
    """(route table, destination) of every Alibaba route entry."""
    return {(r.input("routeTableId"), r.input("destinationCidrblock")) for r in plan.of_type(ROUTE_ENTRY)}


def test_existing_alibaba_vpc_and_vswitch_are_used_not_created():
    plan = plan_for(**BROWNFIELD)
    assert not plan.of_type("alicloud:vpc/network:Network")
    assert not plan.of_type("alicloud:vpc/switch:Switch")
    ecs = plan.one(ECS)
    assert ecs.input("vswitchId") == ALI_VSWITCH
    assert ecs.input("availabilityZone") == mocks.ALI_ZONE  # the vSwitch's own zone, looked up
    # Alibaba assigns the address in an existing vSwitch (host .10 may be a workload's), so
    # strongSwan binds to whatever the ECS has.
    assert ecs.input("privateIp") is None
    assert "local_addrs" not in written(plan)[paths.SWANCTL_CONF_PATH]
    assert plan.one("alicloud:ecs/securityGroup:SecurityGroup").input("vpcId") == ALI_VPC
    # no aliRouteTableIds: the VPC's system route table, one entry per AWS prefix
    system = mocks.existing_vpc(ALI_VPC)["routeTableId"]
    assert routes(plan) == {(system, cidr) for cidr in AWS_CIDRS}
    assert all(r.input("nexthopId") == ecs.id for r in plan.of_type(ROUTE_ENTRY))


def test_new_vswitch_in_an_existing_vpc_routes_in_the_named_tables():
    plan = plan_for(
        **{**BROWNFIELD, "aliVswitchId": None, "aliVswitchCidr": "172.16.200.0/24", "aliRouteTableIds": ALI_TABLES}
    )
    vswitch = plan.one("alicloud:vpc/switch:Switch")
    assert vswitch.input("vpcId") == ALI_VPC and vswitch.input("cidrBlock") == "172.16.200.0/24"
    ecs = plan.one(ECS)
    assert ecs.input("vswitchId") == vswitch.id and ecs.input("privateIp") == "172.16.200.10"
    assert routes(plan) == {(table, cidr) for table in ALI_TABLES for cidr in AWS_CIDRS}
    # one table's entries one after the other: Alibaba refuses concurrent edits (TaskConflict)
    urns = {r.urn for r in plan.of_type(ROUTE_ENTRY)}
    after = {r.urn: [d for d in r.depends_on if d in urns] for r in plan.of_type(ROUTE_ENTRY)}
    first = [u for u, deps in after.items() if not deps]
    assert len(first) == 1 and all(len(deps) <= 1 for deps in after.values())
    chain, nxt = first, {deps[0]: u for u, deps in after.items() if deps}
    while chain[-1] in nxt:
        chain.append(nxt[chain[-1]])
    assert len(chain) == len(urns) == 4


def test_every_prefix_is_routed_admitted_and_forwarded():
    plan = plan_for(**BROWNFIELD)
    # AWS: one static route per Alibaba prefix on the VPN connection
    vpn = plan.one(VPN)
    assert {r.input("destinationCidrBlock") for r in plan.of_type(VPN_ROUTE)} == set(ALI_CIDRS)
    assert all(r.input("vpnConnectionId") == vpn.id for r in plan.of_type(VPN_ROUTE))
    # the security group admits exactly the Alibaba prefixes for forwarding
    forwarded = {r.input("cidrIp") for r in plan.of_type(SG_RULE) if r.input("ipProtocol") == "all"}
    assert forwarded == set(ALI_CIDRS)
    # the gateway: every AWS prefix over each tunnel (updown reads link.env), the firewall's sets
    files = written(plan)
    assert "AWS_CIDRS='10.10.0.0/16 10.20.0.0/16'" in files[paths.LINK_ENV_PATH]
    assert "ALI_CIDRS='172.16.0.0/16 192.168.8.0/24'" in files[paths.LINK_ENV_PATH]
    nft = files[paths.FIREWALL_PATH]
    assert "elements = { 10.10.0.0/16, 10.20.0.0/16 }" in nft
    assert "elements = { 172.16.0.0/16, 192.168.8.0/24 }" in nft
    assert plan.one("aws:ec2/vpnGatewayAttachment:VpnGatewayAttachment").input("vpcId") == AWS_VPC


def test_single_prefix_keys_still_work_and_keep_their_resources(dev_plan):
    """awsVpcCidr/aliVpcCidr alone: one route each way, as before several prefixes."""
    assert [r.input("destinationCidrblock") for r in dev_plan.of_type(ROUTE_ENTRY)] == ["10.10.0.0/16"]
    assert [r.input("destinationCidrBlock") for r in dev_plan.of_type(VPN_ROUTE)] == ["172.16.0.0/16"]
    # a stack deployed before several prefixes keeps its route entry and rules (aliases)
    entry, route = dev_plan.one(ROUTE_ENTRY), dev_plan.one(VPN_ROUTE)
    assert entry.name == "link-route-to-aws-10-10-0-0-16" and entry.options["aliasNames"] == ["link-route-to-aws"]
    assert route.name == "link-vpn-route-172-16-0-0-16" and route.options["aliasNames"] == ["link-vpn-route"]
    forward = next(r for r in dev_plan.of_type(SG_RULE) if r.input("ipProtocol") == "all")
    assert forward.options["aliasNames"] == ["link-sg-forward-ali"]


@pytest.mark.parametrize("table", [None, TGW_TABLE])
def test_transit_gateway_instead_of_a_virtual_private_gateway(table):
    plan = plan_for(
        awsVpcCidr=None,
        awsTransitGatewayId=TGW,
        awsTransitGatewayRouteTableId=table,
        awsCidrs=AWS_CIDRS,
    )
    for absent in ("aws:ec2/vpc:Vpc", "aws:ec2/vpnGateway:VpnGateway", VPN_ROUTE):
        assert not plan.of_type(absent), absent
    vpn = plan.one(VPN)
    assert vpn.input("transitGatewayId") == TGW and vpn.input("vpnGatewayId") is None
    assert vpn.input("staticRoutesOnly") is True
    tgw_routes = plan.of_type(TGW_ROUTE)
    assert {r.input("destinationCidrBlock") for r in tgw_routes} == {"172.16.0.0/16"}
    want_table = table or mocks.transit_gateway_route_table(TGW)
    for r in tgw_routes:
        assert r.input("transitGatewayRouteTableId") == want_table
        assert r.input("transitGatewayAttachmentId") == vpn.output("transitGatewayAttachmentId")
    # the Alibaba side routes exactly what lies behind the Transit Gateway
    assert {cidr for _, cidr in routes(plan)} == set(AWS_CIDRS)


def problems(**overrides) -> list[str]:
    with pytest.raises(SettingsError) as err:
        load_settings(dev_values(**overrides))
    return err.value.problems


def test_bad_networks_are_refused_each_naming_its_setting():
    found = problems(
        awsVpcCidr=None,
        aliVpcCidr=None,
        aliVswitchCidr=None,
        awsCidrs=["10.10.0.0/16", "10.10.128.0/17", "169.254.0.0/24"],
        aliCidrs=["172.16.0.0/16", "10.10.5.0/24"],
        awsVpcId="vpc-0123456789abcdef0",
        awsRouteTableIds=["rtb-0123456789abcdef0"],
        aliVswitchId="vswitch-1",
    )
    text = "\n".join(found)
    assert "awsCidrs[1]: '10.10.128.0/17' is invalid: overlaps awsCidrs[0] 10.10.0.0/16" in text
    assert "awsCidrs[2]: '169.254.0.0/24' is invalid: must not be inside 169.254.0.0/16" in text
    assert "aliCidrs[1]: '10.10.5.0/24' is invalid: must not overlap awsCidrs[0] 10.10.0.0/16" in text
    assert "aliVswitchId: 'vswitch-1' is invalid: expected an Alibaba vSwitch id" in text
    # a new Alibaba VPC has one CIDR
    assert any(p.startswith("aliCidrs: ") and "a new Alibaba VPC has one CIDR" in p for p in found)


def test_transit_gateway_refuses_the_virtual_private_gateways_options():
    found = problems(
        awsTransitGatewayId=TGW,
        awsVpcId=AWS_VPC,
        awsRouteTableIds=[AWS_TABLE],
    )
    text = "\n".join(found)
    assert "awsVpcCidr: '10.10.0.0/16' is invalid: does not apply with awsTransitGatewayId" in text
    assert "awsCidrs: [] is invalid: must list the prefixes behind the Transit Gateway" in text
    assert "awsVpcId: 'vpc-0123456789abcdef0' is invalid: does not apply with awsTransitGatewayId" in text
    assert "awsRouteTableIds: ['rtb-0123456789abcdef0'] is invalid: does not apply with awsTransitGatewayId" in text


@pytest.mark.parametrize(
    ("overrides", "wanted"),
    [
        (
            {"aliVswitchId": ALI_VSWITCH},
            "aliVswitchId: 'vsw-bp1s5fnvk4gn2tws03624' is invalid: only applies with aliVpcId",
        ),
        ({"aliRouteTableIds": ALI_TABLES}, "aliRouteTableIds: [" + repr(ALI_TABLES[0])),
        (
            {"aliVpcId": ALI_VPC, "aliVswitchId": ALI_VSWITCH},
            "aliVswitchCidr: '172.16.1.0/24' is invalid: set either aliVswitchId",
        ),
        ({"awsCidrs": AWS_CIDRS}, "awsCidrs: ['10.10.0.0/16', '10.20.0.0/16'] is invalid: set either awsVpcCidr"),
        ({"awsVpcCidr": None, "awsCidrs": AWS_CIDRS}, "a new AWS VPC has one CIDR"),
        ({"awsTransitGatewayRouteTableId": TGW_TABLE}, "only applies with awsTransitGatewayId"),
        ({"aliVpcId": "vpc-0123456789abcdef0X"}, "aliVpcId: 'vpc-0123456789abcdef0X' is invalid"),
    ],
)
def test_options_that_need_another_one(overrides, wanted):
    assert any(wanted in p for p in problems(**overrides)), problems(**overrides)


def test_provider_limits_on_the_number_of_prefixes():
    many = [f"10.{i // 256}.{i % 256}.0/24" for i in range(201)]
    found = problems(awsVpcCidr=None, awsVpcId=AWS_VPC, awsRouteTableIds=[AWS_TABLE], awsCidrs=many)
    assert any("at most 200 custom route entries" in p for p in found), found
    ali = [f"192.168.{i}.0/24" for i in range(101)]
    found = problems(aliVpcCidr=None, aliVswitchCidr="172.16.1.0/24", aliVpcId=ALI_VPC, aliCidrs=ali)
    assert any("at most 100 static routes" in p for p in found), found
