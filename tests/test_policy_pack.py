"""The policy pack's checks (policy/rules.py) and their wiring (policy/policies.py).

Compliant fixtures are the real resources of the offline plan (what `python -m tools.plan
--json` writes); violating ones are those resources with one property changed or removed.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import plan_for

ROOT = Path(__file__).resolve().parent.parent
POLICY_DIR = ROOT / "policy"
if str(POLICY_DIR) not in sys.path:
    sys.path.insert(0, str(POLICY_DIR))  # as the Pulumi CLI runs the pack: its directory on sys.path

import policies  # noqa: E402
import rules  # noqa: E402
from pulumi_policy import (  # noqa: E402
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
)
from pulumi_policy.deserialize import deserialize_properties  # noqa: E402
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UNKNOWN_STRING_VALUE, unknown_checking_proxy  # noqa: E402

U = rules.UNKNOWN


def plan_json(**overrides: Any) -> list[dict[str, Any]]:
    """The plan's resources as `tools.plan --json` writes them (secrets masked)."""
    return plan_for(**overrides).to_json(show_secrets=False)["resources"]


def real(type_: str, **overrides: Any) -> list[dict[str, Any]]:
    found = [r for r in plan_json(**overrides) if r["type"] == type_]
    assert found, f"the plan has no {type_}"
    return found


def real_inputs(type_: str, **overrides: Any) -> dict[str, Any]:
    return copy.deepcopy(real(type_, **overrides)[0]["inputs"])


# ---- the whole plan ------------------------------------------------------------------------


def test_policy_dev_plan_is_compliant_with_every_policy():
    resources = plan_json()
    checked = {r["type"] for r in resources} & {rules.ALI_SG_RULE, rules.ALI_INSTANCE, rules.AWS_VPN_CONNECTION}
    assert checked == {rules.ALI_SG_RULE, rules.ALI_INSTANCE, rules.AWS_VPN_CONNECTION}
    findings = {r["urn"]: rules.evaluate(r["type"], r["inputs"]) for r in resources}
    assert {urn: f for urn, f in findings.items() if f} == {}


def test_policy_dev_plan_with_ssh_allowed_is_compliant():
    resources = plan_json(sshAllowedCidrs=["203.0.113.7/32"])
    ssh = [r for r in resources if r["type"] == rules.ALI_SG_RULE and r["inputs"].get("portRange") == "22/22"]
    assert [r["inputs"]["cidrIp"] for r in ssh] == ["203.0.113.7/32"]
    findings = {r["urn"]: rules.evaluate(r["type"], r["inputs"]) for r in resources}
    assert {urn: f for urn, f in findings.items() if f} == {}


def test_policy_legacy_plan_is_advisory_only_with_the_legacy_profile():
    vpn = real(rules.AWS_VPN_CONNECTION, cryptoProfile="legacy")[0]["inputs"]
    # Told nothing (cryptoProfile defaults to modern): the mandatory policy blocks.
    strict = rules.evaluate(rules.AWS_VPN_CONNECTION, vpn)
    assert set(strict) == {rules.VPN_STRONG_CRYPTO}
    assert len(strict[rules.VPN_STRONG_CRYPTO]) == 8  # DH and integrity, 2 phases, 2 tunnels
    # Told the stack is legacy: only the advisory policy reports, with the same findings.
    relaxed = rules.evaluate(rules.AWS_VPN_CONNECTION, vpn, rules.LEGACY)
    assert set(relaxed) == {rules.VPN_LEGACY_CRYPTO}
    assert [m.split(" (reported as advisory")[0] for m in relaxed[rules.VPN_LEGACY_CRYPTO]] == strict[
        rules.VPN_STRONG_CRYPTO
    ]
    assert all("cryptoProfile=legacy" in m for m in relaxed[rules.VPN_LEGACY_CRYPTO])


def test_policy_modern_plan_stays_compliant_with_the_legacy_profile():
    vpn = real_inputs(rules.AWS_VPN_CONNECTION)
    assert rules.evaluate(rules.AWS_VPN_CONNECTION, vpn, rules.LEGACY) == {}


# ---- 1. no ingress from the whole internet ---------------------------------------------------


