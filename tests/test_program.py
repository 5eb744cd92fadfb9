"""The program's resource graph under Pulumi's mocks: wiring, secrets, security rules."""

from __future__ import annotations

import pulumi
import yaml

from components.link import TYPE_TOKEN, VpnLink
from components.program import link_args
from core import paths
from tests.conftest import dev_values, plan_for, stack_with
from tools import offline
from userdata.cloud_config import decode_user_data

ECS = "alicloud:ecs/instance:Instance"
EIP = "alicloud:ecs/eipAddress:EipAddress"
VPN = "aws:ec2/vpnConnection:VpnConnection"
CGW = "aws:ec2/customerGateway:CustomerGateway"
SG_RULE = "alicloud:ecs/securityGroupRule:SecurityGroupRule"


def user_data(plan: offline.Plan) -> dict:
    text = decode_user_data(plan.one(ECS).input("userData"))
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


def written(plan: offline.Plan) -> dict[str, str]:
    return {f["path"]: f["content"] for f in user_data(plan)["write_files"]}


def test_customer_gateway_address_is_the_eip(dev_plan):
    eip = dev_plan.one(EIP).output("ipAddress")
    cgw = dev_plan.one(CGW)
    assert cgw.input("ipAddress") == eip, cgw.urn
    assert cgw.input("type") == "ipsec.1"
    assert dev_plan.one(VPN).input("customerGatewayId") == cgw.id


def test_vpn_connection_is_static_and_waits_for_the_ecs(dev_plan):
    vpn = dev_plan.one(VPN)
    assert vpn.input("staticRoutesOnly") is True and vpn.input("type") == "ipsec.1"
    for n in (1, 2):
        assert vpn.input(f"tunnel{n}StartupAction") == "add", vpn.urn
        assert vpn.input(f"tunnel{n}DpdTimeoutSeconds") == 30
        assert vpn.input(f"tunnel{n}IkeVersions") == ["ikev2"]
        assert vpn.input(f"tunnel{n}Phase2EncryptionAlgorithms") == ["AES256-GCM-16"]
        log = vpn.input(f"tunnel{n}LogOptions")["cloudwatchLogOptions"]
        assert log["logEnabled"] is True
        assert log["logGroupArn"] == dev_plan.one("aws:cloudwatch/logGroup:LogGroup").output("arn")
    route = dev_plan.one("aws:ec2/vpnConnectionRoute:VpnConnectionRoute")
    assert route.input("destinationCidrBlock") == "172.16.0.0/16"
    assert route.input("vpnConnectionId") == vpn.id


def test_user_data_carries_both_tunnels_addresses_and_keys(dev_plan):
    vpn = dev_plan.one(VPN)
    files = written(dev_plan)
    conf = files[paths.SWANCTL_CONF_PATH]
    secrets = files[paths.SWANCTL_SECRETS_PATH]
    env = files[paths.LINK_ENV_PATH]
    eip = dev_plan.one(EIP).output("ipAddress")
    assert f"id = {eip}" in conf
    for n in (1, 2):
        assert f"remote_addrs = {vpn.output(f'tunnel{n}Address')}" in conf
        assert vpn.output(f"tunnel{n}PresharedKey") in secrets
        assert f"TUNNEL{n}_LOCAL_INSIDE={vpn.output(f'tunnel{n}CgwInsideAddress')}/30" in env
        assert f"TUNNEL{n}_REMOTE_INSIDE={vpn.output(f'tunnel{n}VgwInsideAddress')}" in env
    # The PSKs the VPN connection was given are the generated ones.
    passwords = dev_plan.of_type("random:index/randomPassword:RandomPassword")
    assert sorted(p.output("result") for p in passwords) == sorted(vpn.input(f"tunnel{n}PresharedKey") for n in (1, 2))


def test_configured_inside_cidrs_and_psks_flow_to_both_ends():
    plan = plan_for(
        tunnel1InsideCidr="169.254.10.0/30",
        tunnel2InsideCidr="169.254.20.0/30",
        tunnel1PresharedKey="Given.tunnel1_key",
        tunnel2PresharedKey="Given.tunnel2_key",
    )
    vpn = plan.one(VPN)
    assert vpn.input("tunnel1InsideCidr") == "169.254.10.0/30"
    assert vpn.input("tunnel1PresharedKey") == "Given.tunnel1_key"
    assert offline.is_secret(vpn.inputs["tunnel1PresharedKey"]), "a configured PSK stays secret"
    assert not plan.of_type("random:index/randomPassword:RandomPassword")
    env = written(plan)[paths.LINK_ENV_PATH]
    assert "TUNNEL1_LOCAL_INSIDE=169.254.10.2/30" in env and "TUNNEL2_REMOTE_INSIDE=169.254.20.1" in env
    assert "Given.tunnel2_key" in written(plan)[paths.SWANCTL_SECRETS_PATH]


