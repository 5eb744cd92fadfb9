"""The AWS end: a virtual private gateway in a new or existing VPC, or an existing Transit
Gateway; customer gateway, VPN connection with two tunnels, tunnel logs, and with static
routing one static route towards Alibaba per Alibaba prefix (with BGP the gateway announces
them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.naming import cidr_slug, given
from core.settings import Settings

# The ECS is the only initiator: AWS waits (startup_action=add), so the two ends never
# race to create duplicate SAs (seed 003; FACTS.md "who initiates").
STARTUP_ACTION = "add"
DPD_TIMEOUT_ACTION = "clear"
# bgp_asn holds 1 to 2,147,483,647; an ASN above goes in bgp_asn_extended (the API's BgpAsnExtended)
CUSTOMER_GATEWAY_BGP_ASN_MAX = 2_147_483_647


def customer_gateway_asn(s: Settings) -> dict[str, str]:
    """The customer gateway's ASN argument: `bgpAsn` (with static routing AWS requires one too,
    and 65000 was this program's choice before BGP, so such stacks keep their gateway)."""
    key = "bgp_asn" if s.bgp_asn <= CUSTOMER_GATEWAY_BGP_ASN_MAX else "bgp_asn_extended"
    return {key: str(s.bgp_asn)}


@dataclass
class AwsNetwork:
    vpc_id: pulumi.Output[str] | None  # None with a Transit Gateway
    route_table_ids: list[pulumi.Output[str]]
    vpn_gateway: aws.ec2.VpnGateway | None  # None with a Transit Gateway
    transit_gateway_id: pulumi.Output[str] | None = None


@dataclass
class AwsVpn:
    customer_gateway: aws.ec2.CustomerGateway
    connection: aws.ec2.VpnConnection
    log_group: aws.cloudwatch.LogGroup


def create_network(name: str, s: Settings, parent: pulumi.Resource) -> AwsNetwork:
    """The VPC side: a new VPC with a subnet and route table, or the given existing VPC;
    a virtual private gateway attached to it, propagating its routes to every route table.
    With a Transit Gateway nothing: the VPN connection attaches to it."""
    opts = pulumi.ResourceOptions(parent=parent)
    tags = {"Name": name, "managed-by": "aws2aliyun-vpc"}
    if s.uses_transit_gateway:
        return AwsNetwork(
            vpc_id=None,
            route_table_ids=[],
            vpn_gateway=None,
            transit_gateway_id=pulumi.Output.from_input(given(s.aws_transit_gateway_id)),
        )
    if s.aws_vpc_id is None:
        vpc = aws.ec2.Vpc(
            f"{name}-aws-vpc",
            cidr_block=str(s.aws_vpc_cidr),
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags=tags,
            opts=opts,
        )
        subnet = aws.ec2.Subnet(
            f"{name}-aws-subnet", vpc_id=vpc.id, cidr_block=str(s.aws_subnet_cidr), tags=tags, opts=opts
        )
        route_table = aws.ec2.RouteTable(f"{name}-aws-rt", vpc_id=vpc.id, tags=tags, opts=opts)
        aws.ec2.RouteTableAssociation(
            f"{name}-aws-rt-assoc", subnet_id=subnet.id, route_table_id=route_table.id, opts=opts
        )
        vpc_id: pulumi.Output[str] = vpc.id
        route_table_ids = [route_table.id]
    else:
        vpc_id = pulumi.Output.from_input(s.aws_vpc_id)
        route_table_ids = [pulumi.Output.from_input(rt) for rt in s.aws_route_table_ids]

    # AWS's own default is 64512, so a stack from before `awsAsn` keeps its gateway (ForceNew)
    vgw = aws.ec2.VpnGateway(f"{name}-vgw", amazon_side_asn=str(s.aws_asn), tags=tags, opts=opts)
    attachment = aws.ec2.VpnGatewayAttachment(f"{name}-vgw-attachment", vpc_id=vpc_id, vpn_gateway_id=vgw.id, opts=opts)
    for i, rt in enumerate(route_table_ids):
        aws.ec2.VpnGatewayRoutePropagation(
            f"{name}-vgw-propagation-{i}",
            route_table_id=rt,
            vpn_gateway_id=vgw.id,
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[attachment]),
        )
    return AwsNetwork(vpc_id=vpc_id, route_table_ids=route_table_ids, vpn_gateway=vgw)


def tunnel_options(s: Settings, log_group_arn: pulumi.Input[str]) -> dict[str, Any]:
    """VpnConnection keyword arguments for both tunnels: crypto from the profile, inside
    CIDRs and PSKs from the settings (PSKs are passed in separately as secrets)."""
    args: dict[str, Any] = {}
    for n in (1, 2):
        p = f"tunnel{n}_"
        for key, value in s.crypto.aws_tunnel_options().items():
            args[p + key] = value
        inside = s.tunnel_inside_cidrs[n - 1]
        if inside is not None:
            args[p + "inside_cidr"] = str(inside)
        args[p + "dpd_timeout_seconds"] = s.dpd_timeout_s
        args[p + "dpd_timeout_action"] = DPD_TIMEOUT_ACTION
        args[p + "startup_action"] = STARTUP_ACTION
        args[p + "log_options"] = {
            "cloudwatch_log_options": {
                "log_enabled": True,
                "log_group_arn": log_group_arn,
                "log_output_format": "json",
            }
        }
    return args


