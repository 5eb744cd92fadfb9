"""The pack's policies: `rules` wired to the Pulumi policy SDK.

Enforcement, and how the legacy crypto profile downgrades the crypto check:

| policy | level | reports |
| --- | --- | --- |
| no-ingress-from-internet | mandatory | security group ingress from any /0 (Alibaba and AWS) |
| vpn-tunnel-no-dh2-sha1 | mandatory | DH group 2 / SHA1 on a tunnel, or an unset list (AWS's defaults include both); silent when its config says cryptoProfile=legacy |
| vpn-tunnel-legacy-crypto | advisory | the same findings, only when its config says cryptoProfile=legacy |
| ecs-metadata-tokens-required | mandatory | an ECS whose httpTokens is not "required" (nor "optional" with the tag saying why) |
| vpn-tunnel-logging-enabled | mandatory | a tunnel whose CloudWatch log option is not on |

Pulumi gives each policy its own config, so both crypto policies take a `cryptoProfile`
property (default "modern"); `config.legacy.json` beside this file sets both:
`pulumi preview --policy-pack policy --policy-pack-config policy/config.legacy.json`.
With the default config the pack is at its strictest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import rules
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)
from pulumi_policy.proxy import UnknownValueError


def to_plain(value: Any) -> Any:
    """The SDK's property proxies as plain dicts and lists, with every value Pulumi cannot
    know yet (it raises UnknownValueError on access) replaced by `rules.UNKNOWN`."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in value:
            try:
                out[key] = to_plain(value[key])
            except UnknownValueError:
                out[key] = rules.UNKNOWN
        return out
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        items: list[Any] = []
        for i in range(len(value)):
            try:
                items.append(to_plain(value[i]))
            except UnknownValueError:
                items.append(rules.UNKNOWN)
        return items
    return value


def _validator(name: str):
    check = rules.CHECKS[name]

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        props = to_plain(args.props)
        profile = rules.crypto_profile(args.get_config())
        for message in check(args.resource_type, props, profile):
            report_violation(message, None)

    return validate


CRYPTO_PROFILE_SCHEMA = PolicyConfigSchema(
    properties={
        "cryptoProfile": {
            "type": "string",
            "enum": list(rules.CRYPTO_PROFILES),
            "default": rules.MODERN,
            "description": "The stack's crypto profile (the program's cryptoProfile setting). "
            "legacy turns the DH group 2 / SHA1 findings from mandatory into advisory; "
            "set it on both vpn-tunnel-no-dh2-sha1 and vpn-tunnel-legacy-crypto.",
        }
    }
)

POLICIES: list[ResourceValidationPolicy] = [
    ResourceValidationPolicy(
        name=rules.NO_INTERNET_INGRESS,
        description="No security group ingress from the whole internet (0.0.0.0/0, ::/0 or any /0): "
        "Alibaba security group rules and AWS security groups and their rules.",
        enforcement_level=EnforcementLevel.MANDATORY,
        severity=Severity.HIGH,
        validate=_validator(rules.NO_INTERNET_INGRESS),
    ),
    ResourceValidationPolicy(
        name=rules.VPN_STRONG_CRYPTO,
        description="AWS VPN tunnels must not allow DH group 2 or SHA1, in phase 1 or 2; an unset list "
        "means AWS's defaults, which include both. Silent when cryptoProfile=legacy "
        "(vpn-tunnel-legacy-crypto reports instead).",
        enforcement_level=EnforcementLevel.MANDATORY,
        severity=Severity.HIGH,
        config_schema=CRYPTO_PROFILE_SCHEMA,
        validate=_validator(rules.VPN_STRONG_CRYPTO),
    ),
    ResourceValidationPolicy(
        name=rules.VPN_LEGACY_CRYPTO,
        description="With cryptoProfile=legacy, DH group 2 / SHA1 on AWS VPN tunnels is reported as a "
        "warning instead of blocking the deployment.",
        enforcement_level=EnforcementLevel.ADVISORY,
        severity=Severity.MEDIUM,
        config_schema=CRYPTO_PROFILE_SCHEMA,
        validate=_validator(rules.VPN_LEGACY_CRYPTO),
    ),
    ResourceValidationPolicy(
        name=rules.ECS_METADATA_TOKENS,
        description="The Alibaba ECS must serve its metadata (and user-data, which holds the PSKs) only "
        'with a session token: httpTokens = "required".',
        enforcement_level=EnforcementLevel.MANDATORY,
        severity=Severity.HIGH,
        validate=_validator(rules.ECS_METADATA_TOKENS),
    ),
    ResourceValidationPolicy(
        name=rules.VPN_TUNNEL_LOGGING,
        description="Both tunnels of an AWS VPN connection must send their logs to CloudWatch: "
        "tunnelN_log_options.cloudwatch_log_options.log_enabled = true.",
        enforcement_level=EnforcementLevel.MANDATORY,
        severity=Severity.MEDIUM,
        validate=_validator(rules.VPN_TUNNEL_LOGGING),
    ),
]
