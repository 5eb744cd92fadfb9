"""The pack's checks as pure functions: a resource's type token and its properties (a plain
dict with Pulumi's camelCase names, as in `python -m tools.plan --json`) in, a list of
violation messages out. An empty list means compliant or not applicable.

Nothing here imports the policy SDK, so the checks run the same over the offline plan,
in unit tests and inside the analyzer. Values Pulumi cannot know during a preview arrive
as `UNKNOWN` (see `policies.to_plain`); a check never reports a value it cannot see, but
a property that is *absent* is reported wherever the cloud's default for it is unsafe.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any


class _Unknown:
    """A property value that is not known yet (an output of a resource still to be created)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<unknown during preview>"


UNKNOWN: Any = _Unknown()

# ---- names ------------------------------------------------------------------------------

NO_INTERNET_INGRESS = "no-ingress-from-internet"
VPN_STRONG_CRYPTO = "vpn-tunnel-no-dh2-sha1"
VPN_LEGACY_CRYPTO = "vpn-tunnel-legacy-crypto"
ECS_METADATA_TOKENS = "ecs-metadata-tokens-required"
VPN_TUNNEL_LOGGING = "vpn-tunnel-logging-enabled"

# The crypto profile the pack is told about (policy config `cryptoProfile`).
MODERN = "modern"
LEGACY = "legacy"
CRYPTO_PROFILES = (MODERN, LEGACY)

ALI_SG_RULE = "alicloud:ecs/securityGroupRule:SecurityGroupRule"
ALI_INSTANCE = "alicloud:ecs/instance:Instance"
AWS_SG = "aws:ec2/securityGroup:SecurityGroup"
AWS_SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
AWS_SG_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
AWS_VPN_CONNECTION = "aws:ec2/vpnConnection:VpnConnection"

TUNNELS = (1, 2)
PHASES = (1, 2)
WEAK_DH_GROUP = 2
WEAK_INTEGRITY = "SHA1"
STRONG_INTEGRITY = ("SHA2-256", "SHA2-384", "SHA2-512")
# What AWS accepts once group 2 is taken out (FACTS.md: phase 1 2, 14-24; phase 2 2, 5, 14-24).
ALLOWED_DH = {1: "14-24", 2: "5, 14-24"}


def is_unknown(value: Any) -> bool:
    return value is UNKNOWN


def _absent(value: Any) -> bool:
    """Unset as far as the provider is concerned: missing, null or an empty list."""
    return value is None or (isinstance(value, list | tuple) and len(value) == 0)


def _num(value: Any) -> Any:
    """Numbers cross gRPC as doubles: show 2.0 as 2."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# ---- 1. no ingress from the whole internet ----------------------------------------------


def is_whole_internet(cidr: Any) -> bool:
    """True for any /0 (0.0.0.0/0, ::/0, 10.0.0.0/0 ...): every address of its family."""
    if not isinstance(cidr, str):
        return False
    try:
        return ipaddress.ip_network(cidr.strip(), strict=False).prefixlen == 0
    except ValueError:
        return False  # not a CIDR at all: the provider rejects it, nothing is opened


def _internet_message(prop: str, cidr: str) -> str:
    return (
        f"{prop} is {cidr}: ingress from the whole internet; allowed: a source narrower than /0, "
        "e.g. the AWS tunnel endpoints' /32s, a VPC CIDR or an operator's address"
    )


def _cidr_list_findings(prop: str, cidrs: Any) -> list[str]:
    if not isinstance(cidrs, list | tuple):
        return []  # absent or unknown: nothing to see
    return [_internet_message(f"{prop}[{i}]", c) for i, c in enumerate(cidrs) if is_whole_internet(c)]


def internet_ingress(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Security group ingress open to 0.0.0.0/0 or ::/0 (Alibaba and AWS)."""
    if resource_type == ALI_SG_RULE:
        if props.get("type") != "ingress":
            return []  # egress, or unknown during preview
        policy = props.get("policy", "accept")
        if policy is None:
            policy = "accept"  # the provider's default
        if policy != "accept":
            return []  # a drop rule from anywhere closes, it does not open (or unknown)
        return [
            _internet_message(prop, props[prop])
            for prop in ("cidrIp", "ipv6CidrIp")
            if is_whole_internet(props.get(prop))
        ]
    if resource_type == AWS_SG:
        ingress = props.get("ingress")
        if not isinstance(ingress, list | tuple):
            return []
        findings: list[str] = []
        for i, block in enumerate(ingress):
            if isinstance(block, Mapping):
                for key in ("cidrBlocks", "ipv6CidrBlocks"):
                    findings += _cidr_list_findings(f"ingress[{i}].{key}", block.get(key))
        return findings
    if resource_type == AWS_SG_RULE:
        if props.get("type") != "ingress":
            return []
        return _cidr_list_findings("cidrBlocks", props.get("cidrBlocks")) + _cidr_list_findings(
            "ipv6CidrBlocks", props.get("ipv6CidrBlocks")
        )
    if resource_type == AWS_SG_INGRESS_RULE:
        return [
            _internet_message(prop, props[prop])
            for prop in ("cidrIpv4", "cidrIpv6")
            if is_whole_internet(props.get(prop))
        ]
    return []


# ---- 2. no DH group 2 or SHA1 on the VPN tunnels ----------------------------------------


