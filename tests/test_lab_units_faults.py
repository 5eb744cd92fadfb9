"""Quick tests of the fault checks' pure helpers (no VM)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import peer
from lab.probes import RATE, WARMUP, direction_stats, parse_rx, parse_tx, probe_result
from lab.registry import CHECKS, FAULT_CHECKS

IV = 0.1


def stream(n: int, missing: set[int] = frozenset(), t0: float = 1000.0):
    return [(k, t0 + k * IV) for k in range(n) if k not in missing]


def test_no_loss_no_outage():
    s = direction_stats(stream(100), 100, 1000.0, 1000.0 + 99 * IV, IV)
    assert (s.sent, s.received, s.lost, s.outage_s, s.recovered) == (100, 100, 0, 0.0, True)


def test_gap_in_the_middle():
    missing = set(range(30, 80))  # 50 probes = 5 s
    s = direction_stats(stream(200, missing), 200, 1000.0, 1000.0 + 199 * IV, IV)
    assert s.lost == 50
    assert s.outage_s == pytest.approx(5.0)
    assert s.outage_from == pytest.approx(1000.0 + 29 * IV)
    assert s.outage_to == pytest.approx(1000.0 + 80 * IV)
    assert s.recovered


def test_longest_of_several_gaps_and_duplicates():
    missing = {5} | set(range(50, 60)) | set(range(100, 103))
    rx = [*stream(150, missing), (7, 1000.7), (7, 1000.7)]
    s = direction_stats(rx, 150, 1000.0, 1000.0 + 149 * IV, IV)
    assert s.lost == 1 + 10 + 3
    assert s.outage_s == pytest.approx(1.0)
    assert [g[2] for g in s.gaps] == [10, 3, 1]


def test_not_recovered_trailing_gap():
    s = direction_stats(stream(100, set(range(60, 100))), 100, 1000.0, 1000.0 + 99 * IV, IV)
    assert s.lost == 40
    assert not s.recovered
    assert s.outage_s == pytest.approx(4.0)  # from the last received to the last sent
    assert s.outage_to is None


def test_leading_gap_and_nothing_received():
    s = direction_stats(stream(100, set(range(20))), 100, 1000.0, 1000.0 + 99 * IV, IV)
    assert s.lost == 20 and s.recovered
    assert s.outage_s == pytest.approx(2.0)
    none = direction_stats([], 50, 1000.0, 1004.9, IV)
    assert none.lost == 50 and not none.recovered and none.outage_s == pytest.approx(4.9)


def test_parsers_ignore_garbage():
    assert parse_rx("1 1000.1 1000.2\n2 1000.2\nbad line here\n\nx y\n") == [(1, 1000.1), (2, 1000.2)]
    assert parse_tx("42 1000.0 1004.1\n") == (42, 1000.0, 1004.1)
    assert parse_tx("") is None and parse_tx("a b c") is None
    assert parse_tx("42 1000.0 1004.1 7\n") == (42, 1000.0, 1004.1)


def test_what_the_labs_own_receiver_dropped_is_reported_per_direction():
    """seqprobe's 4th `.tx` field counts datagrams its full socket buffer dropped (SO_RXQ_OVFL):
    the ali end's is the downlink's receiver, the aws end's the uplink's."""
    n, t0 = WARMUP + 20, 1000.0
    rows = "".join(f"{k} {t0 + k / RATE:.6f} {t0 + k / RATE + 0.01:.6f}\n" for k in range(n) if k != WARMUP + 5)
    last = t0 + (n - 1) / RATE
    out = f"=== ali.tx\n{n} {t0} {last} 3\n=== ali.rx\n{rows}=== aws.tx\n{n} {t0} {last}\n=== aws.rx\n{rows}"
    r = probe_result(out, t0)
    assert (r.down.rx_dropped, r.up.rx_dropped) == (3, 0)
    assert r.down.lost == r.up.lost == 1
    assert r.down.as_metrics()["rx_dropped"] == 3


def test_metrics_relative_to_a_reference():
    s = direction_stats(stream(100, set(range(30, 40))), 100, 1000.0, 1009.9, IV)
    m = s.as_metrics(t_ref=1003.0)
    assert m["outage_from"] == pytest.approx(-0.1) and m["outage_to"] == pytest.approx(1.0)


def test_fault_checks_are_not_in_the_default_lab():
    assert not set(FAULT_CHECKS) & set(CHECKS)


def test_peer_models_aws_dpd_timeout_only_when_asked():
    assert "retransmit" not in peer.strongswan_conf()
    rt = peer.dead_peer_retransmits(30)
    total = sum(rt["retransmit_timeout"] * rt["retransmit_base"] ** k for k in range(rt["retransmit_tries"] + 1))
    # a DPD goes out 10-20 s after the last inbound packet; dead ~ dpd_timeout after it
    assert 30 - peer.AWS_DPD_DELAY_S / 2 <= peer.AWS_DPD_DELAY_S * 1.5 + total <= 30 + peer.AWS_DPD_DELAY_S / 2
    assert "retransmit_tries = 2" in peer.strongswan_conf(30)


def test_warmup_probes_are_ignored():
    s = direction_stats(stream(100, {0, 1, 2}), 100, 1000.0, 1009.9, IV, start_seq=10)
    assert (s.sent, s.received, s.lost, s.outage_s) == (90, 90, 0, 0.0)
    s = direction_stats(stream(100, {0, 12, 13}), 100, 1000.0, 1009.9, IV, start_seq=10)
    assert (s.sent, s.lost) == (90, 2) and s.outage_s == pytest.approx(0.2)


# ------------------------------------------------------------------ seed 000 baseline
def _baseline_inputs():
    """Lab inputs from a plan whose user-data is the program's real rendering."""
    import dataclasses

    from lab.inputs import from_plan
    from tests.test_lab_units import make_plan
    from tests.test_userdata import gateway
    from userdata.cloud_config import render

    user_data = render(gateway())
    return dataclasses.replace(from_plan(make_plan()), user_data=user_data), user_data


