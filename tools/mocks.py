"""Pulumi mocks with plausible, deterministic cloud values for the offline plan and tests.

Every computed value derives from the resource's name and inputs, so the same stack
always plans the same. Simulated public addresses come from 192.0.2.0/24 (AWS) and
198.51.100.0/24 (Alibaba), the documentation ranges.
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Any

import pulumi

# Simulated public addresses.
AWS_TUNNEL_ADDRESSES = ("192.0.2.10", "192.0.2.20")
EIP_ADDRESS = "198.51.100.10"
# Inside CIDRs AWS would pick when the stack leaves them unset.
AWS_PICKED_INSIDE_CIDRS = ("169.254.121.0/30", "169.254.122.0/30", "169.254.123.0/30")
ALI_ZONE = "cn-hangzhou-i"
ALI_IMAGE_ID = "debian_12_11_x64_20G_alibase_20250822.vhd"
AWS_REGION_DEFAULT = "ap-southeast-1"
ACCOUNT_ID = "123456789012"


def _hex(seed: str, n: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:n]


def _psk(seed: str, length: int = 40) -> str:
    """A PSK to AWS's rules (letters, '.' and '_'; never starting with '0')."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._"
    digest = hashlib.sha512(seed.encode()).digest()
    out = "".join(alphabet[b % len(alphabet)] for b in digest)
    return ("k" + out)[:length]


def _pick_inside(given: str | None, other: str | None) -> str:
    if given:
        return given
    return next(c for c in AWS_PICKED_INSIDE_CIDRS if c != other)


def _inside_hosts(cidr: str) -> tuple[str, str]:
    """AWS: first host of the /30 is the VGW, the second the customer gateway."""
    hosts = list(ipaddress.ip_network(cidr).hosts())
    return str(hosts[0]), str(hosts[1])


