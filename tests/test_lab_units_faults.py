"""Quick tests of the fault checks' pure helpers (no VM)."""

from __future__ import annotations

import pytest

from lab import peer
from lab.faults import FAULT_CHECKS, direction_stats, parse_rx, parse_tx
from lab.report import CHECKS

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
