"""Stack settings: one function turns raw stack config into one validated, frozen object.

Each config key is declared once, as a field of `Settings`: its key, default, kind (Pulumi
type and parser) and description. `KEYS`, Pulumi.yaml's `config:` schema and README's
configuration table (`python -m tools.schema --write`) are generated from those fields;
the rules that read more than one key are in `_check_across`.

Everything here is pure (no Pulumi calls), so it is tested without an engine and runs
before any resource exists. Every problem is collected and reported at once, each naming
the config key, the bad value and what is allowed.
"""

# `setting(...)` is this module's dataclass field specifier (it returns `dataclasses.field`).
# ruff: noqa: RUF009

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Any

from core.crypto import PROFILES, CryptoProfile

NAMESPACE = "aws2aliyun-vpc"

LINK_LOCAL = ipaddress.ip_network("169.254.0.0/16")

# AWS refuses these tunnel inside CIDRs (API_VpnTunnelOptionsSpecification).
AWS_RESERVED_INSIDE_CIDRS = tuple(
    ipaddress.ip_network(c)
    for c in (
        "169.254.0.0/30",
        "169.254.1.0/30",
        "169.254.2.0/30",
        "169.254.3.0/30",
        "169.254.4.0/30",
        "169.254.5.0/30",
        "169.254.169.252/30",
    )
)

# AWS pre-shared key rules: 8-64 characters, letters, digits, '.' and '_', not starting with 0.
PSK_PATTERN = re.compile(r"^[A-Za-z1-9._][A-Za-z0-9._]{7,63}$")
PSK_RULE = "8-64 characters of letters, digits, '.' and '_', not starting with '0'"

# Debian/Ubuntu system images on Alibaba Cloud, looked up by name (newest wins at creation;
# later releases never re-image the disk because the instance ignores image drift).
IMAGE_ALIASES: dict[str, str] = {
    "debian_12": r"^debian_12_\d+_x64_20G_alibase_\d+\.vhd$",
    "ubuntu_22_04": r"^ubuntu_22_04_x64_20G_alibase_\d+\.vhd$",
    "ubuntu_24_04": r"^ubuntu_24_04_x64_20G_alibase_\d+\.vhd$",
}
# Aliases whose images read user-data in metadata hardened mode (cloud-init >= 23.2.2, the
# first with the AliYun session-token support): docs/provider-facts-day-two.md. The others
# (and any image id, whose cloud-init the program cannot know) get httpTokens=optional.
HARDENED_METADATA_IMAGES = frozenset({"ubuntu_22_04", "ubuntu_24_04"})
IMAGE_ID_PATTERN = re.compile(r"^(m-[0-9a-z]{8,}|[a-z0-9_]+\.vhd)$")
INSTANCE_TYPE_PATTERN = re.compile(r"^ecs\.[a-z0-9-]+\.[a-z0-9]+$")
AWS_VPC_ID_PATTERN = re.compile(r"^vpc-[0-9a-f]{8,17}$")
AWS_ROUTE_TABLE_ID_PATTERN = re.compile(r"^rtb-[0-9a-f]{8,17}$")
AWS_TRANSIT_GATEWAY_ID_PATTERN = re.compile(r"^tgw-[0-9a-f]{8,17}$")
AWS_TGW_ROUTE_TABLE_ID_PATTERN = re.compile(r"^tgw-rtb-[0-9a-f]{8,17}$")
# Alibaba ids: a prefix and 17-25 lowercase letters and digits (vpc-bp1opxu1zkhn00gzv26cc)
ALI_VPC_ID_PATTERN = re.compile(r"^vpc-[0-9a-z]{8,32}$")
ALI_VSWITCH_ID_PATTERN = re.compile(r"^vsw-[0-9a-z]{8,32}$")
ALI_ROUTE_TABLE_ID_PATTERN = re.compile(r"^vtb-[0-9a-z]{8,32}$")
ALI_ZONE_PATTERN = re.compile(r"^[a-z]{2}-[a-z0-9-]+$")

# Alibaba's ImportKeyPair accepts RSA, DSA and ECDSA public keys only (no ssh-ed25519):
# https://www.alibabacloud.com/help/en/ecs/developer-reference/api-ecs-2014-05-26-importkeypair
ALIBABA_SSH_KEY_TYPES = ("ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")
SSH_KEY_RULE = "ssh-rsa, ssh-dss or ecdsa-sha2-nistp256/384/521"
SSH_PUBLIC_KEY_PATTERN = re.compile(r"^[a-z0-9@.-]+ AAAA[A-Za-z0-9+/=]+( .*)?$")

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.IGNORECASE)
PSK_STORAGES = ("Standard", "SecretsManager")

MIN_DPD_TIMEOUT_S = 30
# Alibaba vSwitch masks run from /16 to /29 (Alibaba VPC docs); VPCs from /8 to /28.
ALI_VSWITCH_PREFIXES = range(16, 30)
AWS_PREFIXES = range(8, 33)  # a prefix behind a side: any length (a /32 host route included)
ALI_PREFIXES = range(8, 33)
ALI_VPC_PREFIXES = range(8, 29)
AWS_VPC_PREFIXES = range(16, 29)
# Provider limits this link's own resources must respect (docs/provider-facts-day-two.md, item 46).
AWS_STATIC_ROUTES_PER_VPN = 100  # static routes of one VPN connection (AWS Site-to-Site VPN quotas)
# routes a customer gateway may announce over BGP (same quotas; not adjustable): to a virtual
# private gateway, to a Transit Gateway
AWS_BGP_ROUTES_TO_VGW = 100
AWS_BGP_ROUTES_TO_TGW = 1000
ALI_ROUTE_ENTRIES_PER_TABLE = 200  # custom route entries of one route table (Alibaba VPC quotas)
ALI_RULES_PER_SECURITY_GROUP = 200  # rules of one security group (Alibaba ECS limits)
GATEWAY_COUNTS = (1, 2)  # one gateway, or a pair behind a HaVip
ROUTINGS = ("static", "bgp")
# BGP ASNs. A customer gateway takes 1 to 4,294,967,294 (bgp_asn up to 2,147,483,647,
# bgp_asn_extended above); a virtual private gateway's Amazon side a private ASN (AWS API
# CreateVpnGateway AmazonSideAsn; docs/provider-facts-day-two.md Q9, items 59-62).
ASN_MAX = 4_294_967_294
PRIVATE_ASNS = (range(64512, 65535), range(4_200_000_000, 4_294_967_295))
# refused for a customer gateway: by AWS (EC2 API CreateCustomerGateway), or by the RFCs
RESERVED_ASNS = {
    7224: "AWS, all regions",
    9059: "AWS, eu-west-1",
    10124: "AWS, ap-northeast-1",
    17943: "AWS, ap-southeast-1",
    23456: "AS_TRANS, RFC 6793",
    65535: "RFC 7300",
}
DEFAULT_BGP_ASN = 65000  # the customer gateway's ASN before BGP (its static-routing placeholder)
DEFAULT_AWS_ASN = 64512  # what AWS gives a virtual private gateway created without one
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


