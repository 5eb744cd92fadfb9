"""`VpnLinkArgs`: the inputs of `aws2aliyun:index:VpnLink`, the component's public contract.

Generated from core/settings.py by `python -m tools.schema --write`: edit the keys there. One
field per stack config key, in snake_case (the package schema, and so TypeScript, Go, C# and
YAML, name it as the key: `awsCidrs`), with the key's description and default. Every field is
optional; `VpnLink` validates them all at once when it is constructed.

Ids and secrets are `pulumi.Input`s: pass Outputs of your own resources (an existing VPC's id,
route table ids, a Transit Gateway id, a PSK from a secret store). CIDRs, counts and choices
are plain values: they decide which resources exist (a route per prefix) and are checked
against each other (no overlaps) before anything is created, so they must be known when the
program runs.
"""

# Not `from __future__ import annotations`: Pulumi's schema inference reads these types.
from collections.abc import Sequence
from typing import TypedDict

import pulumi


class VpnLinkArgs(TypedDict, total=False):
    """The inputs of a VpnLink: every key of the stack config, each optional."""

    aws_vpc_cidr: str
    """CIDR of the AWS VPC, /16 to /28: the one created, or the existing one's when `awsVpcId` is set. Not in 169.254.0.0/16. The single-prefix form of `awsCidrs`. Default: 10.10.0.0/16."""

    aws_cidrs: Sequence[str]
    """The prefixes reachable on the AWS side, when there are several: the existing VPC's CIDRs (`awsVpcId`) or what lies behind the Transit Gateway (`awsTransitGatewayId`, required there). Each gets a route over both tunnels on the gateway and in every Alibaba route table; at most 200. Empty: `awsVpcCidr` alone. Default: []."""

    ali_vpc_cidr: str
    """CIDR of the Alibaba Cloud VPC, /8 to /28; must not overlap `awsVpcCidr` nor 169.254.0.0/16. The single-prefix form of `aliCidrs`. Default: 172.16.0.0/16."""

    ali_cidrs: Sequence[str]
    """The prefixes reachable on the Alibaba side, when there are several (an existing VPC's CIDR and its secondary CIDRs, `aliVpcId`): each is a static route of the VPN connection (or of the Transit Gateway route table) and is admitted by the security group, at most 100. None may overlap an AWS prefix. Empty: `aliVpcCidr` alone. Default: []."""

    ali_vswitch_cidr: str
    """CIDR of the vSwitch holding the gateway ECS: inside `aliVpcCidr`, /16 to /29. The ECS takes host .10 (the last free host of a smaller vSwitch). Default: 172.16.1.0/24."""

    ali_zone_id: str
    """Alibaba zone of the vSwitch and the gateway ECS, e.g. cn-hangzhou-i; empty picks the first zone offering `ecsInstanceType` at the first deploy and keeps it. Required with `deletionProtection`. Default: (empty)."""

    ali_vpc_id: pulumi.Input[str]
    """Existing Alibaba VPC to attach instead of creating one: the gateway goes into `aliVswitchId`, or into a new vSwitch `aliVswitchCidr` of it; routes to AWS go into `aliRouteTableIds`. Default: (empty)."""

    ali_vswitch_id: pulumi.Input[str]
    """Existing vSwitch of `aliVpcId` for the gateway ECS (its zone is the vSwitch's; Alibaba assigns the address); instead of `aliVswitchCidr`. Default: (empty)."""

    ali_route_table_ids: Sequence[pulumi.Input[str]]
    """Route tables of `aliVpcId` that get one route entry per AWS prefix to the gateway; empty: the VPC's system route table. Only with `aliVpcId`. Default: []."""

    aws_vpc_id: pulumi.Input[str]
    """Existing AWS VPC to attach instead of creating one (needs `awsRouteTableIds`). Default: (empty)."""

    aws_route_table_ids: Sequence[pulumi.Input[str]]
    """Route tables of the existing AWS VPC (`awsVpcId`) that learn the Alibaba prefixes by route propagation; at least one with `awsVpcId`, none without. Default: []."""

    aws_transit_gateway_id: pulumi.Input[str]
    """Existing Transit Gateway to attach the VPN connection to, instead of a virtual private gateway: no AWS VPC is created or attached (`awsVpcId`, `awsRouteTableIds` and `awsVpcCidr` do not apply); `awsCidrs` names what lies behind it. The Alibaba prefixes become static routes to the VPN attachment in `awsTransitGatewayRouteTableId`. Default: (empty)."""

    aws_transit_gateway_route_table_id: pulumi.Input[str]
    """Transit Gateway route table that gets the static routes to the Alibaba prefixes; empty: the Transit Gateway's default association route table. Only with `awsTransitGatewayId`. Default: (empty)."""

    tunnel1_inside_cidr: str
    """Inside /30 of tunnel 1, in 169.254.0.0/16 but none of AWS's reserved 169.254.0.0/30, 169.254.1.0/30, 169.254.2.0/30, 169.254.3.0/30, 169.254.4.0/30, 169.254.5.0/30, 169.254.169.252/30; empty lets AWS pick. Default: (empty)."""

    tunnel2_inside_cidr: str
    """Inside /30 of tunnel 2, as `tunnel1InsideCidr` and different from it; empty lets AWS pick. Default: (empty)."""

    tunnel1_preshared_key: pulumi.Input[str]
    """PSK of tunnel 1, a secret (set it with `--secret`): 8-64 characters of letters, digits, '.' and '_', not starting with '0'; empty generates one. Default: (empty). Secret."""

    tunnel2_preshared_key: pulumi.Input[str]
    """PSK of tunnel 2, a secret (set it with `--secret`): 8-64 characters of letters, digits, '.' and '_', not starting with '0'; empty generates one. Default: (empty). Secret."""

    crypto_profile: str
    """Crypto profile of both ends (AWS's tunnel options and strongSwan's proposals): `modern` (IKEv2: IKE aes256-sha256-ecp256-modp2048, ESP aes256gcm16-ecp256-modp2048 with PFS) or `legacy` (IKEv1: IKE aes128-sha1-modp1024, ESP aes128-sha1-modp1024 with PFS); `legacy` (seed 000's recipe) only where IKEv1 is needed. Default: modern."""

    dpd_timeout_seconds: int
    """AWS-side dead peer detection timeout in seconds, at least 30. Default: 30."""

    ecs_instance_type: str
    """Instance type of the Alibaba gateway ECS. Default: ecs.t6-c1m2.large."""

    ecs_image: str
    """Gateway image: `debian_12`, `ubuntu_22_04` or `ubuntu_24_04` (the newest release at creation; a newer one never touches the gateway), or an Alibaba image id (m-... or *.vhd; a changed id replaces the gateway). Metadata hardened mode only on `ubuntu_22_04` and `ubuntu_24_04`, whose cloud-init supports it. Default: debian_12."""

    ssh_public_key: str
    """OpenSSH public key installed as the gateway's key pair: ssh-rsa, ssh-dss or ecdsa-sha2-nistp256/384/521 (Alibaba refuses ssh-ed25519); a new key is a new key pair, attached to the running gateway with a reboot. Empty creates none (unless `verify` generates one). Default: (empty)."""

    ssh_private_key: pulumi.Input[str]
    """Private key matching `sshPublicKey`, used by `verify`; a secret (set it with `--secret`). Empty with `verify` generates a key pair. Default: (empty). Secret."""

    ssh_allowed_cidrs: Sequence[str]
    """CIDRs allowed to SSH to the gateway; empty closes SSH. /0 is refused. Default: []."""

    verify: bool
    """After deploy, SSH to the gateway and fail `pulumi up` unless both tunnels are up (needs `sshAllowedCidrs`). Default: false."""

    tunnel_log_retention_days: int
    """Retention in days of the CloudWatch log group holding the tunnels' IKE logs: one of CloudWatch's periods (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653). Default: 30."""

    preshared_key_storage: str
    """Where AWS keeps the tunnel PSKs: `Standard` or `SecretsManager`. Default: Standard."""

    alarm_email: str
    """E-mail subscribed to the tunnel-state alarms' SNS topic (confirm the e-mail AWS sends); empty subscribes none. Default: (empty)."""

    deletion_protection: bool
    """Protect the EIP (the address AWS's customer gateway is bound to) from deletion; the gateway ECS is replaced by design and stays deletable. Requires `aliZoneId`. Default: false."""

    gateway_count: int
    """Gateway ECS instances: 1, or 2 for a pair behind a HaVip (keepalived, unicast VRRP; the active one holds both tunnels, the standby takes over when it fails): no single point of failure, at twice the instance cost. A pair needs the link's own vSwitch (`aliVswitchCidr`, not `aliVswitchId`): its three addresses are fixed. Default: 1."""

    routing: str
    """How each side learns the other's prefixes: `static` (the VPN connection's static routes, the gateway's routes to `awsCidrs`), or `bgp` (a BGP session over each tunnel: FRR on the gateway, a dynamic VPN connection). Changing it replaces the VPN connection (AWS: `static_routes_only` cannot change). Default: static."""

    bgp_asn: int
    """The gateway's BGP ASN, the customer gateway's: a private one by default; an ASN of your own works too. Must differ from `awsAsn`. A new one replaces the customer gateway. Default: 65000."""

    aws_asn: int
    """The Amazon side's BGP ASN: the virtual private gateway this link creates gets it (a new one replaces that gateway and the VPN connection); with `awsTransitGatewayId`, that Transit Gateway's ASN. Default: 64512."""
