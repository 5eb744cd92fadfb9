"""Stack settings: one function turns raw stack config into one validated, frozen object.

Everything here is pure (no Pulumi calls), so it is tested without an engine and runs
before any resource exists. Every problem is collected and reported at once, each naming
the config key, the bad value and what is allowed.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from components.crypto import PROFILES, CryptoProfile

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


@dataclass(frozen=True)
class KeySpec:
    """One config key of the project: its type, default and description (mirrors Pulumi.yaml)."""

    name: str
    type: str  # "string" | "integer" | "boolean" | "array"
    default: Any
    description: str
    secret: bool = False


KEYS: tuple[KeySpec, ...] = (
    KeySpec(
        "awsVpcCidr",
        "string",
        "10.10.0.0/16",
        "CIDR of the AWS VPC (created, or the existing one's when awsVpcId is set).",
    ),
    KeySpec("aliVpcCidr", "string", "172.16.0.0/16", "CIDR of the Alibaba Cloud VPC; must not overlap awsVpcCidr."),
    KeySpec(
        "aliVswitchCidr",
        "string",
        "172.16.1.0/24",
        "CIDR of the vSwitch holding the gateway ECS; inside aliVpcCidr, /16 to /29.",
    ),
    KeySpec(
        "aliZoneId",
        "string",
        "",
        "Alibaba zone for the vSwitch and ECS; empty picks the first zone offering ecsInstanceType at the first deploy and keeps it. Required with deletionProtection.",
    ),
    KeySpec("tunnel1InsideCidr", "string", "", "Inside /30 of tunnel 1 in 169.254.0.0/16; empty lets AWS pick."),
    KeySpec("tunnel2InsideCidr", "string", "", "Inside /30 of tunnel 2 in 169.254.0.0/16; empty lets AWS pick."),
    KeySpec(
        "tunnel1PresharedKey",
        "string",
        "",
        "PSK of tunnel 1 (set with --secret); empty generates one to AWS's rules.",
        secret=True,
    ),
    KeySpec(
        "tunnel2PresharedKey",
        "string",
        "",
        "PSK of tunnel 2 (set with --secret); empty generates one to AWS's rules.",
        secret=True,
    ),
    KeySpec(
        "cryptoProfile",
        "string",
        "modern",
        "Crypto profile for both ends: modern (IKEv2, AES-256, SHA2-256, DH14+, AES-GCM ESP with PFS) or legacy (IKEv1 aes128-sha1-modp1024).",
    ),
    KeySpec("dpdTimeoutSeconds", "integer", 30, "AWS-side dead peer detection timeout in seconds (>= 30)."),
    KeySpec("ecsInstanceType", "string", "ecs.t6-c1m2.large", "Instance type of the Alibaba gateway ECS."),
    KeySpec(
        "ecsImage",
        "string",
        "debian_12",
        "Gateway image: debian_12, ubuntu_22_04, ubuntu_24_04, or an Alibaba image id.",
    ),
    KeySpec(
        "sshPublicKey",
        "string",
        "",
        "OpenSSH public key (ssh-rsa, ssh-dss or ecdsa-sha2-*; Alibaba refuses ssh-ed25519) installed as the ECS key pair; empty creates none (unless verify generates one).",
    ),
    KeySpec(
        "sshPrivateKey",
        "string",
        "",
        "Private key matching sshPublicKey, used by verify (set with --secret); empty with verify generates a key pair.",
        secret=True,
    ),
    KeySpec("sshAllowedCidrs", "array", [], "CIDRs allowed to SSH to the gateway; empty closes SSH. /0 is refused."),
    KeySpec(
        "verify",
        "boolean",
        False,
        "After deploy, SSH to the gateway and fail `pulumi up` unless both tunnels are up (needs sshAllowedCidrs).",
    ),
    KeySpec("awsVpcId", "string", "", "Existing AWS VPC to attach instead of creating one (with awsRouteTableIds)."),
    KeySpec(
        "awsRouteTableIds",
        "array",
        [],
        "Route tables of the existing AWS VPC that learn the Alibaba CIDR by route propagation.",
    ),
    KeySpec(
        "tunnelLogRetentionDays", "integer", 30, "Retention of the CloudWatch log group holding the tunnels' IKE logs."
    ),
    KeySpec(
        "presharedKeyStorage", "string", "Standard", "Where AWS keeps the tunnel PSKs: Standard or SecretsManager."
    ),
    KeySpec(
        "alarmEmail", "string", "", "E-mail subscribed to the tunnel-state alarms' SNS topic; empty subscribes none."
    ),
    KeySpec(
        "deletionProtection",
        "boolean",
        False,
        "Protect the EIP (the address AWS's customer gateway is bound to) from deletion; the gateway ECS is replaced by design and stays deletable. Requires aliZoneId.",
    ),
)
KEYS_BY_NAME = {k.name: k for k in KEYS}
REQUIRED_PROVIDER_KEYS = ("aws:region", "alicloud:region")


@dataclass(frozen=True)
class Settings:
    """The validated settings of one stack. Build it with `load_settings`."""

    aws_vpc_cidr: ipaddress.IPv4Network
    ali_vpc_cidr: ipaddress.IPv4Network
    ali_vswitch_cidr: ipaddress.IPv4Network
    ali_zone_id: str | None
    tunnel_inside_cidrs: tuple[ipaddress.IPv4Network | None, ipaddress.IPv4Network | None]
    tunnel_preshared_keys: tuple[Secret | None, Secret | None]
    crypto: CryptoProfile
    dpd_timeout_s: int
    ecs_instance_type: str
    ecs_image: str
    ssh_public_key: str | None
    ssh_private_key: Secret | None
    ssh_allowed_cidrs: tuple[ipaddress.IPv4Network, ...]
    verify: bool
    aws_vpc_id: str | None
    aws_route_table_ids: tuple[str, ...]
    tunnel_log_retention_days: int
    preshared_key_storage: str = "Standard"
    alarm_email: str | None = None
    deletion_protection: bool = False
    aws_region: str = ""
    ali_region: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def ecs_private_ip(self) -> ipaddress.IPv4Address:
        return gateway_private_ip(self.ali_vswitch_cidr)

    @property
    def aws_subnet_cidr(self) -> ipaddress.IPv4Network:
        """The subnet created in a new AWS VPC: its first /24 (or the whole VPC when smaller)."""
        if self.aws_vpc_cidr.prefixlen >= 24:
            return self.aws_vpc_cidr
        return next(self.aws_vpc_cidr.subnets(new_prefix=24))

    @property
    def image_is_alias(self) -> bool:
        return self.ecs_image in IMAGE_ALIASES


def gateway_private_ip(vswitch: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    """The gateway ECS's fixed private address: host 10 of the vSwitch, or the last host
    Alibaba leaves free in a small one (it reserves the first and the last three)."""
    offset = min(10, vswitch.num_addresses - 4)
    return vswitch.network_address + offset


class _Collector:
    """Gathers problems while parsing, so every one is reported at once."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, key: str, value: Any, allowed: str) -> None:
        shown = "[secret]" if key in KEYS_BY_NAME and KEYS_BY_NAME[key].secret else repr(value)
        self.problems.append(f"{key}: {shown} is invalid: {allowed}")