class CloudMocks(pulumi.runtime.Mocks):
    """Answers resource creation and data-source calls for AWS, Alibaba and friends.

    `zones`: the zones `get_zones` answers with, in its order (the first sells the type).
    `active_gateway`: the display name of the gateway ECS that holds a pair's HaVip (a stack
    whose pair exists already); None: no HaVip exists yet."""

    def __init__(self, zones: tuple[str, ...] = (ALI_ZONE,), active_gateway: str | None = None):
        super().__init__()
        self.zones = zones
        self.active_gateway = active_gateway

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        t, name, inputs = args.typ, args.name, dict(args.inputs)
        outputs: dict[str, Any] = dict(inputs)
        rid = f"{name}-id"
        if t == "aws:ec2/vpc:Vpc":
            rid = f"vpc-{_hex(name, 17)}"
            outputs["arn"] = f"arn:aws:ec2:{AWS_REGION_DEFAULT}:{ACCOUNT_ID}:vpc/{rid}"
            outputs["mainRouteTableId"] = f"rtb-{_hex(name + 'main', 17)}"
        elif t == "aws:ec2/subnet:Subnet":
            rid = f"subnet-{_hex(name, 17)}"
        elif t == "aws:ec2/routeTable:RouteTable":
            rid = f"rtb-{_hex(name, 17)}"
        elif t == "aws:ec2/vpnGateway:VpnGateway":
            rid = f"vgw-{_hex(name, 17)}"
            outputs["amazonSideAsn"] = "64512"
        elif t == "aws:ec2/customerGateway:CustomerGateway":
            rid = f"cgw-{_hex(name, 17)}"
        elif t == "aws:cloudwatch/logGroup:LogGroup":
            rid = f"/aws/vpn/{name}"
            outputs["name"] = rid
            outputs["arn"] = f"arn:aws:logs:{AWS_REGION_DEFAULT}:{ACCOUNT_ID}:log-group:{rid}"
        elif t == "aws:sns/topic:Topic":
            rid = f"arn:aws:sns:{AWS_REGION_DEFAULT}:{ACCOUNT_ID}:{name}"
            outputs["arn"] = rid
        elif t == "aws:cloudwatch/metricAlarm:MetricAlarm":
            rid = name
            outputs["arn"] = f"arn:aws:cloudwatch:{AWS_REGION_DEFAULT}:{ACCOUNT_ID}:alarm:{name}"
        elif t == "aws:ec2/vpnConnection:VpnConnection":
            rid = f"vpn-{_hex(name, 17)}"
            c1 = _pick_inside(inputs.get("tunnel1InsideCidr"), inputs.get("tunnel2InsideCidr"))
            c2 = _pick_inside(inputs.get("tunnel2InsideCidr"), c1)
            for n, cidr in ((1, c1), (2, c2)):
                vgw, cgw = _inside_hosts(cidr)
                outputs[f"tunnel{n}Address"] = AWS_TUNNEL_ADDRESSES[n - 1]
                outputs[f"tunnel{n}InsideCidr"] = cidr
                outputs[f"tunnel{n}VgwInsideAddress"] = vgw
                outputs[f"tunnel{n}CgwInsideAddress"] = cgw
                outputs[f"tunnel{n}PresharedKey"] = inputs.get(f"tunnel{n}PresharedKey") or _psk(f"{name}{n}")
            outputs["arn"] = f"arn:aws:ec2:{AWS_REGION_DEFAULT}:{ACCOUNT_ID}:vpn-connection/{rid}"
            if inputs.get("transitGatewayId"):
                outputs["transitGatewayAttachmentId"] = f"tgw-attach-{_hex(name, 17)}"
        elif t == "aws:ec2transitgateway/transitGateway:TransitGateway":
            rid = f"tgw-{_hex(name, 17)}"
            outputs["associationDefaultRouteTableId"] = transit_gateway_route_table(rid)
            outputs["propagationDefaultRouteTableId"] = transit_gateway_route_table(rid)
        elif t == "aws:ec2transitgateway/vpcAttachment:VpcAttachment":
            rid = f"tgw-attach-{_hex(name, 17)}"
        elif t == "aws:ec2transitgateway/route:Route":
            rid = f"{inputs.get('transitGatewayRouteTableId')}_{inputs.get('destinationCidrBlock')}"
        elif t == "random:index/randomPassword:RandomPassword":
            outputs["result"] = _psk(name, int(inputs.get("length", 40)))
            outputs["bcryptHash"] = "$2a$10$" + _hex(name, 53)
        elif t == "tls:index/privateKey:PrivateKey":
            outputs["privateKeyOpenssh"] = (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nmock-" + _hex(name, 64) + "\n-----END OPENSSH PRIVATE KEY-----\n"
            )
            outputs["privateKeyPem"] = outputs["privateKeyOpenssh"]
            outputs["publicKeyOpenssh"] = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ" + _hex(name, 40) + "\n"
        elif t == "alicloud:vpc/network:Network":
            rid = f"vpc-{_hex(name, 21)}"
            outputs["routeTableId"] = system_route_table(rid)
            outputs["routerId"] = f"vrt-{_hex(name + 'vrt', 21)}"
        elif t == "alicloud:vpc/switch:Switch":
            rid = f"vsw-{_hex(name, 21)}"
        elif t == "alicloud:ecs/securityGroup:SecurityGroup":
            rid = f"sg-{_hex(name, 20)}"
        elif t == "alicloud:ecs/securityGroupRule:SecurityGroupRule":
            rid = f"sg-rule-{_hex(name, 12)}"
        elif t == "alicloud:ecs/eipAddress:EipAddress":
            rid = f"eip-{_hex(name, 21)}"
            outputs["ipAddress"] = EIP_ADDRESS
            outputs["status"] = "Available"
        elif t == "alicloud:ecs/instance:Instance":
            rid = f"i-{_hex(name, 20)}"
            outputs["status"] = "Running"
            outputs.setdefault("privateIp", "172.16.1.10")
        elif t == "alicloud:ecs/eipAssociation:EipAssociation":
            rid = f"{inputs.get('allocationId')}:{inputs.get('instanceId')}"
        elif t == "alicloud:vpc/routeEntry:RouteEntry":
            rid = f"{inputs.get('routeTableId')}:{inputs.get('destinationCidrblock')}"
        elif t == "alicloud:vpc/haVipv2:HaVipv2":
            rid = f"havip-{_hex(name, 21)}"
            outputs["haVipId"] = rid
            outputs["status"] = "Available"
        elif t == "alicloud:vpc/hAVipAttachment:HAVipAttachment":
            rid = f"{inputs.get('haVipId')}:{inputs.get('instanceId')}"
        elif t == "alicloud:ecs/command:Command":
            rid = f"c-{_hex(name, 20)}"
        elif t == "alicloud:ecs/ecsInvocation:EcsInvocation":
            rid = f"t-{_hex(name, 20)}"
            outputs["status"] = "Finished"
        elif t == "alicloud:ecs/ecsKeyPair:EcsKeyPair":
            rid = inputs.get("keyPairName", name)
            outputs["fingerPrint"] = ":".join(_hex(name, 32)[i : i + 2] for i in range(0, 32, 2))
        elif t == "command:remote:Command":
            outputs["stdout"] = (
                "ok: tunnel1 and tunnel2 ESTABLISHED, one CHILD_SA pair each, Tunnel1 and Tunnel2 up and answering"
            )
            outputs["stderr"] = ""
        return rid, outputs

    def _havips(self, a: dict[str, Any]) -> dict[str, Any]:
        """The pair's HaVip, held by `active_gateway`, when one is set."""
        havips = []
        if self.active_gateway is not None:
            name = str(a.get("nameRegex", "")).strip("^$").replace("\\", "")
            havips.append(
                {
                    "id": f"havip-{_hex(name, 21)}",
                    "havipId": f"havip-{_hex(name, 21)}",
                    "havipName": name,
                    "masterInstanceId": f"i-{_hex(self.active_gateway, 20)}",
                    "associatedInstances": [],
                    "associatedEipAddresses": [],
                    "description": "",
                    "ipAddress": "",
                    "status": "InUse",
                    "vpcId": "",
                    "vswitchId": "",
                    "createTime": "",
                }
            )
        return {"id": "havips", "ids": [h["id"] for h in havips], "names": [], "havips": havips}

    def _instances(self, a: dict[str, Any]) -> dict[str, Any]:
        """Instances by id: `active_gateway`'s, the only one this mock knows."""
        known = {} if self.active_gateway is None else {f"i-{_hex(self.active_gateway, 20)}": self.active_gateway}
        found = [{"id": i, "name": known[i]} for i in a.get("ids") or [] if i in known]
        return {"id": "instances", "ids": [f["id"] for f in found], "names": [], "instances": found}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        tok = args.token
        if tok in LOOKUPS:
            return LOOKUPS[tok](dict(args.args)), []
        if tok == "alicloud:vpc/getHavips:getHavips":
            return self._havips(dict(args.args)), []
        if tok == "alicloud:ecs/getInstances:getInstances":
            return self._instances(dict(args.args)), []
        if tok == "alicloud:index/getZones:getZones":
            zones = [
                {
                    "id": zone_id,
                    "localName": zone_id,
                    "availableInstanceTypes": [args.args.get("availableInstanceType")],
                    "availableResourceCreations": ["VSwitch", "Instance"],
                    "availableDiskCategories": ["cloud_essd"],
                    "multiZoneIds": [],
                    "slbSlaveZoneIds": [],
                }
                for zone_id in self.zones
            ]
            return {"id": "zones", "ids": list(self.zones), "zones": zones}, []
        if tok == "alicloud:ecs/getImages:getImages":
            image = {
                "id": ALI_IMAGE_ID,
                "imageId": ALI_IMAGE_ID,
                "name": ALI_IMAGE_ID,
                "architecture": "x86_64",
                "creationTime": "2025-08-22T00:00:00Z",
                "description": "Debian 12 x64",
                "diskDeviceMappings": [],
                "imageOwnerAlias": "system",
                "imageVersion": "1",
                "isCopied": False,
                "isSelfShared": "",
                "isSubscribed": False,
                "isSupportIoOptimized": True,
                "osName": "Debian 12.11 64-bit",
                "osNameEn": "Debian 12.11 64-bit",
                "osType": "linux",
                "platform": "Debian",
                "productCode": "",
                "progress": "100%",
                "size": 20,
                "state": "Available",
                "status": "Available",
                "usage": "instance",
            }
            return {
                "id": "images",
                "ids": [ALI_IMAGE_ID],
                "images": [image],
                "nameRegex": args.args.get("nameRegex"),
            }, []
        return {}, []


