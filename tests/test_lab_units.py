"""Quick tests of the lab's pure helpers (no VM): AWS names -> strongSwan, the plan reader,
the topology, the peer config, parsers, mutations and the report."""

from __future__ import annotations

import copy
import json
import re

import pytest

from lab import awsnames, cloudinit, mutations, peer, swan
from lab.inputs import PlanError, from_plan
from lab.registry import CHECKS
from lab.report import Check, Report
from lab.topology import plan_topology, render_env
from userdata.cloud_config import encode_user_data

USER_DATA = """#cloud-config
write_files:
- path: /etc/swanctl/conf.d/aws2aliyun.conf
  content: |
    connections {
        tunnel1 {
            local_addrs = 172.16.1.10
            local {
                auth = psk
                id = 198.51.100.10
            }
            children {
                tunnel1 {
                    mark_in = 100
                    mark_out = 100
                }
            }
        }
        tunnel2 {
            local {
                auth = psk
                id = 198.51.100.10
            }
            children {
                tunnel2 {
                    mark_in = 200
                    mark_out = 200
                }
            }
        }
    }
- path: /usr/local/sbin/aws2aliyun-updown
  content: |
    ensure_rule FORWARD "$dir" "$vti" -p tcp --tcp-flags SYN,RST SYN \\
      -m tcpmss --mss "$((TCP_MSS + 1)):65535" -j TCPMSS --set-mss "$TCP_MSS"
- path: /usr/local/sbin/aws2aliyun-verify
  content: |
    exit 0
"""


def vpn_inputs(profile: str = "modern") -> dict:
    modern = profile == "modern"
    d: dict = {}
    for n in (1, 2):
        p = f"tunnel{n}"
        d.update(
            {
                p + "IkeVersions": ["ikev2"] if modern else ["ikev1"],
                p + "Phase1EncryptionAlgorithms": ["AES256"] if modern else ["AES128"],
                p + "Phase1IntegrityAlgorithms": ["SHA2-256"] if modern else ["SHA1"],
                p + "Phase1DhGroupNumbers": [19, 14] if modern else [2],
                p + "Phase2EncryptionAlgorithms": ["AES256-GCM-16"] if modern else ["AES128"],
                p + "Phase2IntegrityAlgorithms": ["SHA2-256"] if modern else ["SHA1"],
                p + "Phase2DhGroupNumbers": [19, 14] if modern else [2],
                p + "Phase1LifetimeSeconds": 28800,
                p + "Phase2LifetimeSeconds": 3600,
                p + "RekeyMarginTimeSeconds": 540,
                p + "RekeyFuzzPercentage": 100,
                p + "DpdTimeoutSeconds": 30,
                p + "DpdTimeoutAction": "clear",
                p + "StartupAction": "add",
                p + "PresharedKey": f"psk_for.tunnel{n}_abcdefgh",
            }
        )
    return d


