"""Crypto profiles: one object per profile yields both the AWS tunnel options and the
strongSwan proposals, so the two ends cannot disagree.

Names on the AWS side are the VPN API's (`AES256`, `SHA2-256`, DH group numbers); the
strongSwan side is derived from them through the tables below, never written twice.
"""

from __future__ import annotations

from dataclasses import dataclass

# AWS encryption name -> (strongSwan keyword, is AEAD)
ENCRYPTION = {
    "AES128": ("aes128", False),
    "AES256": ("aes256", False),
    "AES128-GCM-16": ("aes128gcm16", True),
    "AES256-GCM-16": ("aes256gcm16", True),
}
INTEGRITY = {"SHA1": "sha1", "SHA2-256": "sha256", "SHA2-384": "sha384", "SHA2-512": "sha512"}
# The Linux kernel's names for the ESP transforms charon installs (its kernel-netlink plugin),
# with their key lengths in bits: AWS encryption name -> (algorithm, key bits; GCM's key carries
# a 32-bit salt) and AWS integrity name -> (algorithm, key bits, truncated ICV bits).
KERNEL_ENCRYPTION = {
    "AES128": ("cbc(aes)", 128),
    "AES256": ("cbc(aes)", 256),
    "AES128-GCM-16": ("rfc4106(gcm(aes))", 160),
    "AES256-GCM-16": ("rfc4106(gcm(aes))", 288),
}
KERNEL_INTEGRITY = {
    "SHA1": ("hmac(sha1)", 160, 96),
    "SHA2-256": ("hmac(sha256)", 256, 128),
    "SHA2-384": ("hmac(sha384)", 384, 192),
    "SHA2-512": ("hmac(sha512)", 512, 256),
}
GCM_ICV_BITS = 128
DH_GROUPS = {
    2: "modp1024",
    5: "modp1536",
    14: "modp2048",
    15: "modp3072",
    16: "modp4096",
    17: "modp6144",
    18: "modp8192",
    19: "ecp256",
    20: "ecp384",
    21: "ecp521",
    22: "modp1024s160",
    23: "modp2048s224",
    24: "modp2048s256",
}
# What AWS accepts (FACTS.md, API_VpnTunnelOptionsSpecification).
AWS_PHASE1_DH = {2, *range(14, 25)}
AWS_PHASE2_DH = {2, 5, *range(14, 25)}
AWS_PHASE1_LIFETIME = range(900, 28801)
AWS_PHASE2_LIFETIME = range(900, 3601)

# AWS's NAT-T overhead per cipher family (your-cgw): VTI MTU and TCP MSS.
MTU_MSS_GCM = (1438, 1398)
MTU_MSS_CBC_SHA1_SHA256 = (1422, 1382)
MTU_MSS_CBC_SHA512 = (1406, 1366)