class SettingsError(ValueError):
    """Invalid stack settings: `problems` holds one line per problem, each naming its key."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("invalid stack settings:\n" + "\n".join(f"  - {p}" for p in self.problems))


class Secret(str):
    """A string that never shows itself in reprs, logs or tracebacks."""

    def __repr__(self) -> str:  # pragma: no cover - trivial
        return "Secret('[secret]')"


class _Invalid:
    """What a parser returns for a value it reported: rules across keys skip it."""

    def __repr__(self) -> str:  # pragma: no cover - trivial
        return "INVALID"


INVALID: Any = _Invalid()


class Problems:
    """Gathers problems while parsing, so every one is reported at once.

    Lines come out in the order of the keys' declarations (unknown keys and missing provider
    regions first); a problem found by a rule across keys comes right after the last key
    that rule reads (`after`).
    """

    def __init__(self, deferred: Callable[[Any], bool] | None = None) -> None:
        self._lines: list[tuple[float, str]] = []
        # A value known only later (a Pulumi Output passed to VpnLinkArgs): kinds that accept
        # one pass it through unchecked; the rules across keys skip it.
        self.deferred: Callable[[Any], bool] = deferred or (lambda value: False)

    def add(self, key: str, value: Any, allowed: str, *, after: str | None = None) -> None:
        """`key: <value> is invalid: <allowed>`; `key` may name a list item (`sshAllowedCidrs[0]`)."""
        name = key.split("[", 1)[0]
        spec = KEYS_BY_NAME.get(name)
        shown = "[secret]" if spec is not None and spec.secret and key == name else repr(value)
        place = _KEY_ORDER.get(name, len(_KEY_ORDER)) if after is None else _KEY_ORDER[after] + 0.5
        self._lines.append((place, f"{key}: {shown} is invalid: {allowed}"))

    def add_line(self, line: str) -> None:
        """A problem that is not about a project key's value (reported before those)."""
        self._lines.append((-1, line))

    @property
    def lines(self) -> list[str]:
        return [line for _, line in sorted(self._lines, key=lambda item: item[0])]


# --- Kinds of values: the Pulumi schema type of a key and the parser of its raw value ------
#
# A parser takes the raw value as a stack file holds it (a string, or a list/boolean/number
# for structured values), reports what is wrong with it and returns the settings value, or
# INVALID after reporting (a list that is not a list of strings counts as empty).


@dataclass(frozen=True)
class Kind:
    """A kind of value: its Pulumi schema type and its parser."""

    type: str  # Pulumi.yaml schema type: "string" | "integer" | "boolean" | "array"
    parse: Callable[[Problems, str, Any], Any]
    # May the value be known only later (an id or a secret from another resource's Output)?
    # Kinds that decide which resources exist, or that rules compare, may not.
    deferrable: bool = False
    # For an array: may its items be (a list of the caller's resource ids)?
    items_deferrable: bool = False


def _as_str(raw: Any) -> str:
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw).strip()


def _network(p: Problems, key: str, raw: Any, prefixes: range | None = None) -> Any:
    text = _as_str(raw)
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError:
        hint = ""
        try:
            loose = ipaddress.ip_network(text, strict=False)
            hint = f" (did you mean {loose}?)"
        except ValueError:
            pass
        p.add(key, raw, f"expected an IPv4 CIDR such as 10.0.0.0/16 with no host bits set{hint}")
        return INVALID
    if net.version != 4:
        p.add(key, raw, "expected an IPv4 CIDR")
        return INVALID
    if prefixes is not None and net.prefixlen not in prefixes:
        p.add(key, raw, f"prefix length must be /{prefixes.start} to /{prefixes.stop - 1}")
        return INVALID
    return net


def _strings(p: Problems, key: str, raw: Any) -> list[str] | None:
    """A list of strings from a list, a JSON list or a comma-separated string; None if malformed."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        # `pulumi config set --path` or a JSON string both land here.
        try:
            raw = json.loads(raw)
        except ValueError:
            raw = [part.strip() for part in raw.split(",") if part.strip()]
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        p.add(key, raw, "expected a list of strings")
        return None
    return [v.strip() for v in raw]


def cidr(prefixes: range) -> Kind:
    """An IPv4 network with no host bits set and a prefix length in `prefixes`."""
    return Kind("string", lambda p, key, raw: _network(p, key, raw, prefixes))


def cidrs(prefixes: range) -> Kind:
    """A list of IPv4 networks as `cidr(prefixes)` (empty: the single-prefix key applies)."""

    def parse(p: Problems, key: str, raw: Any) -> Any:
        items = _strings(p, key, raw)
        if items is None:
            return INVALID
        nets = [_network(p, f"{key}[{i}]", item, prefixes) for i, item in enumerate(items)]
        return INVALID if any(n is INVALID for n in nets) else tuple(nets)

    return Kind("array", parse)


def _inside_cidr(p: Problems, key: str, raw: Any) -> Any:
    if _as_str(raw) == "":
        return None
    net = _network(p, key, raw)
    if net is INVALID:
        return INVALID
    if net.prefixlen != 30:
        p.add(key, raw, "a tunnel inside CIDR must be a /30")
        return INVALID
    if not net.subnet_of(LINK_LOCAL):
        p.add(key, raw, "a tunnel inside CIDR must be inside 169.254.0.0/16")
        return INVALID
    if net in AWS_RESERVED_INSIDE_CIDRS:
        p.add(key, raw, f"AWS reserves {', '.join(str(r) for r in AWS_RESERVED_INSIDE_CIDRS)}")
        return INVALID
    return net


INSIDE_CIDR = Kind("string", _inside_cidr)
"""A tunnel inside /30 in 169.254.0.0/16 that AWS accepts; None when empty."""


def _psk(p: Problems, key: str, raw: Any) -> Any:
    if p.deferred(raw):
        return raw
    text = _as_str(raw)
    if text == "":
        return None
    if not PSK_PATTERN.match(text):
        p.add(key, raw, f"AWS accepts {PSK_RULE}")
        return INVALID
    return Secret(text)


PRESHARED_KEY = Kind("string", _psk, deferrable=True)
"""A tunnel PSK to AWS's rules, as a `Secret`; None when empty."""


def choice(options: Mapping[str, Any] | Collection[str]) -> Kind:
    """One of `options` (the name; or, for a mapping, the value it names)."""

    def parse(p: Problems, key: str, raw: Any) -> Any:
        name = _as_str(raw)
        if name not in options:
            p.add(key, raw, f"expected one of {', '.join(options)}")
            return INVALID
        return options[name] if isinstance(options, Mapping) else name

    return Kind("string", parse)


