"""The Alibaba Cloud end: VPC and vSwitch (new, or existing ones), security group, EIP, the
strongSwan gateway ECS, its EIP association and the route entries sending every AWS prefix
to it in every route table the link routes through."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_alicloud as alicloud

from components.naming import cidr_slug, given, key_pair_name, stack_scoped
from core.settings import HARDENED_METADATA_IMAGES, IMAGE_ALIASES, Settings

EIP_BANDWIDTH_MBPS = "100"  # pay-by-traffic, so this is a ceiling, not a cost
IKE_PORTS = (500, 4500)


@dataclass
class AliNetwork:
    vpc_id: pulumi.Output[str]
    vswitch_id: pulumi.Output[str]
    zone_id: pulumi.Output[str]
    route_table_ids: list[pulumi.Output[str]]  # where the routes to AWS go
    security_group: alicloud.ecs.SecurityGroup
    eip: alicloud.ecs.EipAddress
    vpc: alicloud.vpc.Network | None  # None: an existing VPC (aliVpcId)
    vswitch: alicloud.vpc.Switch | None  # None: an existing vSwitch (aliVswitchId)


@dataclass
class AliGateway:
    instances: list[alicloud.ecs.Instance]  # gateway 1 first
    eip_association: alicloud.ecs.EipAssociation
    route_entries: list[alicloud.vpc.RouteEntry]
    key_pair: alicloud.ecs.EcsKeyPair | None
    pair: AliPair | None = None  # gatewayCount 2

    @property
    def instance(self) -> alicloud.ecs.Instance:
        """Gateway 1 (the only one, unless a pair)."""
        return self.instances[0]


@dataclass
class AliPair:
    """What a gateway pair adds: the HaVip, its attachments and the replacement gate."""

    havip: alicloud.vpc.HaVipv2
    attachments: list[alicloud.vpc.HAVipAttachment]  # gateway 1 first
    ready_gate: alicloud.ecs.EcsInvocation  # the first-replaced gateway is ready before the other is touched
    order: tuple[int, int]  # which gateway `pulumi up` creates or replaces first, and which after it


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

    A new vSwitch (another VPC, an existing vSwitch) is a new instance too: the provider
    would move it in place (ModifyInstanceVpcAttribute, the instance stopped), and the old
    vSwitch and security group cannot be deleted while it is in them (item 49).

    Returns the instance's `(replace_on_changes, ignore_changes)`."""
    if s.image_is_alias:
        return ["userData", "vswitchId"], ["imageId"]
    return ["userData", "imageId", "vswitchId"], []