def create_vpn(
    name: str,
    s: Settings,
    network: AwsNetwork,
    eip_address: pulumi.Input[str],
    preshared_keys: tuple[pulumi.Output[str], pulumi.Output[str]],
    parent: pulumi.Resource,
) -> AwsVpn:
    """Customer gateway at the EIP, the VPN connection, its logs and, with static routing, the
    static routes: the connection's own with a virtual private gateway, the Transit Gateway
    route table's with one (AWS: "for a VPN connection on a transit gateway, you add the static
    routes in the transit gateway route table"). With BGP the connection is dynamic: the
    gateway announces the Alibaba prefixes; on a Transit Gateway route table named by
    `awsTransitGatewayRouteTableId` the attachment's routes are propagated."""
    opts = pulumi.ResourceOptions(parent=parent)
    tags = {"Name": name, "managed-by": "aws2aliyun-vpc"}
    cgw = aws.ec2.CustomerGateway(
        f"{name}-cgw",
        **customer_gateway_asn(s),
        ip_address=eip_address,
        type="ipsec.1",
        tags=tags,
        opts=opts,
    )
    log_group = aws.cloudwatch.LogGroup(
        f"{name}-tunnel-logs",
        retention_in_days=s.tunnel_log_retention_days,
        tags=tags,
        opts=opts,
    )
    connection = aws.ec2.VpnConnection(
        f"{name}-vpn",
        customer_gateway_id=cgw.id,
        vpn_gateway_id=network.vpn_gateway.id if network.vpn_gateway is not None else None,
        transit_gateway_id=network.transit_gateway_id,
        type="ipsec.1",
        static_routes_only=s.routing == "static",
        preshared_key_storage=s.preshared_key_storage,
        tunnel1_preshared_key=preshared_keys[0],
        tunnel2_preshared_key=preshared_keys[1],
        tags=tags,
        opts=pulumi.ResourceOptions(
            parent=parent,
            # Inside CIDRs are ForceNew and must be unique per virtual private gateway (and per
            # Transit Gateway): with one
            # pinned, a replacement made before the old connection is deleted would collide with
            # the old one still holding it (docs/provider-facts-day-two.md).
            delete_before_replace=any(c is not None for c in s.tunnel_inside_cidrs),
            # Moving between a virtual private gateway and a Transit Gateway is a new connection:
            # AWS modifies one in place only once its static routes are deleted, which one
            # `pulumi up` cannot do first (docs/provider-facts-day-two.md item 48).
            replace_on_changes=["vpnGatewayId", "transitGatewayId"],
        ),
        **tunnel_options(s, log_group.arn),
    )
    if s.routing == "bgp":
        if network.transit_gateway_id is not None and s.aws_transit_gateway_route_table_id is not None:
            aws.ec2transitgateway.RouteTablePropagation(
                f"{name}-tgw-propagation",
                transit_gateway_attachment_id=connection.transit_gateway_attachment_id,
                transit_gateway_route_table_id=s.aws_transit_gateway_route_table_id,
                opts=opts,
            )
    elif network.transit_gateway_id is not None:
        route_table = (
            pulumi.Output.from_input(s.aws_transit_gateway_route_table_id)
            if s.aws_transit_gateway_route_table_id is not None
            else transit_gateway_default_route_table(network.transit_gateway_id)
        )
        for prefix in s.ali_prefixes:
            aws.ec2transitgateway.Route(
                f"{name}-tgw-route-{cidr_slug(prefix)}",
                destination_cidr_block=str(prefix),
                transit_gateway_attachment_id=connection.transit_gateway_attachment_id,
                transit_gateway_route_table_id=route_table,
                # Every argument is ForceNew and a route table holds one route per destination:
                # a new VPN attachment's route can only be created once the old one is gone.
                opts=pulumi.ResourceOptions(parent=parent, delete_before_replace=True),
            )
    else:
        for i, prefix in enumerate(s.ali_prefixes):
            aws.ec2.VpnConnectionRoute(
                f"{name}-vpn-route-{cidr_slug(prefix)}",
                vpn_connection_id=connection.id,
                destination_cidr_block=str(prefix),
                # a stack from before several prefixes named its one route "vpn-route"
                opts=pulumi.ResourceOptions(
                    parent=parent, aliases=[pulumi.Alias(name=f"{name}-vpn-route")] if i == 0 else []
                ),
            )
    return AwsVpn(customer_gateway=cgw, connection=connection, log_group=log_group)


def transit_gateway_default_route_table(tgw_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """The route table a Transit Gateway associates new attachments with by default."""
    return aws.ec2transitgateway.get_transit_gateway_output(id=tgw_id).association_default_route_table_id