def make_plan(profile: str = "modern") -> dict:
    outs = {}
    for n, (addr, cidr) in enumerate((("192.0.2.10", "169.254.121.0/30"), ("192.0.2.20", "169.254.122.0/30")), 1):
        base = cidr.rsplit(".", 1)[0]
        outs.update(
            {
                f"tunnel{n}Address": addr,
                f"tunnel{n}InsideCidr": cidr,
                f"tunnel{n}VgwInsideAddress": f"{base}.1",
                f"tunnel{n}CgwInsideAddress": f"{base}.2",
                f"tunnel{n}PresharedKey": f"psk_for.tunnel{n}_abcdefgh",
            }
        )

    def res(rtype, name, inputs=None, outputs=None, rid=None):
        return {
            "urn": f"urn:{name}",
            "type": rtype,
            "name": name,
            "id": rid or f"{name}-id",
            "parent": None,
            "inputs": inputs or {},
            "outputs": outputs or {},
        }

    return {
        "resources": [
            res(
                "alicloud:ecs/instance:Instance",
                "gw",
                {"userData": encode_user_data(USER_DATA), "privateIp": "172.16.1.10", "hostName": "aws2aliyun-gw"},
                rid="i-gw",
            ),
            res("alicloud:ecs/eipAddress:EipAddress", "eip", outputs={"ipAddress": "198.51.100.10"}),
            res("alicloud:vpc/network:Network", "ali-vpc", {"cidrBlock": "172.16.0.0/16"}),
            res("alicloud:vpc/switch:Switch", "vsw", {"cidrBlock": "172.16.1.0/24"}),
            res("aws:ec2/vpc:Vpc", "aws-vpc", {"cidrBlock": "10.10.0.0/16"}),
            res(
                "alicloud:vpc/routeEntry:RouteEntry",
                "re",
                {"destinationCidrblock": "10.10.0.0/16", "nexthopId": "i-gw"},
            ),
            res(
                "aws:ec2/vpnConnectionRoute:VpnConnectionRoute",
                "vr",
                {"destinationCidrBlock": "172.16.0.0/16", "vpnConnectionId": "vpn-id"},
            ),
            res("aws:ec2/vpnConnection:VpnConnection", "vpn", vpn_inputs(profile), {**vpn_inputs(profile), **outs}),
        ],
        "outputs": {},
    }


# ------------------------------------------------------------------ AWS names
def test_aws_names_translate():
    assert awsnames.encryption("AES256-GCM-16") == "aes256gcm16"
    assert awsnames.integrity("SHA2-384") == "sha384"
    assert [awsnames.dh_group(g) for g in (2, 5, 14, 19, 24)] == [
        "modp1024",
        "modp1536",
        "modp2048",
        "ecp256",
        "modp2048s256",
    ]
    with pytest.raises(awsnames.UnknownAwsNameError):
        awsnames.dh_group(1)
    with pytest.raises(awsnames.UnknownAwsNameError):
        awsnames.encryption("3DES")


def test_ike_proposals_every_combination_and_prf_for_gcm():
    props = awsnames.ike_proposals(["AES256", "AES128-GCM-16"], ["SHA2-256", "SHA1"], [14, 19])
    assert len(props) == 2 * 2 * 2
    assert "aes256-sha256-modp2048" in props
    assert "aes128gcm16-prfsha1-ecp256" in props
    assert not any(p.startswith("aes128gcm16-sha") for p in props)


def test_esp_proposals_gcm_has_no_integrity():
    props = awsnames.esp_proposals(["AES256-GCM-16", "AES128"], ["SHA2-256", "SHA1"], [14])
    assert props == ["aes256gcm16-modp2048", "aes128-sha256-modp2048", "aes128-sha1-modp2048"]


def test_swanctl_version():
    assert awsnames.swanctl_version(["ikev2"]) == 2
    assert awsnames.swanctl_version(["IKEV1"]) == 1
    assert awsnames.swanctl_version(["ikev1", "ikev2"]) == 0


# ------------------------------------------------------------------ plan -> inputs
def test_from_plan_reads_everything():
    i = from_plan(make_plan())
    assert i.private_ip == "172.16.1.10" and i.eip == "198.51.100.10"
    assert i.user_data == USER_DATA
    assert [t.outside_address for t in i.tunnels] == ["192.0.2.10", "192.0.2.20"]
    assert i.tunnels[0].phase2_encryption == ("AES256-GCM-16",)
    assert i.ali_prefixes == ("172.16.0.0/16",) and i.aws_prefixes == ("10.10.0.0/16",)
    assert "tunnel1ReplayWindowSize" in i.defaulted  # AWS's default, recorded


def test_from_plan_reports_every_problem_at_once():
    plan = make_plan()
    plan["resources"] = [r for r in plan["resources"] if r["type"] != "alicloud:vpc/routeEntry:RouteEntry"]
    ecs = plan["resources"][0]
    del ecs["inputs"]["privateIp"]
    with pytest.raises(PlanError) as e:
        from_plan(plan)
    text = str(e.value)
    assert "alicloud:vpc/routeEntry:RouteEntry" in text and "privateIp" in text