def _zero_key(bits: int) -> str:
    return "0x" + "00" * (bits // 8)


@dataclass(frozen=True)
class CryptoProfile:
    """The crypto of both tunnels, named in AWS's terms."""

    name: str
    ike_version: int
    phase1_encryption: tuple[str, ...]
    phase1_integrity: tuple[str, ...]
    phase1_dh_groups: tuple[int, ...]
    phase2_encryption: tuple[str, ...]
    phase2_integrity: tuple[str, ...]
    phase2_dh_groups: tuple[int, ...]
    phase1_lifetime_s: int = 28800
    phase2_lifetime_s: int = 3600
    rekey_margin_s: int = 540
    rekey_fuzz_pct: int = 100
    # Margin by which the ECS rekeys before AWS's earliest possible rekey.
    ecs_rekey_lead_s: int = 300

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError(f"crypto profile {self.name}: " + "; ".join(problems))

    def problems(self) -> list[str]:
        """AWS's constraints on tunnel options, checked so a bad profile can't ship."""
        p = []
        if self.ike_version not in (1, 2):
            p.append("ike_version must be 1 or 2")
        for n in self.phase1_encryption + self.phase2_encryption:
            if n not in ENCRYPTION:
                p.append(f"unknown encryption {n}")
        for n in self.phase1_integrity + self.phase2_integrity:
            if n not in INTEGRITY:
                p.append(f"unknown integrity {n}")
        if any(ENCRYPTION.get(n, ("", False))[1] for n in self.phase1_encryption) and self.ike_version == 1:
            p.append("IKEv1 has no AES-GCM for phase 1")
        if not set(self.phase1_dh_groups) <= AWS_PHASE1_DH:
            p.append(f"phase 1 DH groups must be in {sorted(AWS_PHASE1_DH)}")
        if not set(self.phase2_dh_groups) <= AWS_PHASE2_DH:
            p.append(f"phase 2 DH groups must be in {sorted(AWS_PHASE2_DH)}")
        if self.phase1_lifetime_s not in AWS_PHASE1_LIFETIME:
            p.append("phase 1 lifetime must be 900-28800 s")
        if self.phase2_lifetime_s not in AWS_PHASE2_LIFETIME:
            p.append("phase 2 lifetime must be 900-3600 s")
        if self.phase2_lifetime_s >= self.phase1_lifetime_s:
            p.append("phase 2 lifetime must be below phase 1's")
        if not 60 <= self.rekey_margin_s <= self.phase2_lifetime_s // 2:
            p.append("rekey margin must be 60 s to half the phase 2 lifetime")
        if not 0 <= self.rekey_fuzz_pct <= 100:
            p.append("rekey fuzz must be 0-100 %")
        return p

    # ---- the AWS end ---------------------------------------------------------------

    def aws_tunnel_options(self) -> dict[str, object]:
        """VpnConnection tunnel options (python arg names without the `tunnelN_` prefix)."""
        return {
            "ike_versions": [f"ikev{self.ike_version}"],
            "phase1_encryption_algorithms": list(self.phase1_encryption),
            "phase1_integrity_algorithms": list(self.phase1_integrity),
            "phase1_dh_group_numbers": list(self.phase1_dh_groups),
            "phase1_lifetime_seconds": self.phase1_lifetime_s,
            "phase2_encryption_algorithms": list(self.phase2_encryption),
            "phase2_integrity_algorithms": list(self.phase2_integrity),
            "phase2_dh_group_numbers": list(self.phase2_dh_groups),
            "phase2_lifetime_seconds": self.phase2_lifetime_s,
            "rekey_margin_time_seconds": self.rekey_margin_s,
            "rekey_fuzz_percentage": self.rekey_fuzz_pct,
        }

    def aws_earliest_rekey_s(self, lifetime_s: int) -> int:
        """AWS rekeys at lifetime - margin - random(0, margin * fuzz)."""
        return lifetime_s - self.rekey_margin_s - self.rekey_margin_s * self.rekey_fuzz_pct // 100

    # ---- the strongSwan end --------------------------------------------------------

    def ike_proposals(self) -> str:
        """swanctl `proposals`: one proposal listing every allowed algorithm, in order."""
        parts = [ENCRYPTION[e][0] for e in self.phase1_encryption]
        parts += [INTEGRITY[i] for i in self.phase1_integrity]
        parts += [DH_GROUPS[g] for g in self.phase1_dh_groups]
        return "-".join(parts)

    def esp_proposals(self) -> str:
        """swanctl `esp_proposals`: PFS groups included, so rekeys run a fresh DH."""
        aead = all(ENCRYPTION[e][1] for e in self.phase2_encryption)
        parts = [ENCRYPTION[e][0] for e in self.phase2_encryption]
        if not aead:
            parts += [INTEGRITY[i] for i in self.phase2_integrity]
        parts += [DH_GROUPS[g] for g in self.phase2_dh_groups]
        return "-".join(parts)

    def xfrm_algorithms(self) -> tuple[str, ...]:
        """The `ip xfrm state add` algorithm clause of every ESP transform this profile may
        install, keys all zero: for an SA that is added and deleted at once, so the kernel has
        loaded, instantiated and self-tested the algorithm before a tunnel needs it."""
        out: list[str] = []
        for e in self.phase2_encryption:
            alg, bits = KERNEL_ENCRYPTION[e]
            if ENCRYPTION[e][1]:
                out.append(f"aead {alg} {_zero_key(bits)} {GCM_ICV_BITS}")
                continue
            for i in self.phase2_integrity:
                auth, auth_bits, trunc = KERNEL_INTEGRITY[i]
                out.append(f"enc {alg} {_zero_key(bits)} auth-trunc {auth} {_zero_key(auth_bits)} {trunc}")
        return tuple(dict.fromkeys(out))

    def ecs_ike_rekey_time_s(self) -> int:
        return self.aws_earliest_rekey_s(self.phase1_lifetime_s) - self.ecs_rekey_lead_s

    def ecs_child_rekey_time_s(self) -> int:
        return self.aws_earliest_rekey_s(self.phase2_lifetime_s) - self.ecs_rekey_lead_s

    def ecs_rand_time_s(self) -> int:
        """strongSwan subtracts random(0, rand_time) from the rekey time; keep it inside the lead."""
        return self.ecs_rekey_lead_s

    def vti_mtu_mss(self) -> tuple[int, int]:
        """VTI MTU and TCP MSS that fit AWS's NAT-T overhead for this cipher family."""
        if all(ENCRYPTION[e][1] for e in self.phase2_encryption):
            return MTU_MSS_GCM
        if "SHA2-512" in self.phase2_integrity or "SHA2-384" in self.phase2_integrity:
            return MTU_MSS_CBC_SHA512
        return MTU_MSS_CBC_SHA1_SHA256

    @property
    def weak(self) -> bool:
        """True when the profile uses DH group 2 or SHA1 (allowed only as `legacy`)."""
        return (
            2 in self.phase1_dh_groups + self.phase2_dh_groups
            or "SHA1" in self.phase1_integrity + self.phase2_integrity
        )


MODERN = CryptoProfile(
    name="modern",
    ike_version=2,
    phase1_encryption=("AES256",),
    phase1_integrity=("SHA2-256",),
    phase1_dh_groups=(19, 14),
    phase2_encryption=("AES256-GCM-16",),
    # Unused with AES-GCM, but set so AWS does not fall back to its default list (with SHA1).
    phase2_integrity=("SHA2-256",),
    phase2_dh_groups=(19, 14),
)

# Seed 000's reference: IKEv1 aes128-sha1-modp1024 for IKE and ESP, 8 h / 1 h.
LEGACY = CryptoProfile(
    name="legacy",
    ike_version=1,
    phase1_encryption=("AES128",),
    phase1_integrity=("SHA1",),
    phase1_dh_groups=(2,),
    phase2_encryption=("AES128",),
    phase2_integrity=("SHA1",),
    phase2_dh_groups=(2,),
)

PROFILES: dict[str, CryptoProfile] = {p.name: p for p in (MODERN, LEGACY)}