def text(
    valid: re.Pattern[str] | Callable[[str], bool],
    rule: str,
    *,
    optional: bool = False,
    show_raw: bool = False,
    deferrable: bool = False,
) -> Kind:
    """A string that `valid` accepts (stripped); empty is None when `optional`. Problems show the
    stripped text, or the raw value with `show_raw`. A `deferrable` one (a resource id) may be
    an Output of another resource, passed through."""
    accepts = valid.match if isinstance(valid, re.Pattern) else valid

    def parse(p: Problems, key: str, raw: Any) -> Any:
        if deferrable and p.deferred(raw):
            return raw
        value = _as_str(raw)
        if optional and value == "":
            return None
        if not accepts(value):
            p.add(key, raw if show_raw else value, rule)
            return INVALID
        return value

    return Kind("string", parse, deferrable)


def whole(valid: Callable[[int], bool], rule: str) -> Kind:
    """A whole number (or its digits) that `valid` accepts; problems show the number."""

    def parse(p: Problems, key: str, raw: Any) -> Any:
        number: int | None = None
        if isinstance(raw, int) and not isinstance(raw, bool):
            number = raw
        elif not isinstance(raw, bool) and re.fullmatch(r"[0-9]+", _as_str(raw)):
            number = int(_as_str(raw))
        if number is None:
            p.add(key, raw, "expected a whole number")
            return INVALID
        if not valid(number):
            p.add(key, number, rule)
            return INVALID
        return number

    return Kind("integer", parse)


def _flag(p: Problems, key: str, raw: Any) -> Any:
    if isinstance(raw, bool):
        return raw
    value = _as_str(raw).lower()
    if value in ("true", "false"):
        return value == "true"
    p.add(key, raw, "expected true or false")
    return INVALID


FLAG = Kind("boolean", _flag)
"""true or false (or the strings)."""


def _ssh_public_key(p: Problems, key: str, raw: Any) -> Any:
    value = _as_str(raw)
    if value == "":
        return None
    key_type = value.split(" ", 1)[0]
    if not SSH_PUBLIC_KEY_PATTERN.match(value):
        p.add(key, value[:40] + "...", f"expected an OpenSSH public key line ({SSH_KEY_RULE}, then the base64 key)")
        return INVALID
    if key_type not in ALIBABA_SSH_KEY_TYPES:
        p.add(
            key,
            value[:40] + "...",
            f"Alibaba's ImportKeyPair accepts only {SSH_KEY_RULE} keys; {key_type} is refused there",
        )
        return INVALID
    return value


SSH_PUBLIC_KEY = Kind("string", _ssh_public_key)
"""An OpenSSH public key line of a type Alibaba imports; None when empty."""


def _ssh_private_key(p: Problems, key: str, raw: Any) -> Any:
    if p.deferred(raw):
        return raw
    value = _as_str(raw)
    if value == "":
        return None
    if "PRIVATE KEY" not in value:
        p.add(key, "", "expected a PEM/OpenSSH private key")
        return INVALID
    return Secret(value)


SSH_PRIVATE_KEY = Kind("string", _ssh_private_key, deferrable=True)
"""A PEM/OpenSSH private key, as a `Secret`; None when empty."""


def _ssh_cidrs(p: Problems, key: str, raw: Any) -> Any:
    items = _strings(p, key, raw)
    if items is None:
        return ()
    nets: list[IPv4Network] = []
    for i, item in enumerate(items):
        net = _network(p, f"{key}[{i}]", item)
        if net is INVALID:
            continue
        if net.prefixlen == 0:
            p.add(
                f"{key}[{i}]",
                item,
                "SSH must not be open to the whole internet; list your own addresses (e.g. 203.0.113.7/32)",
            )
            continue
        nets.append(net)
    return tuple(nets) if len(nets) == len(items) else INVALID


SSH_CIDRS = Kind("array", _ssh_cidrs)
"""A list of IPv4 CIDRs, none of them /0."""


def ids(pattern: re.Pattern[str], rule: str) -> Kind:
    """A list of resource ids, each matching `pattern` (the list is kept whole for the rules)."""

    def parse(p: Problems, key: str, raw: Any) -> Any:
        if isinstance(raw, list | tuple) and any(p.deferred(item) for item in raw):
            # ids of the caller's own resources (Outputs): the list's length is what counts here
            _check_ids(p, key, [(i, item) for i, item in enumerate(raw) if not p.deferred(item)], pattern, rule)
            return tuple(raw)
        items = _strings(p, key, raw)
        if items is None:
            return ()
        _check_ids(p, key, list(enumerate(items)), pattern, rule)
        return tuple(items)

    return Kind("array", parse, items_deferrable=True)


def _check_ids(p: Problems, key: str, items: list[tuple[int, Any]], pattern: re.Pattern[str], rule: str) -> None:
    for i, item in items:
        if not isinstance(item, str) or not pattern.match(item.strip()):
            p.add(f"{key}[{i}]", item, rule)


# --- The declaration of every key ------------------------------------------------------------

_SETTING = "setting"
_PROVIDER_KEY = "provider_key"


@dataclass(frozen=True)
class KeySpec:
    """One config key of the project, as Pulumi.yaml and README show it and `load_settings` reads it."""

    name: str  # camelCase, in the project's namespace
    type: str  # Pulumi.yaml schema type
    default: Any  # as a stack file would hold it
    description: str
    parse: Callable[[Problems, str, Any], Any] = field(repr=False, compare=False)
    secret: bool = False
    attr: str = ""  # the `Settings` field it fills
    deferrable: bool = False  # may be an Output of another resource (VpnLinkArgs)
    items_deferrable: bool = False  # an array whose items may be

    @property
    def arg(self) -> str:
        """Its name among VpnLinkArgs (snake_case; the schema shows `name`)."""
        return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", self.name).lower()


def setting(name: str, default: Any, kind: Kind, description: str, *, secret: bool = False) -> Any:
    """A `Settings` field read from config key `name` (`default` when unset)."""
    spec = KeySpec(
        name,
        kind.type,
        default,
        description,
        kind.parse,
        secret,
        deferrable=kind.deferrable,
        items_deferrable=kind.items_deferrable,
    )
    return field(metadata={_SETTING: spec})


def _profile_text(name: str) -> str:
    p = PROFILES[name]
    return f"`{p.name}` (IKEv{p.ike_version}: IKE {p.ike_proposals()}, ESP {p.esp_proposals()} with PFS)"


