"""The lab's inputs, read from the program's offline plan (`python -m tools.plan --json`).

Nothing here invents a value the plan should provide: a missing resource or property is
a PlanError naming it, so the lab cannot silently test something other than the program.
The only fallbacks are AWS's own documented defaults for tunnel options the program
leaves unset (recorded in `LabInputs.defaulted`).
"""

from __future__ import annotations

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

ECS_INSTANCE = "alicloud:ecs/instance:Instance"
EIP = "alicloud:ecs/eipAddress:EipAddress"
ALI_VPC = "alicloud:vpc/network:Network"
ALI_VSWITCH = "alicloud:vpc/switch:Switch"
ALI_ROUTE_ENTRY = "alicloud:vpc/routeEntry:RouteEntry"
AWS_VPC = "aws:ec2/vpc:Vpc"
VPN_CONNECTION = "aws:ec2/vpnConnection:VpnConnection"
VPN_CONNECTION_ROUTE = "aws:ec2/vpnConnectionRoute:VpnConnectionRoute"
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
class LabInputs:
    user_data: str
    private_ip: str
    hostname: str
    eip: str
    ali_vpc_cidr: str
    vswitch_cidr: str
    aws_vpc_cidr: str
    route_entry_cidr: str
    aws_routes_to_ali: tuple[str, ...]
    tunnels: tuple[Tunnel, ...]
    defaulted: tuple[str, ...] = field(default=())
    verify_commands: tuple[str, ...] = field(default=())  # pulumi-command `create`s, when planned

    def summary(self) -> dict:
        """For the report's `config` (no secrets)."""
        return {
            "ecs_private_ip": self.private_ip,
            "eip": self.eip,
            "ali_vpc_cidr": self.ali_vpc_cidr,
            "vswitch_cidr": self.vswitch_cidr,
            "aws_vpc_cidr": self.aws_vpc_cidr,
            "route_entry": f"{self.route_entry_cidr} -> ECS",
            "aws_static_routes": list(self.aws_routes_to_ali),
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


def from_plan(plan: dict) -> LabInputs:
    """Pick the lab's inputs out of a plan JSON; PlanError lists every problem at once."""
    problems: list[str] = []
    defaulted: list[str] = []
    resources = plan.get("resources") or []
    ecs = _one(resources, ECS_INSTANCE, problems)
    eip = _one(resources, EIP, problems)
    ali_vpc = _one(resources, ALI_VPC, problems)
    vsw = _one(resources, ALI_VSWITCH, problems)
    aws_vpc = _one(resources, AWS_VPC, problems)
    vpn = _one(resources, VPN_CONNECTION, problems)

    user_data = _get(ecs, "inputs", "userData", problems)
    private_ip = _get(ecs, "inputs", "privateIp", problems)
    hostname = (ecs.get("inputs") or {}).get("hostName") or "ecs-aws2aliyun"
    eip_addr = _get(eip, "outputs", "ipAddress", problems)
    ali_cidr = _get(ali_vpc, "inputs", "cidrBlock", problems)
    vsw_cidr = _get(vsw, "inputs", "cidrBlock", problems)
    aws_cidr = _get(aws_vpc, "inputs", "cidrBlock", problems)

    route_cidr = None
    ecs_id = ecs.get("id")
    entries = [r for r in resources if r.get("type") == ALI_ROUTE_ENTRY]
    to_ecs = [r for r in entries if ecs_id and (r.get("inputs") or {}).get("nexthopId") == ecs_id]
    if len(to_ecs) != 1:
        problems.append(
            f"plan has {len(to_ecs)} {ALI_ROUTE_ENTRY} with nexthopId = the ECS's id "
            f"({ecs_id!r}); the lab needs exactly one"
        )
    else:
        route_cidr = _get(to_ecs[0], "inputs", "destinationCidrblock", problems)

    aws_routes = tuple(
        str((r.get("inputs") or {}).get("destinationCidrBlock"))
        for r in resources
        if r.get("type") == VPN_CONNECTION_ROUTE and (r.get("inputs") or {}).get("destinationCidrBlock")
    )

    tunnels = tuple(t for t in (_tunnel(vpn, n, problems, defaulted) for n in (1, 2)) if t) if vpn else ()
    verify_commands = tuple(
        str((r.get("inputs") or {}).get("create"))
        for r in resources
        if r.get("type") == REMOTE_COMMAND and "verify" in str((r.get("inputs") or {}).get("create", ""))
    )

    if isinstance(user_data, str) and not user_data.startswith("#cloud-config"):
        problems.append(f"{ECS_INSTANCE}: inputs.userData does not start with '#cloud-config'")
    if problems:
        raise PlanError(problems)

    inputs = LabInputs(
        user_data=user_data,
        private_ip=_addr(private_ip, "privateIp", problems),
        hostname=str(hostname),
        eip=_addr(eip_addr, "EIP ipAddress", problems),
        ali_vpc_cidr=_cidr(ali_cidr, "Alibaba VPC cidrBlock", problems),
        vswitch_cidr=_cidr(vsw_cidr, "vSwitch cidrBlock", problems),
        aws_vpc_cidr=_cidr(aws_cidr, "AWS VPC cidrBlock", problems),
        route_entry_cidr=_cidr(route_cidr, "route entry destinationCidrblock", problems),
        aws_routes_to_ali=aws_routes or (),
        tunnels=tunnels,
        defaulted=tuple(defaulted),
        verify_commands=verify_commands,
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
    if not ipaddress.IPv4Network(i.vswitch_cidr).subnet_of(ipaddress.IPv4Network(i.ali_vpc_cidr)):
        problems.append(f"vSwitch {i.vswitch_cidr} is not inside the Alibaba VPC {i.ali_vpc_cidr}")
    if net(i.route_entry_cidr) != net(i.aws_vpc_cidr):
        problems.append(f"route entry to the ECS is for {i.route_entry_cidr}, not the AWS VPC {i.aws_vpc_cidr}")
    if net(i.ali_vpc_cidr).overlaps(net(i.aws_vpc_cidr)):
        problems.append(f"Alibaba VPC {i.ali_vpc_cidr} overlaps the AWS VPC {i.aws_vpc_cidr}")
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


def link_env(user_data: str) -> dict[str, str]:
    """KEY=value pairs of the link.env the user-data writes (marks, VTIs, peers)."""
    import yaml

    doc = yaml.safe_load(user_data) or {}
    for f in doc.get("write_files") or []:
        if f.get("path") == paths.LINK_ENV_PATH:
            out = {}
            for ln in str(f.get("content", "")).splitlines():
                if "=" in ln and not ln.lstrip().startswith("#"):
                    k, v = ln.split("=", 1)
                    out[k.strip()] = shlex.split(v)[0] if v.strip() else ""
            return out
    raise ValueError(f"the user-data writes no {paths.LINK_ENV_PATH}")
