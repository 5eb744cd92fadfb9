"""Day two on the real providers: rotations, key changes, second stacks, zones, pinned
inside CIDRs. Each change is replayed with `tools.rollout` (the engine's replacement order
plus what the providers' source says) over the offline plans before and after it."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import SettingsError, load_settings
from tests.conftest import dev_values, plan_for, stack_with
from tools import offline, rollout, stackfile
from tools.mocks import CloudMocks

ROOT = Path(__file__).resolve().parent.parent
PROD = stackfile.load(ROOT / "Pulumi.prod.yaml")
ECS = "alicloud:ecs/instance:Instance"
KEY_PAIR = "alicloud:ecs/ecsKeyPair:EcsKeyPair"
SWITCH = "alicloud:vpc/switch:Switch"
VPN = "aws:ec2/vpnConnection:VpnConnection"
NEW_PSKS = {"tunnel1PresharedKey": "Rotated.tunnel1_key", "tunnel2PresharedKey": "Rotated.tunnel2_key"}
RSA_A = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCaaaa first@example"
RSA_B = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCbbbb second@example"


def prod_plan(**changes) -> offline.Plan:
    return rollout.plan_with(PROD, changes)


def fresh(**overrides) -> offline.Plan:
    """A plan of its own (plan_for's are cached and shared): for tests that edit one."""
    return offline.run(stack_with(**overrides))


def test_prod_psk_rotation_replaces_the_gateway_and_every_step_succeeds():
    """Item 1: the README's rotation on the protected prod stack."""
    steps = rollout.simulate(prod_plan(), prod_plan(**NEW_PSKS))
    assert steps.problems == []
    assert steps.ops("link-vpn") == ["update"], "AWS changes PSKs in place"
    assert steps.ops("link-gateway") == ["delete", "create"]
    # The route entry and the EIP association go first (delete-before-replace), and the
    # old instance can then be deleted: nothing is left half done.
    for dependent in ("link-route-to-aws-10-20-0-0-16", "link-eip-assoc"):
        assert steps.ops(dependent) == ["delete", "create"]
        assert steps.index("delete", dependent) < steps.index("delete", "link-gateway")
        assert steps.index("create", dependent) > steps.index("create", "link-gateway")
    assert steps.index("update", "link-vpn") < steps.index("delete", "link-gateway"), "user-data needs the new PSKs"


def test_planning_an_unchanged_stack_again_leaves_the_gateway_alone():
    """The user-data is gzipped at plan time (libdeflate, pinned): the same stack planned
    again gives byte-identical userData, so a `pulumi up` with nothing changed does not
    replace the gateway (userData is in its replaceOnChanges)."""
    first, again = prod_plan(), prod_plan()
    assert first.one(ECS).input("userData") == again.one(ECS).input("userData")
    steps = rollout.simulate(first, again)
    assert steps.problems == [] and steps.ops("link-gateway") == []


def test_prod_protects_what_is_never_replaced_and_not_the_gateway():
    plan = prod_plan()
    assert plan.one(ECS).input("deletionProtection") is False
    assert plan.one("alicloud:ecs/eipAddress:EipAddress").input("deletionProtection") is True


def test_rollout_refuses_a_protected_gateway_replacement():
    """The check behind item 1 can fail: a deletion-protected ECS is refused mid-way."""
    before, after = prod_plan(), prod_plan(**NEW_PSKS)
    for plan in (before, after):
        plan.one(ECS).inputs["deletionProtection"] = True
    steps = rollout.simulate(before, after)
    assert len(steps.problems) == 1
    assert "link-gateway: delete refused" in steps.problems[0]
    assert "already deleted: link-route-to-aws-10-20-0-0-16, link-eip-assoc" in steps.problems[0]


def test_key_pair_names_are_per_stack():
    """Item 2: Alibaba key-pair names are unique per account and region."""
    names = {
        stack: offline.run(stack_with(name=stack, sshPublicKey=RSA_A)).one(KEY_PAIR).input("keyPairName")
        for stack in ("dev", "staging")
    }
    assert names["dev"] != names["staging"]
    assert names["dev"].startswith("aws2aliyun-vpc-dev-link-")
    assert names["staging"].startswith("aws2aliyun-vpc-staging-link-")


def test_a_new_ssh_key_replaces_the_key_pair_before_deleting_the_old_one():
    """Item 3: the provider never updates a key pair's public key."""
    before, after = plan_for(sshPublicKey=RSA_A), plan_for(sshPublicKey=RSA_B)
    assert before.one(KEY_PAIR).input("keyPairName") != after.one(KEY_PAIR).input("keyPairName")
    assert after.one(KEY_PAIR).options["replaceOnChanges"] == ["publicKey"]
    steps = rollout.simulate(before, after)
    assert steps.problems == []
    assert steps.ops("link-key") == ["create", "delete"], "new name: create-before-delete cannot collide"
    assert steps.ops("link-gateway") == ["update"], "key_name changes in place (detach, attach, reboot)"
    assert after.one(ECS).input("keyName") == after.one(KEY_PAIR).input("keyPairName")


def test_rollout_reports_a_public_key_change_the_provider_drops():
    before, after = fresh(sshPublicKey=RSA_A), fresh(sshPublicKey=RSA_B)
    for plan in (before, after):
        plan.one(KEY_PAIR).inputs["keyPairName"] = "link"  # the name of old
        plan.one(KEY_PAIR).options["replaceOnChanges"] = []
    steps = rollout.simulate(before, after)
    assert steps.problems == [
        "link-key: a change of publicKey is accepted and never applied by the provider "
        f"({rollout.RULES[KEY_PAIR].source})"
    ]


def test_ed25519_keys_are_refused_with_the_key_named():
    """Item 4: ImportKeyPair accepts RSA, DSA and ECDSA only."""
    with pytest.raises(SettingsError) as err:
        load_settings(dev_values(sshPublicKey="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIabc me@example"))
    (problem,) = err.value.problems
    assert problem.startswith("sshPublicKey: 'ssh-ed25519 AAAAC3")
    assert "ImportKeyPair accepts only ssh-rsa, ssh-dss or ecdsa-sha2-nistp256/384/521" in problem
    ok = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAI me@example"
    assert load_settings(dev_values(sshPublicKey=ok)).ssh_public_key == ok


def test_a_looked_up_zone_is_held_when_stock_changes():
    """Item 5: with no aliZoneId, today's first zone is taken once and then kept."""
    before = offline.run(stack_with(), mocks=CloudMocks(zones=("cn-hangzhou-i", "cn-hangzhou-j")))
    after = offline.run(stack_with(), mocks=CloudMocks(zones=("cn-hangzhou-j",)))
    assert before.one(SWITCH).input("zoneId") == "cn-hangzhou-i"
    assert after.one(SWITCH).options["ignoreChanges"] == ["zoneId"]
    assert after.one(ECS).input("availabilityZone") == after.one(SWITCH).output("zoneId"), "one zone, the vSwitch's"
    steps = rollout.simulate(before, after)
    assert steps.steps == [] and steps.problems == []


def test_a_chosen_zone_change_replaces_the_vswitch_delete_first():
    before = plan_for(aliZoneId="cn-hangzhou-i")
    after = plan_for(aliZoneId="cn-hangzhou-k")
    assert after.one(SWITCH).options["ignoreChanges"] == []
    steps = rollout.simulate(before, after)
    assert steps.problems == [], "the same vSwitch CIDR in the same VPC: only after the old one is gone"
    assert steps.ops("link-ali-vswitch") == ["delete", "create"]
    assert steps.ops("link-gateway") == ["delete", "create"]
    assert steps.index("delete", "link-gateway") < steps.index("delete", "link-ali-vswitch")


def test_protected_stacks_must_pin_their_zone():
    with pytest.raises(SettingsError) as err:
        load_settings(dev_values(deletionProtection=True))
    assert [p.split(":")[0] for p in err.value.problems] == ["aliZoneId"]
    assert load_settings(dict(PROD.values)).ali_zone_id == "cn-hangzhou-i"


def test_changing_one_pinned_inside_cidr_replaces_the_connection_delete_first():
    """Item 6: inside CIDRs are unique per virtual private gateway."""
    after = prod_plan(tunnel1InsideCidr="169.254.230.0/30")
    assert after.one(VPN).options["deleteBeforeReplace"] is True
    steps = rollout.simulate(prod_plan(), after)
    assert steps.problems == []
    assert steps.ops("link-vpn") == ["delete", "create"]
    # New tunnel addresses reach the gateway's user-data: it is replaced after the connection.
    assert steps.ops("link-gateway") == ["delete", "create"]
    assert steps.index("create", "link-vpn") < steps.index("create", "link-gateway")


def test_rollout_refuses_a_create_before_delete_connection_with_a_pinned_cidr():
    before, after = prod_plan(), prod_plan(tunnel1InsideCidr="169.254.230.0/30")
    after.one(VPN).options["deleteBeforeReplace"] = False
    steps = rollout.simulate(before, after)
    assert any(
        "link-vpn: create refused while the old link-vpn exists" in p and "169.254.221.0/30" in p
        for p in steps.problems
    )


def test_unpinned_inside_cidrs_keep_create_before_delete():
    assert plan_for().one(VPN).options["deleteBeforeReplace"] is False


@pytest.mark.parametrize(
    ("image", "tokens"),
    [
        ("debian_12", "optional"),
        ("ubuntu_22_04", "required"),
        ("ubuntu_24_04", "required"),
        ("m-bp1abcdefghijklmn", "optional"),
    ],
)
def test_metadata_hardened_mode_only_where_cloud_init_can_read_user_data(image, tokens):
    """Item 7: cloud-init older than 23.2.2 cannot read user-data in hardened mode."""
    ecs = plan_for(ecsImage=image).one(ECS)
    assert ecs.input("httpTokens") == tokens
    assert ecs.input("httpEndpoint") == "enabled"


def test_verify_output_is_not_streamed_to_the_log():
    """Item 8: pulumi-command logs stdout/stderr unless logging is off."""
    cmd = plan_for(verify=True, sshAllowedCidrs=["203.0.113.7/32"]).one("command:remote:Command")
    assert cmd.input("logging") == "none"
    assert {"stderr", "stdout"} <= set(cmd.options["additionalSecretOutputs"])


def test_a_new_release_of_an_image_alias_never_touches_the_gateway():
    before, after = plan_for(), fresh()
    assert after.one(ECS).options["ignoreChanges"] == ["imageId"]
    after.one(ECS).inputs["imageId"] = "debian_12_12_x64_20G_alibase_20261115.vhd"
    assert rollout.simulate(before, after).steps == []


def test_pinning_an_image_id_replaces_the_gateway_and_never_re_images_it():
    """Item 9: the way out when Alibaba has retired the image a stack was created from."""
    before, after = plan_for(ecsImage="m-bp1aaaaaaaaaaaaaaaaa"), plan_for(ecsImage="m-bp1bbbbbbbbbbbbbbbbb")
    assert after.one(ECS).options["ignoreChanges"] == []
    assert after.one(ECS).options["replaceOnChanges"] == ["userData", "imageId", "vswitchId"]
    steps = rollout.simulate(before, after)
    assert steps.problems == [] and steps.ops("link-gateway") == ["delete", "create"]


def test_rollout_cli_prints_the_steps_of_a_rotation(capsys):
    args = ["--stack", "prod"] + [f"--set={k}={v}" for k, v in NEW_PSKS.items()]
    assert rollout.main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["update", "link-vpn", "(changed", "tunnel1PresharedKey,", "tunnel2PresharedKey)"]
    assert [line.split()[:2] for line in out[1:4]] == [
        ["delete", "link-route-to-aws-10-20-0-0-16"],
        ["delete", "link-eip-assoc"],
        ["delete", "link-gateway"],
    ]
    assert not any(line.startswith("refused") for line in out)
    assert "Rotated.tunnel1_key" not in "\n".join(out), "no secret in the output"


def test_rollout_cli_refuses_bad_settings_naming_the_key(capsys):
    assert rollout.main(["--stack", "dev", "--set", "sshPublicKey=ssh-ed25519 AAAAC3Nza me"]) == 2
    err = capsys.readouterr().err
    assert "error: sshPublicKey: 'ssh-ed25519" in err and "Traceback" not in err


def test_existing_stacks_get_the_per_stack_display_names_in_place():
    """vpc_name, vswitch_name, security_group_name, address_name, instance_name and tags are
    not ForceNew in the provider: the renaming this change brings updates, never replaces."""
    before, after = fresh(), plan_for()
    old_names = {
        "alicloud:vpc/network:Network": "vpcName",
        "alicloud:vpc/switch:Switch": "vswitchName",
        "alicloud:ecs/securityGroup:SecurityGroup": "securityGroupName",
        "alicloud:ecs/eipAddress:EipAddress": "addressName",
    }
    for type_, key in old_names.items():
        before.one(type_).inputs[key] = "link"
        before.one(type_).inputs["tags"] = {"Name": "link", "managed-by": "aws2aliyun-vpc"}
    before.one(ECS).inputs["instanceName"] = "link-gateway"
    steps = rollout.simulate(before, after)
    assert steps.problems == []
    assert {s.op for s in steps.steps} == {"update"}
    assert len(steps.steps) == len(old_names) + 1


TGW_STACK = {"awsVpcCidr": None, "awsTransitGatewayId": "tgw-0123456789abcdef0", "awsCidrs": ["10.30.0.0/16"]}
TGW_ROUTE = "aws:ec2transitgateway/route:Route"


def test_a_replaced_transit_gateway_vpn_moves_its_routes_delete_first():
    """Issue 12: a Transit Gateway route table holds one route per destination and every
    argument of a route is ForceNew (docs/provider-facts-day-two.md item 43), so a new VPN
    attachment's routes can only be created once the old ones are gone."""
    before = fresh(**TGW_STACK)
    after = fresh(**TGW_STACK, tunnel1InsideCidr="169.254.230.0/30")
    assert all(r.options["deleteBeforeReplace"] for r in after.of_type(TGW_ROUTE))
    steps = rollout.simulate(before, after)
    assert steps.problems == []
    route = "link-tgw-route-172-16-0-0-16"
    assert steps.ops(route) == ["delete", "create"]
    assert steps.index("delete", route) < steps.index("create", "link-vpn") < steps.index("create", route)


def test_unpinning_an_inside_cidr_replaces_the_vpn_first_and_its_routes_delete_first():
    """Unpinned, the connection is replaced create-before-delete (nothing collides), but its
    new attachment's routes would collide with the old ones in the route table: only their
    own delete-before-replace makes the step possible."""
    before = fresh(**TGW_STACK, tunnel1InsideCidr="169.254.230.0/30")
    after = fresh(**TGW_STACK)
    assert after.one(VPN).options["deleteBeforeReplace"] is False
    steps = rollout.simulate(before, after)
    route = "link-tgw-route-172-16-0-0-16"
    # (The mocks give the new connection its predecessor's outside addresses; the rollout
    # knows they are new on AWS, so the security group rules to them do not collide.)
    assert steps.problems == []
    assert steps.ops(route) == ["delete", "create"]
    for r in after.of_type(TGW_ROUTE):
        r.options["deleteBeforeReplace"] = False
    refused = rollout.simulate(before, after).problems
    assert any(f"{route}: create refused while the old {route} exists" in p for p in refused), refused


def test_adding_a_prefix_creates_its_routes_and_touches_no_other():
    """Issue 12: resources per prefix are named by their prefix, so adding one is additive."""
    base = {
        "aliVpcCidr": None,
        "aliVswitchCidr": "172.16.1.0/24",
        "aliVpcId": "vpc-bp1opxu1zkhn00gzv26cc",
        "awsVpcCidr": None,
        "awsVpcId": "vpc-0123456789abcdef0",
        "awsRouteTableIds": ["rtb-0123456789abcdef0"],
    }
    before = fresh(**base, aliCidrs=["172.16.0.0/16"], awsCidrs=["10.10.0.0/16"])
    after = fresh(**base, aliCidrs=["172.16.0.0/16", "192.168.8.0/24"], awsCidrs=["10.10.0.0/16", "10.20.0.0/16"])
    steps = rollout.simulate(before, after)
    assert steps.problems == []
    created = {s.name for s in steps.steps if s.op == "create"}
    assert {"link-vpn-route-192-168-8-0-24", "link-sg-forward-ali-192-168-8-0-24"} <= created
    # the existing routes and rules stay; the gateway is replaced (its user-data routes the new prefix)
    for kept in ("link-vpn-route-172-16-0-0-16", "link-sg-forward-ali-172-16-0-0-16"):
        assert steps.ops(kept) == [], kept
    assert steps.ops("link-gateway") == ["delete", "create"]


# The three network moves a user makes once: the providers' rules decide each step's order.
EXISTING_ALI_VPC = {"aliVpcCidr": None, "aliVpcId": "vpc-bp1opxu1zkhn00gzv26cc", "aliCidrs": ["172.16.0.0/16"]}
VSWITCH = "alicloud:vpc/switch:Switch"


def test_moving_from_a_virtual_private_gateway_to_a_transit_gateway_is_a_new_connection():
    """AWS modifies a connection's target gateway in place only once its static routes are
    gone (API_ModifyVpnConnection), which one `pulumi up` cannot do first: the connection is
    replaced, create-before-delete, and the old one goes last with its routes."""
    before, after = fresh(), fresh(**TGW_STACK)
    assert set(after.one(VPN).options["replaceOnChanges"]) == {"vpnGatewayId", "transitGatewayId"}
    steps = rollout.simulate(before, after)
    assert steps.problems == []
    assert steps.ops("link-vpn") == ["create", "delete"]
    route = "link-tgw-route-172-16-0-0-16"
    assert steps.index("create", "link-vpn") < steps.index("create", route)
    assert steps.index("delete", "link-vpn-route-172-16-0-0-16") > steps.index("create", route)
    assert steps.ops("link-gateway") == ["delete", "create"], "new tunnel addresses: new user-data"
    # the way it would fail: the in-place ModifyVpnConnection, static routes still there
    after.one(VPN).options["replaceOnChanges"] = []
    refused = rollout.simulate(before, after).problems
    assert any("link-vpn: update refused" in p and "link-vpn-route-172-16-0-0-16" in p for p in refused), refused


def test_moving_the_gateway_into_an_existing_vpc_replaces_it_before_its_vswitch_and_group_go():
    """A security group's and a vSwitch's vpcId are ForceNew, and Alibaba refuses to delete
    either while an instance is in it: the gateway is replaced with its vSwitch (deleted
    first, as its dependent) and the old security group goes once the old gateway is gone."""
    before = fresh()
    after = fresh(**EXISTING_ALI_VPC, aliVswitchCidr="172.16.1.0/24")
    steps = rollout.simulate(before, after)
    assert steps.problems == []
    assert steps.ops("link-ali-vswitch") == ["delete", "create"]
    assert steps.ops("link-ali-sg") == ["create", "delete"]
    assert steps.index("delete", "link-gateway") < steps.index("delete", "link-ali-vswitch")
    assert steps.index("delete", "link-gateway") < steps.index("delete", "link-ali-sg")
    assert steps.ops("link-ali-vpc") == ["delete"]
    # the way it would fail: the gateway moved in place stays in the old vSwitch and group
    after.one(ECS).options["replaceOnChanges"] = ["userData"]
    refused = rollout.simulate(before, after).problems
    assert any("link-ali-vswitch: delete refused: link-gateway still in it" in p for p in refused), refused
    assert any("link-ali-sg: delete refused: link-gateway still in it" in p for p in refused), refused


def test_moving_the_gateway_into_an_existing_vswitch_replaces_it_and_then_drops_the_old_one():
    before = fresh(**EXISTING_ALI_VPC, aliVswitchCidr="172.16.1.0/24")
    after = fresh(**EXISTING_ALI_VPC, aliVswitchCidr=None, aliVswitchId="vsw-bp1s5fnvk4gn2tws03624")
    assert after.one(ECS).input("privateIp") is None, "Alibaba assigns the address in a vSwitch of the user's"
    steps = rollout.simulate(before, after)
    assert steps.problems == []
    assert steps.ops("link-gateway") == ["delete", "create"]
    assert steps.steps[-1].op == "delete" and steps.steps[-1].name == "link-ali-vswitch"
    assert not after.of_type(VSWITCH)


def test_a_new_bgp_asn_replaces_the_customer_gateway_and_swaps_it_in_place():
    """Items 59-60: every customer gateway argument is ForceNew, but the connection takes the
    new one through ModifyVpnConnection: AWS's outside addresses and PSKs stay. The Alibaba
    gateway is replaced all the same: its FRR configuration names the ASN (user-data)."""
    steps = rollout.simulate(fresh(routing="bgp"), fresh(routing="bgp", bgpAsn="65020"))
    assert steps.problems == []
    assert steps.ops("link-cgw") == ["create", "delete"]
    assert "delete" not in steps.ops("link-vpn")  # in place at most
    assert steps.ops("link-gateway") == ["delete", "create"]


def test_static_to_bgp_replaces_the_connection_and_drops_its_static_routes():
    """Item 61: `static_routes_only` is ForceNew: a new connection (new outside addresses, so
    new gateway user-data), and its static routes go."""
    steps = rollout.simulate(fresh(), fresh(routing="bgp"))
    assert steps.problems == []
    assert "create" in steps.ops("link-vpn") and "delete" in steps.ops("link-vpn")
    assert steps.ops("link-vpn-route-172-16-0-0-16") == ["delete"]


def test_a_new_aws_asn_replaces_the_virtual_private_gateway():
    """Item 62: `amazon_side_asn` is ForceNew; the default (AWS's own 64512) plans no change."""
    assert rollout.simulate(fresh(), fresh(awsAsn="64512")).ops("link-vgw") == []
    steps = rollout.simulate(fresh(), fresh(awsAsn="64600"))
    assert "create" in steps.ops("link-vgw") and "delete" in steps.ops("link-vgw")