def _code_list(values: Collection[Any], last: str = "or") -> str:
    shown = [f"`{v}`" for v in values]
    return ", ".join(shown[:-1]) + f" {last} " + shown[-1] if len(shown) > 1 else "".join(shown)


_RESERVED_INSIDE = ", ".join(str(r) for r in AWS_RESERVED_INSIDE_CIDRS)
_ASN_RULE = f"expected an ASN from 1 to {ASN_MAX:,}, not one of " + ", ".join(
    f"{n} ({why})" for n, why in RESERVED_ASNS.items()
)
_PRIVATE_ASN_RULE = "expected a private ASN: " + " or ".join(f"{r.start}-{r.stop - 1}" for r in PRIVATE_ASNS)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The validated settings of one stack. Build it with `load_settings`.

    Every field read from a project config key declares that key here, once; the order of
    the fields is the order of Pulumi.yaml's schema and README's table.
    """

    aws_vpc_cidr: IPv4Network = setting(
        "awsVpcCidr",
        "10.10.0.0/16",
        cidr(AWS_VPC_PREFIXES),
        f"CIDR of the AWS VPC, /{AWS_VPC_PREFIXES.start} to /{AWS_VPC_PREFIXES.stop - 1}: the one created, "
        "or the existing one's when `awsVpcId` is set. Not in 169.254.0.0/16. The single-prefix form of "
        "`awsCidrs`.",
    )
    aws_cidrs: tuple[IPv4Network, ...] = setting(
        "awsCidrs",
        [],
        cidrs(AWS_PREFIXES),
        "The prefixes reachable on the AWS side, when there are several: the existing VPC's CIDRs "
        "(`awsVpcId`) or what lies behind the Transit Gateway (`awsTransitGatewayId`, required there). Each "
        f"gets a route over both tunnels on the gateway and in every Alibaba route table; at most "
        f"{ALI_ROUTE_ENTRIES_PER_TABLE}. Empty: `awsVpcCidr` alone.",
    )
    ali_vpc_cidr: IPv4Network = setting(
        "aliVpcCidr",
        "172.16.0.0/16",
        cidr(ALI_VPC_PREFIXES),
        f"CIDR of the Alibaba Cloud VPC, /{ALI_VPC_PREFIXES.start} to /{ALI_VPC_PREFIXES.stop - 1}; "
        "must not overlap `awsVpcCidr` nor 169.254.0.0/16. The single-prefix form of `aliCidrs`.",
    )
    ali_cidrs: tuple[IPv4Network, ...] = setting(
        "aliCidrs",
        [],
        cidrs(ALI_PREFIXES),
        "The prefixes reachable on the Alibaba side, when there are several (an existing VPC's CIDR and its "
        "secondary CIDRs, `aliVpcId`): each is a static route of the VPN connection (or of the Transit Gateway "
        f"route table) and is admitted by the security group, at most {AWS_STATIC_ROUTES_PER_VPN}. None may "
        "overlap an AWS prefix. Empty: `aliVpcCidr` alone.",
    )
    ali_vswitch_cidr: IPv4Network = setting(
        "aliVswitchCidr",
        "172.16.1.0/24",
        cidr(ALI_VSWITCH_PREFIXES),
        f"CIDR of the vSwitch holding the gateway ECS: inside `aliVpcCidr`, "
        f"/{ALI_VSWITCH_PREFIXES.start} to /{ALI_VSWITCH_PREFIXES.stop - 1}. "
        "The ECS takes host .10 (the last free host of a smaller vSwitch).",
    )
    ali_zone_id: str | None = setting(
        "aliZoneId",
        "",
        text(ALI_ZONE_PATTERN, "expected an Alibaba zone id such as cn-hangzhou-i, or empty", optional=True),
        "Alibaba zone of the vSwitch and the gateway ECS, e.g. cn-hangzhou-i; empty picks the first zone "
        "offering `ecsInstanceType` at the first deploy and keeps it. Required with `deletionProtection`.",
    )
    ali_vpc_id: str | None = setting(
        "aliVpcId",
        "",
        text(
            ALI_VPC_ID_PATTERN,
            "expected an Alibaba VPC id such as vpc-bp1opxu1zkhn00gzv26cc, or empty",
            optional=True,
            deferrable=True,
        ),
        "Existing Alibaba VPC to attach instead of creating one: the gateway goes into `aliVswitchId`, or into "
        "a new vSwitch `aliVswitchCidr` of it; routes to AWS go into `aliRouteTableIds`.",
    )
    ali_vswitch_id: str | None = setting(
        "aliVswitchId",
        "",
        text(
            ALI_VSWITCH_ID_PATTERN,
            "expected an Alibaba vSwitch id such as vsw-bp1s5fnvk4gn2tws03624, or empty",
            optional=True,
            deferrable=True,
        ),
        "Existing vSwitch of `aliVpcId` for the gateway ECS (its zone is the vSwitch's; Alibaba assigns the "
        "address); instead of `aliVswitchCidr`.",
    )
    ali_route_table_ids: tuple[str, ...] = setting(
        "aliRouteTableIds",
        [],
        ids(ALI_ROUTE_TABLE_ID_PATTERN, "expected a route table id such as vtb-bp145q7glnuzdvzu2ctof"),
        "Route tables of `aliVpcId` that get one route entry per AWS prefix to the gateway; empty: the VPC's "
        "system route table. Only with `aliVpcId`.",
    )
    aws_vpc_id: str | None = setting(
        "awsVpcId",
        "",
        text(
            AWS_VPC_ID_PATTERN,
            "expected an AWS VPC id such as vpc-0123456789abcdef0, or empty",
            optional=True,
            deferrable=True,
        ),
        "Existing AWS VPC to attach instead of creating one (needs `awsRouteTableIds`).",
    )

    aws_route_table_ids: tuple[str, ...] = setting(
        "awsRouteTableIds",
        [],
        ids(AWS_ROUTE_TABLE_ID_PATTERN, "expected a route table id such as rtb-0123456789abcdef0"),
        "Route tables of the existing AWS VPC (`awsVpcId`) that learn the Alibaba prefixes by route "
        "propagation; at least one with `awsVpcId`, none without.",
    )

    aws_transit_gateway_id: str | None = setting(
        "awsTransitGatewayId",
        "",
        text(
            AWS_TRANSIT_GATEWAY_ID_PATTERN,
            "expected a Transit Gateway id such as tgw-0123456789abcdef0, or empty",
            optional=True,
            deferrable=True,
        ),
        "Existing Transit Gateway to attach the VPN connection to, instead of a virtual private gateway: no AWS "
        "VPC is created or attached (`awsVpcId`, `awsRouteTableIds` and `awsVpcCidr` do not apply); "
        "`awsCidrs` names what lies behind it. The Alibaba prefixes become static routes to the VPN attachment "
        "in `awsTransitGatewayRouteTableId`.",
    )

    aws_transit_gateway_route_table_id: str | None = setting(
        "awsTransitGatewayRouteTableId",
        "",
        text(
            AWS_TGW_ROUTE_TABLE_ID_PATTERN,
            "expected a Transit Gateway route table id such as tgw-rtb-0123456789abcdef0, or empty",
            optional=True,
            deferrable=True,
        ),
        "Transit Gateway route table that gets the static routes to the Alibaba prefixes; empty: the Transit "
        "Gateway's default association route table. Only with `awsTransitGatewayId`.",
    )
    tunnel1_inside_cidr: IPv4Network | None = setting(
        "tunnel1InsideCidr",
        "",
        INSIDE_CIDR,
        f"Inside /30 of tunnel 1, in 169.254.0.0/16 but none of AWS's reserved {_RESERVED_INSIDE}; "
        "empty lets AWS pick.",
    )
    tunnel2_inside_cidr: IPv4Network | None = setting(
        "tunnel2InsideCidr",
        "",
        INSIDE_CIDR,
        "Inside /30 of tunnel 2, as `tunnel1InsideCidr` and different from it; empty lets AWS pick.",
    )
    tunnel1_preshared_key: Secret | None = setting(
        "tunnel1PresharedKey",
        "",
        PRESHARED_KEY,
        f"PSK of tunnel 1, a secret (set it with `--secret`): {PSK_RULE}; empty generates one.",
        secret=True,
    )
    tunnel2_preshared_key: Secret | None = setting(
        "tunnel2PresharedKey",
        "",
        PRESHARED_KEY,
        f"PSK of tunnel 2, a secret (set it with `--secret`): {PSK_RULE}; empty generates one.",
        secret=True,
    )
    crypto: CryptoProfile = setting(
        "cryptoProfile",
        "modern",
        choice(PROFILES),
        "Crypto profile of both ends (AWS's tunnel options and strongSwan's proposals): "
        + " or ".join(_profile_text(name) for name in PROFILES)
        + "; `legacy` (seed 000's recipe) only where IKEv1 is needed.",
    )
    dpd_timeout_s: int = setting(
        "dpdTimeoutSeconds",
        30,
        whole(lambda n: n >= MIN_DPD_TIMEOUT_S, f"AWS requires at least {MIN_DPD_TIMEOUT_S} seconds"),
        f"AWS-side dead peer detection timeout in seconds, at least {MIN_DPD_TIMEOUT_S}.",
    )
    ecs_instance_type: str = setting(
        "ecsInstanceType",
        "ecs.t6-c1m2.large",
        text(INSTANCE_TYPE_PATTERN, "expected an ECS instance type such as ecs.g7.large", show_raw=True),
        "Instance type of the Alibaba gateway ECS.",
    )
    ecs_image: str = setting(
        "ecsImage",
        "debian_12",
        text(
            lambda image: image in IMAGE_ALIASES or bool(IMAGE_ID_PATTERN.match(image)),
            f"expected one of {', '.join(IMAGE_ALIASES)} or an Alibaba image id (m-... or *.vhd)",
            show_raw=True,
        ),
        f"Gateway image: {_code_list(IMAGE_ALIASES)} (the newest release at creation; a newer one never touches "
        "the gateway), or an Alibaba image id (m-... or *.vhd; a changed id replaces the gateway). "
        f"Metadata hardened mode only on {_code_list(sorted(HARDENED_METADATA_IMAGES), 'and')}, "
        "whose cloud-init supports it.",
    )
    ssh_public_key: str | None = setting(
        "sshPublicKey",
        "",
        SSH_PUBLIC_KEY,
        f"OpenSSH public key installed as the gateway's key pair: {SSH_KEY_RULE} (Alibaba refuses ssh-ed25519); "
        "a new key is a new key pair, attached to the running gateway with a reboot. Empty creates none (unless "
        "`verify` generates one).",
    )
    ssh_private_key: Secret | None = setting(
        "sshPrivateKey",
        "",
        SSH_PRIVATE_KEY,
        "Private key matching `sshPublicKey`, used by `verify`; a secret (set it with `--secret`). "
        "Empty with `verify` generates a key pair.",
        secret=True,
    )
    ssh_allowed_cidrs: tuple[IPv4Network, ...] = setting(
        "sshAllowedCidrs",
        [],
        SSH_CIDRS,
        "CIDRs allowed to SSH to the gateway; empty closes SSH. /0 is refused.",
    )
    verify: bool = setting(
        "verify",
        False,
        FLAG,
        "After deploy, SSH to the gateway and fail `pulumi up` unless both tunnels are up (needs `sshAllowedCidrs`).",
    )
    tunnel_log_retention_days: int = setting(
        "tunnelLogRetentionDays",
        30,
        whole(lambda n: n in LOG_RETENTION_DAYS, f"CloudWatch accepts {', '.join(map(str, LOG_RETENTION_DAYS))}"),
        "Retention in days of the CloudWatch log group holding the tunnels' IKE logs: one of CloudWatch's "
        f"periods ({', '.join(map(str, LOG_RETENTION_DAYS))}).",
    )
    preshared_key_storage: str = setting(
        "presharedKeyStorage",
        "Standard",
        choice(PSK_STORAGES),
        f"Where AWS keeps the tunnel PSKs: {_code_list(PSK_STORAGES)}.",
    )
    alarm_email: str | None = setting(
        "alarmEmail",
        "",
        text(EMAIL_PATTERN, "expected an e-mail address, or empty", optional=True),
        "E-mail subscribed to the tunnel-state alarms' SNS topic (confirm the e-mail AWS sends); "
        "empty subscribes none.",
    )
    deletion_protection: bool = setting(
        "deletionProtection",
        False,
        FLAG,
        "Protect the EIP (the address AWS's customer gateway is bound to) from deletion; the gateway ECS is "
        "replaced by design and stays deletable. Requires `aliZoneId`.",
    )
    gateway_count: int = setting(
        "gatewayCount",
        1,
        whole(lambda n: n in GATEWAY_COUNTS, "expected 1 (one gateway) or 2 (a gateway pair behind a HaVip)"),
        "Gateway ECS instances: 1, or 2 for a pair behind a HaVip (keepalived, unicast VRRP; the active one "
        "holds both tunnels, the standby takes over when it fails): no single point of failure, at twice the "
        "instance cost. A pair needs the link's own vSwitch (`aliVswitchCidr`, not `aliVswitchId`): its three "
        "addresses are fixed.",
    )
    routing: str = setting(
        "routing",
        "static",
        choice(ROUTINGS),
        "How each side learns the other's prefixes: `static` (the VPN connection's static routes, the gateway's "
        "routes to `awsCidrs`), or `bgp` (a BGP session over each tunnel: FRR on the gateway, a dynamic VPN "
        "connection). Changing it replaces the VPN connection (AWS: `static_routes_only` cannot change).",
    )
    bgp_asn: int = setting(
        "bgpAsn",
        DEFAULT_BGP_ASN,
        whole(lambda n: 1 <= n <= ASN_MAX and n not in RESERVED_ASNS, _ASN_RULE),
        "The gateway's BGP ASN, the customer gateway's: a private one by default; an ASN of your own works too. "
        "Must differ from `awsAsn`. A new one replaces the customer gateway.",
    )
    aws_asn: int = setting(
        "awsAsn",
        DEFAULT_AWS_ASN,
        whole(lambda n: any(n in r for r in PRIVATE_ASNS), _PRIVATE_ASN_RULE),
        "The Amazon side's BGP ASN: the virtual private gateway this link creates gets it (a new one replaces that "
        "gateway and the VPN connection); with `awsTransitGatewayId`, that Transit Gateway's ASN.",
    )
    aws_region: str = field(default="", metadata={_PROVIDER_KEY: "aws:region"})
    ali_region: str = field(default="", metadata={_PROVIDER_KEY: "alicloud:region"})
    notes: tuple[str, ...] = ()

    @property
    def tunnel_inside_cidrs(self) -> tuple[IPv4Network | None, IPv4Network | None]:
        return (self.tunnel1_inside_cidr, self.tunnel2_inside_cidr)

    @property
    def tunnel_preshared_keys(self) -> tuple[Secret | None, Secret | None]:
        return (self.tunnel1_preshared_key, self.tunnel2_preshared_key)

    @property
    def aws_prefixes(self) -> tuple[IPv4Network, ...]:
        """Everything reachable on the AWS side: `awsCidrs`, or `awsVpcCidr` alone."""
        return self.aws_cidrs or (self.aws_vpc_cidr,)

    @property
    def ali_prefixes(self) -> tuple[IPv4Network, ...]:
        """Everything reachable on the Alibaba side: `aliCidrs`, or `aliVpcCidr` alone."""
        return self.ali_cidrs or (self.ali_vpc_cidr,)

    @property
    def uses_transit_gateway(self) -> bool:
        return self.aws_transit_gateway_id is not None

    @property
    def creates_aws_vpc(self) -> bool:
        return self.aws_vpc_id is None and not self.uses_transit_gateway

    @property
    def creates_ali_vpc(self) -> bool:
        return self.ali_vpc_id is None

    @property
    def creates_vswitch(self) -> bool:
        return self.ali_vswitch_id is None

    @property
    def ecs_private_ip(self) -> ipaddress.IPv4Address | None:
        """The gateway's fixed address in a vSwitch this link creates; None in an existing
        vSwitch, where Alibaba assigns a free one (host .10 may be a workload's)."""
        return gateway_private_ip(self.ali_vswitch_cidr) if self.creates_vswitch else None

    @property
    def is_pair(self) -> bool:
        """A gateway pair behind a HaVip (gatewayCount 2)."""
        return self.gateway_count == 2

    @property
    def gateway_private_ips(self) -> tuple[ipaddress.IPv4Address | None, ...]:
        """Each gateway's fixed private address (None: Alibaba assigns it, one gateway only)."""
        if self.is_pair:
            return pair_addresses(self.ali_vswitch_cidr)[:2]
        return (self.ecs_private_ip,)

    @property
    def havip_address(self) -> ipaddress.IPv4Address | None:
        """The pair's HaVip: the address the EIP and the route entries point at."""
        return pair_addresses(self.ali_vswitch_cidr)[2] if self.is_pair else None

    @property
    def aws_subnet_cidr(self) -> IPv4Network:
        """The subnet created in a new AWS VPC: its first /24 (or the whole VPC when smaller)."""
        if self.aws_vpc_cidr.prefixlen >= 24:
            return self.aws_vpc_cidr
        return next(self.aws_vpc_cidr.subnets(new_prefix=24))

    @property
    def image_is_alias(self) -> bool:
        return self.ecs_image in IMAGE_ALIASES


KEYS: tuple[KeySpec, ...] = tuple(
    dataclasses.replace(f.metadata[_SETTING], attr=f.name)
    for f in dataclasses.fields(Settings)
    if _SETTING in f.metadata
)
KEYS_BY_NAME = {k.name: k for k in KEYS}
_KEY_ORDER = {k.name: i for i, k in enumerate(KEYS)}
PROVIDER_KEYS = {f.metadata[_PROVIDER_KEY]: f.name for f in dataclasses.fields(Settings) if _PROVIDER_KEY in f.metadata}
REQUIRED_PROVIDER_KEYS = tuple(PROVIDER_KEYS)


def gateway_private_ip(vswitch: IPv4Network) -> ipaddress.IPv4Address:
    """The gateway ECS's fixed private address: host 10 of the vSwitch, or the last host
    Alibaba leaves free in a small one (it reserves the first and the last three)."""
    offset = min(10, vswitch.num_addresses - 4)
    return vswitch.network_address + offset


def pair_addresses(vswitch: IPv4Network) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address, ipaddress.IPv4Address]:
    """A gateway pair's addresses: gateway 1, gateway 2 and the HaVip, hosts 10, 11 and 12 of the
    vSwitch (gateway 1 where a single gateway sits), or the last three hosts Alibaba leaves free
    in a small one."""
    top = vswitch.network_address + min(12, vswitch.num_addresses - 4)
    return (top - 2, top - 1, top)


