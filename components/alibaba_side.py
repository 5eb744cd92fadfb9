"""The Alibaba Cloud end: VPC, vSwitch, security group, EIP, the strongSwan gateway ECS,
its EIP association and the route entry sending the AWS CIDR to it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_alicloud as alicloud

from components.naming import key_pair_name, stack_scoped
from core.settings import HARDENED_METADATA_IMAGES, IMAGE_ALIASES, Settings

EIP_BANDWIDTH_MBPS = "100"  # pay-by-traffic, so this is a ceiling, not a cost
IKE_PORTS = (500, 4500)


@dataclass
class AliNetwork:
    vpc: alicloud.vpc.Network
    vswitch: alicloud.vpc.Switch
    security_group: alicloud.ecs.SecurityGroup
    eip: alicloud.ecs.EipAddress


@dataclass
class AliGateway:
    instance: alicloud.ecs.Instance
    eip_association: alicloud.ecs.EipAssociation
    route_entry: alicloud.vpc.RouteEntry
    key_pair: alicloud.ecs.EcsKeyPair | None


def choose_zone(s: Settings) -> str:
    """The configured zone, or the first one that sells the instance type and vSwitches today
    (held after the first deploy: see `create_network`)."""
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


# Declares on the instance why it serves metadata without session tokens; the policy pack
# (policy/rules.py, the same key) accepts `optional` only with it.
METADATA_TOKENS_TAG = "aws2aliyun-vpc:metadata-tokens"


def metadata_tokens(s: Settings) -> str:
    """`required` (hardened mode) only for images whose cloud-init can read user-data with a
    session token; otherwise `optional`, because a cloud-init older than 23.2.2 cannot fetch
    the user-data in hardened mode and the gateway would boot without strongSwan
    (docs/provider-facts-day-two.md, "metadata hardened mode")."""
    return "required" if s.ecs_image in HARDENED_METADATA_IMAGES else "optional"


def metadata_tags(s: Settings) -> dict[str, str]:
    if metadata_tokens(s) == "required":
        return {}
    return {
        METADATA_TOKENS_TAG: f"optional: cloud-init of {s.ecs_image} may predate 23.2.2; metadata is for root only (host firewall)"[
            :128
        ]
    }


def image_options(s: Settings) -> tuple[list[str], list[str]]:
    """How the gateway follows its image. The provider applies a new image_id in place by
    replacing the system disk, and cloud-init does not run again on it, so an image change
    must never reach the instance as an update:
    - an alias (`debian_12`) resolves to the newest release at every run: ignored once the
      instance exists, so a new release never touches it. A replacement then reuses the image
      id held in the state (ignoreChanges substitutes the old input);
    - an image id is the user's explicit choice: a new one replaces the gateway. Pinning
      `ecsImage` to a current id is also the way out when Alibaba has retired the image a
      stack was created from (docs/provider-facts-day-two.md).

    Returns the instance's `(replace_on_changes, ignore_changes)`."""
    if s.image_is_alias:
        return ["userData"], ["imageId"]
    return ["userData", "imageId"], []


def create_network(name: str, s: Settings, parent: pulumi.Resource) -> AliNetwork:
    opts = pulumi.ResourceOptions(parent=parent)
    display = stack_scoped(name)
    tags = {"Name": display, "managed-by": "aws2aliyun-vpc"}
    vpc = alicloud.vpc.Network(
        f"{name}-ali-vpc", vpc_name=display, cidr_block=str(s.ali_vpc_cidr), tags=tags, opts=opts
    )
    vswitch = alicloud.vpc.Switch(
        f"{name}-ali-vswitch",
        vswitch_name=display,
        vpc_id=vpc.id,
        cidr_block=str(s.ali_vswitch_cidr),
        zone_id=choose_zone(s),
        tags=tags,
        opts=pulumi.ResourceOptions(
            parent=parent,
            # zone_id and cidr_block are ForceNew, and vSwitch CIDRs must not overlap within a
            # VPC: a replacement with the same CIDR can only be created after the old one is gone.
            delete_before_replace=True,
            # A looked-up zone is the first that sells the type *today*; once deployed it is held,
            # so a change in stock never replaces the vSwitch and everything in it.
            ignore_changes=[] if s.ali_zone_id else ["zoneId"],
        ),
    )
    sg = alicloud.ecs.SecurityGroup(
        f"{name}-ali-sg",
        security_group_name=display,
        description="aws2aliyun-vpc gateway: IKE from the AWS tunnel endpoints only",
        vpc_id=vpc.id,
        inner_access_policy="Drop",
        tags=tags,
        opts=opts,
    )
    eip = alicloud.ecs.EipAddress(
        f"{name}-eip",
        address_name=display,
        bandwidth=EIP_BANDWIDTH_MBPS,
        internet_charge_type="PayByTraffic",
        payment_type="PayAsYouGo",
        deletion_protection=s.deletion_protection,
        tags=tags,
        opts=opts,
    )
    return AliNetwork(vpc=vpc, vswitch=vswitch, security_group=sg, eip=eip)


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
    depends_on: Sequence[pulumi.Resource],
    parent: pulumi.Resource,
) -> AliGateway:
    """The ECS running strongSwan, its EIP and the VPC route to AWS through it."""
    opts = pulumi.ResourceOptions(parent=parent)
    display = stack_scoped(name)
    tags = {"Name": display, "managed-by": "aws2aliyun-vpc"}
    key_pair = None
    if public_key is not None:
        key_pair = alicloud.ecs.EcsKeyPair(
            f"{name}-key",
            key_pair_name=pulumi.Output.from_input(public_key).apply(lambda k: key_pair_name(name, k)),
            public_key=public_key,
            tags=tags,
            # The provider never updates a key pair's public key; its name (ForceNew) follows
            # the key already, and this keeps a changed key a replacement whatever the name.
            opts=pulumi.ResourceOptions(parent=parent, replace_on_changes=["publicKey"]),
        )
    replace_on_changes, ignore_changes = image_options(s)
    instance = alicloud.ecs.Instance(
        f"{name}-gateway",
        instance_name=f"{display}-gateway",
        host_name="aws2aliyun-gw",
        instance_type=s.ecs_instance_type,
        image_id=choose_image(s),
        # The vSwitch's own zone: never a second lookup that could disagree with it.
        availability_zone=network.vswitch.zone_id,
        vswitch_id=network.vswitch.id,
        security_groups=[network.security_group.id],
        private_ip=str(s.ecs_private_ip),
        system_disk_category="cloud_essd",
        system_disk_size=20,
        internet_max_bandwidth_out=0,  # public traffic goes through the EIP
        instance_charge_type="PostPaid",
        # Never deletion-protected: the gateway is replaced by design (every user-data change),
        # and the provider's Delete never lifts the protection (resourceAliCloudInstanceDelete
        # calls DeleteInstance as is), so a protected gateway's replacement would fail after its
        # route entry and EIP association were already deleted. deletionProtection guards the EIP.
        deletion_protection=False,
        # Metadata only through session tokens (IMDSv2-like) where the image's cloud-init can.
        http_endpoint="enabled",
        http_tokens=metadata_tokens(s),
        key_name=key_pair.key_pair_name if key_pair is not None else None,
        user_data=user_data,
        tags=tags | metadata_tags(s),
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=list(depends_on),
            # cloud-init runs user-data once: a changed user-data needs a new instance, not
            # the provider's in-place update and reboot (provider #1973, #4721). The fixed
            # private IP means the old one must go first.
            delete_before_replace=True,
            replace_on_changes=replace_on_changes,
            ignore_changes=ignore_changes,
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