def _as_str(raw: Any) -> str:
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw).strip()


def _parse_network(c: _Collector, key: str, raw: Any, prefixes: range | None = None) -> ipaddress.IPv4Network | None:
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
        c.add(key, raw, f"expected an IPv4 CIDR such as 10.0.0.0/16 with no host bits set{hint}")
        return None
    if net.version != 4:
        c.add(key, raw, "expected an IPv4 CIDR")
        return None
    if prefixes is not None and net.prefixlen not in prefixes:
        c.add(key, raw, f"prefix length must be /{prefixes.start} to /{prefixes.stop - 1}")
        return None
    return net  # type: ignore[return-value]


def _parse_list(c: _Collector, key: str, raw: Any) -> list[str]:
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        # `pulumi config set --path` or a JSON string both land here.
        import json

        try:
            value = json.loads(raw)
        except ValueError:
            value = [p.strip() for p in raw.split(",") if p.strip()]
        raw = value
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        c.add(key, raw, "expected a list of strings")
        return []
    return [v.strip() for v in raw]


def _parse_bool(c: _Collector, key: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = _as_str(raw).lower()
    if text in ("true", "false"):
        return text == "true"
    c.add(key, raw, "expected true or false")
    return False


def _parse_int(c: _Collector, key: str, raw: Any) -> int | None:
    if isinstance(raw, bool):
        c.add(key, raw, "expected a whole number")
        return None
    if isinstance(raw, int):
        return raw
    text = _as_str(raw)
    if re.fullmatch(r"[0-9]+", text):
        return int(text)
    c.add(key, raw, "expected a whole number")
    return None


def _parse_inside_cidr(c: _Collector, key: str, raw: Any) -> ipaddress.IPv4Network | None:
    if _as_str(raw) == "":
        return None
    net = _parse_network(c, key, raw)
    if net is None:
        return None
    if net.prefixlen != 30:
        c.add(key, raw, "a tunnel inside CIDR must be a /30")
        return None
    if not net.subnet_of(LINK_LOCAL):
        c.add(key, raw, "a tunnel inside CIDR must be inside 169.254.0.0/16")
        return None
    if net in AWS_RESERVED_INSIDE_CIDRS:
        reserved = ", ".join(str(r) for r in AWS_RESERVED_INSIDE_CIDRS)
        c.add(key, raw, f"AWS reserves {reserved}")
        return None
    return net


def _parse_psk(c: _Collector, key: str, raw: Any) -> Secret | None:
    text = _as_str(raw)
    if text == "":
        return None
    if not PSK_PATTERN.match(text):
        c.add(key, raw, f"AWS accepts {PSK_RULE}")
        return None
    return Secret(text)


def load_settings(raw: Mapping[str, Any], secret_keys: Collection[str] = ()) -> Settings:
    """Validate raw stack config into a `Settings`, or raise `SettingsError` with every problem.

    `raw` maps full config keys (`aws2aliyun-vpc:awsVpcCidr`, `aws:region`, ...) to values
    as a stack file holds them (strings, or lists/booleans/numbers for structured values);
    `secret_keys` names the keys that were stored encrypted.
    """
    c = _Collector()
    values: dict[str, Any] = {}
    for full_key, value in raw.items():
        ns, _, name = full_key.partition(":")
        if ns == NAMESPACE:
            if name not in KEYS_BY_NAME:
                close = difflib.get_close_matches(name, KEYS_BY_NAME, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                known = ", ".join(sorted(KEYS_BY_NAME))
                c.problems.append(f"{full_key}: is not a setting of this project{hint}; known keys: {known}")
                continue
            values[name] = value

    def get(name: str) -> Any:
        spec = KEYS_BY_NAME[name]
        v = values.get(name)
        return spec.default if v is None else v

    for provider_key in REQUIRED_PROVIDER_KEYS:
        if not _as_str(raw.get(provider_key)):
            c.problems.append(
                f"{provider_key}: is not set; the provider needs a region, e.g. `pulumi config set {provider_key} <region>`"
            )

    aws_vpc = _parse_network(c, "awsVpcCidr", get("awsVpcCidr"), AWS_VPC_PREFIXES)
    ali_vpc = _parse_network(c, "aliVpcCidr", get("aliVpcCidr"), ALI_VPC_PREFIXES)
    vswitch = _parse_network(c, "aliVswitchCidr", get("aliVswitchCidr"), ALI_VSWITCH_PREFIXES)
    for key, net in (("awsVpcCidr", aws_vpc), ("aliVpcCidr", ali_vpc)):
        if net is not None and net.overlaps(LINK_LOCAL):
            c.add(key, str(net), "a VPC CIDR must not be inside 169.254.0.0/16 (link-local, used by the tunnels)")
    if aws_vpc is not None and ali_vpc is not None and aws_vpc.overlaps(ali_vpc):
        c.add(
            "aliVpcCidr",
            str(ali_vpc),
            f"must not overlap awsVpcCidr {aws_vpc}: both sides would claim the same addresses",
        )
    if vswitch is not None and ali_vpc is not None and not vswitch.subnet_of(ali_vpc):
        c.add("aliVswitchCidr", str(vswitch), f"must be inside aliVpcCidr {ali_vpc}")

    zone = _as_str(get("aliZoneId")) or None
    if zone is not None and not ALI_ZONE_PATTERN.match(zone):
        c.add("aliZoneId", zone, "expected an Alibaba zone id such as cn-hangzhou-i, or empty")

    inside = (
        _parse_inside_cidr(c, "tunnel1InsideCidr", get("tunnel1InsideCidr")),
        _parse_inside_cidr(c, "tunnel2InsideCidr", get("tunnel2InsideCidr")),
    )
    if inside[0] is not None and inside[0] == inside[1]:
        c.add("tunnel2InsideCidr", str(inside[1]), "must differ from tunnel1InsideCidr: each tunnel needs its own /30")

    psks = (
        _parse_psk(c, "tunnel1PresharedKey", get("tunnel1PresharedKey")),
        _parse_psk(c, "tunnel2PresharedKey", get("tunnel2PresharedKey")),
    )

    profile_name = _as_str(get("cryptoProfile"))
    crypto = PROFILES.get(profile_name)
    if crypto is None:
        c.add("cryptoProfile", get("cryptoProfile"), f"expected one of {', '.join(PROFILES)}")

    dpd = _parse_int(c, "dpdTimeoutSeconds", get("dpdTimeoutSeconds"))
    if dpd is not None and dpd < MIN_DPD_TIMEOUT_S:
        c.add("dpdTimeoutSeconds", dpd, f"AWS requires at least {MIN_DPD_TIMEOUT_S} seconds")
        dpd = None

    instance_type = _as_str(get("ecsInstanceType"))
    if not INSTANCE_TYPE_PATTERN.match(instance_type):
        c.add("ecsInstanceType", get("ecsInstanceType"), "expected an ECS instance type such as ecs.g7.large")

    image = _as_str(get("ecsImage"))
    if image not in IMAGE_ALIASES and not IMAGE_ID_PATTERN.match(image):
        c.add(
            "ecsImage",
            get("ecsImage"),
            f"expected one of {', '.join(IMAGE_ALIASES)} or an Alibaba image id (m-... or *.vhd)",
        )

    ssh_public_key = _as_str(get("sshPublicKey")) or None
    if ssh_public_key is not None:
        key_type = ssh_public_key.split(" ", 1)[0]
        if not SSH_PUBLIC_KEY_PATTERN.match(ssh_public_key):
            c.add(
                "sshPublicKey",
                ssh_public_key[:40] + "...",
                f"expected an OpenSSH public key line ({SSH_KEY_RULE}, then the base64 key)",
            )
        elif key_type not in ALIBABA_SSH_KEY_TYPES:
            c.add(
                "sshPublicKey",
                ssh_public_key[:40] + "...",
                f"Alibaba's ImportKeyPair accepts only {SSH_KEY_RULE} keys; {key_type} is refused there",
            )
    ssh_private_key_text = _as_str(get("sshPrivateKey"))
    ssh_private_key = Secret(ssh_private_key_text) if ssh_private_key_text else None
    if ssh_private_key is not None and "PRIVATE KEY" not in ssh_private_key:
        c.add("sshPrivateKey", "", "expected a PEM/OpenSSH private key")
    if ssh_private_key is not None and ssh_public_key is None:
        c.add(
            "sshPrivateKey", "", "is set without sshPublicKey; set both, or neither to let verify generate a key pair"
        )

    ssh_cidrs: list[ipaddress.IPv4Network] = []
    for i, text in enumerate(_parse_list(c, "sshAllowedCidrs", get("sshAllowedCidrs"))):
        net = _parse_network(c, f"sshAllowedCidrs[{i}]", text)
        if net is None:
            continue
        if net.prefixlen == 0:
            c.add(
                f"sshAllowedCidrs[{i}]",
                text,
                "SSH must not be open to the whole internet; list your own addresses (e.g. 203.0.113.7/32)",
            )
            continue
        ssh_cidrs.append(net)

    verify = _parse_bool(c, "verify", get("verify"))
    if verify and not ssh_cidrs and not _parse_list(_Collector(), "sshAllowedCidrs", get("sshAllowedCidrs")):
        c.add("verify", True, "verify connects over SSH, so sshAllowedCidrs must list the address pulumi runs from")

    aws_vpc_id = _as_str(get("awsVpcId")) or None
    if aws_vpc_id is not None and not AWS_VPC_ID_PATTERN.match(aws_vpc_id):
        c.add("awsVpcId", aws_vpc_id, "expected an AWS VPC id such as vpc-0123456789abcdef0, or empty")
    route_tables = _parse_list(c, "awsRouteTableIds", get("awsRouteTableIds"))
    for i, rt in enumerate(route_tables):
        if not AWS_ROUTE_TABLE_ID_PATTERN.match(rt):
            c.add(f"awsRouteTableIds[{i}]", rt, "expected a route table id such as rtb-0123456789abcdef0")
    if aws_vpc_id is None and route_tables:
        c.add("awsRouteTableIds", route_tables, "only applies with awsVpcId (a new VPC gets its own route table)")
    if aws_vpc_id is not None and not route_tables:
        c.add(
            "awsRouteTableIds", [], "must list at least one route table of awsVpcId, or traffic to Alibaba has no route"
        )

    retention = _parse_int(c, "tunnelLogRetentionDays", get("tunnelLogRetentionDays"))
    if retention is not None and retention not in LOG_RETENTION_DAYS:
        c.add("tunnelLogRetentionDays", retention, f"CloudWatch accepts {', '.join(map(str, LOG_RETENTION_DAYS))}")

    storage = _as_str(get("presharedKeyStorage"))
    if storage not in PSK_STORAGES:
        c.add("presharedKeyStorage", get("presharedKeyStorage"), f"expected one of {', '.join(PSK_STORAGES)}")
    alarm_email = _as_str(get("alarmEmail")) or None
    if alarm_email is not None and not EMAIL_PATTERN.match(alarm_email):
        c.add("alarmEmail", alarm_email, "expected an e-mail address, or empty")
    deletion_protection = _parse_bool(c, "deletionProtection", get("deletionProtection"))
    if deletion_protection and zone is None:
        c.add(
            "aliZoneId",
            "",
            "a protected (production) stack must pin its zone: the zone looked up when it is empty is the first one "
            "selling ecsInstanceType today, and the vSwitch cannot move zones without replacing the gateway; "
            "set it, e.g. `pulumi config set aliZoneId cn-hangzhou-i`",
        )

    if c.problems:
        raise SettingsError(c.problems)

    notes = []
    for key in ("tunnel1PresharedKey", "tunnel2PresharedKey", "sshPrivateKey"):
        if values.get(key) is not None and _as_str(values.get(key)) and f"{NAMESPACE}:{key}" not in secret_keys:
            notes.append(f"{key} is set in plain text; use `pulumi config set --secret {key}`")

    assert aws_vpc and ali_vpc and vswitch and crypto and dpd is not None and retention is not None
    return Settings(
        aws_vpc_cidr=aws_vpc,
        ali_vpc_cidr=ali_vpc,
        ali_vswitch_cidr=vswitch,
        ali_zone_id=zone,
        tunnel_inside_cidrs=inside,
        tunnel_preshared_keys=psks,
        crypto=crypto,
        dpd_timeout_s=dpd,
        ecs_instance_type=instance_type,
        ecs_image=image,
        ssh_public_key=ssh_public_key,
        ssh_private_key=ssh_private_key,
        ssh_allowed_cidrs=tuple(ssh_cidrs),
        verify=verify,
        aws_vpc_id=aws_vpc_id,
        aws_route_table_ids=tuple(route_tables),
        tunnel_log_retention_days=retention,
        preshared_key_storage=storage,
        alarm_email=alarm_email,
        deletion_protection=deletion_protection,
        aws_region=_as_str(raw.get("aws:region")),
        ali_region=_as_str(raw.get("alicloud:region")),
        notes=tuple(notes),
    )
