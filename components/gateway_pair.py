"""A gateway pair behind a HaVip (gatewayCount 2): no single point of failure on the
Alibaba side.

Two ECS in the link's vSwitch, each rendered from the same settings (userdata/keepalived.py
decides which one is active); a HaVip attached to both; the EIP bound to the HaVip and the
route entries' next hop the HaVip, so both follow whichever gateway keepalived makes active.
AWS still sees one customer gateway (the EIP) and keeps one VPN connection with two tunnels.

Rolling replacement: a change of user-data replaces both gateways, one after the other. The
one `pulumi up` touches first is the standby (the HaVip's current holder is looked up, so the
order follows the roles); then a Cloud Assistant invocation waits on it until it is ready to
carry the link alone (`aws2aliyun-ha ready`), and only then is the active one replaced: one
hand-over, never the outage of a full boot. A failed gate fails `pulumi up` before the active
gateway is touched.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence

import pulumi
import pulumi_alicloud as alicloud

from components.alibaba_side import (
    AliGateway,
    AliNetwork,
    AliPair,
    eip_association,
    gateway_instance,
    gateway_key_pair,
    routes_to_aws,
)
from components.naming import given, stack_scoped
from core.settings import Settings
from userdata import keepalived

GATEWAY_NUMBERS = (1, 2)
# Cloud Assistant's limit for the gate: a boot, cloud-init's package install and the
# tunnels; the invocation's own create timeout is a little longer.
READY_TIMEOUT_S = keepalived.READY_TIMEOUT_S
GATE_CREATE_TIMEOUT = f"{READY_TIMEOUT_S // 60 + 5}m"


def instance_display(display: str, number: int) -> str:
    """The instance name Alibaba shows (and the lookup of the active one reads)."""
    return f"{display}-gateway-{number}"


def resource_name(name: str, number: int) -> str:
    """Gateway 1 keeps the single gateway's resource name: `gatewayCount` 1 -> 2 replaces it in place."""
    return f"{name}-gateway" if number == 1 else f"{name}-gateway-{number}"


def rollout_order(active: int | None) -> tuple[int, int]:
    """Which gateway `pulumi up` creates or replaces first: the standby, so the active one is
    touched only after the other is ready. Before the pair exists (or when the holder is not
    known), gateway 2 first."""
    return (1, 2) if active == 2 else (2, 1)


def active_gateway(display: str) -> int | None:
    """Which gateway of the pair holds the HaVip now (the HaVip's master instance), or None
    before the pair exists. A read-only lookup, also during `pulumi preview`."""
    found = alicloud.vpc.get_havips(name_regex=f"^{re.escape(display)}$")
    masters = [h.master_instance_id for h in found.havips or [] if h.master_instance_id]
    if not masters:
        return None
    instances = alicloud.ecs.get_instances(ids=masters[:1])
    for inst in instances.instances or []:
        for number in GATEWAY_NUMBERS:
            if inst.name == instance_display(display, number):
                return number
    return None


def create(
    name: str,
    s: Settings,
    network: AliNetwork,
    user_data: Sequence[pulumi.Output[str]],
    public_key: pulumi.Input[str] | None,
    depends_on: Sequence[pulumi.Resource],
    parent: pulumi.Resource,
) -> AliGateway:
    display = stack_scoped(name)
    tags = {"Name": display, "managed-by": "aws2aliyun-vpc"}
    opts = pulumi.ResourceOptions(parent=parent)
    key_pair = gateway_key_pair(name, public_key, tags, parent)
    havip = alicloud.vpc.HaVipv2(
        f"{name}-havip",
        vswitch_id=network.vswitch_id,
        ip_address=str(given(s.havip_address)),
        ha_vip_name=display,
        description="aws2aliyun-vpc: the active gateway's address (the EIP and the route entries point here)",
        tags=tags,
        opts=opts,
    )
    ready_command = alicloud.ecs.Command(
        f"{name}-standby-ready",
        name=f"{display}-standby-ready",
        description="aws2aliyun-vpc: wait until this gateway of the pair can carry the link alone",
        command_content=base64.b64encode(keepalived.ready_script().encode()).decode(),
        type="RunShellScript",
        timeout=READY_TIMEOUT_S,
        working_dir="/",
        opts=opts,
    )
    order = rollout_order(active_gateway(display))
    instances: dict[int, alicloud.ecs.Instance] = {}
    attachments: dict[int, alicloud.vpc.HAVipAttachment] = {}
    gate: alicloud.ecs.EcsInvocation | None = None
    association: alicloud.ecs.EipAssociation | None = None
    routes: list[alicloud.vpc.RouteEntry] = []
    for number in order:
        address = given(s.gateway_private_ips[number - 1])
        instances[number] = gateway_instance(
            resource_name(name, number),
            instance_display(display, number),
            f"aws2aliyun-gw{number}",
            s,
            network,
            str(address),
            user_data[number - 1],
            key_pair,
            tags,
            [*depends_on, *([gate] if gate is not None else [])],
            parent,
        )
        attachments[number] = alicloud.vpc.HAVipAttachment(
            f"{name}-havip-gateway-{number}",
            ha_vip_id=havip.id,
            instance_id=instances[number].id,
            instance_type="EcsInstance",
            opts=opts,
        )
        if gate is None:
            # The first gateway must reach AWS on its own (on the first deploy it is the only one).
            association = eip_association(name, network, havip.id, "HaVip", [attachments[number]], parent)
            routes = routes_to_aws(name, s, network, "HaVip", havip.id, [attachments[number]], parent)
            gate = alicloud.ecs.EcsInvocation(
                f"{name}-standby-ready",
                command_id=ready_command.id,
                instance_ids=[instances[number].id],
                opts=pulumi.ResourceOptions(
                    parent=parent,
                    depends_on=[association, *routes],
                    custom_timeouts=pulumi.CustomTimeouts(create=GATE_CREATE_TIMEOUT),
                ),
            )
    assert association is not None and gate is not None
    return AliGateway(
        instances=[instances[n] for n in GATEWAY_NUMBERS],
        eip_association=association,
        route_entries=routes,
        key_pair=key_pair,
        pair=AliPair(
            havip=havip,
            attachments=[attachments[n] for n in GATEWAY_NUMBERS],
            ready_gate=gate,
            order=order,
        ),
    )