def test_baseline_ecs_config_is_seed_000():
    from lab import baseline

    inputs, user_data = _baseline_inputs()
    text = baseline.ecs_swanctl_conf(inputs, user_data)
    for want in (
        "version = 1",
        "proposals = aes128-sha1-modp1024",
        "esp_proposals = aes128-sha1-modp1024",
        "dpd_delay = 10s",
        "dpd_timeout = 30s",
        "dpd_action = restart",
        "keyingtries = 0",
        "reauth_time = 28260s",  # ikelifetime 8h - margintime 9m
        "life_time = 3600s",
        "rekey_time = 3060s",
        'updown = "/bin/sh /run/lab/seed-updown /usr/local/sbin/aws2aliyun-updown tunnel1"',
    ):
        assert want in text, want
    # the marks the program's VTIs are keyed with, one per tunnel
    assert text.count("mark_in = 100") == 1 and text.count("mark_in = 200") == 1
    assert text.count("{") == text.count("}")
    assert "retransmit" not in baseline.ecs_charon_conf()
    assert "install_routes = no" in baseline.ecs_charon_conf()


@pytest.mark.parametrize(("verb", "routed"), [("up-client", True), ("down-client", False)])
def test_baseline_updown_routes_as_the_seed_does_after_the_programs_updown(tmp_path, verb, routed):
    """Seed 000 has no liveness daemon: its updown routes the AWS prefixes on up-client."""
    import subprocess

    from core import paths
    from lab import baseline
    from tests.test_userdata import gateway
    from userdata.cloud_config import link_env

    calls = tmp_path / "calls"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "ip").write_text(f'#!/bin/sh\necho "ip $*" >> {calls}\n')
    (bindir / "ip").chmod(0o755)
    env_file = tmp_path / "link.env"
    env_file.write_text(link_env(gateway()))
    script = tmp_path / "seed-updown"
    script.write_text(baseline.seed_updown().replace(paths.LINK_ENV_PATH, str(env_file)))
    program_updown = f'echo "updown $*" >> {calls}'
    out = subprocess.run(
        ["sh", str(script), "sh", "-c", program_updown, "updown", "tunnel2"],
        env={"PATH": f"{bindir}:/usr/bin:/bin", "PLUTO_VERB": verb},
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert out.returncode == 0, out.stderr
    lines = calls.read_text().splitlines()
    assert lines[0] == "updown tunnel2"
    assert ("ip route replace 10.10.0.0/16 dev Tunnel2 metric 200" in lines) is routed


def test_baseline_aws_end_speaks_ikev1_with_the_seeds_proposal():
    from lab import baseline

    inputs, _ = _baseline_inputs()
    t = baseline.aws_tunnel(inputs.tunnels[0])
    conf = peer.swanctl_conf(t, inputs.eip, 100)
    assert "version = 1" in conf
    assert "proposals = aes128-sha1-modp1024" in conf
    assert "esp_proposals = aes128-sha1-modp1024" in conf
    assert t.preshared_key == inputs.tunnels[0].preshared_key


@pytest.mark.parametrize("dpd", [30, 40])
def test_baseline_aws_end_keeps_the_stacks_dead_peer_detection(dpd):
    """The AWS end's DPD is the AWS side's setting: the baseline's downlink is measured
    against the same AWS end as ours, so a stack's non-default timeout compares fairly."""
    import dataclasses

    from lab import baseline

    inputs, _ = _baseline_inputs()
    ours = dataclasses.replace(inputs.tunnels[0], dpd_timeout_s=dpd, dpd_timeout_action="restart")
    t = baseline.aws_tunnel(ours)
    assert (t.dpd_timeout_s, t.dpd_timeout_action) == (dpd, "restart")
    conf = peer.swanctl_conf(t, inputs.eip, 100)
    assert f"dpd_timeout = {dpd}s" in conf and "dpd_action = restart" in conf


def test_baseline_ratio():
    from lab.baseline import ratio

    assert ratio(7.5, 30.0) == 0.25
    assert ratio(None, 30.0) is None
    assert ratio(7.5, 0.0) is None


def test_probe_timeline_is_relative_to_the_fault():
    from lab.probes import ProbeResult

    up = direction_stats(stream(100), 100, 1000.0, 1009.9, IV)
    r = ProbeResult(up, up, 999.5, up_rx=[1000.0, 1000.1, 1000.1], down_rx=[1005.0], t_end=1009.9)
    tl = r.timeline(1002.0, [("block tunnel1", 1002.0), ("unrelated, later", 1100.0)])
    assert tl["uplink_rx"] == [-2.0, -1.9]
    assert tl["downlink_rx"] == [3.0]
    assert tl["start"] == -2.5 and tl["end"] == 7.9
    assert tl["events"] == [("block tunnel1", 0.0)]


# ------------------------------------------------------------------ BENCHMARKS.md
def _report(profile: str, uplink: float | None) -> dict:
    tl = {
        "rate_pps": 10.0,
        "start": -5.0,
        "end": 20.0,
        "uplink_rx": [round(-5 + k * 0.1, 2) for k in range(250) if not 0 <= -5 + k * 0.1 < 6],
        "downlink_rx": [round(-5 + k * 0.1, 2) for k in range(250) if not 0 <= -5 + k * 0.1 < 12],
        "events": [("block tunnel1", 0.0)],
    }
    checks = [
        {"name": "tunnels_established", "ok": True, "metrics": {}},
        {
            "name": "failover_tunnel1",
            "ok": uplink is not None,
            "metrics": {"goal_downlink_s": 35.0} | ({"uplink_outage_s": uplink} if uplink is not None else {}),
        },
        {"name": "baseline_failover_tunnel1", "ok": True, "metrics": {"uplink_ratio": 0.2}},
    ]
    return {
        "ok": False,
        "config": {"crypto_profile": profile, "machine": {"host_cpus": 2, "qemu": "QEMU 7.2"}},
        "checks": checks,
        "metrics": {"boot_to_established_s": 101.5, "failover_timelines": {"failover": tl}},
    }


def test_benchmarks_markdown_comes_from_the_reports():
    from lab.benchmarks import render

    text = render(
        [("r/dev.json", _report("modern", 6.1)), ("r/legacy.json", _report("legacy", None))], "p.png", "make x"
    )
    lines = text.splitlines()
    assert "| metric | goal | modern | legacy |" in lines
    up = next(ln for ln in lines if ln.startswith("| failover: uplink outage"))
    assert up.split("|")[3].strip() == "6.1 s" and up.split("|")[4].strip() == "not measured"
    assert next(ln for ln in lines if ln.startswith("| ours / baseline, uplink")).split("|")[3].strip() == "0.20x"
    fo = next(ln for ln in lines if ln.startswith("| `failover_tunnel1`"))
    assert fo.split("|")[2].strip() == "PASS" and fo.split("|")[3].strip() == "**FAIL**"
    assert next(ln for ln in lines if ln.startswith("| `reboot_persistence`")).count("not run") == 2
    assert "![failover timeline](p.png)" in text and "Reproduce: `make x`" in text
    assert "| host CPUs | 2 | 2 |" in lines


def test_benchmarks_bins_and_plot(tmp_path):
    from lab.benchmarks import bins, plot

    xs, counts = bins([0.0, 0.1, 0.45, 0.5, 1.2, 9.0], 0.0, 1.5)
    assert xs == [0.0, 0.5, 1.0] and counts == [3, 1, 1]
    png = tmp_path / "t.png"
    assert plot([("a", _report("modern", 6.1))], png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plot([("b", {"config": {}, "checks": [], "metrics": {}})], tmp_path / "none.png")


def test_report_summary_headline_has_the_failover_numbers():
    from lab.report import Check, Report

    r = Report(expected=("failover_tunnel1",))
    r.add(Check("failover_tunnel1", True, 40.0, "blackholed", {}))
    r.metrics.update({"uplink_outage_s": 5.93, "downlink_outage_s": 25.8, "baseline_uplink_ratio": 0.23})
    head = r.summary().splitlines()[0]
    assert "failover outage up 5.9s / down 25.8s" in head
    assert "uplink outage 0.23x seed 000's" in head


def test_benchmarks_plot_window_leaves_out_half_probed_edges():
    from lab.benchmarks import plot_window

    tl = {"start": -9.0, "end": 40.0, "uplink_rx": [-8.5, 5.0, 39.0], "downlink_rx": [-3.0, 30.0, 37.2]}
    assert plot_window(tl) == (-3.0, 36.7)


def test_run_check_times_and_turns_a_lab_error_into_a_failed_check():
    from lab.report import run_check

    c = run_check("x", lambda: (True, "fine", {"n": 1}))
    assert (c.name, c.ok, c.detail, c.metrics) == ("x", True, "fine", {"n": 1}) and c.seconds >= 0

    def broken():
        raise RuntimeError("nft said no")

    c = run_check("y", broken)
    assert not c.ok and c.detail.startswith("lab error while checking:") and "nft said no" in c.detail


def test_last_line_time():
    from lab.probes import last_line_time

    assert last_line_time("x\n1795446238.009852420\n") == pytest.approx(1795446238.0098524)
    assert last_line_time("") is None and last_line_time("oops\n") is None


def test_a_stalled_probe_sender_slips_its_schedule_instead_of_bursting(tmp_path):
    """seqprobe for real on the loopback: one end stopped (SIGSTOP) for 1.5 s, as a stalled
    lab VM is. It resumes at its rate without a catch-up burst: the slots it missed are never
    sent, nothing it sent is lost, and its `.tx` says how long it fell behind."""
    import signal
    import subprocess
    import sys
    import time

    from lab.probes import parse_stalled

    script = Path(__file__).resolve().parent.parent / "lab" / "guest" / "seqprobe.py"
    ends = {"ali": ("127.0.0.21", "127.0.0.22"), "aws": ("127.0.0.22", "127.0.0.21")}
    common = ["--port", "5391", "--rate", "20", "--dir", str(tmp_path), "--max", "30"]
    procs = {
        name: subprocess.Popen([sys.executable, str(script), "--bind", bind, "--peer", peer, "--name", name, *common])
        for name, (bind, peer) in ends.items()
    }
    try:
        time.sleep(1.0)
        procs["ali"].send_signal(signal.SIGSTOP)
        time.sleep(1.5)
        procs["ali"].send_signal(signal.SIGCONT)
        time.sleep(1.5)
    finally:
        (tmp_path / "stop").touch()
        for p in procs.values():
            p.wait(15)
    tx = (tmp_path / "ali.tx").read_text()
    sent = parse_tx(tx)
    assert sent is not None
    got = sorted({seq for seq, _ in parse_rx((tmp_path / "aws.rx").read_text())})
    # (the first few may go out before the other end has bound its socket: the lab's warm-up)
    assert set(range(5, sent[0])) <= set(got), "every datagram the stalled sender sent was received"
    # about 4 s of sending at 20/s, 1.5 s of it stopped: some 50 sent, not 80
    assert sent[0] < 20 * (sent[2] - sent[1]) - 15
    assert 1.0 <= parse_stalled(tx) <= 2.5
    assert parse_stalled((tmp_path / "aws.tx").read_text()) < 0.5