def _nets(*values: Any) -> bool:
    return all(isinstance(v, IPv4Network) for v in values)


def _prefixes(v: Mapping[str, Any], list_key: str, single_key: str) -> list[tuple[str, Any]]:
    """One side's prefixes with the key each comes from: `awsCidrs[1]`, or `awsVpcCidr`."""
    listed = v[list_key]
    if listed is INVALID:
        return []
    if listed:
        return [(f"{list_key}[{i}]", net) for i, net in enumerate(listed)]
    return [(single_key, v[single_key])]


def _check_networks(v: Mapping[str, Any], p: Problems, given: Collection[str]) -> None:
    """Prefixes, VPCs, vSwitch, route tables and the Transit Gateway."""
    tgw = v["awsTransitGatewayId"] is not None
    new_aws_vpc = v["awsVpcId"] is None and not tgw
    new_ali_vpc = v["aliVpcId"] is None
    networks = "awsTransitGatewayRouteTableId"  # these rules read every network key: report after it

    for list_key, single_key in (("awsCidrs", "awsVpcCidr"), ("aliCidrs", "aliVpcCidr")):
        if v[list_key] and list_key in given and single_key in given:
            p.add(
                list_key,
                [str(n) for n in v[list_key]],
                f"set either {single_key} (one prefix) or {list_key} (several), not both",
                after=networks,
            )
    if tgw and "awsVpcCidr" in given:
        p.add(
            "awsVpcCidr",
            str(v["awsVpcCidr"]),
            "does not apply with awsTransitGatewayId (no VPC is attached); list what lies behind it in awsCidrs",
            after=networks,
        )
    if tgw and v["awsCidrs"] == ():
        p.add(
            "awsCidrs",
            [],
            "must list the prefixes behind the Transit Gateway (awsTransitGatewayId): "
            "the Alibaba side routes exactly these to AWS",
            after=networks,
        )
    aws, ali = _prefixes(v, "awsCidrs", "awsVpcCidr"), _prefixes(v, "aliCidrs", "aliVpcCidr")
    if new_aws_vpc and len(aws) > 1:
        p.add(
            "awsCidrs",
            [str(n) for _, n in aws],
            "a new AWS VPC has one CIDR (awsVpcCidr); several prefixes need an existing VPC (awsVpcId) "
            "or a Transit Gateway (awsTransitGatewayId)",
            after=networks,
        )
    if new_ali_vpc and len(ali) > 1:
        p.add(
            "aliCidrs",
            [str(n) for _, n in ali],
            "a new Alibaba VPC has one CIDR (aliVpcCidr); several prefixes need an existing VPC (aliVpcId)",
            after=networks,
        )

    for side in (aws, ali):
        for i, (key, net) in enumerate(side):
            if not _nets(net):
                continue
            if net.overlaps(LINK_LOCAL):
                p.add(
                    key, str(net), "must not be inside 169.254.0.0/16 (link-local, used by the tunnels)", after=networks
                )
            for other_key, other in side[:i]:
                if _nets(other) and net.overlaps(other):
                    p.add(key, str(net), f"overlaps {other_key} {other}: list each prefix once", after=networks)
    for ali_key, ali_net in ali:
        for aws_key, aws_net in aws:
            if _nets(ali_net, aws_net) and ali_net.overlaps(aws_net):
                p.add(
                    ali_key,
                    str(ali_net),
                    f"must not overlap {aws_key} {aws_net}: both sides would claim the same addresses",
                    after=networks,
                )

    # The gateway's vSwitch: a new one in the new VPC, or a new or existing one in an existing VPC.
    vswitch, vswitch_id = v["aliVswitchCidr"], v["aliVswitchId"]
    if vswitch_id is not None:
        if new_ali_vpc:
            p.add(
                "aliVswitchId",
                vswitch_id,
                "only applies with aliVpcId (a new VPC gets its own vSwitch)",
                after=networks,
            )
        if "aliVswitchCidr" in given:
            p.add(
                "aliVswitchCidr",
                str(vswitch),
                "set either aliVswitchId (an existing vSwitch) or aliVswitchCidr (a new one), not both",
                after=networks,
            )
    elif new_ali_vpc:
        ali_vpc = v["aliVpcCidr"]
        if _nets(vswitch, ali_vpc) and not vswitch.subnet_of(ali_vpc):
            p.add("aliVswitchCidr", str(vswitch), f"must be inside aliVpcCidr {ali_vpc}", after=networks)
    elif _nets(vswitch):
        for aws_key, aws_net in aws:
            if _nets(aws_net) and vswitch.overlaps(aws_net):
                p.add("aliVswitchCidr", str(vswitch), f"must not overlap {aws_key} {aws_net}", after=networks)
    if new_ali_vpc and v["aliRouteTableIds"]:
        p.add(
            "aliRouteTableIds",
            list(v["aliRouteTableIds"]),
            "only applies with aliVpcId (a new VPC routes through its system route table)",
            after=networks,
        )

    # The AWS end: a virtual private gateway in a new or existing VPC, or a Transit Gateway.
    vpc_id, route_tables = v["awsVpcId"], v["awsRouteTableIds"]
    if tgw:
        for key in ("awsVpcId", "awsRouteTableIds"):
            if v[key]:
                p.add(
                    key,
                    _shown(v[key]),
                    "does not apply with awsTransitGatewayId: the Transit Gateway routes to its own attachments "
                    "(awsTransitGatewayRouteTableId), no virtual private gateway is attached to a VPC",
                    after=networks,
                )
    else:
        if vpc_id is None and route_tables:
            p.add(
                "awsRouteTableIds",
                list(route_tables),
                "only applies with awsVpcId (a new VPC gets its own route table)",
                after=networks,
            )
        if vpc_id is not None and route_tables == ():
            p.add(
                "awsRouteTableIds",
                [],
                "must list at least one route table of awsVpcId, or traffic to Alibaba has no route",
                after=networks,
            )
        if v["awsTransitGatewayRouteTableId"] is not None:
            p.add(
                "awsTransitGatewayRouteTableId",
                v["awsTransitGatewayRouteTableId"],
                "only applies with awsTransitGatewayId",
                after=networks,
            )

    # The providers' limits, for this link's own entries.
    if v["routing"] == "bgp":
        limit = AWS_BGP_ROUTES_TO_TGW if tgw else AWS_BGP_ROUTES_TO_VGW
        # while one tunnel is down the gateway announces each prefix's two halves as well
        # (userdata/frr.py): three routes per prefix
        announced = sum(3 if ipaddress.ip_network(net).prefixlen < 32 else 1 for _, net in ali)
        if announced > limit:
            p.add(
                "aliCidrs",
                f"{len(ali)} prefixes ({announced} routes while a tunnel is down: each prefix and its halves)",
                f"a customer gateway may announce at most {limit} routes over BGP to a "
                f"{'Transit Gateway' if tgw else 'virtual private gateway'} (AWS Site-to-Site VPN quotas)",
                after=networks,
            )
    elif len(ali) > AWS_STATIC_ROUTES_PER_VPN and not tgw:
        p.add(
            "aliCidrs",
            f"{len(ali)} prefixes",
            f"a VPN connection holds at most {AWS_STATIC_ROUTES_PER_VPN} static routes (AWS Site-to-Site VPN quotas)",
            after=networks,
        )
    if len(aws) > ALI_ROUTE_ENTRIES_PER_TABLE:
        p.add(
            "awsCidrs",
            f"{len(aws)} prefixes",
            f"an Alibaba route table holds at most {ALI_ROUTE_ENTRIES_PER_TABLE} custom route entries",
            after=networks,
        )


