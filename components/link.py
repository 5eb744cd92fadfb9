"""`aws2aliyun:index:VpnLink`: the whole AWS <-> Alibaba Cloud link as one component.

Outputs flow forward: EIP -> customer gateway -> VPN connection -> user-data -> ECS ->
EIP association and route entry -> (optional) verification over SSH.
"""

import difflib
import inspect
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components import alibaba_side, aws_side, gateway_pair, monitoring, verification
from components.args import VpnLinkArgs
from components.naming import given
from core.settings import KEYS, Problems, Settings, SettingsError, build_settings
from userdata import Bgp, Gateway, HaPair, Tunnel, keepalived, render
from userdata.cloud_config import encode_user_data, too_large

PACKAGE = "aws2aliyun"  # the component package (provider/__main__.py)
# The package's version as its schema states it; consumers pin a git tag of this repository
# (`pulumi package add github.com/<org>/aws2aliyun-vpc@v0.4.0`), so tag a release with it.
VERSION = "0.4.0"
TYPE_TOKEN = f"{PACKAGE}:index:VpnLink"
# AWS PSK rules: letters, digits, '.' and '_', not starting with '0'. Leaving digits out
# makes a leading '0' impossible; 40 characters of 54 symbols is ~230 bits.
PSK_LENGTH = 40
PSK_SPECIALS = "._"
ARG_KEYS = {k.arg: k for k in KEYS}


class VpnLinkArgsError(pulumi.RunError):
    """Invalid VpnLink arguments: `problems` holds one line per problem, each naming its
    argument as the package schema does (`awsCidrs`; `aws_cidrs` in Python)."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__(
            "invalid VpnLink arguments (named as in the package schema; Python takes them in snake_case):\n"
            + "\n".join(f"  - {p}" for p in self.problems)
        )


def _deferred(value: Any) -> bool:
    """Known only later: an Output (or an awaitable) of another resource."""
    return isinstance(value, pulumi.Output) or inspect.isawaitable(value)


def settings_from_args(args: Mapping[str, Any]) -> Settings:
    """Validate VpnLinkArgs into `Settings` with the stack config's own rules (core.settings),
    every problem at once; an id or a secret may be an Output (passed through, unchecked)."""
    p = Problems(deferred=_deferred)
    given: dict[str, Any] = {}
    for arg, value in args.items():
        spec = ARG_KEYS.get(arg)
        if spec is None:
            close = difflib.get_close_matches(arg, ARG_KEYS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            p.add_line(f"{arg}: is not an argument of VpnLink{hint}; known: {', '.join(ARG_KEYS)}")
        elif value is not None:
            given[spec.name] = list(value) if isinstance(value, tuple) else value
    regions = {
        "aws_region": pulumi.Config("aws").get("region") or "",
        "ali_region": pulumi.Config("alicloud").get("region") or "",
    }
    try:
        return build_settings(given, p, regions=regions)
    except SettingsError as e:
        raise VpnLinkArgsError(e.problems) from None


def generated_psk(name: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    password = random.RandomPassword(
        name,
        length=PSK_LENGTH,
        special=True,
        override_special=PSK_SPECIALS,
        numeric=False,
        upper=True,
        lower=True,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return pulumi.Output.secret(password.result)


def generated_vrrp_password(name: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    """keepalived's VRRP authentication between a pair's gateways (VRRPv2 holds 8 characters)."""
    password = random.RandomPassword(
        name,
        length=keepalived.VRRP_PASSWORD_LENGTH,
        special=False,
        numeric=True,
        upper=True,
        lower=True,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return pulumi.Output.secret(password.result)


def ha_pair(s: Settings, number: int, vrrp_password: str) -> HaPair:
    """Gateway `number`'s place in the pair (gatewayCount 2)."""
    first, second = (str(given(ip)) for ip in s.gateway_private_ips)
    return HaPair(
        number=number,
        addresses=(first, second),
        vip=str(given(s.havip_address)),
        prefixlen=s.ali_vswitch_cidr.prefixlen,
        vrrp_password=vrrp_password,
    )