def test_from_plan_rejects_redacted_secrets_and_bad_route_entry():
    plan = make_plan()
    vpn = plan["resources"][-1]
    vpn["outputs"]["tunnel1PresharedKey"] = "[secret]"
    with pytest.raises(PlanError, match="--show-secrets"):
        from_plan(plan)
    plan = make_plan()
    plan["resources"][5]["inputs"]["destinationCidrblock"] = "10.99.0.0/16"
    with pytest.raises(
        PlanError, match=re.escape("route entries to the ECS are for 10.99.0.0/16, not the created VPC")
    ):
        from_plan(plan)


def test_from_plan_rejects_unsimulated_public_addresses():
    plan = make_plan()
    plan["resources"][1]["outputs"]["ipAddress"] = "203.0.113.5"
    with pytest.raises(PlanError, match="simulated public ranges"):
        from_plan(plan)


# ------------------------------------------------------------------ topology and peer
def test_topology_addresses_do_not_collide():
    t = plan_topology(from_plan(make_plan()))
    assert t.vswitch_gw == "172.16.1.253"
    assert t.alihost_ip not in (t.private_ip, t.vswitch_gw)
    assert t.awsrouter_ip == "10.10.0.1" and t.awshost_ip == "10.10.0.10"
    assert not t.slirp_net.startswith("203.0.113")
    assert [p.vti_mtu for p in t.peers] == [1438, 1438]
    env = render_env(t)
    assert "EIP=198.51.100.10" in env and "AWS2_ADDR=192.0.2.20" in env


def test_topology_moves_user_net_away_from_plan_cidrs():
    plan = make_plan()
    for r in plan["resources"]:
        if r["type"] == "aws:ec2/vpc:Vpc":
            r["inputs"]["cidrBlock"] = "10.0.0.0/16"
        if r["type"] == "alicloud:vpc/routeEntry:RouteEntry":
            r["inputs"]["destinationCidrblock"] = "10.0.0.0/16"
    t = plan_topology(from_plan(plan))
    assert t.slirp_net != "10.0.2.0/24"


def test_legacy_topology_mtu():
    assert [p.vti_mtu for p in plan_topology(from_plan(make_plan("legacy"))).peers] == [1422, 1422]


def test_peer_config_is_responder_only_with_psk_and_identities():
    i = from_plan(make_plan())
    conf = peer.swanctl_conf(i.tunnels[0], i.eip, 100)
    assert "start_action = none" in conf and "start_action = start" not in conf
    assert "remote_addrs = 198.51.100.10" in conf
    assert "id = 192.0.2.10" in conf and "id = 198.51.100.10" in conf
    assert "version = 2" in conf
    assert "proposals = aes256-sha256-ecp256,aes256-sha256-modp2048" in conf
    assert "esp_proposals = aes256gcm16-ecp256,aes256gcm16-modp2048" in conf
    assert "mark_in = 100" in conf and "mark_out = 100" in conf
    assert "local_ts = 0.0.0.0/0" in conf and "remote_ts = 0.0.0.0/0" in conf
    assert "dpd_delay = 10s" in conf and "dpd_timeout = 30s" in conf and "dpd_action = clear" in conf
    assert 'secret = "psk_for.tunnel1_abcdefgh"' in conf


def test_legacy_peer_config_ikev1():
    i = from_plan(make_plan("legacy"))
    conf = peer.swanctl_conf(i.tunnels[1], i.eip, 200)
    assert "version = 1" in conf
    assert "proposals = aes128-sha1-modp1024" in conf
    assert "esp_proposals = aes128-sha1-modp1024" in conf
    assert "rekey_time = 0s" in conf  # IKEv1: never rekeys in place, only reauths late


