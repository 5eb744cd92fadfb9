"""AWS Site-to-Site VPN tunnel option names -> strongSwan proposal keywords.

The lab's own translation, written independently of the program's crypto profiles, so
that an AWS-like peer built from the VpnConnection's inputs accepts exactly what AWS
would accept and nothing the program merely hopes for.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

ENCRYPTION = {
    "AES128": "aes128",
    "AES256": "aes256",
    "AES128-GCM-16": "aes128gcm16",
    "AES256-GCM-16": "aes256gcm16",
}
INTEGRITY = {
    "SHA1": "sha1",
    "SHA2-256": "sha256",
    "SHA2-384": "sha384",
    "SHA2-512": "sha512",
}
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
IKE_VERSIONS = {"ikev1": 1, "ikev2": 2}

# AWS's defaults for a tunnel option the VpnConnection leaves unset (VPNTunnels guide).
AWS_DEFAULTS: dict[str, object] = {
    "IkeVersions": ["ikev1", "ikev2"],
    "Phase1EncryptionAlgorithms": ["AES128", "AES256", "AES128-GCM-16", "AES256-GCM-16"],
    "Phase1IntegrityAlgorithms": ["SHA1", "SHA2-256", "SHA2-384", "SHA2-512"],
    "Phase1DhGroupNumbers": [2, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24],
    "Phase2EncryptionAlgorithms": ["AES128", "AES256", "AES128-GCM-16", "AES256-GCM-16"],
    "Phase2IntegrityAlgorithms": ["SHA1", "SHA2-256", "SHA2-384", "SHA2-512"],
    "Phase2DhGroupNumbers": [2, 5, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24],
    "Phase1LifetimeSeconds": 28800,
    "Phase2LifetimeSeconds": 3600,
    "RekeyMarginTimeSeconds": 540,
    "RekeyFuzzPercentage": 100,
    "ReplayWindowSize": 1024,
    "DpdTimeoutSeconds": 30,
    "DpdTimeoutAction": "clear",
    "StartupAction": "add",
}


class UnknownAwsNameError(ValueError):
    """A tunnel option value AWS does not define (the program asked for something AWS rejects)."""


def _lookup(table: dict, value: object, what: str) -> str:
    key = value.upper() if isinstance(value, str) else value
    if isinstance(key, str) and key.isdigit():
        key = int(key)
    folded = {k.upper() if isinstance(k, str) else k: v for k, v in table.items()}
    try:
        return folded[key]
    except KeyError:
        allowed = ", ".join(str(k) for k in table)
        raise UnknownAwsNameError(f"{what} {value!r} is not an AWS value (allowed: {allowed})") from None


def encryption(name: str) -> str:
    return _lookup(ENCRYPTION, name, "encryption algorithm")


def integrity(name: str) -> str:
    return _lookup(INTEGRITY, name, "integrity algorithm")


def dh_group(number: int | str) -> str:
    return _lookup(DH_GROUPS, number, "DH group")


def is_aead(name: str) -> bool:
    return "GCM" in name.upper()


def swanctl_version(ike_versions: Iterable[str]) -> int:
    """swanctl `version`: 1, 2, or 0 for "either" when AWS allows both."""
    versions = {_lookup(IKE_VERSIONS, v.lower(), "IKE version") for v in ike_versions}
    if not versions:
        raise UnknownAwsNameError("no IKE version")
    return int(versions.pop()) if len(versions) == 1 else 0


def ike_proposals(encryptions: Sequence[str], integrities: Sequence[str], dh_groups: Sequence[int | str]) -> list[str]:
    """Every phase 1 combination AWS would accept, one strongSwan proposal each.

    With an AEAD cipher the integrity list supplies the PRF (IKE needs one) and no
    integrity algorithm is named; otherwise strongSwan derives the PRF from the integrity.
    """
    out: list[str] = []
    for enc, integ, dh in itertools.product(encryptions, integrities, dh_groups):
        if is_aead(enc):
            out.append(f"{encryption(enc)}-prf{integrity(integ)}-{dh_group(dh)}")
        else:
            out.append(f"{encryption(enc)}-{integrity(integ)}-{dh_group(dh)}")
    return _unique(out)


def esp_proposals(encryptions: Sequence[str], integrities: Sequence[str], dh_groups: Sequence[int | str]) -> list[str]:
    """Every phase 2 combination AWS would accept (PFS with each listed group).

    AES-GCM carries its own integrity, so its combinations name no integrity algorithm.
    """
    out: list[str] = []
    for enc, integ, dh in itertools.product(encryptions, integrities, dh_groups):
        if is_aead(enc):
            out.append(f"{encryption(enc)}-{dh_group(dh)}")
        else:
            out.append(f"{encryption(enc)}-{integrity(integ)}-{dh_group(dh)}")
    if not integrities:  # GCM-only lists may come without integrity
        for enc, dh in itertools.product(encryptions, dh_groups):
            if is_aead(enc):
                out.append(f"{encryption(enc)}-{dh_group(dh)}")
    return _unique(out)


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)