# --- Existing resources a stack names by id: looked up, answered from the id alone ----------


def system_route_table(vpc_id: str) -> str:
    """An Alibaba VPC's system route table, created with it: the same whether the VPC is a
    resource of the plan or looked up by id."""
    return f"vtb-{_hex(vpc_id + 'system', 21)}"


def existing_vpc(vpc_id: str) -> dict[str, Any]:
    """An existing Alibaba VPC: its system route table derives from its id."""
    return {
        "id": vpc_id,
        "vpcId": vpc_id,
        "vpcName": "existing",
        "cidrBlock": "172.16.0.0/12",
        "secondaryCidrBlocks": [],
        "userCidrs": [],
        "routeTableId": system_route_table(vpc_id),
        "routerId": f"vrt-{_hex(vpc_id, 21)}",
        "vrouterId": f"vrt-{_hex(vpc_id, 21)}",
        "vswitchIds": [],
        "creationTime": "2025-01-01T00:00:00Z",
        "description": "",
        "dhcpOptionsSetId": "",
        "dhcpOptionsSetStatus": "",
        "dnsHostnameStatus": "DISABLED",
        "ipv6CidrBlock": "",
        "isDefault": False,
        "regionId": "cn-hangzhou",
        "resourceGroupId": "rg-default",
        "status": "Available",
        "tags": {},
    }