def test_security_group_rules_are_exact(dev_plan):
    vpn = dev_plan.one(VPN)
    sg = dev_plan.one("alicloud:ecs/securityGroup:SecurityGroup")
    rules = {(r.input("ipProtocol"), r.input("portRange"), r.input("cidrIp")) for r in dev_plan.of_type(SG_RULE)}
    t1, t2 = vpn.output("tunnel1Address"), vpn.output("tunnel2Address")
    assert rules == {
        ("udp", "500/500", f"{t1}/32"),
        ("udp", "4500/4500", f"{t1}/32"),
        ("udp", "500/500", f"{t2}/32"),
        ("udp", "4500/4500", f"{t2}/32"),
        ("all", "-1/-1", "172.16.0.0/16"),
    }
    for r in dev_plan.of_type(SG_RULE):
        assert r.input("type") == "ingress" and r.input("securityGroupId") == sg.id, r.urn


def test_ssh_only_from_allowed_cidrs():
    plan = plan_for(sshAllowedCidrs=["203.0.113.7/32", "198.51.100.0/28"])
    ssh = {r.input("cidrIp") for r in plan.of_type(SG_RULE) if r.input("portRange") == "22/22"}
    assert ssh == {"203.0.113.7/32", "198.51.100.0/28"}
    assert all(not r.input("cidrIp").endswith("/0") for r in plan.of_type(SG_RULE))


def test_route_entry_sends_aws_cidr_to_the_ecs(dev_plan):
    ecs = dev_plan.one(ECS)
    route = dev_plan.one("alicloud:vpc/routeEntry:RouteEntry")
    assert route.input("nexthopType") == "Instance"
    assert route.input("nexthopId") == ecs.id
    assert route.input("destinationCidrblock") == "10.10.0.0/16"
    assert route.input("routeTableId") == dev_plan.one("alicloud:vpc/network:Network").output("routeTableId")
    assoc = dev_plan.one("alicloud:ecs/eipAssociation:EipAssociation")
    assert (assoc.input("instanceId"), assoc.input("allocationId")) == (ecs.id, dev_plan.one(EIP).id)


def test_ecs_is_hardened_and_pinned(dev_plan):
    ecs = dev_plan.one(ECS)
    assert ecs.input("httpTokens") == "optional", "debian_12: see test_day_two (hardened mode per image)"
    assert ecs.input("privateIp") == "172.16.1.10"
    assert ecs.input("internetMaxBandwidthOut") == 0
    assert ecs.input("vswitchId") == dev_plan.one("alicloud:vpc/switch:Switch").id
    assert ecs.input("keyName") is None, "no key pair unless one is configured"


def test_every_child_is_under_the_component(dev_plan):
    component = dev_plan.one(TYPE_TOKEN)
    stack = dev_plan.one("pulumi:pulumi:Stack")
    assert component.parent == stack.urn
    for r in dev_plan.resources:
        if r.urn not in (stack.urn, component.urn):
            assert r.parent == component.urn, r.urn


def test_secrets_are_secret_in_the_plan(dev_plan):
    assert offline.is_secret(dev_plan.one(ECS).inputs["userData"])
    vpn = dev_plan.one(VPN)
    for n in (1, 2):
        assert offline.is_secret(vpn.inputs[f"tunnel{n}PresharedKey"])
        assert offline.is_secret(vpn.outputs[f"tunnel{n}PresharedKey"])
        assert offline.is_secret(dev_plan.outputs[f"tunnel{n}PresharedKey"])
    public = {k for k, v in dev_plan.outputs.items() if not offline.is_secret(v)}
    assert {
        "eipAddress",
        "tunnel1Address",
        "tunnel2Address",
        "vpnConnectionId",
        "ecsInstanceId",
        "sshCommand",
    } <= public
    assert dev_plan.outputs["sshCommand"] == "ssh root@198.51.100.10"


