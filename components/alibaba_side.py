"""The Alibaba Cloud end: VPC, vSwitch, security group, EIP, the strongSwan gateway ECS,
its EIP association and the route entry sending the AWS CIDR to it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_alicloud as alicloud

from components.settings import IMAGE_ALIASES, Settings

EIP_BANDWIDTH_MBPS = "100"  # pay-by-traffic, so this is a ceiling, not a cost
IKE_PORTS = (500, 4500)


@dataclass
class AliNetwork:
    vpc: alicloud.vpc.Network
    vswitch: alicloud.vpc.Switch
    security_group: alicloud.ecs.SecurityGroup
    eip: alicloud.ecs.EipAddress
    zone_id: str


@dataclass
class AliGateway:
    instance: alicloud.ecs.Instance
    eip_association: alicloud.ecs.EipAssociation
    route_entry: alicloud.vpc.RouteEntry
    key_pair: alicloud.ecs.EcsKeyPair | None


def choose_zone(s: Settings) -> str:
    """The configured zone, or the first one that sells the instance type and vSwitches."""
    if s.ali_zone_id:
        return s.ali_zone_id
    zones = alicloud.get_zones(
        available_instance_type=s.ecs_instance_type,
        available_resource_creation="VSwitch",
        available_disk_category="cloud_essd",
    )
    if not zones.zones:
        raise pulumi.RunError(
            f"ecsInstanceType: {s.ecs_instance_type!r} is not sold in any zone of region {s.ali_region!r}; "
            "choose another type or region"
        )
    return zones.zones[0].id


def choose_image(s: Settings) -> str:
    """An image id: as given, or the newest system image matching the alias."""
    if not s.image_is_alias:
        return s.ecs_image
    images = alicloud.ecs.get_images(
        name_regex=IMAGE_ALIASES[s.ecs_image], owners="system", most_recent=True, instance_type=s.ecs_instance_type
    )
    if not images.images:
        raise pulumi.RunError(f"ecsImage: no system image matches {s.ecs_image!r} in region {s.ali_region!r}")
    return images.images[0].id


def create_network(name: str, s: Settings, parent: pulumi.Resource) -> AliNetwork:
    opts = pulumi.ResourceOptions(parent=parent)
    tags = {"Name": name, "managed-by": "aws2aliyun-vpc"}
    zone_id = choose_zone(s)
    vpc = alicloud.vpc.Network(f"{name}-ali-vpc", vpc_name=name, cidr_block=str(s.ali_vpc_cidr), tags=tags, opts=opts)
    vswitch = alicloud.vpc.Switch(
        f"{name}-ali-vswitch",
        vswitch_name=name,
        vpc_id=vpc.id,
        cidr_block=str(s.ali_vswitch_cidr),
        zone_id=zone_id,
        tags=tags,
        opts=opts,
    )
    sg = alicloud.ecs.SecurityGroup(
        f"{name}-ali-sg",
        security_group_name=name,
        description="aws2aliyun-vpc gateway: IKE from the AWS tunnel endpoints only",
        vpc_id=vpc.id,
        inner_access_policy="Drop",
        tags=tags,
        opts=opts,
    )
    eip = alicloud.ecs.EipAddress(
        f"{name}-eip",
        address_name=name,
        bandwidth=EIP_BANDWIDTH_MBPS,
        internet_charge_type="PayByTraffic",
        payment_type="PayAsYouGo",
        deletion_protection=s.deletion_protection,
        tags=tags,
        opts=opts,
    )
    return AliNetwork(vpc=vpc, vswitch=vswitch, security_group=sg, eip=eip, zone_id=zone_id)


def create_security_rules(
    name: str,
    s: Settings,
    network: AliNetwork,
    tunnel_addresses: tuple[pulumi.Output[str], pulumi.Output[str]],
    parent: pulumi.Resource,
) -> list[alicloud.ecs.SecurityGroupRule]:
    """Ingress: IKE/NAT-T from each AWS tunnel endpoint (/32), the traffic the gateway
    forwards from the Alibaba VPC, SSH from sshAllowedCidrs only. Nothing from 0.0.0.0/0."""
    opts = pulumi.ResourceOptions(parent=parent)
    sg_id = network.security_group.id
    rules: list[alicloud.ecs.SecurityGroupRule] = []

    def rule(suffix: str, protocol: str, ports: str, cidr: pulumi.Input[str], description: str) -> None:
        rules.append(
            alicloud.ecs.SecurityGroupRule(
                f"{name}-sg-{suffix}",
                security_group_id=sg_id,
                type="ingress",
                policy="accept",
                nic_type="intranet",
                ip_protocol=protocol,
                port_range=ports,
                cidr_ip=cidr,
                priority=1,
                description=description,
                opts=opts,
            )
        )

    for n, address in enumerate(tunnel_addresses, start=1):
        cidr = address.apply(lambda a: f"{a}/32")
        for port in IKE_PORTS:
            rule(f"tunnel{n}-udp{port}", "udp", f"{port}/{port}", cidr, f"IKE/NAT-T from AWS tunnel {n}")
    rule("forward-ali", "all", "-1/-1", str(s.ali_vpc_cidr), "traffic from the Alibaba VPC forwarded to AWS")
    for i, ssh in enumerate(s.ssh_allowed_cidrs):
        rule(f"ssh-{i}", "tcp", "22/22", str(ssh), "SSH from sshAllowedCidrs")
    return rules


def create_gateway(
    name: str,
    s: Settings,
    network: AliNetwork,
    user_data: pulumi.Output[str],
    public_key: pulumi.Input[str] | None,
    depends_on: list[pulumi.Resource],
    parent: pulumi.Resource,
) -> AliGateway:
    """The ECS running strongSwan, its EIP and the VPC route to AWS through it."""
    opts = pulumi.ResourceOptions(parent=parent)
    tags = {"Name": name, "managed-by": "aws2aliyun-vpc"}
    key_pair = None
    if public_key is not None:
        key_pair = alicloud.ecs.EcsKeyPair(f"{name}-key", key_pair_name=name, public_key=public_key, opts=opts)
    instance = alicloud.ecs.Instance(
        f"{name}-gateway",
        instance_name=f"{name}-gateway",
        host_name="aws2aliyun-gw",
        instance_type=s.ecs_instance_type,
        image_id=choose_image(s),
        availability_zone=network.zone_id,
        vswitch_id=network.vswitch.id,
        security_groups=[network.security_group.id],
        private_ip=str(s.ecs_private_ip),
        system_disk_category="cloud_essd",
        system_disk_size=20,
        internet_max_bandwidth_out=0,  # public traffic goes through the EIP
        instance_charge_type="PostPaid",
        deletion_protection=s.deletion_protection,
        # Metadata only through session tokens (IMDSv2-like): user-data holds the PSKs.
        http_endpoint="enabled",
        http_tokens="required",
        key_name=key_pair.key_pair_name if key_pair is not None else None,
        user_data=user_data,
        tags=tags,
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=depends_on,
            # cloud-init runs user-data once: a changed user-data needs a new instance, not
            # the provider's in-place update and reboot (provider #1973, #4721). The fixed
            # private IP means the old one must go first.
            replace_on_changes=["userData"],
            delete_before_replace=True,
            # A newer system image must not re-image the gateway's disk.
            ignore_changes=["imageId"],
        ),
    )
    association = alicloud.ecs.EipAssociation(
        f"{name}-eip-assoc",
        allocation_id=network.eip.id,
        instance_id=instance.id,
        instance_type="EcsInstance",
        opts=opts,
    )
    route = alicloud.vpc.RouteEntry(
        f"{name}-route-to-aws",
        route_table_id=network.vpc.route_table_id,
        destination_cidrblock=str(s.aws_vpc_cidr),
        nexthop_type="Instance",
        nexthop_id=instance.id,
        opts=opts,
    )
    return AliGateway(instance=instance, eip_association=association, route_entry=route, key_pair=key_pair)