def existing_vswitch(vswitch_id: str) -> dict[str, Any]:
    """An existing Alibaba vSwitch, in the mocks' zone."""
    return {
        "id": vswitch_id,
        "vswitchId": vswitch_id,
        "vswitchName": "existing",
        "name": "existing",
        "cidrBlock": "172.16.8.0/24",
        "zoneId": ALI_ZONE,
        "vpcId": "",
        "availableIpAddressCount": 200,
        "creationTime": "2025-01-01T00:00:00Z",
        "description": "",
        "enableIpv6": False,
        "ipv6CidrBlock": "",
        "isDefault": False,
        "resourceGroupId": "rg-default",
        "routeTableId": "",
        "status": "Available",
        "tags": {},
    }


def transit_gateway_route_table(tgw_id: str) -> str:
    return f"tgw-rtb-{_hex(tgw_id + 'default', 17)}"


def existing_transit_gateway(tgw_id: str) -> dict[str, Any]:
    """An existing Transit Gateway: default association and propagation on, as AWS creates them."""
    return {
        "id": tgw_id,
        "amazonSideAsn": 64512,
        "arn": f"arn:aws:ec2:{AWS_REGION_DEFAULT}:{ACCOUNT_ID}:transit-gateway/{tgw_id}",
        "associationDefaultRouteTableId": transit_gateway_route_table(tgw_id),
        "propagationDefaultRouteTableId": transit_gateway_route_table(tgw_id),
        "autoAcceptSharedAttachments": "disable",
        "defaultRouteTableAssociation": "enable",
        "defaultRouteTablePropagation": "enable",
        "description": "",
        "dnsSupport": "enable",
        "encryptionSupport": "disable",
        "multicastSupport": "disable",
        "ownerId": ACCOUNT_ID,
        "region": AWS_REGION_DEFAULT,
        "securityGroupReferencingSupport": "disable",
        "tags": {},
        "transitGatewayCidrBlocks": [],
        "vpnEcmpSupport": "enable",
    }


def aws_region(_: dict[str, Any]) -> dict[str, Any]:
    """The AWS provider's region: the stack's `aws:region`."""
    region = pulumi.Config("aws").get("region") or AWS_REGION_DEFAULT
    return {
        "id": region,
        "name": region,
        "region": region,
        "description": region,
        "endpoint": f"ec2.{region}.amazonaws.com",
    }


LOOKUPS = {
    "aws:index/getRegion:getRegion": aws_region,
    "alicloud:vpc/getNetworks:getNetworks": lambda a: {
        "id": "vpcs",
        "ids": list(a.get("ids") or []),
        "names": [],
        "vpcs": [existing_vpc(i) for i in a.get("ids") or []],
    },
    "alicloud:vpc/getSwitches:getSwitches": lambda a: {
        "id": "vswitches",
        "ids": list(a.get("ids") or []),
        "names": [],
        "vswitches": [existing_vswitch(i) for i in a.get("ids") or []],
    },
    "aws:ec2transitgateway/getTransitGateway:getTransitGateway": lambda a: existing_transit_gateway(a["id"]),
}