def _check_across(v: Mapping[str, Any], p: Problems, given: Collection[str] = ()) -> None:
    """The rules that read more than one key (or a key beyond its own kind). `v` maps each key
    to its parsed value: INVALID when its own parse failed, None when an optional key is unset;
    `given` names the keys set explicitly (not defaulted)."""
    _check_networks(v, p, given)

    inside1, inside2 = v["tunnel1InsideCidr"], v["tunnel2InsideCidr"]
    if _nets(inside1, inside2) and inside1 == inside2:
        p.add(
            "tunnel2InsideCidr",
            str(inside2),
            "must differ from tunnel1InsideCidr: each tunnel needs its own /30",
            after="tunnel2InsideCidr",
        )

    ali = _prefixes(v, "aliCidrs", "aliVpcCidr")
    pair_rules = 2 if v["gatewayCount"] == 2 else 0
    rules = len(ali) + 2 * 2 + pair_rules + (len(v["sshAllowedCidrs"]) if v["sshAllowedCidrs"] is not INVALID else 0)
    if rules > ALI_RULES_PER_SECURITY_GROUP:
        p.add(
            "aliCidrs",
            f"{len(ali)} prefixes",
            f"the gateway's security group would need {rules} rules (one per Alibaba prefix, four for IKE, two for a "
            f"gateway pair, one per sshAllowedCidrs); Alibaba allows {ALI_RULES_PER_SECURITY_GROUP}",
            after="sshAllowedCidrs",
        )

    # Set, even if malformed: either way the public half is missing.
    if v["sshPrivateKey"] is not None and v["sshPublicKey"] is None:
        p.add(
            "sshPrivateKey",
            "",
            "is set without sshPublicKey; set both, or neither to let verify generate a key pair",
            after="sshPrivateKey",
        )
    if v["verify"] is True and v["sshAllowedCidrs"] == ():
        p.add(
            "verify",
            True,
            "verify connects over SSH, so sshAllowedCidrs must list the address pulumi runs from",
            after="verify",
        )

    if v["gatewayCount"] == 2 and v["aliVswitchId"] is not None:
        p.add(
            "gatewayCount",
            2,
            "a gateway pair needs fixed addresses for both gateways and its HaVip (each gateway's keepalived names "
            "the other's), which only a vSwitch this link creates guarantees free: unset aliVswitchId and set "
            "aliVswitchCidr (a new vSwitch in aliVpcId), or keep gatewayCount 1",
            after="gatewayCount",
        )

    if v["routing"] == "bgp" and v["gatewayCount"] == 2:
        p.add(
            "routing",
            "bgp",
            "is not available with gatewayCount 2 yet: a hand-over between two gateways running FRR has not been "
            "proven in the lab (their user-data fits since it is gzipped); use routing static with a pair, or one "
            "gateway with BGP",
            after="routing",
        )
    if v["routing"] == "bgp" and v["bgpAsn"] is not INVALID and v["bgpAsn"] == v["awsAsn"]:
        p.add(
            "bgpAsn",
            v["bgpAsn"],
            f"must differ from awsAsn ({v['awsAsn']}): the sessions to AWS are external BGP",
            after="bgpAsn",
        )

    if v["deletionProtection"] is True and v["aliZoneId"] is None and v["aliVswitchId"] is None:
        p.add(
            "aliZoneId",
            "",
            "a protected (production) stack must pin its zone: the zone looked up when it is empty is the first one "
            "selling ecsInstanceType today, and the vSwitch cannot move zones without replacing the gateway; "
            "set it, e.g. `pulumi config set aliZoneId cn-hangzhou-i`",
            after="deletionProtection",
        )