# ------------------------------------------------------------------ parsers
PRETTY = """plugin 'ldap': failed to load - ldap_plugin_create not found
list-sa event {
  tunnel1 {
    uniqueid = 1
    version = 2
    state = ESTABLISHED
    local-host = 172.16.1.10
    local-port = 4500
    remote-host = 192.0.2.10
    remote-port = 4500
    nat-local = yes
    child-sas {
      tunnel1-1 {
        name = tunnel1
        state = INSTALLED
        encap = yes
        local-ts [
          0.0.0.0/0
        ]
      }
    }
  }
}
list-sa event {
  tunnel2 {
    state = CONNECTING
    remote-host = 192.0.2.20
  }
}
"""


def test_parse_pretty():
    sas = swan.parse_pretty(PRETTY)
    assert [s["name"] for s in sas] == ["tunnel1", "tunnel2"]
    assert swan.established(sas, "192.0.2.10")
    assert not swan.established(sas, "192.0.2.20")
    (child,) = swan.children(sas[0])
    assert child["encap"] == "yes" and child["local-ts"] == ["0.0.0.0/0"]


# tunnel1 as the AWS-like peer lists it (its remote: the EIP)
PEER_PRETTY = """list-sa event {
  aws1 {
    state = ESTABLISHED
    remote-host = 198.51.100.10
    child-sas {
      aws1-1 {
        state = INSTALLED
      }
    }
  }
}
"""


def test_from_plan_refuses_a_user_data_it_would_not_boot_byte_for_byte():
    """The lab seeds the planned gzip bytes: plain text, or gzip from another compressor
    (another header, other bytes), is named before any VM starts."""
    import base64
    import gzip

    for value, why in (
        (USER_DATA, "not a gzipped, Base64-encoded cloud-config"),
        (base64.b64encode(gzip.compress(USER_DATA.encode(), mtime=1)).decode(), "re-encoded here differs"),
    ):
        plan = make_plan()
        plan["resources"][0]["inputs"]["userData"] = value
        with pytest.raises(PlanError, match=why):
            from_plan(plan)


def test_not_up_on_both_ends():
    """The lab's gate before the checks: a tunnel counts only while the gateway and its AWS-like
    peer both hold it (the CI run of findings #30: the peer had cleared what the ECS listed)."""
    ecs, peer = swan.parse_pretty(PRETTY), swan.parse_pretty(PEER_PRETTY)
    outside, eip = {1: "192.0.2.10", 2: "192.0.2.20"}, "198.51.100.10"
    # tunnel2 CONNECTING on the ECS, tunnel1 up on both ends
    assert swan.not_up_on_both_ends([ecs], {1: peer, 2: []}, outside, eip) == [2]
    # the peer cleared tunnel1 while the ECS still lists it
    assert swan.not_up_on_both_ends([ecs], {1: [], 2: []}, outside, eip) == [1, 2]
    # a pair: the standby lists nothing, the active one holds tunnel1
    assert swan.not_up_on_both_ends([[], ecs], {1: peer}, {1: "192.0.2.10"}, eip) == []
    # the peer's SA to another address does not count
    assert swan.not_up_on_both_ends([ecs], {1: peer}, {1: "192.0.2.10"}, "203.0.113.1") == [1]


XFRM = """src 172.16.1.10 dst 192.0.2.10
\tproto esp spi 0xce62dd0b reqid 2 mode tunnel
\tmark 0x64/0xffffffff
\taead rfc4106(gcm(aes)) 0xf70bdfcf64841555e6f6d56a298cb2c661d3e557d5a2e9c8 128
\tencap type espinudp sport 4500 dport 4500 addr 0.0.0.0
src 192.0.2.10 dst 172.16.1.10
\tproto esp spi 0xcd849998 reqid 2 mode tunnel
"""


def test_parse_xfrm_and_redact():
    st = swan.parse_xfrm_states(XFRM)
    assert [(s.src, s.dst, s.spi) for s in st] == [
        ("172.16.1.10", "192.0.2.10", "0xce62dd0b"),
        ("192.0.2.10", "172.16.1.10", "0xcd849998"),
    ]
    assert st[0].mark == "0x64" and st[0].encap == "espinudp sport 4500 dport 4500"
    assert "f70bdfcf" not in swan.redact_keys(XFRM)