def test_policy_ingress_real_alibaba_rules_pass():
    found = real(rules.ALI_SG_RULE)
    assert len(found) >= 5  # IKE/NAT-T from both tunnel endpoints, forwarding from the Alibaba VPC
    assert all(r["inputs"]["type"] == "ingress" for r in found)
    assert [rules.internet_ingress(rules.ALI_SG_RULE, r["inputs"]) for r in found] == [[]] * len(found)


@pytest.mark.parametrize(
    ("prop", "cidr"),
    [("cidrIp", "0.0.0.0/0"), ("ipv6CidrIp", "::/0"), ("cidrIp", "10.0.0.0/0"), ("cidrIp", " 0.0.0.0/0 ")],
)
def test_policy_ingress_alibaba_rule_from_internet_is_reported(prop, cidr):
    props = real_inputs(rules.ALI_SG_RULE)
    props[prop] = cidr
    [message] = rules.internet_ingress(rules.ALI_SG_RULE, props)
    assert message.startswith(f"{prop} is {cidr}: ingress from the whole internet")
    assert "allowed: a source narrower than /0" in message


def test_policy_ingress_alibaba_rule_missing_or_unknown_source_is_not_reported():
    base = real_inputs(rules.ALI_SG_RULE)
    no_cidr = {k: v for k, v in base.items() if k != "cidrIp"} | {"sourceSecurityGroupId": "sg-peer"}
    unknown_cidr = base | {"cidrIp": U}  # the tunnel endpoints' /32s are unknown during preview
    unknown_type = base | {"cidrIp": "0.0.0.0/0", "type": U}
    missing_type = {k: v for k, v in base.items() if k != "type"} | {"cidrIp": "0.0.0.0/0"}
    missing_policy = {k: v for k, v in base.items() if k != "policy"} | {"cidrIp": "0.0.0.0/0"}
    assert rules.internet_ingress(rules.ALI_SG_RULE, no_cidr) == []
    assert rules.internet_ingress(rules.ALI_SG_RULE, unknown_cidr) == []
    assert rules.internet_ingress(rules.ALI_SG_RULE, unknown_type) == []
    assert rules.internet_ingress(rules.ALI_SG_RULE, missing_type) == []
    # No policy means the provider's default, accept: that one opens the group.
    assert len(rules.internet_ingress(rules.ALI_SG_RULE, missing_policy)) == 1


def test_policy_ingress_egress_and_drop_rules_from_anywhere_pass():
    base = real_inputs(rules.ALI_SG_RULE) | {"cidrIp": "0.0.0.0/0"}
    assert rules.internet_ingress(rules.ALI_SG_RULE, base | {"type": "egress"}) == []
    assert rules.internet_ingress(rules.ALI_SG_RULE, base | {"policy": "drop"}) == []


