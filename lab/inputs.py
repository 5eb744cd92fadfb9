"""The lab's inputs, read from the program's offline plan (`python -m tools.plan --json`).

Nothing here invents a value the plan should provide: a missing resource or property is
a PlanError naming it, so the lab cannot silently test something other than the program.
The only fallbacks are AWS's own documented defaults for tunnel options the program
leaves unset (recorded in `LabInputs.defaulted`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from core import paths
from lab import awsnames
from userdata.cloud_config import decode_user_data, encode_user_data

ECS_INSTANCE = "alicloud:ecs/instance:Instance"
EIP = "alicloud:ecs/eipAddress:EipAddress"
ALI_VPC = "alicloud:vpc/network:Network"
ALI_VSWITCH = "alicloud:vpc/switch:Switch"
ALI_ROUTE_ENTRY = "alicloud:vpc/routeEntry:RouteEntry"
HAVIP = "alicloud:vpc/haVipv2:HaVipv2"
AWS_VPC = "aws:ec2/vpc:Vpc"
VPN_CONNECTION = "aws:ec2/vpnConnection:VpnConnection"
VPN_CONNECTION_ROUTE = "aws:ec2/vpnConnectionRoute:VpnConnectionRoute"
CUSTOMER_GATEWAY = "aws:ec2/customerGateway:CustomerGateway"
VPN_GATEWAY = "aws:ec2/vpnGateway:VpnGateway"
TRANSIT_GATEWAY = "aws:ec2transitgateway/transitGateway:TransitGateway"
# AWS's default Amazon-side ASN (a virtual private gateway or Transit Gateway created without one)
AWS_DEFAULT_ASN = 64512
TGW_ROUTE = "aws:ec2transitgateway/route:Route"
REMOTE_COMMAND = "command:remote:Command"

SECRET_PLACEHOLDER = "[secret]"  # noqa: S105 - what tools.plan writes without --show-secrets


class PlanError(Exception):
    """The plan lacks something the lab needs; one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Tunnel:
    number: int
    outside_address: str
    vgw_inside_address: str
    cgw_inside_address: str
    inside_cidr: str
    preshared_key: str
    ike_versions: tuple[str, ...]
    phase1_encryption: tuple[str, ...]
    phase1_integrity: tuple[str, ...]
    phase1_dh_groups: tuple[int, ...]
    phase2_encryption: tuple[str, ...]
    phase2_integrity: tuple[str, ...]
    phase2_dh_groups: tuple[int, ...]
    phase1_lifetime_s: int
    phase2_lifetime_s: int
    rekey_margin_s: int
    rekey_fuzz_percent: int
    replay_window: int
    dpd_timeout_s: int
    dpd_timeout_action: str
    startup_action: str


@dataclass(frozen=True)
class GatewayInputs:
    """One gateway instance of the plan: what its VM boots from."""

    number: int  # 1, or 2 for the second of a pair
    user_data: str
    private_ip: str
    hostname: str


@dataclass(frozen=True)
class BgpInputs:
    """A dynamic (BGP) VPN connection: the customer gateway's ASN (the gateway's FRR), the
    Amazon side's, and whether AWS spreads traffic over both tunnels (a Transit Gateway)."""

    asn: int
    aws_asn: int
    ecmp: bool