def test_parse_vti_keys_and_policy_marks():
    link = (
        "7: Tunnel1@NONE: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1438\n"
        "    vti remote 192.0.2.10 local 172.16.1.10 ikey 0.0.0.100 okey 0.0.0.100 addrgenmode eui64\n"
    )
    assert swan.parse_vti_keys(link) == {"Tunnel1": (100, 100)}
    pol = "src 0.0.0.0/0 dst 0.0.0.0/0 \n\tdir out priority 399999 ptype main \n\tmark 0x65/0xffffffff \n"
    assert swan.parse_xfrm_policy_marks(pol) == [("out", "0x65")]


# ------------------------------------------------------------------ mutations
@pytest.mark.parametrize("name", sorted(mutations.MUTATIONS))
def test_mutations_change_the_user_data(name):
    i = from_plan(make_plan())
    new = mutations.apply(name, USER_DATA, i)
    assert new != USER_DATA


def test_wrong_mark_changes_only_tunnel1():
    new = mutations.apply("wrong-mark", USER_DATA, from_plan(make_plan()))
    assert new.count("mark_in = 101") == 1 and new.count("mark_out = 101") == 1
    assert new.count("mark_in = 200") == 1


def test_wrong_identity_and_no_mss_clamp():
    i = from_plan(make_plan())
    assert "id = 172.16.1.10" in mutations.apply("wrong-identity", USER_DATA, i)
    assert "TCPMSS" not in mutations.apply("no-mss-clamp", USER_DATA, i)


def test_mutation_that_no_longer_applies_is_an_error():
    with pytest.raises(mutations.MutationError):
        mutations.apply("no-mss-clamp", "#cloud-config\n", from_plan(make_plan()))
    with pytest.raises(mutations.MutationError):
        mutations.apply("nonsense", USER_DATA, from_plan(make_plan()))


# ------------------------------------------------------------------ report
def test_report_ok_only_when_every_expected_check_passed():
    r = Report(expected=CHECKS)
    for n in CHECKS:
        r.add(Check(n, True, 1.0, "fine", {}))
    assert r.ok
    r.add(Check("nat_t", False, 1.0, "raw ESP seen", {}))
    assert not r.ok
    d = r.as_dict()
    assert set(d) == {"ok", "config", "checks", "metrics"}
    assert [c["name"] for c in d["checks"]] == list(CHECKS)
    assert set(d["checks"][0]) == {"name", "ok", "seconds", "detail", "metrics"}
    json.dumps(d)
    assert "FAIL  nat_t" in r.summary()


def test_report_missing_check_is_not_ok():
    r = Report(expected=("nat_t", "bulk_tcp_mtu"))
    r.add(Check("nat_t", True, 1.0, "ok", {}))
    assert not r.ok
    r2 = copy.deepcopy(r)
    r2.add(Check("bulk_tcp_mtu", True, 1.0, "ok", {}))
    assert r2.ok


def test_planned_verify_command_is_picked_up():
    plan = make_plan()
    plan["resources"].append(
        {
            "urn": "urn:verify",
            "type": "command:remote:Command",
            "name": "link-verify",
            "id": "v",
            "parent": None,
            "inputs": {"create": "cloud-init status --wait >/dev/null; /usr/local/sbin/aws2aliyun-verify --wait 300"},
            "outputs": {},
        }
    )
    assert from_plan(plan).verify_commands == (
        "cloud-init status --wait >/dev/null; /usr/local/sbin/aws2aliyun-verify --wait 300",
    )
    assert from_plan(make_plan()).verify_commands == ()


def test_verify_script_path_from_user_data():
    from lab.inputs import verify_script_path

    assert verify_script_path(USER_DATA) == "/usr/local/sbin/aws2aliyun-verify"
    assert verify_script_path("#cloud-config\nwrite_files: []\n") is None


