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
ALI_VPC_PREFIXES = range(8, 29)
AWS_VPC_PREFIXES = range(16, 29)
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

    def __init__(self) -> None:
        self._lines: list[tuple[float, str]] = []

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
    text = _as_str(raw)
    if text == "":
        return None
    if not PSK_PATTERN.match(text):
        p.add(key, raw, f"AWS accepts {PSK_RULE}")
        return INVALID
    return Secret(text)


PRESHARED_KEY = Kind("string", _psk)
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
    valid: re.Pattern[str] | Callable[[str], bool], rule: str, *, optional: bool = False, show_raw: bool = False
) -> Kind:
    """A string that `valid` accepts (stripped); empty is None when `optional`. Problems show the
    stripped text, or the raw value with `show_raw`."""
    accepts = valid.match if isinstance(valid, re.Pattern) else valid

    def parse(p: Problems, key: str, raw: Any) -> Any:
        value = _as_str(raw)
        if optional and value == "":
            return None
        if not accepts(value):
            p.add(key, raw if show_raw else value, rule)
            return INVALID
        return value

    return Kind("string", parse)


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
    value = _as_str(raw)
    if value == "":
        return None
    if "PRIVATE KEY" not in value:
        p.add(key, "", "expected a PEM/OpenSSH private key")
        return INVALID
    return Secret(value)


SSH_PRIVATE_KEY = Kind("string", _ssh_private_key)
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
        items = _strings(p, key, raw)
        if items is None:
            return ()
        for i, item in enumerate(items):
            if not pattern.match(item):
                p.add(f"{key}[{i}]", item, rule)
        return tuple(items)

    return Kind("array", parse)


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


def setting(name: str, default: Any, kind: Kind, description: str, *, secret: bool = False) -> Any:
    """A `Settings` field read from config key `name` (`default` when unset)."""
    return field(metadata={_SETTING: KeySpec(name, kind.type, default, description, kind.parse, secret)})


def _profile_text(name: str) -> str:
    p = PROFILES[name]
    return f"`{p.name}` (IKEv{p.ike_version}: IKE {p.ike_proposals()}, ESP {p.esp_proposals()} with PFS)"


def _code_list(values: Collection[Any], last: str = "or") -> str:
    shown = [f"`{v}`" for v in values]
    return ", ".join(shown[:-1]) + f" {last} " + shown[-1] if len(shown) > 1 else "".join(shown)


_RESERVED_INSIDE = ", ".join(str(r) for r in AWS_RESERVED_INSIDE_CIDRS)


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
        "or the existing one's when `awsVpcId` is set. Not in 169.254.0.0/16.",
    )
    ali_vpc_cidr: IPv4Network = setting(
        "aliVpcCidr",
        "172.16.0.0/16",
        cidr(ALI_VPC_PREFIXES),
        f"CIDR of the Alibaba Cloud VPC, /{ALI_VPC_PREFIXES.start} to /{ALI_VPC_PREFIXES.stop - 1}; "
        "must not overlap `awsVpcCidr` nor 169.254.0.0/16.",
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
    aws_vpc_id: str | None = setting(
        "awsVpcId",
        "",
        text(AWS_VPC_ID_PATTERN, "expected an AWS VPC id such as vpc-0123456789abcdef0, or empty", optional=True),
        "Existing AWS VPC to attach instead of creating one (needs `awsRouteTableIds`).",
    )
    aws_route_table_ids: tuple[str, ...] = setting(
        "awsRouteTableIds",
        [],
        ids(AWS_ROUTE_TABLE_ID_PATTERN, "expected a route table id such as rtb-0123456789abcdef0"),
        "Route tables of the existing AWS VPC (`awsVpcId`) that learn the Alibaba CIDR by route propagation; "
        "at least one with `awsVpcId`, none without.",
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
    def ecs_private_ip(self) -> ipaddress.IPv4Address:
        return gateway_private_ip(self.ali_vswitch_cidr)

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


def _nets(*values: Any) -> bool:
    return all(isinstance(v, IPv4Network) for v in values)


def _check_across(v: Mapping[str, Any], p: Problems) -> None:
    """The rules that read more than one key (or a key beyond its own kind). `v` maps each key
    to its parsed value: INVALID when its own parse failed, None when an optional key is unset."""
    # The network rules, once the three networks are read.
    networks = "aliVswitchCidr"
    for key in ("awsVpcCidr", "aliVpcCidr"):
        if _nets(v[key]) and v[key].overlaps(LINK_LOCAL):
            p.add(
                key,
                str(v[key]),
                "a VPC CIDR must not be inside 169.254.0.0/16 (link-local, used by the tunnels)",
                after=networks,
            )
    aws_vpc, ali_vpc, vswitch = v["awsVpcCidr"], v["aliVpcCidr"], v["aliVswitchCidr"]
    if _nets(aws_vpc, ali_vpc) and aws_vpc.overlaps(ali_vpc):
        p.add(
            "aliVpcCidr",
            str(ali_vpc),
            f"must not overlap awsVpcCidr {aws_vpc}: both sides would claim the same addresses",
            after=networks,
        )
    if _nets(vswitch, ali_vpc) and not vswitch.subnet_of(ali_vpc):
        p.add("aliVswitchCidr", str(vswitch), f"must be inside aliVpcCidr {ali_vpc}", after=networks)

    inside1, inside2 = v["tunnel1InsideCidr"], v["tunnel2InsideCidr"]
    if _nets(inside1, inside2) and inside1 == inside2:
        p.add(
            "tunnel2InsideCidr",
            str(inside2),
            "must differ from tunnel1InsideCidr: each tunnel needs its own /30",
            after="tunnel2InsideCidr",
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

    vpc_id, route_tables = v["awsVpcId"], v["awsRouteTableIds"]
    if vpc_id is None and route_tables:
        p.add(
            "awsRouteTableIds",
            list(route_tables),
            "only applies with awsVpcId (a new VPC gets its own route table)",
            after="awsRouteTableIds",
        )
    if vpc_id is not None and route_tables == ():
        p.add(
            "awsRouteTableIds",
            [],
            "must list at least one route table of awsVpcId, or traffic to Alibaba has no route",
            after="awsRouteTableIds",
        )

    if v["deletionProtection"] is True and v["aliZoneId"] is None:
        p.add(
            "aliZoneId",
            "",
            "a protected (production) stack must pin its zone: the zone looked up when it is empty is the first one "
            "selling ecsInstanceType today, and the vSwitch cannot move zones without replacing the gateway; "
            "set it, e.g. `pulumi config set aliZoneId cn-hangzhou-i`",
            after="deletionProtection",
        )


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

    values = {}
    for spec in KEYS:
        value = given.get(spec.name)
        values[spec.name] = spec.parse(p, spec.name, spec.default if value is None else value)
    _check_across(values, p)
    if p.lines:
        raise SettingsError(p.lines)

    notes = tuple(
        f"{spec.name} is set in plain text; use `pulumi config set --secret {spec.name}`"
        for spec in KEYS
        if spec.secret and _as_str(given.get(spec.name)) and f"{NAMESPACE}:{spec.name}" not in secret_keys
    )
    fields: dict[str, Any] = {spec.attr: values[spec.name] for spec in KEYS}
    fields |= {attr: _as_str(raw.get(key)) for key, attr in PROVIDER_KEYS.items()}
    return Settings(**fields, notes=notes)
