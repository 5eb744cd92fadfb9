"""A Pulumi program of somebody else's, in Python, that uses VpnLink as a library (issue 12).

Its networks are its own resources: an Alibaba VPC with a vSwitch, an AWS VPC with two CIDRs
behind a Transit Gateway. It passes their ids to the link as Outputs, as any program would.
tests/test_package.py runs it under the project's mocks.
"""

import pulumi
import pulumi_alicloud as alicloud
import pulumi_aws as aws

from components.args import VpnLinkArgs
from components.link import VpnLink

AWS_CIDRS = ["10.30.0.0/16", "10.31.0.0/16"]
ALI_CIDR = "192.168.0.0/16"


def program() -> VpnLink:
    # Alibaba: the workloads' VPC and the vSwitch the gateway joins
    ali_vpc = alicloud.vpc.Network("apps", vpc_name="apps", cidr_block=ALI_CIDR)
    ali_vswitch = alicloud.vpc.Switch(
        "apps-a", vswitch_name="apps-a", vpc_id=ali_vpc.id, cidr_block="192.168.10.0/24", zone_id="cn-hangzhou-i"
    )
    # AWS: a VPC with a secondary CIDR, attached to the Transit Gateway in front of it
    tgw = aws.ec2transitgateway.TransitGateway("hub", description="hub")
    vpc = aws.ec2.Vpc("apps", cidr_block=AWS_CIDRS[0])
    aws.ec2.VpcIpv4CidrBlockAssociation("apps-secondary", vpc_id=vpc.id, cidr_block=AWS_CIDRS[1])
    subnet = aws.ec2.Subnet("apps-a", vpc_id=vpc.id, cidr_block="10.30.1.0/24")
    aws.ec2transitgateway.VpcAttachment("apps", transit_gateway_id=tgw.id, vpc_id=vpc.id, subnet_ids=[subnet.id])

    link = VpnLink(
        "to-aws",
        VpnLinkArgs(
            ali_vpc_id=ali_vpc.id,
            ali_vswitch_id=ali_vswitch.id,
            ali_cidrs=[ALI_CIDR],
            aws_transit_gateway_id=tgw.id,
            aws_transit_gateway_route_table_id=tgw.association_default_route_table_id,
            aws_cidrs=AWS_CIDRS,
        ),
    )
    pulumi.export("vpnConnectionId", link.vpn_connection_id)
    pulumi.export("tunnel1Address", link.tunnel1_address)
    return link