def test_reports_name_stack_files_relative_to_the_repository(tmp_path):
    from lab.run import REPO, stack_profile

    assert stack_profile(REPO / "Pulumi.dev.yaml")["config_file"] == "Pulumi.dev.yaml"
    assert stack_profile(REPO / "lab" / "stacks" / "Pulumi.lab-legacy.yaml")["config_file"] == (
        "lab/stacks/Pulumi.lab-legacy.yaml"
    )
    outside = tmp_path / "Pulumi.x.yaml"
    outside.write_text("config: {}\n")
    assert stack_profile(outside)["config_file"] == "Pulumi.x.yaml"


def _cloud_init_files(status: dict | None, result: dict | None) -> str:
    """What cloudinit.STATUS_SCRIPT prints for these file contents (None: the file is missing)."""
    head = json.dumps(status) if status is not None else ""
    tail = json.dumps(result) if result is not None else ""
    return f"{head}\n{cloudinit.SEPARATOR}\n{tail}"


def _stage(start: float | None, finished: float | None, errors: list[str] | None = None) -> dict:
    return {"errors": errors or [], "finished": finished, "recoverable_errors": {}, "start": start}


@pytest.mark.parametrize(
    ("status", "result", "want"),
    [
        (None, None, "not run"),  # before init-local
        ({"v1": {"datasource": None, "init-local": _stage(None, None), "stage": None}}, None, "not run"),
        ({"v1": {"datasource": None, "init-local": _stage(10.0, None), "stage": "init-local"}}, None, "running"),
        # between two stages: none is current, one has started
        ({"v1": {"init-local": _stage(10.0, 12.0), "init": _stage(None, None), "stage": None}}, None, "running"),
        ({"v1": {"modules-final": _stage(10.0, 40.0)}}, {"v1": {"datasource": "NoCloud", "errors": []}}, "done"),
        (
            {"v1": {"modules-final": _stage(10.0, 40.0, ["x"])}},
            {"v1": {"datasource": "NoCloud", "errors": ["('scripts_user', RuntimeError(...))"]}},
            "error",
        ),
    ],
)
def test_cloud_init_status_from_its_own_files(status, result, want):
    assert cloudinit.status(_cloud_init_files(status, result)) == want


def test_cloud_init_status_unreadable_output():
    assert cloudinit.status("") == ""  # the guest command did not run
    assert cloudinit.status(f"not json\n{cloudinit.SEPARATOR}\n") == "not run"
    assert all(s in cloudinit.TERMINAL for s in ("done", "error"))
    assert "running" not in cloudinit.TERMINAL


def _stand_in_agent(tmp_path, after_connect):
    """A stand-in qemu-guest-agent on a Unix socket: it answers the client's connect (the
    resync byte, guest-sync-delimited), then `after_connect(conn, f)` plays the rest.
    Returns the client and the agent's thread."""
    import socket
    import threading

    from lab.vm import GuestAgent

    path = tmp_path / "qga.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)

    def agent():
        conn, _ = server.accept()
        f = conn.makefile("rb")
        f.read(1)  # the resync byte
        token = json.loads(f.readline())["arguments"]["id"]
        _answer(conn, token, delimited=True)
        after_connect(conn, f)
        conn.close()

    t = threading.Thread(target=agent, daemon=True)
    t.start()
    return GuestAgent(path), t


def _answer(conn, value, delimited: bool = False) -> None:
    conn.sendall((b"\xff" if delimited else b"") + json.dumps({"return": value}).encode() + b"\n")


