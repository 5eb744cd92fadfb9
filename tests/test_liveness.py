"""The gateway's data-plane liveness: the daemon's pure parts, its unit, its numbers.

The daemon itself runs in the lab (failover_tunnel1 measures it); here its state machine,
route arithmetic, packets and status output are driven directly.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import socket
import struct
import sys
import time
from pathlib import Path

import pytest

from core import paths
from userdata import cloud_config, liveness
from userdata import swanctl as sw
from userdata.cloud_config import link_env, static_file

from .test_userdata import files_of, gateway

SCRIPT = Path(__file__).resolve().parent.parent / "userdata" / "files" / "aws2aliyun-liveness.py"


@pytest.fixture(scope="module")
def lv():
    spec = importlib.util.spec_from_file_location("aws2aliyun_liveness", SCRIPT)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


FALL = round(liveness.DOWN_AFTER_S / liveness.INTERVAL_S)


def tracker(lv):
    return lv.Tracker(
        down_after_s=liveness.DOWN_AFTER_S,
        rise=liveness.RISE,
        fall=FALL,
        common_down_after_s=liveness.COMMON_DOWN_AFTER_S,
    )


def test_a_tunnel_is_alive_after_rise_answers_in_a_row_and_dead_after_down_after_without(lv):
    t = tracker(lv)
    assert t.link(True, 0.0) == "unknown"
    assert t.on_answer(0, 0.1) is None
    assert t.on_answer(2, 0.3) is None  # probe 1 lost: the streak starts again
    assert t.on_answer(3, 0.4) is None
    assert t.on_answer(4, 0.5) == "alive"
    assert t.on_answer(3, 0.55) is None and t.last_seq == 4  # a late reply changes nothing
    for seq in range(5, 4 + FALL):
        t.on_sent(seq)
    # a host that stalled sent fewer probes than FALL: no verdict, however long it was
    assert t.on_tick(0.5 + 10 * liveness.DOWN_AFTER_S, other_answer=0.5 + 10 * liveness.DOWN_AFTER_S) is None
    t.on_sent(4 + FALL)
    now = 0.5 + liveness.DOWN_AFTER_S
    assert t.on_tick(now - 0.01, other_answer=now - 0.01) is None
    assert t.on_tick(now, other_answer=now - 0.05) == "dead"  # the other tunnel answers: this path is dead
    for seq, now in ((20, 3.0), (21, 3.1)):
        assert t.on_answer(seq, now) is None
    assert t.on_answer(22, 3.2) == "alive"
    assert t.link(False, 4.0) == "down" and t.last_answer is None
    assert t.on_answer(23, 4.1) is None  # nothing counts while the VTI is down


def alive_then_silent(lv):
    """A tracker alive after answers at 0.1, 0.2, 0.3 s, then 40 probes sent unanswered."""
    t = tracker(lv)
    t.link(True, 0.0)
    for seq in range(3):
        t.on_answer(seq, 0.1 * (seq + 1))
    for seq in range(3, 3 + 40):
        t.on_sent(seq)
    return t


def test_a_silence_both_tunnels_share_moves_nothing_until_it_lasts(lv):
    """A stall of the gateway's own path (its NIC, its internet, a starved host) silences both
    tunnels at once: no verdict while the other tunnel is silent too, until COMMON_DOWN_AFTER_S."""
    last = 0.3  # its last answer; 40 probes unanswered since
    t = alive_then_silent(lv)
    assert t.state == "alive"
    # the other tunnel fell silent at about the same time: a shared stall
    for now in (last + liveness.DOWN_AFTER_S, last + 2.0, last + liveness.COMMON_DOWN_AFTER_S - 0.01):
        assert t.on_tick(now, other_answer=last) is None
    assert t.on_tick(last + liveness.COMMON_DOWN_AFTER_S, other_answer=last) == "dead"
    # none has ever answered: the same
    u = alive_then_silent(lv)
    assert u.on_tick(last + liveness.DOWN_AFTER_S, other_answer=None) is None
    assert u.on_tick(last + liveness.COMMON_DOWN_AFTER_S, other_answer=None) == "dead"
    # an answer on the other tunnel within DOWN_AFTER_S / 2 makes it this tunnel's silence
    now = last + liveness.DOWN_AFTER_S
    v = alive_then_silent(lv)
    assert v.on_tick(now, other_answer=now - liveness.DOWN_AFTER_S / 2 - 0.01) is None
    assert v.on_tick(now, other_answer=now - liveness.DOWN_AFTER_S / 2) == "dead"


def test_routes_go_over_the_alive_tunnels_and_never_away_from_every_tunnel(lv):
    assert lv.routed({"tunnel1": "alive", "tunnel2": "alive"}) == ["tunnel1", "tunnel2"]
    assert lv.routed({"tunnel1": "dead", "tunnel2": "alive"}) == ["tunnel2"]
    assert lv.routed({"tunnel1": "unknown", "tunnel2": "alive"}) == ["tunnel2"]
    # none answers (both dead, or an AWS end that does not answer): every VTI that is up
    assert lv.routed({"tunnel1": "dead", "tunnel2": "unknown"}) == ["tunnel1", "tunnel2"]
    assert lv.routed({"tunnel1": "down", "tunnel2": "dead"}) == ["tunnel2"]
    assert lv.routed({"tunnel1": "down", "tunnel2": "down"}) == []


PROC_ROUTE = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "Tunnel1\t00000A0A\t00000000\t0001\t0\t0\t100\t0000FFFF\t0\t0\t0\n"
    "Tunnel2\t00000A0A\t00000000\t0001\t0\t0\t200\t0000FFFF\t0\t0\t0\n"
    "Tunnel1\t0079FEA9\t00000000\t0001\t0\t0\t0\tFCFFFFFF\t0\t0\t0\n"
)


def test_the_main_table_is_read_from_proc_and_only_the_difference_is_changed(lv):
    if struct.pack("=I", 1) != struct.pack("<I", 1):
        pytest.skip("the sample /proc/net/route text is little-endian")
    table = lv.main_table(PROC_ROUTE)
    assert ("Tunnel1", "10.10.0.0/16", 100) in table
    assert ("Tunnel1", "169.254.121.0/30", 0) in table
    ours = {("Tunnel1", "10.10.0.0/16", 100), ("Tunnel2", "10.10.0.0/16", 200)}
    assert lv.route_changes(ours, ours, table) == []
    assert lv.route_changes({("Tunnel2", "10.10.0.0/16", 200)}, ours, table) == [
        "route del 10.10.0.0/16 dev Tunnel1 metric 100"
    ]
    # a VTI taken down and up lost its route: put back
    assert lv.route_changes(ours, ours, table - {("Tunnel1", "10.10.0.0/16", 100)}) == [
        "route replace 10.10.0.0/16 dev Tunnel1 metric 100"
    ]


def test_echo_requests_are_valid_icmp_and_replies_are_parsed(lv):
    req = lv.echo_request(0x1231, 70000)
    assert req[0] == 8 and lv.checksum(req) == 0
    assert struct.unpack("!HH", req[4:8]) == (0x1231, 70000 & 0xFFFF)
    icmp = bytes([0, 0]) + req[2:]
    ip = bytes([0x45]) + bytes(11) + socket.inet_aton("169.254.121.1") + socket.inet_aton("169.254.121.2")
    assert lv.parse_reply(ip + icmp) == ("169.254.121.1", 0x1231, 70000 & 0xFFFF)
    assert lv.parse_reply(ip + req) is None  # a request is not an answer
    assert lv.parse_reply(b"\x45") is None


def test_the_daemon_reads_its_targets_from_the_link_facts(lv, tmp_path):
    env = tmp_path / "link.env"
    env.write_text(link_env(gateway()))
    d = lv.Daemon(
        lv.read_env(str(env)), liveness.INTERVAL_S, liveness.DOWN_AFTER_S, liveness.RISE, liveness.COMMON_DOWN_AFTER_S
    )
    assert [(t.name, t.vti, t.target, t.metric) for t in d.tunnels] == [
        ("tunnel1", "Tunnel1", "169.254.121.1", 100),
        ("tunnel2", "Tunnel2", "169.254.122.1", 200),
    ]
    assert d.prefixes == ["10.10.0.0/16"]
    assert len({t.ident for t in d.tunnels}) == 2


def test_status_says_what_each_tunnel_answers_and_fails_unless_both_are_alive(lv, tmp_path, capsys, monkeypatch):
    state = tmp_path / "liveness.json"
    monkeypatch.setattr(lv, "STATE_PATH", str(state))
    assert lv.status() == 1
    assert "no state" in capsys.readouterr().out

    def write(t2: str, updated: float) -> None:
        tunnels = {
            n: {"vti": f"Tunnel{i}", "target": f"169.254.12{i}.1", "for_s": 9.0, "sent": 90, "answered": 88}
            | {"state": st, "last_answer_s_ago": 0.1 if st == "alive" else 4.2}
            for i, (n, st) in enumerate((("tunnel1", "alive"), ("tunnel2", t2)), start=1)
        }
        state.write_text(json.dumps({"updated": updated, "routed": ["tunnel1"], "tunnels": tunnels}))

    write("alive", time.time())
    assert lv.status() == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("tunnel1: liveness alive for 9.0s (169.254.121.1 via Tunnel1")
    write("dead", time.time())
    assert lv.status() == 1
    assert "tunnel2: liveness dead" in capsys.readouterr().out
    write("alive", time.time() - 60)
    assert lv.status() == 1
    assert "not running" in capsys.readouterr().out


def test_the_daemon_and_its_unit_ship_in_the_user_data_and_start_before_strongswan(lv):
    doc = cloud_config(gateway())
    files = files_of(doc)
    shipped = files[paths.LIVENESS_PATH]
    assert "encoding" not in shipped and shipped["permissions"] == "0755"
    assert shipped["content"] == static_file("aws2aliyun-liveness.py")
    unit = files[paths.LIVENESS_SERVICE_PATH]["content"]
    assert (
        f"ExecStart={paths.LIVENESS_PATH} --interval {liveness.INTERVAL_S:g} "
        f"--down-after {liveness.DOWN_AFTER_S:g} --rise {liveness.RISE}" in unit
    )
    assert "Restart=always" in unit and "WantedBy=multi-user.target" in unit
    runcmd = doc["runcmd"]
    assert runcmd.index(["systemctl", "enable", "--now", paths.LIVENESS_SERVICE]) < runcmd.index(
        ["systemctl", "enable", "--now", "strongswan.service"]
    )
    # the script's own defaults are the declared paths
    assert paths.LIVENESS_STATE_PATH == lv.STATE_PATH
    assert lv.LINK_ENV == paths.LINK_ENV_PATH
    assert f"readonly LIVENESS=${{AWS2ALIYUN_LIVENESS:-{paths.LIVENESS_PATH}}}" in static_file("aws2aliyun-verify.sh")


def test_the_lossy_path_arithmetic_matches_the_issue_and_favours_liveness():
    # today's hard DPD (4 transmissions every 2 s): about 0.5 a day at 3 % loss, 4 at 5 %
    hard = [liveness.dpd_false_teardowns_per_day(p, 2, 4) for p in (0.03, 0.05)]
    assert 0.4 < hard[0] < 0.6 and 3 < hard[1] < 5
    calm = liveness.dpd_false_teardowns_per_day(0.15, sw.ECS_DPD_DELAY_S, sw.ecs_dpd_transmissions())
    assert calm < 0.5
    # liveness: 12 lost in a row; at 15 % loss under one false verdict in a week per tunnel
    assert liveness.liveness_false_downs_per_day(0.15) < 1 / 7
    assert liveness.liveness_false_downs_per_day(0.05) < 1e-5
    # the backstop clears a dead tunnel within a minute and heals a blocked path in 5 s
    assert sw.ECS_DPD_DELAY_S + sw.ecs_dpd_give_up_s() < 60
    assert sw.ECS_RETRANSMIT_LIMIT_S <= 5


@pytest.mark.parametrize(
    ("tunnel1", "answers", "rc", "want"),
    [
        ("alive", True, 0, "ok: tunnel1 and tunnel2 ESTABLISHED"),
        ("dead", True, 1, "tunnel1: IPsec up, no answer through the tunnel (liveness dead for 4.0s"),
        ("unknown", True, 1, "tunnel1: IPsec up, no answer through the tunnel (liveness unknown for 4.0s"),
        # a Transit Gateway is not known to answer: never having answered is no problem there
        ("unknown", False, 0, "ok: tunnel1 and tunnel2 ESTABLISHED"),
        ("dead", False, 1, "tunnel1: IPsec up, no answer through the tunnel (liveness dead for 4.0s"),
    ],
)
def test_verify_reports_a_tunnel_whose_sas_are_up_but_that_does_not_answer(tmp_path, tunnel1, answers, rc, want):
    """The verify script itself, against stand-ins for swanctl, ip and the liveness daemon."""
    import subprocess

    bindir = tmp_path / "bin"
    bindir.mkdir()
    env_file = tmp_path / "link.env"
    env_file.write_text(link_env(dataclasses.replace(gateway(), aws_end_answers=answers)))
    sas = "{c}: #3, ESTABLISHED, IKEv2, 1a2b_i* 3c4d_r\n  {c}: #7, reqid 1, INSTALLED, TUNNEL, ESP:AES_GCM_16-256\n"
    stubs = {
        "swanctl": '#!/bin/bash\nc=${@: -1}\nprintf "' + sas.replace("{c}", "$c") + '"\n',
        "ip": '#!/bin/bash\ncase "$*" in\n  "-o link show dev "*) echo "9: $5@NONE: <POINTOPOINT,NOARP,UP,LOWER_UP>" ;;\n'
        '  "-o route show "*) echo "$4 dev $6 scope link" ;;\nesac\n',
        "liveness": "#!/bin/sh\n"
        f'echo "tunnel1: liveness {tunnel1} for 4.0s (169.254.121.1 via Tunnel1: last answer 4.0s ago, 9/10 answered; routed)"\n'
        'echo "tunnel2: liveness alive for 9.0s (169.254.122.1 via Tunnel2: last answer 0.1s ago, 90/90 answered; routed)"\n'
        f"exit {0 if tunnel1 == 'alive' else 1}\n",
    }
    for name, text in stubs.items():
        (bindir / name).write_text(text)
        (bindir / name).chmod(0o755)
    out = subprocess.run(
        ["bash", str(SCRIPT.parent / "aws2aliyun-verify.sh")],
        env={
            "PATH": f"{bindir}:/usr/bin:/bin",
            "AWS2ALIYUN_LINK_ENV": str(env_file),
            "AWS2ALIYUN_LIVENESS": str(bindir / "liveness"),
        },
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert out.returncode == rc, out.stdout + out.stderr
    assert want in out.stdout, out.stdout
    assert "tunnel2: liveness alive" in out.stdout or rc == 1
    if rc:
        assert "tunnel2" not in out.stdout, "only the dead tunnel is a problem"


def test_ikev1_dpd_arithmetic_and_the_poisson_bound():
    """IKEv1 (never retransmitted R_U_THERE, every 10 s, 30 s timeout): two exchanges lost in a
    row are a teardown; at 15 % loss each way that is hundreds a day, far above IKEv2's calm
    DPD. poisson_upper is the textbook quantile."""
    from userdata import swanctl

    v1 = liveness.ikev1_dpd_false_teardowns_per_day(0.15, swanctl.ECS_DPD_DELAY_S, swanctl.ECS_IKEV1_DPD_TIMEOUT_S)
    q = 1 - 0.85**2
    assert v1 == pytest.approx(8640 * (1 - q) * q**2)
    v2 = liveness.dpd_false_teardowns_per_day(0.15, swanctl.ECS_DPD_DELAY_S, swanctl.ecs_dpd_transmissions())
    assert v1 > 1000 * v2
    assert liveness.ikev1_dpd_false_teardowns_per_day(0.03, 10, 30) < v1 / 10
    assert liveness.poisson_upper(0.0) == 0
    assert liveness.poisson_upper(1.0, 0.9) == 2  # P(X<=1) = 0.736, P(X<=2) = 0.920
    assert liveness.poisson_upper(3.3) == 10