def weak_vpn_crypto(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """DH group 2 or SHA1 allowed on a tunnel, explicitly or through AWS's default lists
    (an unset list means AWS's defaults, which include both)."""
    if resource_type != AWS_VPN_CONNECTION:
        return []
    findings: list[str] = []
    for n in TUNNELS:
        for phase in PHASES:
            prop = f"tunnel{n}Phase{phase}DhGroupNumbers"
            groups = props.get(prop)
            if _absent(groups):
                findings.append(
                    f"{prop} is not set, so AWS applies its default DH groups, which include group 2 "
                    f"(and its default integrity algorithms include SHA1); allowed: an explicit list "
                    f"without group 2, from {ALLOWED_DH[phase]}"
                )
            elif isinstance(groups, list | tuple) and any(
                not is_unknown(g) and _num(g) == WEAK_DH_GROUP for g in groups
            ):
                shown = [_num(g) for g in groups]
                findings.append(
                    f"{prop} is {shown}, which includes DH group 2 (1024-bit MODP); "
                    f"allowed: groups from {ALLOWED_DH[phase]}"
                )
            prop = f"tunnel{n}Phase{phase}IntegrityAlgorithms"
            algorithms = props.get(prop)
            allowed = ", ".join(STRONG_INTEGRITY)
            if _absent(algorithms):
                findings.append(
                    f"{prop} is not set, so AWS applies its default integrity algorithms, which include "
                    f"SHA1 (and its default DH groups include group 2); allowed: an explicit list of {allowed}"
                )
            elif isinstance(algorithms, list | tuple) and any(
                isinstance(a, str) and a.strip().upper() == WEAK_INTEGRITY for a in algorithms
            ):
                findings.append(f"{prop} is {list(algorithms)}, which includes SHA1; allowed: {allowed}")
    return findings


def crypto_profile(config: Mapping[str, Any] | None) -> str:
    """The profile named by a crypto policy's config. Anything but an explicit `legacy` is
    treated as `modern`, so a typo can only make the pack stricter."""
    value = (config or {}).get("cryptoProfile", MODERN)
    return LEGACY if isinstance(value, str) and value.strip().lower() == LEGACY else MODERN


def strong_crypto_findings(resource_type: str, props: Mapping[str, Any], profile: str) -> list[str]:
    """The mandatory crypto policy: weak crypto is a violation unless the legacy profile is chosen."""
    if profile == LEGACY:
        return []
    return weak_vpn_crypto(resource_type, props)


def legacy_crypto_findings(resource_type: str, props: Mapping[str, Any], profile: str) -> list[str]:
    """The advisory crypto policy: with the legacy profile, the same findings as warnings."""
    if profile != LEGACY:
        return []
    return [
        f"{m} (reported as advisory because the policy config chose cryptoProfile=legacy)"
        for m in weak_vpn_crypto(resource_type, props)
    ]


# ---- 3. ECS metadata only with session tokens --------------------------------------------


# The program's declared exception (components/alibaba_side.py, the same key): an image whose
# cloud-init cannot read user-data with session tokens gets `optional`, saying why in this tag.
METADATA_TOKENS_TAG = "aws2aliyun-vpc:metadata-tokens"


def ecs_metadata_tokens(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """The ECS must require metadata session tokens (Alibaba's IMDSv2): its user-data holds the
    PSKs. `optional` passes only when the instance's tag `aws2aliyun-vpc:metadata-tokens`
    declares why (its image's cloud-init is too old to read user-data in hardened mode)."""
    if resource_type != ALI_INSTANCE:
        return []
    tokens = props.get("httpTokens")
    if is_unknown(tokens) or tokens == "required":
        return []
    tags = props.get("tags")
    reason = tags.get(METADATA_TOKENS_TAG) if isinstance(tags, Mapping) else None
    if tokens == "optional" and isinstance(reason, str) and reason.startswith("optional:"):
        return []
    if tokens is None:
        return [
            "httpTokens is not set, so the instance takes Alibaba's default 'optional' and serves its "
            "metadata, user-data included, without a session token; allowed: 'required'"
        ]
    return [
        f"httpTokens is {tokens!r}: metadata readable without a session token; allowed: 'required', or "
        f"'optional' with the tag {METADATA_TOKENS_TAG} = 'optional: <why>'"
    ]


# ---- 4. tunnel logs on -------------------------------------------------------------------


def vpn_tunnel_logging(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Both tunnels send their IKE logs to CloudWatch (AWS's default is off)."""
    if resource_type != AWS_VPN_CONNECTION:
        return []
    findings: list[str] = []
    for n in TUNNELS:
        path = f"tunnel{n}LogOptions.cloudwatchLogOptions.logEnabled"
        value: Any = props
        for key in path.split("."):
            if is_unknown(value) or value is None:
                break
            value = value.get(key) if isinstance(value, Mapping) else None
        if is_unknown(value) or value is True:
            continue
        if value is None:
            findings.append(f"{path} is not set, so AWS keeps this tunnel's logs off; allowed: true")
        else:
            findings.append(f"{path} is {value!r}: this tunnel's logs are off; allowed: true")
    return findings


# ---- all together ------------------------------------------------------------------------

Check = Callable[[str, Mapping[str, Any], str], list[str]]

CHECKS: dict[str, Check] = {
    NO_INTERNET_INGRESS: lambda t, p, _profile: internet_ingress(t, p),
    VPN_STRONG_CRYPTO: strong_crypto_findings,
    VPN_LEGACY_CRYPTO: legacy_crypto_findings,
    ECS_METADATA_TOKENS: lambda t, p, _profile: ecs_metadata_tokens(t, p),
    VPN_TUNNEL_LOGGING: lambda t, p, _profile: vpn_tunnel_logging(t, p),
}


def evaluate(resource_type: str, props: Mapping[str, Any], profile: str = MODERN) -> dict[str, list[str]]:
    """Every policy's findings for one resource (policies with none left out)."""
    results = {name: check(resource_type, props, profile) for name, check in CHECKS.items()}
    return {name: found for name, found in results.items() if found}