def user_data(
    s: Settings,
    eip: pulumi.Output[str],
    vpn: aws_side.AwsVpn,
    psks: tuple[pulumi.Output[str], pulumi.Output[str]],
    vrrp_password: pulumi.Output[str] | None = None,
) -> list[pulumi.Output[str]]:
    """Render each gateway's cloud-config from the VPN connection's outputs (secret: it holds
    the PSKs): one, or both of a pair (the same settings, each with its own place in it),
    gzipped and Base64-encoded as the ECS takes it (`encode_user_data`).

    The PSKs are the ones given to the connection, not read back from it: with
    presharedKeyStorage=SecretsManager AWS does not return them."""
    c = vpn.connection
    facts = pulumi.Output.all(
        eip,
        c.tunnel1_address, c.tunnel1_inside_cidr, c.tunnel1_cgw_inside_address,
        c.tunnel1_vgw_inside_address, psks[0],
        c.tunnel2_address, c.tunnel2_inside_cidr, c.tunnel2_cgw_inside_address,
        c.tunnel2_vgw_inside_address, psks[1],
        vrrp_password if vrrp_password is not None else "",
    )  # fmt: skip

    def build(v: list[str], number: int) -> str:
        private_ip = s.gateway_private_ips[number - 1]
        gateway = Gateway(
            eip=v[0],
            private_ip=str(private_ip) if private_ip is not None else None,
            aws_prefixes=tuple(str(p) for p in s.aws_prefixes),
            ali_prefixes=tuple(str(p) for p in s.ali_prefixes),
            crypto=s.crypto,
            tunnels=(Tunnel(1, *v[1:6]), Tunnel(2, *v[6:11])),
            ssh_allowed_cidrs=tuple(str(c) for c in s.ssh_allowed_cidrs),
            aws_end_answers=not s.uses_transit_gateway,
            ha=ha_pair(s, number, v[11]) if s.is_pair else None,
            aws_dpd_timeout_s=s.dpd_timeout_s,
            bgp=Bgp(s.bgp_asn, ecmp=s.uses_transit_gateway) if s.routing == "bgp" else None,
        )
        text = render(gateway)
        problem = too_large(text)
        if problem is not None:
            raise pulumi.RunError(problem)
        return encode_user_data(text)

    def rendered(number: int) -> pulumi.Output[str]:
        return pulumi.Output.secret(facts.apply(lambda v: build(v, number)))

    return [rendered(number) for number in range(1, s.gateway_count + 1)]