@dataclass(frozen=True)
class LabInputs:
    user_data: str  # the (first) gateway's
    private_ip: str
    hostname: str
    eip: str
    vswitch_cidr: str
    aws_prefixes: tuple[str, ...]  # what the Alibaba route entries send to the ECS, in plan order
    ali_prefixes: tuple[str, ...]  # what AWS routes into the VPN (its static routes), in plan order
    tunnels: tuple[Tunnel, ...]
    defaulted: tuple[str, ...] = field(default=())
    verify_commands: tuple[str, ...] = field(default=())  # pulumi-command `create`s, when planned
    # every gateway instance, gateway 1 first (one, or a pair behind `havip`)
    gateways: tuple[GatewayInputs, ...] = field(default=())
    havip: str | None = None  # a pair's HaVip: the EIP and the route entries point at it
    bgp: BgpInputs | None = None  # routing: bgp (None: static routes)

    @property
    def routing(self) -> str:
        return "bgp" if self.bgp else "static"

    @property
    def routing_mode(self) -> str:
        """What the registry selects checks by: static, bgp, or bgp-ecmp (behind a Transit
        Gateway, both tunnels used)."""
        return "bgp-ecmp" if self.bgp and self.bgp.ecmp else self.routing

    @property
    def pair(self) -> bool:
        return self.havip is not None

    @property
    def ingress_ip(self) -> str:
        """Where the EIP's 1:1 NAT and the route entries send traffic: the HaVip of a pair, else
        the one ECS's private address."""
        return self.havip or self.private_ip

    @property
    def ike_version(self) -> int:
        """The link's IKE version (the AWS end offers one; the profile decides which)."""
        return awsnames.swanctl_version(self.tunnels[0].ike_versions) if self.tunnels else 2

    def summary(self) -> dict:
        """For the report's `config` (no secrets)."""
        return {
            "ike_version": self.ike_version,
            "ecs_private_ip": self.private_ip,
            "gateways": [{"number": g.number, "private_ip": g.private_ip} for g in self.gateways],
            "havip": self.havip,
            "eip": self.eip,
            "vswitch_cidr": self.vswitch_cidr,
            "route_entries_to_ecs": list(self.aws_prefixes),
            "aws_static_routes": [] if self.bgp else list(self.ali_prefixes),
            "routing": self.routing,
            "bgp": dataclasses.asdict(self.bgp) if self.bgp else None,
            "ali_prefixes": list(self.ali_prefixes),
            "tunnels": [
                {
                    "number": t.number,
                    "aws_outside": t.outside_address,
                    "inside_cidr": t.inside_cidr,
                    "vgw_inside": t.vgw_inside_address,
                    "cgw_inside": t.cgw_inside_address,
                    "ike_versions": list(t.ike_versions),
                    "phase1": [list(t.phase1_encryption), list(t.phase1_integrity), list(t.phase1_dh_groups)],
                    "phase2": [list(t.phase2_encryption), list(t.phase2_integrity), list(t.phase2_dh_groups)],
                    "dpd_timeout_s": t.dpd_timeout_s,
                    "dpd_timeout_action": t.dpd_timeout_action,
                    "startup_action": t.startup_action,
                }
                for t in self.tunnels
            ],
            "aws_defaults_used": list(self.defaulted),
        }


