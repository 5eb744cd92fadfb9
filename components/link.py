"""`aws2aliyun:index:VpnLink`: the whole AWS <-> Alibaba Cloud link as one component.

Outputs flow forward: EIP -> customer gateway -> VPN connection -> user-data -> ECS ->
EIP association and route entry -> (optional) verification over SSH.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random

from components import alibaba_side, aws_side, monitoring, verification
from core.settings import Settings
from userdata import Gateway, Tunnel, render

TYPE_TOKEN = "aws2aliyun:index:VpnLink"  # noqa: S105 - a type token, not a password
# AWS PSK rules: letters, digits, '.' and '_', not starting with '0'. Leaving digits out
# makes a leading '0' impossible; 40 characters of 54 symbols is ~230 bits.
PSK_LENGTH = 40
PSK_SPECIALS = "._"


@dataclass
class VpnLinkArgs:
    """Arguments of a VpnLink: the validated stack settings (see core.settings)."""

    settings: Settings


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


def user_data(
    s: Settings, eip: pulumi.Output[str], vpn: aws_side.AwsVpn, psks: tuple[pulumi.Output[str], pulumi.Output[str]]
) -> pulumi.Output[str]:
    """Render the cloud-config from the VPN connection's outputs (secret: it holds the PSKs).

    The PSKs are the ones given to the connection, not read back from it: with
    presharedKeyStorage=SecretsManager AWS does not return them."""
    c = vpn.connection
    facts = pulumi.Output.all(
        eip,
        c.tunnel1_address, c.tunnel1_inside_cidr, c.tunnel1_cgw_inside_address,
        c.tunnel1_vgw_inside_address, psks[0],
        c.tunnel2_address, c.tunnel2_inside_cidr, c.tunnel2_cgw_inside_address,
        c.tunnel2_vgw_inside_address, psks[1],
    )  # fmt: skip

    def build(v: list[str]) -> str:
        gateway = Gateway(
            eip=v[0],
            private_ip=str(s.ecs_private_ip) if s.ecs_private_ip is not None else None,
            aws_prefixes=tuple(str(p) for p in s.aws_prefixes),
            ali_prefixes=tuple(str(p) for p in s.ali_prefixes),
            crypto=s.crypto,
            tunnels=(Tunnel(1, *v[1:6]), Tunnel(2, *v[6:11])),
            ssh_allowed_cidrs=tuple(str(c) for c in s.ssh_allowed_cidrs),
        )
        return render(gateway)

    return pulumi.Output.secret(facts.apply(build))


class VpnLink(pulumi.ComponentResource):
    """A site-to-site VPN between an AWS VPC and an Alibaba Cloud VPC.

    AWS: VPC (or an existing one), virtual private gateway, customer gateway at the EIP,
    VPN connection with two IPsec tunnels (crypto from the profile, ECS initiates), tunnel
    logs, static route. Alibaba: VPC, vSwitch, security group, EIP, a strongSwan ECS
    configured by cloud-init with one route-based VTI per tunnel, route entry to it.
    """

    eip_address: pulumi.Output[str]
    vpn_connection_id: pulumi.Output[str]
    ecs_instance_id: pulumi.Output[str]

    def __init__(self, name: str, args: VpnLinkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        s = args.settings

        ali = alibaba_side.create_network(name, s, parent=self)
        aws_net = aws_side.create_network(name, s, parent=self)
        psk1, psk2 = (
            pulumi.Output.secret(str(given)) if given is not None else generated_psk(f"{name}-tunnel{n}-psk", self)
            for n, given in enumerate(s.tunnel_preshared_keys, start=1)
        )
        psks = (psk1, psk2)
        vpn = aws_side.create_vpn(name, s, aws_net, ali.eip.ip_address, psks, parent=self)
        conn = vpn.connection
        rules = alibaba_side.create_security_rules(
            name, s, ali, (conn.tunnel1_address, conn.tunnel2_address), parent=self
        )
        access = verification.ssh_access(name, s, parent=self)
        gateway = alibaba_side.create_gateway(
            name, s, ali, user_data(s, ali.eip.ip_address, vpn, psks), access.public_key, depends_on=rules, parent=self
        )
        alarms = monitoring.create(name, s, (conn.tunnel1_address, conn.tunnel2_address), parent=self)
        check = None
        if s.verify:
            check = verification.verify_link(
                name,
                host=ali.eip.ip_address,
                private_key=access.private_key,
                triggers=[gateway.instance.id, conn.id],
                depends_on=[gateway.eip_association, *gateway.route_entries],
                parent=self,
            )

        self.eip_address = ali.eip.ip_address
        self.vpn_connection_id = conn.id
        self.ecs_instance_id = gateway.instance.id
        self.outputs: dict[str, pulumi.Output] = {
            "eipAddress": ali.eip.ip_address,
            "ecsPrivateIp": gateway.instance.private_ip,
            "ecsInstanceId": gateway.instance.id,
            "awsVpcId": aws_net.vpc_id if aws_net.vpc_id is not None else pulumi.Output.from_input(""),
            "aliVpcId": ali.vpc_id,
            "aliVswitchId": ali.vswitch_id,
            "aliRouteTableIds": pulumi.Output.all(*ali.route_table_ids),
            "awsCidrs": pulumi.Output.from_input([str(p) for p in s.aws_prefixes]),
            "aliCidrs": pulumi.Output.from_input([str(p) for p in s.ali_prefixes]),
            "vpnConnectionId": conn.id,
            "customerGatewayId": vpn.customer_gateway.id,
            "tunnelLogGroup": vpn.log_group.name,
            "tunnel1Address": conn.tunnel1_address,
            "tunnel2Address": conn.tunnel2_address,
            "tunnel1CgwInsideAddress": conn.tunnel1_cgw_inside_address,
            "tunnel1VgwInsideAddress": conn.tunnel1_vgw_inside_address,
            "tunnel2CgwInsideAddress": conn.tunnel2_cgw_inside_address,
            "tunnel2VgwInsideAddress": conn.tunnel2_vgw_inside_address,
            "tunnel1PresharedKey": psks[0],
            "tunnel2PresharedKey": psks[1],
            "alarmTopicArn": alarms.topic.arn,
            "tunnelStateDashboardUrl": monitoring.dashboard_url(s.aws_region, alarms.dashboard.dashboard_name),
            "sshCommand": pulumi.Output.format("ssh root@{0}", ali.eip.ip_address),
            "cryptoProfile": pulumi.Output.from_input(s.crypto.name),
        }
        if check is not None:
            self.outputs["verifyOutput"] = check.stdout
        if access.generated_private_key is not None:
            self.outputs["sshPrivateKey"] = access.generated_private_key
        self.register_outputs(self.outputs)
