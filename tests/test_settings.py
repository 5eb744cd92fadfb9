"""Settings validation: every rule, good and bad, each error naming key, value and rule."""

from __future__ import annotations

import ipaddress

import pytest

from core.settings import KEYS, SettingsError, gateway_private_ip, load_settings
from tests.conftest import dev_values


def problems(**overrides) -> list[str]:
    with pytest.raises(SettingsError) as err:
        load_settings(dev_values(**overrides))
    return err.value.problems


def test_dev_stack_is_valid_and_frozen():
    s = load_settings(dev_values())
    assert str(s.aws_vpc_cidr) == "10.10.0.0/16"
    assert s.crypto.name == "modern"
    assert s.dpd_timeout_s == 30
    assert s.tunnel_inside_cidrs == (None, None)
    assert s.tunnel_preshared_keys == (None, None)
    assert s.ssh_allowed_cidrs == ()
    assert s.verify is False
    with pytest.raises(AttributeError):
        s.verify = True  # type: ignore[misc]


def test_defaults_apply_when_keys_are_absent():
    s = load_settings({"aws:region": "us-east-1", "alicloud:region": "cn-hangzhou"})
    by_name = {k.name: k.default for k in KEYS}
    assert str(s.aws_vpc_cidr) == by_name["awsVpcCidr"]
    assert str(s.ali_vswitch_cidr) == by_name["aliVswitchCidr"]
    assert s.ecs_image == by_name["ecsImage"]


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("awsVpcCidr", "10.10.0.0/33", "IPv4 CIDR"),
        ("awsVpcCidr", "10.10.0.1/16", "did you mean 10.10.0.0/16"),
        ("awsVpcCidr", "not-a-cidr", "IPv4 CIDR"),
        ("awsVpcCidr", "10.0.0.0/8", "/16 to /28"),
        ("aliVpcCidr", "10.10.128.0/17", "must not overlap awsVpcCidr"),
        ("aliVpcCidr", "169.254.0.0/16", "169.254.0.0/16"),
        ("aliVswitchCidr", "172.17.1.0/24", "inside aliVpcCidr"),
        ("aliVswitchCidr", "172.16.0.0/30", "/16 to /29"),
        ("tunnel1InsideCidr", "169.254.10.0/29", "must be a /30"),
        ("tunnel1InsideCidr", "10.0.0.0/30", "inside 169.254.0.0/16"),
        ("tunnel1InsideCidr", "169.254.3.0/30", "AWS reserves"),
        ("tunnel2InsideCidr", "169.254.169.252/30", "AWS reserves"),
        ("tunnel1PresharedKey", "short", "8-64 characters"),
        ("tunnel1PresharedKey", "0startswithzero", "not starting with '0'"),
        ("tunnel2PresharedKey", "has+plus+sign", "letters, digits"),
        ("tunnel2PresharedKey", "x" * 65, "8-64 characters"),
        ("cryptoProfile", "paranoid", "modern, legacy"),
        ("dpdTimeoutSeconds", "29", "at least 30"),
        ("dpdTimeoutSeconds", "thirty", "whole number"),
        ("ecsInstanceType", "t3.micro", "ECS instance type"),
        ("ecsImage", "windows", "debian_12, ubuntu_22_04, ubuntu_24_04"),
        ("sshAllowedCidrs", ["0.0.0.0/0"], "whole internet"),
        ("sshAllowedCidrs", ["203.0.113.7/24"], "no host bits"),
        ("sshAllowedCidrs", '["198.51.100.0/33"]', "IPv4 CIDR"),
        ("verify", "maybe", "true or false"),
        ("awsVpcId", "vpc-xyz", "AWS VPC id"),
        ("awsRouteTableIds", ["rtb-0123456789abcdef0"], "only applies with awsVpcId"),
        ("tunnelLogRetentionDays", "10", "CloudWatch accepts"),
        ("aliZoneId", "Zone I", "zone id"),
    ],
)
def test_bad_value_is_rejected_with_key_value_and_rule(key, value, fragment):
    found = problems(**{key: value})
    mine = [p for p in found if p.startswith(key)]
    assert len(mine) == 1, found
    line = mine[0]
    assert fragment in line, line
    if "PresharedKey" not in key:
        shown = value if isinstance(value, str) else str(value[0]) if isinstance(value, list) else str(value)
        assert shown.strip('[]"') in line or key == "sshAllowedCidrs", line


def test_psk_values_never_appear_in_errors():
    line = problems(tunnel1PresharedKey="bad+secret+value")[0]
    assert "bad+secret+value" not in line
    assert "[secret]" in line


