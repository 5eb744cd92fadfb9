"""The lab's package mirror (lab/mirror.py): what it must hold, how it is served, what it keys."""

from __future__ import annotations

import dataclasses
import http.client
import re
from pathlib import Path

import pytest

from lab import image, mirror
from lab.topology import TopologyError, plan_topology
from tests.test_bgp import bgp_gateway
from tests.test_gateway_pair import pair_gateway
from tests.test_lab_prefixes import legacy_inputs
from tests.test_userdata import gateway
from userdata import cloud_config


@pytest.mark.parametrize(
    "gw",
    [gateway(), pair_gateway(1), bgp_gateway(), bgp_gateway(ecmp=True)],
    ids=["single", "pair", "bgp", "bgp-ecmp"],
)
def test_the_mirror_holds_every_package_a_gateways_user_data_installs(gw):
    # the image's only apt source: a package missing from it fails the gateway's cloud-init
    assert set(cloud_config(gw)["packages"]) <= set(mirror.PACKAGES)


def test_the_images_apt_source_is_the_mirror_alone_and_signed():
    line = mirror.sources_list()
    assert line == f"deb [signed-by={mirror.KEYRING}] http://{mirror.ADDRESS}/debian bookworm main\n"
    env = mirror.build_env()
    assert env["MIRROR_PACKAGES"].split() == list(mirror.PACKAGES)
    assert env["MIRROR_SOURCES_LIST"] == line


def test_the_image_is_rebuilt_when_the_mirrors_packages_change(tmp_path: Path):
    (tmp_path / "build.sh").write_text("true\n")
    now = image.image_key(tmp_path)
    assert now == image.image_key(tmp_path, mirror.build_env())
    more = {**mirror.build_env(), "MIRROR_PACKAGES": mirror.build_env()["MIRROR_PACKAGES"] + " tcpdump"}
    assert image.image_key(tmp_path, more) != now


def _repo(root: Path) -> Path:
    dist = root / "debian" / "dists" / mirror.SUITE
    dist.mkdir(parents=True)
    (dist / "InRelease").write_text("-----BEGIN PGP SIGNED MESSAGE-----\n")
    pool = root / "debian" / "pool" / "main"
    pool.mkdir(parents=True)
    (pool / "keepalived_1_amd64.deb").write_bytes(b"!<arch>\n" + bytes(range(256)) * 64)
    return root


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        res = conn.getresponse()
        return res.status, res.read()
    finally:
        conn.close()


def test_the_server_serves_the_mirror_on_loopback_only(tmp_path: Path):
    root = _repo(tmp_path / "mirror")
    (tmp_path / "secret").write_text("outside the mirror\n")
    with mirror.Server(root) as s:
        deb = (root / "debian/pool/main/keepalived_1_amd64.deb").read_bytes()
        assert _get(s.port, "/debian/pool/main/keepalived_1_amd64.deb") == (200, deb)
        # apt skips a translation the Release does not list
        assert _get(s.port, f"/debian/dists/{mirror.SUITE}/main/i18n/Translation-en")[0] == 404
        assert _get(s.port, "/../secret")[0] == 404  # nothing outside the mirror
        assert s._httpd.server_address[0] == "127.0.0.1"


def test_a_server_without_a_built_mirror_says_to_rebuild_the_image(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=re.escape("python -m lab image")):
        mirror.Server(tmp_path)


def test_the_routers_forward_and_the_plans_networks_keep_clear_of_the_mirror_address():
    env = mirror.lab_env(41234)
    assert f"MIRROR_ADDR='{mirror.ADDRESS}'" in env and "MIRROR_HOST_PORT='41234'" in env
    nft = (Path(mirror.__file__).parent / "guest" / "alirouter.nft").read_text()
    assert "ip daddr @MIRROR_ADDR@ tcp dport @MIRROR_PORT@ counter dnat to @SLIRP_GW@:@MIRROR_HOST_PORT@" in nft
    i = legacy_inputs()
    clashing = dataclasses.replace(i, aws_prefixes=(*i.aws_prefixes, "100.100.0.0/16"))
    with pytest.raises(TopologyError, match=re.escape("100.100.0.0/16 holds the image's package mirror address")):
        plan_topology(clashing)