def test_component_outputs_are_secret_with_is_secret():
    """The live Outputs, checked with Output.is_secret() as Pulumi's testing guide does."""
    seen: dict[str, bool] = {}

    async def program():
        link = VpnLink("link", link_args(dev_values(), set()))
        for key in ("tunnel1PresharedKey", "tunnel2PresharedKey", "eipAddress", "vpnConnectionId"):
            seen[key] = await link.outputs[key].is_secret()
        user_data = next(r for r in link._childResources if isinstance(r, pulumi.CustomResource) and r._type == ECS)  # type: ignore[attr-defined]
        seen["userData"] = await user_data.user_data.is_secret()  # type: ignore[attr-defined]

    offline.run(stack_with(), program=program)
    assert seen == {
        "tunnel1PresharedKey": True,
        "tunnel2PresharedKey": True,
        "eipAddress": False,
        "vpnConnectionId": False,
        "userData": True,
    }


def test_existing_aws_vpc_is_attached_not_created():
    plan = plan_for(
        awsVpcId="vpc-0123456789abcdef0", awsRouteTableIds=["rtb-0123456789abcdef0", "rtb-0fedcba9876543210"]
    )
    assert not plan.of_type("aws:ec2/vpc:Vpc")
    assert plan.one("aws:ec2/vpnGatewayAttachment:VpnGatewayAttachment").input("vpcId") == "vpc-0123456789abcdef0"
    props = plan.of_type("aws:ec2/vpnGatewayRoutePropagation:VpnGatewayRoutePropagation")
    assert sorted(p.input("routeTableId") for p in props) == ["rtb-0123456789abcdef0", "rtb-0fedcba9876543210"]


def test_verify_runs_the_verify_script_over_ssh_without_secrets_in_its_text():
    plan = plan_for(verify=True, sshAllowedCidrs=["203.0.113.7/32"])
    cmd = plan.one("command:remote:Command")
    assert paths.VERIFY_PATH in cmd.input("create")
    assert "cloud-init status --wait" in cmd.input("create")
    conn = cmd.inputs["connection"]
    assert offline.is_secret(conn) or offline.is_secret(conn.get("privateKey")), "private key is a secret"
    key = plan.one("tls:index/privateKey:PrivateKey")
    assert key.output("privateKeyOpenssh") not in cmd.input("create")
    assert offline.is_secret(cmd.outputs["stdout"])
    assert offline.is_secret(plan.outputs["sshPrivateKey"])
    pair = plan.one("alicloud:ecs/ecsKeyPair:EcsKeyPair")
    assert plan.one(ECS).input("keyName") == pair.input("keyPairName")


def test_legacy_profile_reaches_both_ends():
    plan = plan_for(cryptoProfile="legacy")
    vpn = plan.one(VPN)
    assert vpn.input("tunnel1IkeVersions") == ["ikev1"]
    assert vpn.input("tunnel1Phase1DhGroupNumbers") == [2]
    conf = written(plan)[paths.SWANCTL_CONF_PATH]
    assert "version = 1" in conf and "proposals = aes128-sha1-modp1024" in conf


def test_plan_is_deterministic():
    a = offline.run(stack_with()).to_json(show_secrets=True)
    b = offline.run(stack_with()).to_json(show_secrets=True)
    assert a == b


def test_bad_settings_under_pulumi_are_a_run_error_before_any_resource():
    import pytest

    stack = stack_with(awsVpcCidr="10.10.0.0/33", dpdTimeoutSeconds="5")
    with pytest.raises(pulumi.RunError) as err:
        offline.run(stack)
    message = str(err.value)
    assert "awsVpcCidr: '10.10.0.0/33' is invalid" in message
    assert "dpdTimeoutSeconds: 5 is invalid" in message


def test_new_user_data_replaces_the_ecs_and_image_drift_is_ignored(dev_plan):
    ecs = dev_plan.one(ECS)
    assert ecs.options["replaceOnChanges"] == ["userData", "vswitchId"], "cloud-init runs user-data once: replace"
    assert ecs.options["deleteBeforeReplace"] is True, "the fixed private IP must be freed first"
    assert ecs.options["ignoreChanges"] == ["imageId"], "a newer image must not re-image the disk"


def test_resources_that_depend_on_the_tunnels_wait_for_the_vpn(dev_plan):
    vpn = dev_plan.one(VPN)
    ecs = dev_plan.one(ECS)
    # user-data is built from the VPN connection's outputs, so the ECS depends on it.
    assert vpn.urn in ecs.depends_on
    assert dev_plan.one(EIP).urn in dev_plan.one(CGW).depends_on