def test_equal_inside_cidrs_are_rejected():
    found = problems(tunnel1InsideCidr="169.254.10.0/30", tunnel2InsideCidr="169.254.10.0/30")
    assert any(p.startswith("tunnel2InsideCidr") and "must differ" in p for p in found)


def test_every_problem_is_reported_at_once():
    found = problems(
        awsVpcCidr="10.10.0.0/33",
        aliVswitchCidr="192.168.0.0/24",
        cryptoProfile="nope",
        dpdTimeoutSeconds="5",
        tunnel1InsideCidr="169.254.0.0/30",
    )
    keys = {p.split(":")[0].split("[")[0] for p in found}
    assert keys == {"awsVpcCidr", "aliVswitchCidr", "cryptoProfile", "dpdTimeoutSeconds", "tunnel1InsideCidr"}


def test_unknown_key_is_named_with_a_suggestion():
    found = problems(awsVpcCdr="10.0.0.0/16")
    assert found[0].startswith("aws2aliyun-vpc:awsVpcCdr")
    assert "did you mean awsVpcCidr" in found[0]


def test_missing_provider_regions_are_reported():
    found = problems(**{"aws:region": None, "alicloud:region": None})
    assert any(p.startswith("aws:region") for p in found)
    assert any(p.startswith("alicloud:region") for p in found)


def test_verify_needs_ssh_access():
    assert any(p.startswith("verify") and "sshAllowedCidrs" in p for p in problems(verify="true"))
    s = load_settings(dev_values(verify="true", sshAllowedCidrs=["203.0.113.7/32"]))
    assert s.verify and [str(c) for c in s.ssh_allowed_cidrs] == ["203.0.113.7/32"]


def test_existing_vpc_needs_route_tables():
    assert any(p.startswith("awsRouteTableIds") for p in problems(awsVpcId="vpc-0123456789abcdef0"))
    s = load_settings(dev_values(awsVpcId="vpc-0123456789abcdef0", awsRouteTableIds='["rtb-0123456789abcdef0"]'))
    assert s.aws_route_table_ids == ("rtb-0123456789abcdef0",)


def test_good_optional_values_are_accepted():
    s = load_settings(
        dev_values(
            tunnel1InsideCidr="169.254.10.0/30",
            tunnel2InsideCidr="169.254.20.0/30",
            tunnel1PresharedKey="Abc.defgh_1234",
            tunnel2PresharedKey="_startsWithUnderscore",
            cryptoProfile="legacy",
            dpdTimeoutSeconds=45,
            ecsImage="m-bp1abcdefgh12345678",
            verify=True,
            sshAllowedCidrs=["203.0.113.0/24"],
        ),
        secret_keys={"aws2aliyun-vpc:tunnel1PresharedKey"},
    )
    assert [str(c) for c in s.tunnel_inside_cidrs] == ["169.254.10.0/30", "169.254.20.0/30"]
    assert s.crypto.name == "legacy" and s.dpd_timeout_s == 45
    assert repr(s.tunnel_preshared_keys[0]) == "Secret('[secret]')"
    # tunnel2's key came in plain text: the program warns.
    assert s.notes == (
        "tunnel2PresharedKey is set in plain text; use `pulumi config set --secret tunnel2PresharedKey`",
    )


@pytest.mark.parametrize(
    ("vswitch", "expected"),
    [("172.16.1.0/24", "172.16.1.10"), ("172.16.1.0/28", "172.16.1.10"), ("172.16.1.0/29", "172.16.1.4")],
)
def test_gateway_private_ip_is_free_in_the_vswitch(vswitch, expected):
    net = ipaddress.ip_network(vswitch)
    ip = gateway_private_ip(net)
    assert str(ip) == expected
    # Alibaba reserves the first and the last three addresses of a vSwitch.
    assert net.network_address < ip < net.broadcast_address - 2


def test_problems_come_in_key_order_a_rule_after_the_last_key_it_reads():
    found = problems(
        deletionProtection="true",
        awsVpcCidr="10.10.0.0/33",
        aliVswitchCidr="192.168.0.0/24",
        verify="true",
        dpdTimeoutSeconds="5",
        tunnel1InsideCidr="169.254.10.0/30",
        tunnel2InsideCidr="169.254.10.0/30",
        awsVpcCdr="10.0.0.0/16",
        **{"aws:region": None},
    )
    assert [p.split(": ")[0] for p in found] == [
        "aws2aliyun-vpc:awsVpcCdr",
        "aws:region",
        "awsVpcCidr",
        "aliVswitchCidr",
        "tunnel2InsideCidr",
        "dpdTimeoutSeconds",
        "verify",
        "aliZoneId",
    ]