def test_the_guest_agent_client_drops_late_answers_before_each_command(tmp_path):
    """Answers to commands the host gave up on may still be in the channel when the next
    command starts: each `sh` syncs first, so it reads its own output and not its
    predecessor's (a pair run read "MASTER", the role query's output, for every later
    command on one gateway: findings #32)."""
    import base64

    def rest(conn, f):
        sync = json.loads(f.readline())
        assert sync["execute"] == "guest-sync-delimited"
        _answer(conn, {"pid": 7})  # late: a guest-exec and its status the host gave up on
        _answer(conn, {"exited": True, "exitcode": 0, "out-data": base64.b64encode(b"MASTER\n").decode()})
        _answer(conn, sync["arguments"]["id"], delimited=True)
        assert json.loads(f.readline())["execute"] == "guest-exec"
        _answer(conn, {"pid": 42})
        status = json.loads(f.readline())
        assert status["execute"] == "guest-exec-status" and status["arguments"]["pid"] == 42
        _answer(conn, {"exited": True, "exitcode": 0, "out-data": base64.b64encode(b"status: done\n").decode()})

    qga, t = _stand_in_agent(tmp_path, rest)
    res = qga.sh("cloud-init status", timeout=10)
    assert (res.rc, res.out) == (0, "status: done\n")
    t.join(5)
    qga.close()


def test_the_guest_agent_client_skips_a_late_sync_answer(tmp_path):
    """A guest-sync answer arriving after its reconnect gave up (a busy guest) is read before
    the next command's own answer: the client must not take that number for it (a pair run
    died on `'int' object is not subscriptable` at guest-exec, findings #27)."""

    def rest(conn, f):
        json.loads(f.readline())  # guest-exec
        _answer(conn, 1234567)  # the stale sync answer
        _answer(conn, {"pid": 42})

    qga, t = _stand_in_agent(tmp_path, rest)
    assert qga.call("guest-exec", {"path": "/bin/true"}) == {"pid": 42}
    t.join(5)
    qga.close()


def _event(name: str, kind: str, ts: float) -> dict:
    """One event as `cloud-init analyze dump` prints it."""
    return {"description": "x", "event_type": kind, "name": name, "origin": "cloudinit", "timestamp": ts}


def test_package_module_time_from_cloud_inits_own_events():
    pkg = "modules-final/config-package_update_upgrade_install"  # as cloud.cfg spells it here
    first_boot = [
        _event("modules-final", "start", 100.0),
        _event(pkg, "start", 101.5),
        _event(pkg, "finish", 150.1),
        _event("modules-final", "finish", 160.0),
    ]
    dump = json.dumps(first_boot)
    assert cloudinit.event_seconds(dump, cloudinit.PACKAGES_EVENT) == 48.6
    # a later boot of the same disk runs the module again (per-instance modules skip): the last run counts
    again = [*first_boot, _event(pkg, "start", 500.0), _event(pkg, "finish", 500.4)]
    assert cloudinit.event_seconds(json.dumps(again), cloudinit.PACKAGES_EVENT) == 0.4
    # started, not finished (cloud-init still running, or killed): no number
    assert cloudinit.event_seconds(json.dumps(first_boot[:2]), cloudinit.PACKAGES_EVENT) is None
    assert cloudinit.event_seconds("", cloudinit.PACKAGES_EVENT) is None  # cloud-init analyze failed
    assert cloudinit.event_seconds(json.dumps({"not": "a list"}), cloudinit.PACKAGES_EVENT) is None


def test_slowest_modules_say_where_a_boot_went():
    events = [
        _event("init-network", "start", 0.0),
        _event("init-network/config-ssh", "start", 1.0),
        _event("init-network/config-ssh", "finish", 10.2),
        _event("modules-final", "start", 20.0),
        _event("modules-final/config-package_update_upgrade_install", "start", 20.0),
        _event("modules-final/config-package_update_upgrade_install", "finish", 45.1),
        _event("modules-final/config-scripts-user", "start", 45.1),
        _event("modules-final/config-scripts-user", "finish", 58.1),
        _event("modules-final/config-final-message", "start", 58.1),  # never finished: left out
        _event("modules-final", "finish", 60.0),
        _event("init-network", "finish", 61.0),
    ]
    slow = cloudinit.slowest_modules(json.dumps(events), n=2)
    # modules only (not stages), slowest first, cloud.cfg's underscores read as dashes
    assert slow == {
        "modules-final/config-package-update-upgrade-install": 25.1,
        "modules-final/config-scripts-user": 13.0,
    }
    assert cloudinit.slowest_modules("not json") == {}