class _Deferred:
    """What the rules across keys see for a value known only later (an Output)."""

    def __repr__(self) -> str:  # pragma: no cover - trivial
        return "DEFERRED"


DEFERRED: Any = _Deferred()


def _shown(value: Any) -> Any:
    if value is DEFERRED:
        return "(an Output)"
    return list(value) if isinstance(value, tuple) else value


def load_settings(raw: Mapping[str, Any], secret_keys: Collection[str] = ()) -> Settings:
    """Validate raw stack config into a `Settings`, or raise `SettingsError` with every problem.

    `raw` maps full config keys (`aws2aliyun-vpc:awsVpcCidr`, `aws:region`, ...) to values
    as a stack file holds them (strings, or lists/booleans/numbers for structured values);
    `secret_keys` names the keys that were stored encrypted.
    """
    p = Problems()
    given: dict[str, Any] = {}
    for full_key, value in raw.items():
        ns, _, name = full_key.partition(":")
        if ns != NAMESPACE:
            continue
        if name not in KEYS_BY_NAME:
            close = difflib.get_close_matches(name, KEYS_BY_NAME, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            known = ", ".join(sorted(KEYS_BY_NAME))
            p.add_line(f"{full_key}: is not a setting of this project{hint}; known keys: {known}")
            continue
        given[name] = value

    for provider_key in REQUIRED_PROVIDER_KEYS:
        if not _as_str(raw.get(provider_key)):
            p.add_line(
                f"{provider_key}: is not set; the provider needs a region, e.g. `pulumi config set {provider_key} <region>`"
            )

    notes = tuple(
        f"{spec.name} is set in plain text; use `pulumi config set --secret {spec.name}`"
        for spec in KEYS
        if spec.secret and _as_str(given.get(spec.name)) and f"{NAMESPACE}:{spec.name}" not in secret_keys
    )
    regions = {attr: _as_str(raw.get(key)) for key, attr in PROVIDER_KEYS.items()}
    return build_settings(given, p, regions=regions, notes=notes)


def build_settings(
    given: Mapping[str, Any],
    p: Problems | None = None,
    *,
    regions: Mapping[str, str] | None = None,
    notes: tuple[str, ...] = (),
) -> Settings:
    """Validate the keys in `given` (by key name; every other key takes its default) into a
    `Settings`, or raise `SettingsError` with every problem, those already in `p` included.

    A value `p.deferred` recognises (an Output of another resource, from VpnLinkArgs) is kept
    as it is for a key that may be deferred, and refused for any other: those decide which
    resources exist or are compared with other keys, so they must be known now."""
    p = p or Problems()
    values: dict[str, Any] = {}
    rules_see: dict[str, Any] = {}
    for spec in KEYS:
        value = given.get(spec.name)
        if value is not None and p.deferred(value) and not spec.deferrable:
            p.add(
                spec.name,
                "(an Output)",
                "must be a plain value, known before anything is created: it decides which resources exist "
                "and is checked against the other settings",
            )
            values[spec.name] = rules_see[spec.name] = INVALID
            continue
        parsed = spec.parse(p, spec.name, spec.default if value is None else value)
        values[spec.name] = parsed
        rules_see[spec.name] = DEFERRED if parsed is not None and p.deferred(parsed) else parsed
    _check_across(rules_see, p, given=[name for name, value in given.items() if value is not None])
    if p.lines:
        raise SettingsError(p.lines)
    fields: dict[str, Any] = {spec.attr: values[spec.name] for spec in KEYS}
    fields |= dict(regions or {})
    return Settings(**fields, notes=notes)