def test_policy_ingress_aws_security_group_blocks():
    ok = {
        "vpcId": "vpc-1",
        "ingress": [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["10.10.0.0/16"]}],
    }
    bad = copy.deepcopy(ok)
    bad["ingress"].append({"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["10.1.0.0/16", "0.0.0.0/0"]})
    bad["ingress"].append({"protocol": "tcp", "fromPort": 22, "toPort": 22, "ipv6CidrBlocks": ["::/0"]})
    assert rules.internet_ingress(rules.AWS_SG, ok) == []
    messages = rules.internet_ingress(rules.AWS_SG, bad)
    assert [m.split(": ingress from")[0] for m in messages] == [
        "ingress[1].cidrBlocks[1] is 0.0.0.0/0",
        "ingress[2].ipv6CidrBlocks[0] is ::/0",
    ]
    # Missing or unknown ingress, or an unknown CIDR inside a block: nothing to report.
    assert rules.internet_ingress(rules.AWS_SG, {"vpcId": "vpc-1"}) == []
    assert rules.internet_ingress(rules.AWS_SG, {"ingress": U}) == []
    assert rules.internet_ingress(rules.AWS_SG, {"ingress": [{"cidrBlocks": [U]}, {"cidrBlocks": U}]}) == []


def test_policy_ingress_aws_rule_resources():
    rule = {"type": "ingress", "protocol": "udp", "fromPort": 500, "toPort": 500, "securityGroupId": "sg-1"}
    assert rules.internet_ingress(rules.AWS_SG_RULE, rule | {"cidrBlocks": ["192.0.2.10/32"]}) == []
    [m] = rules.internet_ingress(rules.AWS_SG_RULE, rule | {"cidrBlocks": ["0.0.0.0/0"]})
    assert m.startswith("cidrBlocks[0] is 0.0.0.0/0")
    assert rules.internet_ingress(rules.AWS_SG_RULE, rule | {"type": "egress", "cidrBlocks": ["0.0.0.0/0"]}) == []
    assert rules.internet_ingress(rules.AWS_SG_RULE, rule) == []  # source group or prefix list instead
    ingress = {"securityGroupId": "sg-1", "ipProtocol": "udp", "fromPort": 4500, "toPort": 4500}
    assert rules.internet_ingress(rules.AWS_SG_INGRESS_RULE, ingress | {"cidrIpv4": "192.0.2.10/32"}) == []
    [m] = rules.internet_ingress(rules.AWS_SG_INGRESS_RULE, ingress | {"cidrIpv6": "::/0"})
    assert m.startswith("cidrIpv6 is ::/0")
    assert rules.internet_ingress(rules.AWS_SG_INGRESS_RULE, ingress | {"cidrIpv4": U}) == []


@pytest.mark.parametrize(
    ("cidr", "whole"),
    [
        ("0.0.0.0/0", True),
        ("::/0", True),
        ("192.0.2.0/1", False),
        ("0.0.0.0", False),  # noqa: S104 - a host address (/32), not a bind
        ("bogus", False),
        (U, False),
    ],
)
def test_policy_whole_internet_cidrs(cidr, whole):
    assert rules.is_whole_internet(cidr) is whole


# ---- 2. no DH group 2 / SHA1 on the tunnels ------------------------------------------------


def test_policy_crypto_real_modern_vpn_passes():
    vpn = real_inputs(rules.AWS_VPN_CONNECTION)
    assert vpn["tunnel1Phase1DhGroupNumbers"] and vpn["tunnel2Phase2IntegrityAlgorithms"]
    assert rules.weak_vpn_crypto(rules.AWS_VPN_CONNECTION, vpn) == []
    assert rules.strong_crypto_findings(rules.AWS_VPN_CONNECTION, vpn, rules.MODERN) == []


def test_policy_crypto_dh2_and_sha1_are_reported():
    vpn = real_inputs(rules.AWS_VPN_CONNECTION)
    vpn["tunnel2Phase1DhGroupNumbers"] = [14, 2]
    vpn["tunnel1Phase2IntegrityAlgorithms"] = ["SHA2-256", "SHA1"]
    assert rules.strong_crypto_findings(rules.AWS_VPN_CONNECTION, vpn, rules.MODERN) == [
        "tunnel1Phase2IntegrityAlgorithms is ['SHA2-256', 'SHA1'], which includes SHA1; "
        "allowed: SHA2-256, SHA2-384, SHA2-512",
        "tunnel2Phase1DhGroupNumbers is [14, 2], which includes DH group 2 (1024-bit MODP); allowed: groups from 14-24",
    ]


def test_policy_crypto_numbers_arriving_as_doubles_are_understood():
    vpn = real_inputs(rules.AWS_VPN_CONNECTION)
    vpn["tunnel1Phase2DhGroupNumbers"] = [2.0]  # a protobuf Struct carries every number as a double
    [m] = rules.weak_vpn_crypto(rules.AWS_VPN_CONNECTION, vpn)
    assert m.startswith("tunnel1Phase2DhGroupNumbers is [2], which includes DH group 2")
    assert m.endswith("allowed: groups from 5, 14-24")


def test_policy_crypto_missing_lists_are_reported_as_aws_defaults():
    vpn = real_inputs(rules.AWS_VPN_CONNECTION)
    del vpn["tunnel1Phase1DhGroupNumbers"]
    vpn["tunnel2Phase2IntegrityAlgorithms"] = []  # an empty list leaves AWS's defaults too
    vpn["tunnel2Phase1IntegrityAlgorithms"] = None
    messages = rules.weak_vpn_crypto(rules.AWS_VPN_CONNECTION, vpn)
    assert [m.split(" is not set")[0] for m in messages] == [
        "tunnel1Phase1DhGroupNumbers",
        "tunnel2Phase1IntegrityAlgorithms",
        "tunnel2Phase2IntegrityAlgorithms",
    ]
    assert "AWS applies its default DH groups, which include group 2" in messages[0]
    assert "allowed: an explicit list without group 2, from 14-24" in messages[0]
    assert "default integrity algorithms, which include SHA1" in messages[1]
    assert "allowed: an explicit list of SHA2-256, SHA2-384, SHA2-512" in messages[2]


def test_policy_crypto_bare_vpn_connection_reports_every_default():
    bare = {"customerGatewayId": "cgw-1", "vpnGatewayId": "vgw-1", "type": "ipsec.1", "staticRoutesOnly": True}
    messages = rules.weak_vpn_crypto(rules.AWS_VPN_CONNECTION, bare)
    assert len(messages) == 8
    assert all("is not set, so AWS applies its default" in m for m in messages)


def test_policy_crypto_unknown_values_are_not_reported():
    vpn = real_inputs(rules.AWS_VPN_CONNECTION)
    vpn["tunnel1Phase1DhGroupNumbers"] = U
    vpn["tunnel1Phase2DhGroupNumbers"] = [U, 14]
    vpn["tunnel2Phase1IntegrityAlgorithms"] = U
    vpn["tunnel2Phase2IntegrityAlgorithms"] = ["SHA2-256", U]
    assert rules.weak_vpn_crypto(rules.AWS_VPN_CONNECTION, vpn) == []


def test_policy_crypto_only_looks_at_vpn_connections():
    props = {"tunnel1Phase1DhGroupNumbers": [2]}
    assert rules.weak_vpn_crypto(rules.ALI_INSTANCE, props) == []


@pytest.mark.parametrize(
    ("config", "profile"),
    [
        (None, "modern"),
        ({}, "modern"),
        ({"cryptoProfile": "modern"}, "modern"),
        ({"cryptoProfile": "legacy"}, "legacy"),
        ({"cryptoProfile": " Legacy "}, "legacy"),
        ({"cryptoProfile": "legcy"}, "modern"),  # a typo can only make the pack stricter
        ({"cryptoProfile": 1}, "modern"),
    ],
)
def test_policy_crypto_profile_from_config(config, profile):
    assert rules.crypto_profile(config) == profile


# ---- 3. ECS metadata ---------------------------------------------------------------------


def test_policy_ecs_metadata_real_instance_passes():
    ecs = real_inputs(rules.ALI_INSTANCE, ecsImage="ubuntu_24_04")
    assert ecs["httpTokens"] == "required" and rules.METADATA_TOKENS_TAG not in ecs["tags"]
    assert rules.ecs_metadata_tokens(rules.ALI_INSTANCE, ecs) == []


def test_policy_ecs_metadata_declared_exception_passes():
    """debian_12's cloud-init may predate hardened mode: optional, and the instance says why."""
    ecs = real_inputs(rules.ALI_INSTANCE)
    assert ecs["httpTokens"] == "optional"
    assert ecs["tags"][rules.METADATA_TOKENS_TAG].startswith("optional: cloud-init of debian_12")
    assert rules.ecs_metadata_tokens(rules.ALI_INSTANCE, ecs) == []


def test_policy_metadata_tag_key_is_the_programs():
    from components import alibaba_side

    assert rules.METADATA_TOKENS_TAG == alibaba_side.METADATA_TOKENS_TAG


def test_policy_ecs_metadata_optional_tokens_are_reported():
    ecs = real_inputs(rules.ALI_INSTANCE) | {"httpTokens": "optional", "tags": {"Name": "x"}}
    assert rules.ecs_metadata_tokens(rules.ALI_INSTANCE, ecs) == [
        "httpTokens is 'optional': metadata readable without a session token; allowed: 'required', or "
        "'optional' with the tag aws2aliyun-vpc:metadata-tokens = 'optional: <why>'"
    ]


def test_policy_ecs_metadata_missing_tokens_are_reported_unknown_are_not():
    ecs = real_inputs(rules.ALI_INSTANCE)
    del ecs["httpTokens"]
    [m] = rules.ecs_metadata_tokens(rules.ALI_INSTANCE, ecs)
    assert m.startswith("httpTokens is not set, so the instance takes Alibaba's default 'optional'")
    assert m.endswith("allowed: 'required'")
    assert rules.ecs_metadata_tokens(rules.ALI_INSTANCE, ecs | {"httpTokens": None}) == [m]
    assert rules.ecs_metadata_tokens(rules.ALI_INSTANCE, ecs | {"httpTokens": U}) == []
    assert rules.ecs_metadata_tokens(rules.AWS_VPN_CONNECTION, ecs) == []


# ---- 4. tunnel logs ------------------------------------------------------------------------


def test_policy_logging_real_vpn_passes():
    vpn = real_inputs(rules.AWS_VPN_CONNECTION)
    assert vpn["tunnel2LogOptions"]["cloudwatchLogOptions"]["logEnabled"] is True
    assert rules.vpn_tunnel_logging(rules.AWS_VPN_CONNECTION, vpn) == []


def test_policy_logging_disabled_tunnel_is_reported():
    vpn = real_inputs(rules.AWS_VPN_CONNECTION)
    vpn["tunnel2LogOptions"]["cloudwatchLogOptions"]["logEnabled"] = False
    assert rules.vpn_tunnel_logging(rules.AWS_VPN_CONNECTION, vpn) == [
        "tunnel2LogOptions.cloudwatchLogOptions.logEnabled is False: this tunnel's logs are off; allowed: true"
    ]


@pytest.mark.parametrize(
    "remove",
    [
        lambda v: v.pop("tunnel1LogOptions"),
        lambda v: v["tunnel1LogOptions"].pop("cloudwatchLogOptions"),
        lambda v: v["tunnel1LogOptions"]["cloudwatchLogOptions"].pop("logEnabled"),
        lambda v: v.__setitem__("tunnel1LogOptions", None),
    ],
    ids=["no-log-options", "no-cloudwatch-options", "no-log-enabled", "null-log-options"],
)
def test_policy_logging_missing_options_are_reported(remove):
    vpn = real_inputs(rules.AWS_VPN_CONNECTION)
    remove(vpn)
    assert rules.vpn_tunnel_logging(rules.AWS_VPN_CONNECTION, vpn) == [
        "tunnel1LogOptions.cloudwatchLogOptions.logEnabled is not set, so AWS keeps this tunnel's logs off; "
        "allowed: true"
    ]


def test_policy_logging_unknown_values_are_not_reported():
    vpn = real_inputs(rules.AWS_VPN_CONNECTION)
    vpn["tunnel1LogOptions"]["cloudwatchLogOptions"]["logEnabled"] = U
    vpn["tunnel2LogOptions"] = U
    assert rules.vpn_tunnel_logging(rules.AWS_VPN_CONNECTION, vpn) == []


# ---- the policies as the SDK runs them -----------------------------------------------------


def test_policy_pack_declares_each_policy_with_its_level():
    levels = {p.name: p.enforcement_level for p in policies.POLICIES}
    assert levels == {
        rules.NO_INTERNET_INGRESS: EnforcementLevel.MANDATORY,
        rules.VPN_STRONG_CRYPTO: EnforcementLevel.MANDATORY,
        rules.VPN_LEGACY_CRYPTO: EnforcementLevel.ADVISORY,
        rules.ECS_METADATA_TOKENS: EnforcementLevel.MANDATORY,
        rules.VPN_TUNNEL_LOGGING: EnforcementLevel.MANDATORY,
    }
    assert set(levels) == set(rules.CHECKS)
    with_config = {p.name: p.config_schema.properties for p in policies.POLICIES if p.config_schema}
    assert set(with_config) == {rules.VPN_STRONG_CRYPTO, rules.VPN_LEGACY_CRYPTO}
    for schema in with_config.values():
        assert schema["cryptoProfile"]["enum"] == ["modern", "legacy"]
        assert schema["cryptoProfile"]["default"] == "modern"
    assert all(p.description for p in policies.POLICIES)


def _run_policy(name: str, type_: str, wire_props: dict[str, Any], config: dict[str, Any] | None = None) -> list[str]:
    """One policy's validate, given properties the way the SDK's analyzer hands them over."""
    policy = next(p for p in policies.POLICIES if p.name == name)
    props = unknown_checking_proxy(deserialize_properties(wire_props))
    opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    args = ResourceValidationArgs(type_, props, "urn:pulumi:dev::aws2aliyun-vpc::t::n", "n", opts, None, config)
    reported: list[str] = []
    policy.validate(args, lambda message, urn=None: reported.append(message))
    return reported


def test_policy_validate_reports_through_the_sdk():
    rule = real_inputs(rules.ALI_SG_RULE) | {"cidrIp": "0.0.0.0/0"}
    [m] = _run_policy(rules.NO_INTERNET_INGRESS, rules.ALI_SG_RULE, rule)
    assert m.startswith("cidrIp is 0.0.0.0/0")


def test_policy_validate_tolerates_preview_unknowns():
    # During a preview the SDK's proxies raise on unknown values; the policies must see them as unknown.
    rule = real_inputs(rules.ALI_SG_RULE) | {"cidrIp": UNKNOWN_STRING_VALUE}
    assert _run_policy(rules.NO_INTERNET_INGRESS, rules.ALI_SG_RULE, rule) == []
    vpn = real_inputs(rules.AWS_VPN_CONNECTION)
    vpn["tunnel1LogOptions"]["cloudwatchLogOptions"]["logEnabled"] = UNKNOWN_BOOLEAN_VALUE
    vpn["tunnel1LogOptions"]["cloudwatchLogOptions"]["logGroupArn"] = UNKNOWN_STRING_VALUE
    assert _run_policy(rules.VPN_TUNNEL_LOGGING, rules.AWS_VPN_CONNECTION, vpn) == []


def test_policy_validate_crypto_follows_the_configured_profile():
    vpn = real_inputs(rules.AWS_VPN_CONNECTION, cryptoProfile="legacy")
    legacy = {"cryptoProfile": "legacy"}
    assert len(_run_policy(rules.VPN_STRONG_CRYPTO, rules.AWS_VPN_CONNECTION, vpn)) == 8
    assert _run_policy(rules.VPN_LEGACY_CRYPTO, rules.AWS_VPN_CONNECTION, vpn) == []
    assert _run_policy(rules.VPN_STRONG_CRYPTO, rules.AWS_VPN_CONNECTION, vpn, legacy) == []
    assert len(_run_policy(rules.VPN_LEGACY_CRYPTO, rules.AWS_VPN_CONNECTION, vpn, legacy)) == 8


def test_policy_to_plain_replaces_unknowns():
    wire = {"a": UNKNOWN_STRING_VALUE, "b": [1.0, UNKNOWN_STRING_VALUE, {"c": UNKNOWN_BOOLEAN_VALUE}], "d": "x"}
    plain = policies.to_plain(unknown_checking_proxy(deserialize_properties(wire)))
    assert plain == {"a": U, "b": [1.0, U, {"c": U}], "d": "x"}
    assert isinstance(plain, dict) and isinstance(plain["b"], list)


# ---- the pack's files ----------------------------------------------------------------------


def test_policy_pack_project_file_and_pins():
    project = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    venv = (POLICY_DIR / project["runtime"]["options"]["virtualenv"]).resolve()
    assert venv == (ROOT / ".venv").resolve()  # the project's virtualenv, set up by `make venv`
    assert project["version"]

    def pins(path: Path) -> dict[str, str]:
        lines = [ln.split("#")[0].strip() for ln in path.read_text().splitlines()]
        return dict(ln.split("==") for ln in lines if "==" in ln)

    pack = pins(POLICY_DIR / "requirements.txt")
    assert pack["pulumi"] == pins(ROOT / "requirements.txt")["pulumi"]
    from importlib.metadata import version

    assert pack["pulumi-policy"] == version("pulumi-policy")


def test_policy_legacy_config_file_sets_both_crypto_policies():
    config = json.loads((POLICY_DIR / "config.legacy.json").read_text())
    assert config == {
        rules.VPN_STRONG_CRYPTO: {"cryptoProfile": "legacy"},
        rules.VPN_LEGACY_CRYPTO: {"cryptoProfile": "legacy"},
    }