def existing_vpc_route_table(vpc_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """The system route table of an existing VPC (where a new VPC's routes go too)."""
    found = alicloud.vpc.get_networks_output(ids=pulumi.Output.from_input(vpc_id).apply(lambda i: [i]))
    return found.vpcs.apply(lambda vpcs: _one(vpcs, "aliVpcId").route_table_id)


def existing_vswitch_zone(vswitch_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """The zone of an existing vSwitch: the gateway ECS must be created in it."""
    found = alicloud.vpc.get_switches_output(ids=pulumi.Output.from_input(vswitch_id).apply(lambda i: [i]))
    return found.vswitches.apply(lambda vswitches: _one(vswitches, "aliVswitchId").zone_id)


def _one(found: Sequence[Any], key: str) -> Any:
    if len(found) != 1:
        raise pulumi.RunError(f"{key}: no such resource in this region (Alibaba's lookup found {len(found)})")
    return found[0]


def create_network(name: str, s: Settings, parent: pulumi.Resource) -> AliNetwork:
    """A new VPC with its vSwitch, or an existing VPC (`aliVpcId`) with a new vSwitch in it
    (`aliVswitchCidr`) or an existing one (`aliVswitchId`); the security group and the EIP."""
    opts = pulumi.ResourceOptions(parent=parent)
    display = stack_scoped(name)
    tags = {"Name": display, "managed-by": "aws2aliyun-vpc"}
    vpc = None
    if s.creates_ali_vpc:
        vpc = alicloud.vpc.Network(
            f"{name}-ali-vpc", vpc_name=display, cidr_block=str(s.ali_vpc_cidr), tags=tags, opts=opts
        )
        vpc_id: pulumi.Output[str] = vpc.id
        route_tables = [vpc.route_table_id]
    else:
        vpc_id = pulumi.Output.from_input(given(s.ali_vpc_id))
        route_tables = [pulumi.Output.from_input(rt) for rt in s.ali_route_table_ids] or [
            existing_vpc_route_table(vpc_id)
        ]
    vswitch = None
    if s.ali_vswitch_id is not None:
        vswitch_id = pulumi.Output.from_input(s.ali_vswitch_id)
        zone_id = existing_vswitch_zone(vswitch_id)
    else:
        vswitch = _new_vswitch(name, s, vpc_id, display, tags, parent)
        vswitch_id, zone_id = vswitch.id, vswitch.zone_id
    sg = alicloud.ecs.SecurityGroup(
        f"{name}-ali-sg",
        security_group_name=display,
        description="aws2aliyun-vpc gateway: IKE from the AWS tunnel endpoints only",
        vpc_id=vpc_id,
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
    return AliNetwork(
        vpc_id=vpc_id,
        vswitch_id=vswitch_id,
        zone_id=zone_id,
        route_table_ids=route_tables,
        security_group=sg,
        eip=eip,
        vpc=vpc,
        vswitch=vswitch,
    )


def _new_vswitch(
    name: str, s: Settings, vpc_id: pulumi.Output[str], display: str, tags: dict[str, str], parent: pulumi.Resource
) -> alicloud.vpc.Switch:
    return alicloud.vpc.Switch(
        f"{name}-ali-vswitch",
        vswitch_name=display,
        vpc_id=vpc_id,
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


def create_security_rules(
    name: str,
    s: Settings,
    network: AliNetwork,
    tunnel_addresses: tuple[pulumi.Output[str], pulumi.Output[str]],
    parent: pulumi.Resource,
) -> list[alicloud.ecs.SecurityGroupRule]:
    """Ingress: IKE/NAT-T from each AWS tunnel endpoint (/32), the traffic the gateway
    forwards from the Alibaba VPC, SSH from sshAllowedCidrs only. Nothing from 0.0.0.0/0."""
    sg_id = network.security_group.id
    rules: list[alicloud.ecs.SecurityGroupRule] = []

    def rule(
        suffix: str,
        protocol: str,
        ports: str,
        cidr: pulumi.Input[str],
        description: str,
        aliases: list[pulumi.Alias] | None = None,
    ) -> None:
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
                opts=pulumi.ResourceOptions(parent=parent, aliases=aliases or []),
            )
        )

    for n, address in enumerate(tunnel_addresses, start=1):
        cidr = address.apply(lambda a: f"{a}/32")
        for port in IKE_PORTS:
            rule(f"tunnel{n}-udp{port}", "udp", f"{port}/{port}", cidr, f"IKE/NAT-T from AWS tunnel {n}")
    for i, prefix in enumerate(s.ali_prefixes):
        rule(
            f"forward-ali-{cidr_slug(prefix)}",
            "all",
            "-1/-1",
            str(prefix),
            "traffic from the Alibaba side forwarded to AWS",
            # a stack from before several prefixes named its one rule "forward-ali"
            aliases=[pulumi.Alias(name=f"{name}-sg-forward-ali")] if i == 0 else [],
        )
    for n, gateway_ip in enumerate(s.gateway_private_ips if s.is_pair else (), start=1):
        # VRRP (IP protocol 112: the security group knows no such protocol, hence `all`) and
        # the hand-over between the two gateways of a pair
        rule(f"ha-gateway-{n}", "all", "-1/-1", f"{gateway_ip}/32", f"keepalived VRRP from gateway {n} of the pair")
    for i, ssh in enumerate(s.ssh_allowed_cidrs):
        rule(f"ssh-{i}", "tcp", "22/22", str(ssh), "SSH from sshAllowedCidrs")
    return rules


def gateway_key_pair(
    name: str, public_key: pulumi.Input[str] | None, tags: dict[str, str], parent: pulumi.Resource
) -> alicloud.ecs.EcsKeyPair | None:
    if public_key is None:
        return None
    return alicloud.ecs.EcsKeyPair(
        f"{name}-key",
        key_pair_name=pulumi.Output.from_input(public_key).apply(lambda k: key_pair_name(name, k)),
        public_key=public_key,
        tags=tags,
        # The provider never updates a key pair's public key; its name (ForceNew) follows
        # the key already, and this keeps a changed key a replacement whatever the name.
        opts=pulumi.ResourceOptions(parent=parent, replace_on_changes=["publicKey"]),
    )


def gateway_instance(
    resource_name: str,
    display: str,
    host_name: str,
    s: Settings,
    network: AliNetwork,
    private_ip: str | None,
    user_data: pulumi.Output[str],
    key_pair: alicloud.ecs.EcsKeyPair | None,
    tags: dict[str, str],
    depends_on: Sequence[pulumi.Resource],
    parent: pulumi.Resource,
) -> alicloud.ecs.Instance:
    """One gateway ECS running strongSwan (and, in a pair, keepalived)."""
    replace_on_changes, ignore_changes = image_options(s)
    return alicloud.ecs.Instance(
        resource_name,
        instance_name=display,
        host_name=host_name,
        instance_type=s.ecs_instance_type,
        image_id=choose_image(s),
        # The vSwitch's own zone: never a second lookup that could disagree with it.
        availability_zone=network.zone_id,
        vswitch_id=network.vswitch_id,
        security_groups=[network.security_group.id],
        private_ip=private_ip,
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


def eip_association(
    name: str,
    network: AliNetwork,
    target: pulumi.Input[str],
    target_type: str,
    depends_on: Sequence[pulumi.Resource],
    parent: pulumi.Resource,
) -> alicloud.ecs.EipAssociation:
    """The EIP bound to the gateway (`EcsInstance`) or to a pair's HaVip (`HaVip`)."""
    return alicloud.ecs.EipAssociation(
        f"{name}-eip-assoc",
        allocation_id=network.eip.id,
        instance_id=target,
        instance_type=target_type,
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=list(depends_on),
            # An EIP is bound to one thing at a time: a new target only once the old binding is gone.
            delete_before_replace=True,
        ),
    )


def routes_to_aws(
    name: str,
    s: Settings,
    network: AliNetwork,
    nexthop_type: str,
    nexthop_id: pulumi.Input[str],
    depends_on: Sequence[pulumi.Resource],
    parent: pulumi.Resource,
) -> list[alicloud.vpc.RouteEntry]:
    """One route entry per AWS prefix in every route table, to the gateway (or the pair's HaVip)."""
    routes: list[alicloud.vpc.RouteEntry] = []
    for n, table in enumerate(network.route_table_ids):
        for i, prefix in enumerate(s.aws_prefixes):
            first = n == 0 and i == 0
            routes.append(
                alicloud.vpc.RouteEntry(
                    f"{name}-route-to-aws-{cidr_slug(prefix)}" + (f"-rt{n}" if n else ""),
                    route_table_id=table,
                    destination_cidrblock=str(prefix),
                    nexthop_type=nexthop_type,
                    nexthop_id=nexthop_id,
                    # a stack from before several prefixes named its one route "route-to-aws";
                    # one table's entries one after the other (concurrent edits: TaskConflict)
                    opts=pulumi.ResourceOptions(
                        parent=parent,
                        aliases=[pulumi.Alias(name=f"{name}-route-to-aws")] if first else [],
                        depends_on=routes[-1:] or list(depends_on),
                        # A table holds one entry per destination: a new next hop (an instance
                        # becoming a HaVip) can only be created once the old entry is gone.
                        delete_before_replace=True,
                    ),
                )
            )
    return routes


def create_gateway(
    name: str,
    s: Settings,
    network: AliNetwork,
    user_data: Sequence[pulumi.Output[str]],
    public_key: pulumi.Input[str] | None,
    depends_on: Sequence[pulumi.Resource],
    parent: pulumi.Resource,
) -> AliGateway:
    """The ECS running strongSwan, its EIP and the VPC route to AWS through it; or, with
    gatewayCount 2, the pair behind a HaVip (components/gateway_pair.py)."""
    display = stack_scoped(name)
    tags = {"Name": display, "managed-by": "aws2aliyun-vpc"}
    key_pair = gateway_key_pair(name, public_key, tags, parent)
    private_ip = s.gateway_private_ips[0]
    instance = gateway_instance(
        f"{name}-gateway",
        f"{display}-gateway",
        "aws2aliyun-gw",
        s,
        network,
        str(private_ip) if private_ip is not None else None,
        user_data[0],
        key_pair,
        tags,
        depends_on,
        parent,
    )
    association = eip_association(name, network, instance.id, "EcsInstance", [], parent)
    routes = routes_to_aws(name, s, network, "Instance", instance.id, [], parent)
    return AliGateway(instances=[instance], eip_association=association, route_entries=routes, key_pair=key_pair)