def run_plan(config_file: Path, out_json: Path, repo: Path, timeout_s: float = 600) -> dict:
    """Run the program's offline plan; exit 2 (invalid settings) becomes a PlanError."""
    cmd = [
        sys.executable,
        "-m",
        "tools.plan",
        "--config-file",
        str(config_file),
        "--json",
        str(out_json),
        "--show-secrets",
    ]
    proc = subprocess.run(
        cmd,
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    if proc.returncode != 0:
        lines = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()
        raise PlanError([f"tools.plan exited {proc.returncode} for {config_file}:", *lines[-40:]])
    return json.loads(out_json.read_text())


def _one(resources: list[dict], rtype: str, problems: list[str]) -> dict:
    found = [r for r in resources if r.get("type") == rtype]
    if len(found) != 1:
        problems.append(f"plan has {len(found)} resources of type {rtype}, the lab needs exactly one")
        return {}
    return found[0]


def _get(res: dict, where: str, key: str, problems: list[str], secret_ok: bool = False):
    value = (res.get(where) or {}).get(key)
    if value is None or value == "":
        if res:
            problems.append(f"{res.get('type')} {res.get('name')!r}: {where}.{key} is missing")
        return None
    if value == SECRET_PLACEHOLDER and not secret_ok:
        problems.append(
            f"{res.get('type')} {res.get('name')!r}: {where}.{key} is '[secret]' (run tools.plan with --show-secrets)"
        )
        return None
    return value


def _cidr(value, what: str, problems: list[str]) -> str:
    try:
        return str(ipaddress.ip_network(str(value), strict=True))
    except ValueError:
        problems.append(f"{what}: {value!r} is not an IPv4 network")
        return ""


def _addr(value, what: str, problems: list[str]) -> str:
    try:
        return str(ipaddress.ip_address(str(value).split("/")[0]))
    except ValueError:
        problems.append(f"{what}: {value!r} is not an IPv4 address")
        return ""


def _tunnel(vpn: dict, n: int, problems: list[str], defaulted: list[str]) -> Tunnel | None:
    p = f"tunnel{n}"
    outs, ins = vpn.get("outputs") or {}, vpn.get("inputs") or {}

    def out(key: str):
        return _get(vpn, "outputs", p + key, problems)

    def opt(key: str):
        # An input the program sets, else (for an output the mock echoes) the output,
        # else AWS's documented default.
        for source in (ins, outs):
            value = source.get(p + key)
            if value not in (None, "", []):
                return value
        defaulted.append(p + key)
        return awsnames.AWS_DEFAULTS[key]

    address = out("Address")
    vgw, cgw = out("VgwInsideAddress"), out("CgwInsideAddress")
    cidr = out("InsideCidr")
    psk = out("PresharedKey")
    if None in (address, vgw, cgw, cidr, psk):
        return None

    def strs(v) -> tuple[str, ...]:
        return tuple(str(x) for x in (v if isinstance(v, list) else [v]))

    def ints(v) -> tuple[int, ...]:
        return tuple(int(x) for x in (v if isinstance(v, list) else [v]))

    t = Tunnel(
        number=n,
        outside_address=_addr(address, f"{p}Address", problems),
        vgw_inside_address=_addr(vgw, f"{p}VgwInsideAddress", problems),
        cgw_inside_address=_addr(cgw, f"{p}CgwInsideAddress", problems),
        inside_cidr=_cidr(cidr, f"{p}InsideCidr", problems),
        preshared_key=str(psk),
        ike_versions=strs(opt("IkeVersions")),
        phase1_encryption=strs(opt("Phase1EncryptionAlgorithms")),
        phase1_integrity=strs(opt("Phase1IntegrityAlgorithms")),
        phase1_dh_groups=ints(opt("Phase1DhGroupNumbers")),
        phase2_encryption=strs(opt("Phase2EncryptionAlgorithms")),
        phase2_integrity=strs(opt("Phase2IntegrityAlgorithms")),
        phase2_dh_groups=ints(opt("Phase2DhGroupNumbers")),
        phase1_lifetime_s=int(opt("Phase1LifetimeSeconds")),
        phase2_lifetime_s=int(opt("Phase2LifetimeSeconds")),
        rekey_margin_s=int(opt("RekeyMarginTimeSeconds")),
        rekey_fuzz_percent=int(opt("RekeyFuzzPercentage")),
        replay_window=int(opt("ReplayWindowSize")),
        dpd_timeout_s=int(opt("DpdTimeoutSeconds")),
        dpd_timeout_action=str(opt("DpdTimeoutAction")),
        startup_action=str(opt("StartupAction")),
    )
    if t.vgw_inside_address and t.inside_cidr:
        net = ipaddress.ip_network(t.inside_cidr)
        for what, a in (("vgw", t.vgw_inside_address), ("cgw", t.cgw_inside_address)):
            if a and ipaddress.ip_address(a) not in net:
                problems.append(f"{p}: {what} inside address {a} is not in {t.inside_cidr}")
    return t


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _aws_prefixes(resources: list[dict], ecs_id: str | None, problems: list[str]) -> tuple[str, ...]:
    """The AWS prefixes: the destinations of the Alibaba route entries whose next hop is the
    ECS (a pair's HaVip: `ecs_id` is then the HaVip's id), in plan order. The lab models one
    route table, so every table must send the same."""
    entries = [
        r
        for r in resources
        if r.get("type") == ALI_ROUTE_ENTRY and ecs_id and (r.get("inputs") or {}).get("nexthopId") == ecs_id
    ]
    if not entries:
        problems.append(
            f"plan has no {ALI_ROUTE_ENTRY} with nexthopId = the ECS's id ({ecs_id!r}); "
            "the lab needs one per AWS prefix"
        )
        return ()
    by_table: dict[str, list[str]] = {}
    for r in entries:
        dest = _get(r, "inputs", "destinationCidrblock", problems)
        if dest is not None:
            what = f"{ALI_ROUTE_ENTRY} {r.get('name')!r} destinationCidrblock"
            by_table.setdefault(str((r.get("inputs") or {}).get("routeTableId")), []).append(
                _cidr(dest, what, problems)
            )
    if not by_table:
        return ()
    (first, prefixes), *others = by_table.items()
    for table, dests in by_table.items():
        twice = sorted({d for d in dests if dests.count(d) > 1})
        if twice:
            problems.append(f"route table {table} has more than one route entry to the ECS for {', '.join(twice)}")
    for table, dests in others:
        if set(dests) != set(prefixes):
            problems.append(
                f"route table {table} sends {', '.join(dests)} to the ECS but route table {first} sends "
                f"{', '.join(prefixes)}: the lab models one route table, so every table must send the same prefixes"
            )
    return _unique(prefixes)


def _ali_prefixes(resources: list[dict], vpn: dict, problems: list[str]) -> tuple[str, ...]:
    """The Alibaba prefixes: the destinations AWS routes into this VPN connection (its static
    routes, or the Transit Gateway's routes to its attachment), in plan order."""
    attachment = (vpn.get("outputs") or {}).get("transitGatewayAttachmentId")
    routes = [
        r
        for r in resources
        if (r.get("type") == VPN_CONNECTION_ROUTE and (r.get("inputs") or {}).get("vpnConnectionId") == vpn.get("id"))
        or (
            r.get("type") == TGW_ROUTE
            and attachment
            and (r.get("inputs") or {}).get("transitGatewayAttachmentId") == attachment
        )
    ]
    if not routes:
        problems.append(
            f"plan has no {VPN_CONNECTION_ROUTE} of the VPN connection ({vpn.get('id')!r}) and no {TGW_ROUTE} "
            "to its attachment: AWS would route nothing to the Alibaba side"
        )
        return ()
    prefixes = []
    for r in routes:
        dest = _get(r, "inputs", "destinationCidrBlock", problems)
        if dest is not None:
            prefixes.append(_cidr(dest, f"{r.get('type')} {r.get('name')!r} destinationCidrBlock", problems))
    twice = sorted({d for d in prefixes if prefixes.count(d) > 1})
    if twice:
        problems.append(f"AWS routes {', '.join(twice)} into the VPN connection more than once")
    return _unique(prefixes)


def _created_vpc_problems(resources: list[dict], rtype: str, prefixes: tuple[str, ...], routed: str) -> list[str]:
    """When the plan creates the VPC (it has exactly one CIDR), the routed prefixes are that CIDR."""
    problems: list[str] = []
    vpcs = [r for r in resources if r.get("type") == rtype]
    if len(vpcs) > 1:
        problems.append(f"plan has {len(vpcs)} resources of type {rtype}, the lab models at most one")
    for vpc in vpcs[:1]:
        cidr = _get(vpc, "inputs", "cidrBlock", problems)
        if cidr is not None and prefixes and prefixes != (_cidr(cidr, f"{rtype} cidrBlock", problems),):
            problems.append(
                f"{routed} {', '.join(prefixes)}, not the created VPC's CIDR {cidr} "
                f"({rtype}; a created VPC has exactly one CIDR)"
            )
    return problems


def _bgp(resources: list[dict], vpn: dict, problems: list[str]) -> BgpInputs | None:
    """The BGP facts of a dynamic VPN connection (`staticRoutesOnly` false), None for a static one."""
    if (vpn.get("inputs") or {}).get("staticRoutesOnly", True) not in (False, "false"):
        return None
    cgw = _one(resources, CUSTOMER_GATEWAY, problems)
    cgw_in = cgw.get("inputs") or {}
    asn = cgw_in.get("bgpAsnExtended") or cgw_in.get("bgpAsn")
    tgw_id = (vpn.get("inputs") or {}).get("transitGatewayId")
    aws_side = [r for r in resources if r.get("type") == (TRANSIT_GATEWAY if tgw_id else VPN_GATEWAY)]
    # an existing Transit Gateway is not in the plan: the gateway does not pin the peer's ASN
    aws_asn = (aws_side[0].get("inputs") or {}).get("amazonSideAsn") if aws_side else None
    try:
        return BgpInputs(asn=int(str(asn)), aws_asn=int(str(aws_asn or AWS_DEFAULT_ASN)), ecmp=bool(tgw_id))
    except ValueError:
        problems.append(f"{CUSTOMER_GATEWAY}: bgpAsn {asn!r} / amazonSideAsn {aws_asn!r} are not ASNs")
        return None


def _cloud_config(value: object, which: str, problems: list[str]) -> str:
    """The gateway's cloud-config from its planned userData (gzipped, Base64): what the ECS's
    cloud-init reads. The lab seeds it gzipped again, so the encoding must give back the very
    value the plan holds (libdeflate's output on this machine)."""
    if value is None:
        return ""
    try:
        text = decode_user_data(str(value))
    except (ValueError, OSError, EOFError, UnicodeDecodeError) as e:
        problems.append(f"{ECS_INSTANCE}{which}: inputs.userData is not a gzipped, Base64-encoded cloud-config ({e})")
        return ""
    if not text.startswith("#cloud-config"):
        problems.append(f"{ECS_INSTANCE}{which}: inputs.userData does not unpack to a '#cloud-config'")
    elif encode_user_data(text) != value:
        problems.append(
            f"{ECS_INSTANCE}{which}: inputs.userData re-encoded here differs from the plan's: the lab would not "
            "boot the planned bytes (a different `deflate` than requirements.txt pins?)"
        )
    return text


def _announced(user_data: str, problems: list[str]) -> tuple[str, ...]:
    """What the gateway announces over BGP (its FRR configuration's `network` statements): the
    Alibaba prefixes AWS routes into a dynamic VPN connection."""
    try:
        conf = written_file(user_data, paths.FRR_CONF_PATH)
    except ValueError as e:
        problems.append(f"routing: bgp, but {e}")
        return ()
    nets = re.findall(r"^\s*network (\S+)\s*$", conf, re.M)
    if not nets:
        problems.append(f"{paths.FRR_CONF_PATH} in the user-data announces no prefix (no `network` statement)")
    return _unique([_cidr(n, f"{paths.FRR_CONF_PATH} network", problems) for n in nets])


def from_plan(plan: dict) -> LabInputs:
    """Pick the lab's inputs out of a plan JSON; PlanError lists every problem at once.

    The prefixes are what the plan routes: the AWS ones from the Alibaba route entries to the
    ECS, the Alibaba ones from AWS's routes into the VPN connection. A VPC the plan creates is
    checked against them; an existing one is not in the plan."""
    problems: list[str] = []
    defaulted: list[str] = []
    resources = plan.get("resources") or []
    havips = [r for r in resources if r.get("type") == HAVIP]
    instances = sorted((r for r in resources if r.get("type") == ECS_INSTANCE), key=lambda r: str(r.get("name")))
    wanted = 2 if havips else 1
    if len(havips) > 1 or len(instances) != wanted:
        problems.append(
            f"plan has {len(instances)} resources of type {ECS_INSTANCE} and {len(havips)} of type {HAVIP}: "
            "the lab needs one gateway, or a pair (two) behind one HaVip"
        )
    havip = havips[0] if len(havips) == 1 else None
    ecs = instances[0] if instances else {}
    eip = _one(resources, EIP, problems)
    vsw = _one(resources, ALI_VSWITCH, problems)
    vpn = _one(resources, VPN_CONNECTION, problems)

    user_data = _cloud_config(_get(ecs, "inputs", "userData", problems), "", problems)
    private_ip = _get(ecs, "inputs", "privateIp", problems)
    hostname = (ecs.get("inputs") or {}).get("hostName") or "ecs-aws2aliyun"
    eip_addr = _get(eip, "outputs", "ipAddress", problems)
    vsw_cidr = _get(vsw, "inputs", "cidrBlock", problems)

    havip_addr = _get(havip, "inputs", "ipAddress", problems) if havip else None
    gateways = tuple(
        GatewayInputs(
            number=k,
            user_data=_cloud_config(_get(r, "inputs", "userData", problems), f" (gateway {k})", problems),
            private_ip=str(_get(r, "inputs", "privateIp", problems)),
            hostname=str(
                (r.get("inputs") or {}).get("hostName") or ("ecs-aws2aliyun" if wanted == 1 else f"ecs-aws2aliyun-{k}")
            ),
        )
        for k, r in enumerate(instances[:wanted], 1)
    )
    aws_prefixes = _aws_prefixes(resources, (havip or ecs).get("id"), problems)
    bgp = _bgp(resources, vpn, problems) if vpn else None
    if bgp and user_data:
        ali_prefixes = _announced(str(user_data), problems)
    else:
        ali_prefixes = _ali_prefixes(resources, vpn, problems) if vpn else ()
    problems += _created_vpc_problems(resources, AWS_VPC, aws_prefixes, "the Alibaba route entries to the ECS are for")
    problems += _created_vpc_problems(resources, ALI_VPC, ali_prefixes, "AWS routes into the VPN")

    tunnels = tuple(t for t in (_tunnel(vpn, n, problems, defaulted) for n in (1, 2)) if t) if vpn else ()
    verify_commands = tuple(
        str((r.get("inputs") or {}).get("create"))
        for r in resources
        if r.get("type") == REMOTE_COMMAND and "verify" in str((r.get("inputs") or {}).get("create", ""))
    )

    if problems:
        raise PlanError(problems)

    inputs = LabInputs(
        user_data=user_data,
        private_ip=_addr(private_ip, "privateIp", problems),
        hostname=str(hostname),
        eip=_addr(eip_addr, "EIP ipAddress", problems),
        vswitch_cidr=_cidr(vsw_cidr, "vSwitch cidrBlock", problems),
        aws_prefixes=aws_prefixes,
        ali_prefixes=ali_prefixes,
        tunnels=tunnels,
        defaulted=tuple(defaulted),
        verify_commands=verify_commands,
        gateways=tuple(dataclasses.replace(g, private_ip=_addr(g.private_ip, "privateIp", problems)) for g in gateways),
        havip=_addr(havip_addr, "HaVip ipAddress", problems) if havip else None,
        bgp=bgp,
    )
    problems += consistency_problems(inputs)
    if problems:
        raise PlanError(problems)
    return inputs


def consistency_problems(i: LabInputs) -> list[str]:
    """Facts the lab's topology relies on; each one a real-world requirement too."""
    problems = []
    net = ipaddress.ip_network
    addr = ipaddress.ip_address
    if addr(i.private_ip) not in net(i.vswitch_cidr):
        problems.append(f"ECS privateIp {i.private_ip} is not in the vSwitch {i.vswitch_cidr}")
    for g in i.gateways[1:]:
        if addr(g.private_ip) not in net(i.vswitch_cidr):
            problems.append(f"gateway {g.number} privateIp {g.private_ip} is not in the vSwitch {i.vswitch_cidr}")
    if i.havip and addr(i.havip) not in net(i.vswitch_cidr):
        problems.append(f"HaVip {i.havip} is not in the vSwitch {i.vswitch_cidr}")
    vsw = ipaddress.IPv4Network(i.vswitch_cidr)
    if not any(vsw.subnet_of(ipaddress.IPv4Network(p)) for p in i.ali_prefixes):
        problems.append(
            f"vSwitch {i.vswitch_cidr} is inside none of the Alibaba prefixes AWS routes into the VPN "
            f"({', '.join(i.ali_prefixes)}): replies to the gateway's own vSwitch would not come back"
        )
    for ali in i.ali_prefixes:
        for aws in i.aws_prefixes:
            if net(ali).overlaps(net(aws)):
                problems.append(f"Alibaba prefix {ali} overlaps the AWS prefix {aws}")
    if len(i.tunnels) != 2:
        problems.append(f"the VPN connection has {len(i.tunnels)} usable tunnels, expected 2")
    elif i.tunnels[0].outside_address == i.tunnels[1].outside_address:
        problems.append("both tunnels have the same AWS outside address")
    lab_public = [net("192.0.2.0/24"), net("198.51.100.0/24")]
    for what, a in [("EIP", i.eip)] + [(f"tunnel{t.number} outside address", t.outside_address) for t in i.tunnels]:
        if not any(addr(a) in n for n in lab_public):
            problems.append(
                f"{what} {a} is outside the lab's simulated public ranges "
                "192.0.2.0/24 and 198.51.100.0/24 (the plan's mocks should use them)"
            )
    for t in i.tunnels:
        try:
            awsnames.swanctl_version(t.ike_versions)
            awsnames.ike_proposals(t.phase1_encryption, t.phase1_integrity, t.phase1_dh_groups)
            awsnames.esp_proposals(t.phase2_encryption, t.phase2_integrity, t.phase2_dh_groups)
        except awsnames.UnknownAwsNameError as e:
            problems.append(f"tunnel{t.number}: {e}")
    return problems


def verify_script_path(user_data: str) -> str | None:
    """The write_files entry whose path ends in -verify (what the pulumi-command step runs)."""
    try:
        import yaml

        doc = yaml.safe_load(user_data) or {}
        for f in doc.get("write_files") or []:
            if str(f.get("path", "")).endswith("-verify"):
                return str(f["path"])
        return None
    except ImportError:
        m = re.search(r"^\s*-?\s*path:\s*(\S+-verify)\s*$", user_data, re.M)
        return m.group(1) if m else None


def written_file(user_data: str, path: str) -> str:
    """The content of the file the user-data's write_files writes at `path` (as text)."""
    import yaml

    doc = yaml.safe_load(user_data) or {}
    for f in doc.get("write_files") or []:
        if f.get("path") == path:
            if f.get("encoding"):
                raise ValueError(f"{path} is written {f['encoding']}-encoded")
            return str(f.get("content", ""))
    raise ValueError(f"the user-data writes no {path}")


def link_env(user_data: str) -> dict[str, str]:
    """KEY=value pairs of the link.env the user-data writes (marks, VTIs, peers)."""
    out = {}
    for ln in written_file(user_data, paths.LINK_ENV_PATH).splitlines():
        if "=" in ln and not ln.lstrip().startswith("#"):
            k, v = ln.split("=", 1)
            out[k.strip()] = shlex.split(v)[0] if v.strip() else ""
    return out
