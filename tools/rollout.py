"""What `pulumi up` would do on the real providers when a stack's settings change.

The mocks accept any change; the clouds do not. This module holds what the providers' own
source says about each resource type the program creates (which inputs replace it, which
changes the provider silently drops, which names and addresses must be unique while old
and new exist side by side, when a delete is refused) and replays the engine's replacement
order over two offline plans, before and after a change:

- a changed input listed in `force_new` (or the resource's `replaceOnChanges`) and not in its
  `ignoreChanges` replaces the resource; other changed inputs update it in place, except the
  ones in `ignored`, which the provider accepts and never applies;
- a replaced resource's id and computed outputs are unknown until it exists again, so every
  resource whose ForceNew input carries one of them is replaced too (Pulumi's dependent
  replacements);
- create-before-delete (Pulumi's default): the new resource is created while the old one still
  exists, so anything that must be unique collides; delete-before-replace: the dependents to
  be replaced are deleted first, then the resource, then it and its dependents are created;
- a delete is refused while a live resource still sits in the deleted one (`held_by`: an
  instance in a vSwitch or a security group), and an update when the provider's API refuses
  it given what else is live (`refuses_update`: a VPN connection's static routes).

`python -m tools.rollout --stack prod --set tunnel1PresharedKey=... --set ...` prints the
steps and every step the real providers would refuse. Exit 1 when one would fail.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.settings import NAMESPACE, SettingsError, load_settings
from tools import offline, stackfile

Inputs = Mapping[str, Any]
INSTANCE = "alicloud:ecs/instance:Instance"
VPN_ROUTE = "aws:ec2/vpnConnectionRoute:VpnConnectionRoute"


@dataclass(frozen=True)
class ProviderRule:
    """What a provider does with a change of each input of one resource type."""

    force_new: frozenset[str]
    source: str
    # Inputs the provider accepts and never applies (no ForceNew, no update, not read back).
    ignored: frozenset[str] = frozenset()
    # Values that must be unique among the live resources of the type (scoped by the tuple).
    unique: Callable[[Inputs], set[tuple[Any, ...]]] = lambda _i: set()
    # Why the provider's Delete is refused for these inputs, or None.
    refuses_delete: Callable[[Inputs], str | None] = lambda _i: None
    # (type, input): a live resource of that type whose input holds this one's id blocks its delete.
    held_by: frozenset[tuple[str, str]] = frozenset()
    # Why an in-place update from these inputs to those is refused while these resources are
    # live (the resource's own id first), or None.
    refuses_update: Callable[[Inputs, Inputs, str, list[offline.Resource]], str | None] = lambda _o, _n, _id, _l: None


def _pinned_inside_cidrs(i: Inputs) -> set[tuple[Any, ...]]:
    gateway = i.get("vpnGatewayId") or i.get("transitGatewayId")
    return {("insideCidr", gateway, i[k]) for k in ("tunnel1InsideCidr", "tunnel2InsideCidr") if i.get(k)}


ALICLOUD = "aliyun/terraform-provider-alicloud 1.289 alicloud/"
AWS = "hashicorp/terraform-provider-aws internal/service/ec2/"


def _vgw_to_tgw_with_routes(old: Inputs, new: Inputs, vpn_id: str, live: list[offline.Resource]) -> str | None:
    """ModifyVpnConnection from a virtual private gateway with static routes to a Transit
    Gateway: AWS requires the static routes deleted first (API_ModifyVpnConnection)."""
    if not (old.get("vpnGatewayId") and new.get("transitGatewayId") and not old.get("transitGatewayId")):
        return None
    routes = sorted(r.name for r in live if r.type == VPN_ROUTE and _plain(r.inputs.get("vpnConnectionId")) == vpn_id)
    if not routes:
        return None
    return (
        "ModifyVpnConnection from a virtual private gateway to a Transit Gateway is refused while the "
        f"connection has static routes ({', '.join(routes)}): AWS requires them deleted first"
    )


RULES: dict[str, ProviderRule] = {
    "alicloud:ecs/instance:Instance": ProviderRule(
        force_new=frozenset({"availabilityZone", "spotStrategy", "spotPriceLimit", "systemDiskCategory"}),
        source=ALICLOUD + "resource_alicloud_instance.go (schema; resourceAliCloudInstanceDelete)",
        unique=lambda i: {("privateIp", i.get("vswitchId"), i["privateIp"])} if i.get("privateIp") else set(),
        refuses_delete=lambda i: (
            "DeleteInstance is refused for a deletion-protected instance and the provider's Delete never lifts "
            "the protection"
            if i.get("deletionProtection")
            else None
        ),
    ),
    "alicloud:ecs/eipAssociation:EipAssociation": ProviderRule(
        force_new=frozenset({"allocationId", "instanceId", "instanceType", "privateIpAddress", "vpcId"}),
        source=ALICLOUD + "resource_alicloud_eip_association.go",
        unique=lambda i: {("eip", i.get("allocationId"))},
    ),
    "alicloud:vpc/routeEntry:RouteEntry": ProviderRule(
        force_new=frozenset(
            {"routeTableId", "destinationCidrblock", "nexthopType", "nexthopId", "name", "description", "routerId"}
        ),
        source=ALICLOUD + "resource_alicloud_route_entry.go",
        unique=lambda i: {("route", i.get("routeTableId"), i.get("destinationCidrblock"))},
    ),
    "alicloud:vpc/switch:Switch": ProviderRule(
        force_new=frozenset({"zoneId", "availabilityZone", "cidrBlock", "vpcId", "ipv6CidrBlockMask"}),
        source=ALICLOUD + "resource_alicloud_vswitch.go; DeleteVSwitch: DependencyViolation while instances are in it",
        unique=lambda i: {("vswitchCidr", i.get("vpcId"), i.get("cidrBlock"))},
        held_by=frozenset({(INSTANCE, "vswitchId")}),
    ),
    "alicloud:ecs/securityGroup:SecurityGroup": ProviderRule(
        force_new=frozenset({"vpcId", "securityGroupType"}),
        source=ALICLOUD
        + "resource_alicloud_security_group.go; DeleteSecurityGroup: DependencyViolation while instances are in it",
        held_by=frozenset({(INSTANCE, "securityGroups")}),
    ),
    "alicloud:ecs/ecsKeyPair:EcsKeyPair": ProviderRule(
        force_new=frozenset({"keyPairName", "keyNamePrefix", "keyFile", "keyName"}),
        ignored=frozenset({"publicKey"}),
        source=ALICLOUD + "resource_alicloud_ecs_key_pair.go (public_key: Optional, no update, not read)",
        unique=lambda i: {("keyPair", i.get("keyPairName"))},
    ),
    "alicloud:ecs/securityGroupRule:SecurityGroupRule": ProviderRule(
        force_new=frozenset(
            {
                "securityGroupId",
                "type",
                "ipProtocol",
                "portRange",
                "cidrIp",
                "nicType",
                "policy",
                "priority",
                "sourceSecurityGroupId",
                "ipv6CidrIp",
                "prefixListId",
            }
        ),
        source=ALICLOUD + "resource_alicloud_security_group_rule.go",
        # Alibaba refuses a second identical rule (InvalidPermission.Duplicate).
        unique=lambda i: {
            (
                "sgRule",
                i.get("securityGroupId"),
                i.get("type"),
                i.get("ipProtocol"),
                i.get("portRange"),
                i.get("cidrIp"),
            )
        },
    ),
    "alicloud:ecs/eipAddress:EipAddress": ProviderRule(
        force_new=frozenset({"isp", "paymentType", "period", "ipAddress", "resourceGroupId"}),
        source=ALICLOUD + "resource_alicloud_eip_address.go",
        refuses_delete=lambda i: "the EIP is deletion-protected" if i.get("deletionProtection") else None,
    ),
    "alicloud:vpc/network:Network": ProviderRule(
        force_new=frozenset({"cidrBlock", "enableIpv6", "resourceGroupId"}),
        source=ALICLOUD + "resource_alicloud_vpc.go",
    ),
    "alicloud:vpc/haVipv2:HaVipv2": ProviderRule(
        force_new=frozenset({"vswitchId", "ipAddress"}),
        source=ALICLOUD + "resource_alicloud_vpc_ha_vip.go; DeleteHaVip retries while associated",
        unique=lambda i: {("havip", i.get("vswitchId"), i.get("ipAddress"))} if i.get("ipAddress") else set(),
    ),
    "alicloud:vpc/hAVipAttachment:HAVipAttachment": ProviderRule(
        force_new=frozenset({"haVipId", "havipId", "instanceId", "instanceType"}),
        source=ALICLOUD + "resource_alicloud_havip_attachment.go (AssociateHaVip / UnassociateHaVip)",
        unique=lambda i: {("havipAttachment", i.get("haVipId"), i.get("instanceId"))},
    ),
    "alicloud:ecs/command:Command": ProviderRule(
        force_new=frozenset(
            {"commandContent", "description", "enableParameter", "name", "timeout", "type", "workingDir"}
        ),
        source=ALICLOUD + "resource_alicloud_ecs_command.go (no Update: every argument is ForceNew)",
    ),
    "alicloud:ecs/ecsInvocation:EcsInvocation": ProviderRule(
        force_new=frozenset(
            {
                "commandId",
                "instanceIds",
                "repeatMode",
                "timed",
                "frequency",
                "parameters",
                "username",
                "windowsPasswordName",
            }
        ),
        source=ALICLOUD
        + "resource_alicloud_ecs_invocation.go (Create: InvokeCommand, then waits for Success; Delete: StopInvocation)",
    ),
    "aws:ec2/vpnConnection:VpnConnection": ProviderRule(
        # customer/VPN/transit gateway changes go through ModifyVpnConnection, tunnel options
        # (PSKs included) and the PSK storage through ModifyVpnTunnelOptions: all in place.
        force_new=frozenset(
            {
                "type",
                "staticRoutesOnly",
                "enableAcceleration",
                "tunnelInsideIpVersion",
                "tunnel1InsideCidr",
                "tunnel2InsideCidr",
                "tunnel1InsideIpv6Cidr",
                "tunnel2InsideIpv6Cidr",
            }
        ),
        source=AWS + "vpnsite_connection.go (schema; resourceVPNConnectionUpdate); API_ModifyVpnConnection",
        unique=_pinned_inside_cidrs,
        refuses_update=_vgw_to_tgw_with_routes,
    ),
    "aws:ec2/vpnConnectionRoute:VpnConnectionRoute": ProviderRule(
        force_new=frozenset({"vpnConnectionId", "destinationCidrBlock"}),
        source=AWS + "vpnsite_connection_route.go",
        unique=lambda i: {("vpnRoute", i.get("vpnConnectionId"), i.get("destinationCidrBlock"))},
    ),
    "aws:ec2transitgateway/route:Route": ProviderRule(
        # no Update at all: every argument is ForceNew; the id is "<route table>_<destination>"
        force_new=frozenset(
            {"destinationCidrBlock", "transitGatewayAttachmentId", "transitGatewayRouteTableId", "blackhole"}
        ),
        source=AWS + "transitgateway_route.go",
        unique=lambda i: {("tgwRoute", i.get("transitGatewayRouteTableId"), i.get("destinationCidrBlock"))},
    ),
    "aws:ec2/customerGateway:CustomerGateway": ProviderRule(
        force_new=frozenset({"bgpAsn", "bgpAsnExtended", "certificateArn", "deviceName", "ipAddress", "type"}),
        source=AWS + "vpnsite_customer_gateway.go",
    ),
    "aws:ec2/vpnGateway:VpnGateway": ProviderRule(
        # Update handles vpcId (detach, attach) and tags only (docs/provider-facts-day-two.md item 62)
        force_new=frozenset({"amazonSideAsn", "availabilityZone"}),
        source=AWS + "vpnsite_gateway.go",
    ),
}


@dataclass(frozen=True)
class Step:
    op: str  # "create" | "delete" | "update" | "ignored"
    urn: str
    why: str = ""

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]

    def __str__(self) -> str:
        return f"{self.op:<7} {self.name}" + (f"  ({self.why})" if self.why else "")


@dataclass
class Rollout:
    steps: list[Step] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def ops(self, name: str) -> list[str]:
        """The operations on the resource named `name`, in order."""
        return [s.op for s in self.steps if s.name == name]

    def index(self, op: str, name: str) -> int:
        return next(i for i, s in enumerate(self.steps) if s.op == op and s.name == name)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, offline.Secret):
        yield from _strings(value.value)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def _plain(value: Any) -> Any:
    return offline.reveal(value, show_secrets=True)


def _volatile(r: offline.Resource) -> set[str]:
    """Values that are unknown while `r` is being replaced: its id and computed outputs."""
    values = {r.id} if r.id else set()
    for key, out in r.outputs.items():
        if key not in r.inputs:
            values.update(v for v in _strings(out) if len(v) >= 6)
    return values


def _carries(value: Any, volatile: set[str]) -> bool:
    return any(v in s for s in _strings(value) for v in volatile)


def _topological(resources: list[offline.Resource]) -> list[str]:
    """URNs with every resource after the ones it depends on (ties by URN: deterministic)."""
    urns = {r.urn for r in resources}
    deps = {r.urn: {d for d in r.depends_on if d in urns} for r in resources}
    order: list[str] = []
    while deps:
        ready = sorted(u for u, d in deps.items() if not d)
        if not ready:  # a cycle cannot come from a Pulumi program; keep going deterministically
            ready = [sorted(deps)[0]]
        for u in ready:
            order.append(u)
            del deps[u]
        for d in deps.values():
            d.difference_update(ready)
    return order


def simulate(before: offline.Plan, after: offline.Plan) -> Rollout:
    """The steps `pulumi up` takes from `before` to `after`, and what the providers refuse."""
    old = {r.urn: r for r in before.resources if r.custom}
    new = [r for r in after.resources if r.custom]
    rollout = Rollout()
    replace: dict[str, str] = {}
    update: dict[str, str] = {}

    # An ignored input keeps its old value, and so do the outputs it feeds: dependents see
    # the old value where the plan (run without state) shows the new one.
    kept: dict[str, dict[str, str]] = {}
    for r in new:
        if r.urn in old:
            for key in r.options["ignoreChanges"]:
                was, now = _plain(old[r.urn].inputs.get(key)), _plain(r.inputs.get(key))
                if isinstance(was, str) and isinstance(now, str) and was != now:
                    kept.setdefault(r.urn, {})[now] = was

    def as_deployed(r: offline.Resource, value: Any) -> Any:
        value = _plain(value)
        for dep in r.depends_on:
            for now, was in kept.get(dep, {}).items():
                value = json.loads(json.dumps(value).replace(json.dumps(now)[1:-1], json.dumps(was)[1:-1]))
        return value

    def changed(r: offline.Resource) -> set[str]:
        o = old[r.urn]
        keys = set(r.inputs) | set(o.inputs)
        diff = {k for k in keys if as_deployed(r, r.inputs.get(k)) != _plain(o.inputs.get(k))}
        return diff - set(r.options["ignoreChanges"])

    for r in new:
        if r.urn not in old:
            continue
        rule = RULES.get(r.type, ProviderRule(frozenset(), source="(no rule: assumed updatable)"))
        diff = changed(r)
        forcing = diff & (rule.force_new | set(r.options["replaceOnChanges"]))
        if forcing:
            replace[r.urn] = "changed " + ", ".join(sorted(forcing))
        elif diff - rule.ignored:
            update[r.urn] = "changed " + ", ".join(sorted(diff - rule.ignored))
        for key in sorted(diff & rule.ignored - forcing):
            rollout.problems.append(
                f"{r.name}: a change of {key} is accepted and never applied by the provider ({rule.source})"
            )
            rollout.steps.append(Step("ignored", r.urn, f"{key} changes nothing on the cloud"))

    # Dependent replacements: a ForceNew input carrying an id or output of a replaced resource.
    grew = True
    while grew:
        grew = False
        for r in new:
            if r.urn in replace or r.urn not in old:
                continue
            known = RULES.get(r.type)
            forced = set(r.options["replaceOnChanges"]) | (known.force_new if known else set())
            for dep in r.depends_on:
                if dep not in replace:
                    continue
                hit = sorted(k for k in forced if _carries(r.inputs.get(k), _volatile(old[dep])))
                if hit:
                    replace[r.urn] = f"{', '.join(hit)} from the replaced {old[dep].name}"
                    update.pop(r.urn, None)
                    grew = True
                    break

    order = _topological(new)
    by_urn = {r.urn: r for r in new}
    done: set[str] = set()
    # every old resource lives until deleted: the replaced ones and the ones no longer declared
    # (deleted last) too
    alive = dict(old)

    def replaced_through(u: str, dep: str) -> bool:
        """Whether `u` must be replaced because `dep` is: a ForceNew input of it carries `dep`'s id
        or outputs (a property dependency). A plain dependsOn is no such reason: the engine's
        dependent replacements (calculateDependentReplacements) diff only the properties that
        depend on the replaced resource, so a dependent that is replaced for its own reasons
        waits for its own turn."""
        r = by_urn[u]
        known = RULES.get(r.type)
        forced = set(r.options["replaceOnChanges"]) | (known.force_new if known else set())
        return any(_carries(r.inputs.get(k), _volatile(old[dep])) for k in forced)

    def dependents(urn: str) -> list[str]:
        """Replaced resources depending on `urn` through a ForceNew input, directly or not,
        dependents first."""
        found: list[str] = []
        frontier = [urn]
        while frontier:
            cur = frontier.pop()
            for u in order:
                if u in replace and cur in by_urn[u].depends_on and u not in found and replaced_through(u, cur):
                    found.append(u)
                    frontier.append(u)
        return sorted(found, key=order.index, reverse=True)

    def holders(urn: str, rule: ProviderRule) -> list[str]:
        """Live resources sitting in the one to delete (their input holds its id)."""
        me = old[urn].id
        return sorted(
            r.name
            for r in alive.values()
            if r.urn != urn and any(r.type == t and me in _strings(r.inputs.get(key)) for t, key in rule.held_by)
        )

    def delete(urn: str, why: str) -> None:
        rule = RULES.get(old[urn].type)
        refused = rule.refuses_delete(old[urn].inputs) if rule else None
        held = holders(urn, rule) if rule else []
        if held and not refused:
            refused = f"{', '.join(held)} still in it"
        if refused:
            gone = [s.name for s in rollout.steps if s.op == "delete"]
            rollout.problems.append(
                f"{old[urn].name}: delete refused: {refused} ({rule.source if rule else ''})"
                + (f"; already deleted: {', '.join(gone)}" if gone else "")
            )
        rollout.steps.append(Step("delete", urn, why))
        alive.pop(urn, None)

    # ids and computed outputs of the replaced resources: new values on the cloud, though the
    # mocks give a replacement its predecessor's (same name, same id, same tunnel addresses)
    renewed = set().union(*(_volatile(old[u]) for u in replace)) if replace else set()

    def create(urn: str, why: str) -> None:
        r = by_urn[urn]
        rule = RULES.get(r.type)
        if rule is not None:
            mine = {key for key in rule.unique(_plain(r.inputs)) if not _carries(list(key), renewed)}
            for other in alive.values():
                if other.type == r.type:
                    clash = mine & rule.unique(_plain(other.inputs))
                    if clash:
                        rollout.problems.append(
                            f"{r.name}: create refused while the old {other.name} exists: "
                            f"{', '.join(str(c) for c in sorted(clash, key=str))} must be unique ({rule.source})"
                        )
        rollout.steps.append(Step("create", urn, why))

    for urn in order:
        if urn in done:
            continue
        if urn not in old:
            create(urn, "new")
            done.add(urn)
        elif urn in update:
            known = RULES.get(old[urn].type)
            refused = (
                known.refuses_update(
                    _plain(old[urn].inputs), _plain(by_urn[urn].inputs), old[urn].id, list(alive.values())
                )
                if known
                else None
            )
            if refused and known:
                rollout.problems.append(f"{old[urn].name}: update refused: {refused} ({known.source})")
            rollout.steps.append(Step("update", urn, update[urn]))
            done.add(urn)
        elif urn in replace:
            if by_urn[urn].options["deleteBeforeReplace"]:
                chain = dependents(urn)
                for dep in chain:
                    if dep not in done:
                        delete(dep, f"before {by_urn[urn].name} is replaced")
                delete(urn, "delete-before-replace: " + replace[urn])
                create(urn, replace[urn])
                done.add(urn)
                for dep in sorted(chain, key=order.index):
                    if dep not in done:
                        create(dep, replace[dep])
                        done.add(dep)
            else:
                create(urn, "create-before-delete: " + replace[urn])
                done.add(urn)
    # Create-before-delete leaves the old resources to be deleted last, dependents first,
    # and with them the ones the program no longer declares.
    for urn in reversed(order):
        if urn in replace and urn in alive:
            delete(urn, "replaced")
    for urn in reversed([r.urn for r in before.resources if r.custom and r.urn not in by_urn]):
        delete(urn, "no longer in the program")
    return rollout


def with_changes(stack: stackfile.StackConfig, changes: Mapping[str, Any]) -> stackfile.StackConfig:
    values = dict(stack.values)
    for key, value in changes.items():
        values[key if ":" in key else f"{NAMESPACE}:{key}"] = value
    return stackfile.StackConfig(name=stack.name, path=stack.path, values=values, secret_keys=stack.secret_keys)


def plan_with(stack: stackfile.StackConfig, changes: Mapping[str, Any]) -> offline.Plan:
    """The offline plan of `stack` with config `changes` (keys with or without namespace)."""
    return offline.run(with_changes(stack, changes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.rollout", description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--stack", default="dev")
    where.add_argument("--config-file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config change (repeatable)")
    parser.add_argument("--json", action="store_true", help="steps and problems as JSON")
    args = parser.parse_args(argv)
    try:
        stack = (
            stackfile.load(Path(args.config_file))
            if args.config_file
            else stackfile.load(stackfile.stack_path(args.stack))
        )
        changes: dict[str, Any] = {}
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep:
                parser.error(f"--set {item!r}: expected KEY=VALUE")
            changes[key] = json.loads(value) if value[:1] in "[{" else value
        changed = with_changes(stack, changes)
        for config in (stack, changed):
            load_settings(config.values, config.secret_keys)  # every problem, before planning
        rollout = simulate(offline.run(stack), offline.run(changed))
    except SettingsError as e:
        print("error: invalid settings, nothing planned:", file=sys.stderr)
        for problem in e.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    except stackfile.StackFileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # pulumi.RunError and friends: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(
            json.dumps(
                {"steps": [s.__dict__ | {"name": s.name} for s in rollout.steps], "problems": rollout.problems},
                indent=2,
            )
        )
    else:
        for step in rollout.steps:
            print(step)
        for problem in rollout.problems:
            print(f"refused: {problem}")
        if not rollout.steps:
            print("no changes")
    return 1 if rollout.problems else 0


if __name__ == "__main__":
    sys.exit(main())
