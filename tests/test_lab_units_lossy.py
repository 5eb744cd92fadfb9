"""Quick tests of the lossy-path check's parts (no VM): the netem commands, the design before
liveness rewritten from the program's own configuration, and the counting of teardowns and
route moves from the log lines the gateway's own scripts write."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core import paths
from core.crypto import LEGACY, MODERN
from lab import netem, previous
from lab.checks import lossy
from lab.inputs import written_file
from tests.test_liveness import lv  # noqa: F401  (the daemon, loaded from its file)
from tests.test_userdata import gateway
from userdata import liveness
from userdata.cloud_config import link_env, render

UPDOWN = Path(__file__).resolve().parent.parent / "userdata" / "files" / "aws2aliyun-updown.sh"


def test_netem_impairs_each_direction_of_each_tunnel_once():
    imp = netem.CROSS_BORDER
    assert imp.rtt_ms == 300 and imp.loss == 0.15
    assert imp.describe() == "300 ms RTT (+-40 ms), 15 % loss each way"
    devs = netem.ports([1, 2])
    assert devs == ("p-ali", "p-aws1", "p-aws2")
    lines = netem.apply_script(imp, devs).splitlines()
    assert lines == [f"tc -n internet qdisc replace dev {d} root netem delay 150ms 20ms loss random 15%" for d in devs]
    assert netem.clear_script(devs).count("qdisc del dev") == 3


def test_netem_stats_come_from_tc_json():
    out = json.dumps(
        [
            {"kind": "noqueue", "dev": "inet", "packets": 9},
            {"kind": "netem", "dev": "p-ali", "packets": 1000, "drops": 151},
            {"kind": "netem", "dev": "p-aws1", "packets": 500, "drops": 70},
        ]
    )
    assert netem.parse_qdiscs(out) == {"p-ali": {"sent": 1000, "drops": 151}, "p-aws1": {"sent": 500, "drops": 70}}
    assert netem.parse_qdiscs("not json") == {}


@pytest.mark.parametrize("profile", ["modern", "legacy"])
def test_the_design_before_liveness_is_the_programs_config_with_the_old_timers(profile):
    gw = gateway(LEGACY if profile == "legacy" else MODERN)
    user_data = render(gw)
    ours = written_file(user_data, paths.SWANCTL_CONF_PATH)
    old = previous.ecs_swanctl_conf(user_data)
    assert re.findall(r"dpd_delay = (\S+)", old) == ["2s", "2s"]
    if profile == "legacy":
        assert re.findall(r"dpd_timeout = (\S+)", old) == ["8s", "8s"]
    else:
        assert "dpd_timeout" not in old
    # routes follow the SAs as they did: the seed's routing wrapper around the program's updown
    assert re.findall(r"updown = \"(.*)\"", old) == [
        f"/bin/sh /run/lab/seed-updown {paths.UPDOWN_PATH} tunnel1",
        f"/bin/sh /run/lab/seed-updown {paths.UPDOWN_PATH} tunnel2",
    ]
    # nothing else differs: proposals, lifetimes, marks stay the program's
    strip = re.compile(r"^\s*(dpd_delay|dpd_timeout|updown) = .*\n", re.M)
    assert strip.sub("", old) == strip.sub("", ours)
    charon = previous.ecs_charon_conf(user_data)
    assert "retransmit_tries = 3" in charon and "retransmit_timeout = 0.8" in charon
    assert "retransmit_base = 1.4" in charon and "retransmit_limit" not in charon
    assert set(previous.files(user_data)) == {
        paths.SWANCTL_CONF_PATH,
        paths.CHARON_CONF_PATH,
        "/run/lab/seed-updown",
    }


def test_the_rewrite_refuses_a_config_without_the_line_it_changes():
    with pytest.raises(ValueError, match="dpd_delay"):
        previous._sub(r"^(\s*dpd_delay = ).*$", "x", "connections {}\n", "swanctl.conf")


def test_teardowns_are_charons_dead_peer_verdicts_of_both_ike_versions():
    text = "\n".join(
        [
            "Dec 04 01:00:01 ecs charon-systemd[1]: 09[IKE] giving up after 7 retransmits",
            "Dec 04 01:00:02 ecs charon-systemd[1]: 09[IKE] retransmit 2 of request with message ID 5",
            "aws1: 12[JOB] DPD check timed out, enforcing DPD action",
            "aws2: 05[IKE] sending DPD request",
        ]
    )
    assert lossy.count_teardowns(text) == 2


def test_a_liveness_verdict_is_counted_from_the_daemons_own_log_line(lv, tmp_path, monkeypatch):  # noqa: F811
    env = tmp_path / "link.env"
    env.write_text(link_env(gateway()))
    d = lv.Daemon(
        lv.read_env(str(env)), liveness.INTERVAL_S, liveness.DOWN_AFTER_S, liveness.RISE, liveness.COMMON_DOWN_AFTER_S
    )
    said = []
    monkeypatch.setattr(d, "update_routes", lambda why: said.append(f"1733274000.5 ecs aws2aliyun-liveness[9]: {why}"))
    d.transition(d.tunnels[0], "dead")
    d.transition(d.tunnels[1], "dead")
    d.transition(d.tunnels[0], "alive")
    text = "\n".join(said)
    assert lossy.per_tunnel(lossy.VERDICT, text) == {1: 1, 2: 1}
    assert lossy.verdict_times(text) == [(1733274000.5, 1), (1733274000.5, 2)]


def test_a_vti_going_down_is_counted_but_not_a_duplicate_closing():
    script = UPDOWN.read_text()
    # the two lines the updown script logs on down-client, as `log` prefixes them
    assert 'log "down: $vti (its routes to $AWS_CIDRS go with it)"' in script
    assert 'log "down: one of $sas CHILD_SAs closed, $vti stays up for the others"' in script
    assert 'logger -t aws2aliyun-updown -- "${tunnel}: $*"' in script
    text = (
        "1.0 ecs aws2aliyun-updown[1]: tunnel1: down: vti1 (its routes to 10.10.0.0/16 go with it)\n"
        "2.0 ecs aws2aliyun-updown[2]: tunnel1: down: one of 2 CHILD_SAs closed, vti1 stays up for the others\n"
        "3.0 ecs aws2aliyun-updown[3]: tunnel2: down: vti2 (its routes to 10.10.0.0/16 go with it)\n"
        "4.0 ecs aws2aliyun-updown[4]: tunnel1: up: vti1 ...\n"
    )
    assert lossy.per_tunnel(lossy.VTI_DOWN, text) == {1: 1, 2: 1}


def test_the_expected_false_verdicts_favour_liveness_at_every_loss():
    for p in (0.01, 0.03, 0.05, 0.15):
        assert lossy.expected_per_day("ours", p) < lossy.expected_per_day("previous", p)
    # the arithmetic for the old design: about 0.5 a day at 3 %, about 4 at 5 %
    assert 0.3 < lossy.expected_per_day("previous", 0.03) < 0.8
    assert 3 < lossy.expected_per_day("previous", 0.05) < 5


def test_a_verdict_on_a_stall_of_the_labs_host_is_counted_apart():
    """A tunnel-1 verdict preceded by a lab probe held up longer than the daemon's dead threshold
    (the path delays a probe a few hundred ms at most): the host stalled, the daemon did its job;
    it does not count against lossy_path's goal of no route switch. A slow probe below the
    threshold, or a verdict on tunnel 2 (the lab probes do not cross it), is no such evidence."""
    stall = {"tunnel": 1, "t": 418.3, "slow_probes_before": [(416.0, liveness.DOWN_AFTER_S + 0.45), (416.3, 1.0)]}
    assert lossy.on_host_stall(stall)
    assert not lossy.on_host_stall({**stall, "slow_probes_before": [(416.0, liveness.DOWN_AFTER_S - 0.1)]})
    assert not lossy.on_host_stall({**stall, "slow_probes_before": []})
    assert not lossy.on_host_stall({**stall, "tunnel": 2})
    assert lossy.HOST_STALL_S == liveness.DOWN_AFTER_S
    # far beyond what the simulated path delays a probe one way
    one_way_max_s = (netem.CROSS_BORDER.delay_ms + netem.CROSS_BORDER.jitter_ms) / 1000
    assert 4 * one_way_max_s < lossy.HOST_STALL_S
