"""Crypto profiles: the AWS options and the strongSwan proposals say the same thing."""

from __future__ import annotations

import pytest

from core.crypto import LEGACY, MODERN, PROFILES, CryptoProfile

# Independent reverse tables: strongSwan keyword -> AWS name.
SWAN_TO_AWS_ENC = {
    "aes128": "AES128",
    "aes256": "AES256",
    "aes128gcm16": "AES128-GCM-16",
    "aes256gcm16": "AES256-GCM-16",
}
SWAN_TO_AWS_INTEG = {"sha1": "SHA1", "sha256": "SHA2-256", "sha384": "SHA2-384", "sha512": "SHA2-512"}
SWAN_TO_AWS_DH = {
    "modp1024": 2,
    "modp1536": 5,
    "modp2048": 14,
    "modp3072": 15,
    "ecp256": 19,
    "ecp384": 20,
    "ecp521": 21,
}


def parse(proposal: str) -> tuple[set[str], set[str], set[int]]:
    enc, integ, dh = set(), set(), set()
    for token in proposal.split("-"):
        if token in SWAN_TO_AWS_ENC:
            enc.add(SWAN_TO_AWS_ENC[token])
        elif token in SWAN_TO_AWS_INTEG:
            integ.add(SWAN_TO_AWS_INTEG[token])
        elif token in SWAN_TO_AWS_DH:
            dh.add(SWAN_TO_AWS_DH[token])
        else:
            raise AssertionError(f"unexpected token {token!r} in {proposal!r}")
    return enc, integ, dh


@pytest.mark.parametrize("profile", PROFILES.values(), ids=list(PROFILES))
def test_ike_proposals_match_aws_phase1(profile: CryptoProfile):
    aws = profile.aws_tunnel_options()
    enc, integ, dh = parse(profile.ike_proposals())
    assert enc == set(aws["phase1_encryption_algorithms"])
    assert integ == set(aws["phase1_integrity_algorithms"])
    assert dh == set(aws["phase1_dh_group_numbers"])
    assert aws["ike_versions"] == [f"ikev{profile.ike_version}"]


@pytest.mark.parametrize("profile", PROFILES.values(), ids=list(PROFILES))
def test_esp_proposals_match_aws_phase2_with_pfs(profile: CryptoProfile):
    aws = profile.aws_tunnel_options()
    enc, integ, dh = parse(profile.esp_proposals())
    assert enc == set(aws["phase2_encryption_algorithms"])
    assert dh == set(aws["phase2_dh_group_numbers"]) and dh, "PFS: the ESP proposal carries DH groups"
    aead = all("GCM" in e for e in enc)
    assert integ == (set() if aead else set(aws["phase2_integrity_algorithms"]))


def test_modern_is_ikev2_aes256_sha256_dh14plus_gcm():
    assert MODERN.ike_version == 2
    assert MODERN.phase1_encryption == ("AES256",) and MODERN.phase1_integrity == ("SHA2-256",)
    assert min(MODERN.phase1_dh_groups) >= 14 and min(MODERN.phase2_dh_groups) >= 14
    assert MODERN.phase2_encryption == ("AES256-GCM-16",)
    assert not MODERN.weak
    assert MODERN.vti_mtu_mss() == (1438, 1398)


def test_legacy_is_seed_000():
    assert LEGACY.ike_version == 1
    assert LEGACY.ike_proposals() == "aes128-sha1-modp1024"
    assert LEGACY.esp_proposals() == "aes128-sha1-modp1024"
    assert (LEGACY.phase1_lifetime_s, LEGACY.phase2_lifetime_s) == (28800, 3600)
    assert LEGACY.weak
    assert LEGACY.vti_mtu_mss() == (1422, 1382)


@pytest.mark.parametrize("profile", PROFILES.values(), ids=list(PROFILES))
def test_lifetimes_within_aws_limits_and_ecs_rekeys_first(profile: CryptoProfile):
    assert 900 <= profile.phase1_lifetime_s <= 28800
    assert 900 <= profile.phase2_lifetime_s <= 3600 < profile.phase1_lifetime_s
    assert 60 <= profile.rekey_margin_s <= profile.phase2_lifetime_s // 2
    # The ECS's latest rekey (rekey_time; strongSwan only subtracts rand_time) comes before
    # AWS's earliest (lifetime - margin - margin * fuzz).
    assert profile.ecs_child_rekey_time_s() < profile.aws_earliest_rekey_s(profile.phase2_lifetime_s)
    assert profile.ecs_ike_rekey_time_s() < profile.aws_earliest_rekey_s(profile.phase1_lifetime_s)
    assert profile.ecs_child_rekey_time_s() - profile.ecs_rand_time_s() > 0


def test_a_profile_outside_aws_rules_cannot_be_built():
    with pytest.raises(ValueError, match="phase 1 DH groups"):
        CryptoProfile("bad", 2, ("AES256",), ("SHA2-256",), (5,), ("AES256",), ("SHA2-256",), (14,))
    with pytest.raises(ValueError, match="phase 2 lifetime"):
        CryptoProfile(
            "bad", 2, ("AES256",), ("SHA2-256",), (14,), ("AES256",), ("SHA2-256",), (14,), phase2_lifetime_s=7200
        )


def test_ikev2_dead_peer_detection_is_a_calm_but_bounded_backstop():
    # dpd_delay + the capped retransmission timeouts: how long a silent peer keeps its SAs.
    from userdata import liveness
    from userdata import swanctl as sw

    capped = [
        min(sw.ECS_RETRANSMIT_TIMEOUT_S * sw.ECS_RETRANSMIT_BASE**n, sw.ECS_RETRANSMIT_LIMIT_S)
        for n in range(sw.ECS_RETRANSMIT_TRIES + 1)
    ]
    assert sum(capped) == pytest.approx(sw.ecs_dpd_give_up_s())
    # cleared within a minute (the AWS end's DPD is 30 s by default), long after liveness acts
    assert sw.ECS_DPD_DELAY_S + sw.ecs_dpd_give_up_s() < 60
    assert sw.ECS_DPD_DELAY_S > 5 * liveness.DOWN_AFTER_S
    # a lost packet is retried within the cap: a healed path is used again within 5 s
    assert max(capped) <= sw.ECS_RETRANSMIT_LIMIT_S <= 5