class VpnLink(pulumi.ComponentResource):
    """A site-to-site IPsec VPN between AWS and Alibaba Cloud, both ends and the routes.

    AWS: a virtual private gateway in a new or existing VPC, or an existing Transit Gateway;
    a customer gateway at the EIP and a VPN connection with two IPsec tunnels (crypto from the
    profile, the ECS initiates), tunnel logs, alarms, static routes to every Alibaba prefix.
    Alibaba: a new or existing VPC and vSwitch, a security group, an EIP, a strongSwan ECS
    configured by cloud-init with one route-based VTI per tunnel that fails over between them,
    and route entries to every AWS prefix in every named route table.
    """

    eip_address: pulumi.Output[str]
    """The EIP: the gateway's public address, the AWS customer gateway's IP."""
    ecs_instance_id: pulumi.Output[str]
    """The gateway ECS instance."""
    ecs_private_ip: pulumi.Output[str]
    """The gateway ECS's private address in its vSwitch (the next hop of the route entries; of
    a pair, gateway 1's)."""
    ecs_instance_ids: pulumi.Output[list[str]]
    """Every gateway ECS instance: one, or both of a pair (gateway 1 first)."""
    ecs_private_ips: pulumi.Output[list[str]]
    """Every gateway's private address, in the order of ecsInstanceIds."""
    ha_vip_address: pulumi.Output[str]
    """A pair's HaVip: the active gateway's address, the next hop of the route entries (empty
    with one gateway)."""
    ha_vip_id: pulumi.Output[str]
    """A pair's HaVip (empty with one gateway)."""
    aws_vpc_id: pulumi.Output[str]
    """The AWS VPC the virtual private gateway is attached to (empty with a Transit Gateway)."""
    ali_vpc_id: pulumi.Output[str]
    """The Alibaba VPC (created, or the given aliVpcId)."""
    ali_vswitch_id: pulumi.Output[str]
    """The gateway's vSwitch (created, or the given aliVswitchId)."""
    ali_route_table_ids: pulumi.Output[list[str]]
    """The Alibaba route tables holding a route entry per AWS prefix."""
    aws_cidrs: pulumi.Output[list[str]]
    """The prefixes routed to AWS."""
    ali_cidrs: pulumi.Output[list[str]]
    """The prefixes routed to Alibaba."""
    vpn_connection_id: pulumi.Output[str]
    """The AWS VPN connection."""
    customer_gateway_id: pulumi.Output[str]
    """The AWS customer gateway (at the EIP)."""
    transit_gateway_attachment_id: pulumi.Output[str]
    """The VPN connection's Transit Gateway attachment (empty with a virtual private gateway)."""
    tunnel_log_group: pulumi.Output[str]
    """The CloudWatch log group of both tunnels' IKE logs."""
    tunnel1_address: pulumi.Output[str]
    """AWS's outside address of tunnel 1."""
    tunnel2_address: pulumi.Output[str]
    """AWS's outside address of tunnel 2."""
    tunnel1_cgw_inside_address: pulumi.Output[str]
    """Tunnel 1's inside address on the gateway's end."""
    tunnel1_vgw_inside_address: pulumi.Output[str]
    """Tunnel 1's inside address on AWS's end."""
    tunnel2_cgw_inside_address: pulumi.Output[str]
    """Tunnel 2's inside address on the gateway's end."""
    tunnel2_vgw_inside_address: pulumi.Output[str]
    """Tunnel 2's inside address on AWS's end."""
    tunnel1_preshared_key: pulumi.Output[str]
    """Tunnel 1's PSK (secret)."""
    tunnel2_preshared_key: pulumi.Output[str]
    """Tunnel 2's PSK (secret)."""
    alarm_topic_arn: pulumi.Output[str]
    """The SNS topic of the tunnel-state alarms."""
    tunnel_state_dashboard_url: pulumi.Output[str]
    """The CloudWatch dashboard of both tunnels' state."""
    ssh_command: pulumi.Output[str]
    """How to reach the gateway over SSH (from sshAllowedCidrs only)."""
    crypto_profile: pulumi.Output[str]
    """The crypto profile of both ends."""
    verify_output: pulumi.Output[str] | None
    """What the post-deploy check printed (with verify)."""
    ssh_private_key: pulumi.Output[str] | None
    """The generated SSH private key (secret; with verify and no sshPublicKey)."""

    def __init__(self, name: str, args: VpnLinkArgs, opts: pulumi.ResourceOptions | None = None):
        # Validate first: bad arguments create nothing, not even the component.
        s = settings_from_args(args)
        super().__init__(TYPE_TOKEN, name, None, opts)

        ali = alibaba_side.create_network(name, s, parent=self)
        aws_net = aws_side.create_network(name, s, parent=self)
        psk1, psk2 = (
            pulumi.Output.secret(given) if given is not None else generated_psk(f"{name}-tunnel{n}-psk", self)
            for n, given in enumerate(s.tunnel_preshared_keys, start=1)
        )
        psks = (psk1, psk2)
        vpn = aws_side.create_vpn(name, s, aws_net, ali.eip.ip_address, psks, parent=self)
        conn = vpn.connection
        rules = alibaba_side.create_security_rules(
            name, s, ali, (conn.tunnel1_address, conn.tunnel2_address), parent=self
        )
        access = verification.ssh_access(name, s, parent=self)
        vrrp = generated_vrrp_password(f"{name}-vrrp-auth", self) if s.is_pair else None
        create_gateway = gateway_pair.create if s.is_pair else alibaba_side.create_gateway
        gateway = create_gateway(
            name,
            s,
            ali,
            user_data(s, ali.eip.ip_address, vpn, psks, vrrp),
            access.public_key,
            depends_on=rules,
            parent=self,
        )
        # The AWS provider's region (a provider passed in opts included).
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        alarms = monitoring.create(name, s, region, (conn.tunnel1_address, conn.tunnel2_address), parent=self)
        check = None
        if s.verify:
            check = verification.verify_link(
                name,
                host=ali.eip.ip_address,
                private_key=access.private_key,
                triggers=[*(i.id for i in gateway.instances), conn.id],
                depends_on=[gateway.eip_association, *gateway.route_entries],
                parent=self,
            )

        self.eip_address = ali.eip.ip_address
        self.ecs_instance_id = gateway.instance.id
        self.ecs_private_ip = gateway.instance.private_ip
        self.ecs_instance_ids = pulumi.Output.all(*(i.id for i in gateway.instances))
        self.ecs_private_ips = pulumi.Output.all(*(i.private_ip for i in gateway.instances))
        pair = gateway.pair
        self.ha_vip_address = pair.havip.ip_address if pair is not None else pulumi.Output.from_input("")
        self.ha_vip_id = pair.havip.id if pair is not None else pulumi.Output.from_input("")
        self.aws_vpc_id = aws_net.vpc_id if aws_net.vpc_id is not None else pulumi.Output.from_input("")
        self.ali_vpc_id = ali.vpc_id
        self.ali_vswitch_id = ali.vswitch_id
        self.ali_route_table_ids = pulumi.Output.all(*ali.route_table_ids)
        self.aws_cidrs = pulumi.Output.from_input([str(p) for p in s.aws_prefixes])
        self.ali_cidrs = pulumi.Output.from_input([str(p) for p in s.ali_prefixes])
        self.vpn_connection_id = conn.id
        self.customer_gateway_id = vpn.customer_gateway.id
        self.transit_gateway_attachment_id = (
            conn.transit_gateway_attachment_id if s.uses_transit_gateway else pulumi.Output.from_input("")
        )
        self.tunnel_log_group = vpn.log_group.name
        self.tunnel1_address = conn.tunnel1_address
        self.tunnel2_address = conn.tunnel2_address
        self.tunnel1_cgw_inside_address = conn.tunnel1_cgw_inside_address
        self.tunnel1_vgw_inside_address = conn.tunnel1_vgw_inside_address
        self.tunnel2_cgw_inside_address = conn.tunnel2_cgw_inside_address
        self.tunnel2_vgw_inside_address = conn.tunnel2_vgw_inside_address
        self.tunnel1_preshared_key = psks[0]
        self.tunnel2_preshared_key = psks[1]
        self.alarm_topic_arn = alarms.topic.arn
        self.tunnel_state_dashboard_url = monitoring.dashboard_url(region, alarms.dashboard.dashboard_name)
        self.ssh_command = pulumi.Output.format("ssh root@{0}", ali.eip.ip_address)
        self.crypto_profile = pulumi.Output.from_input(s.crypto.name)
        self.verify_output = check.stdout if check is not None else None
        self.ssh_private_key = access.generated_private_key
        # camelCase, as the stack exports them and the package schema names them
        self.outputs: dict[str, pulumi.Output] = {
            _camel(attr): value for attr in OUTPUTS if (value := getattr(self, attr)) is not None
        }
        self.register_outputs(self.outputs)


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.capitalize() for part in rest)


# The component's outputs, in the order of their declaration above.
OUTPUTS = tuple(name for name, kind in VpnLink.__annotations__.items() if "Output" in str(kind))
