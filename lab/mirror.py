"""The lab's package mirror: the image's apt source, as an ECS image's is Alibaba's in-VPC mirror.

Alibaba's public images point apt at `mirrors.cloud.aliyuncs.com`, which answers inside a VPC
at an address of 100.100.0.0/16 without the internet. The lab's image does the same: its one
apt source is `http://ADDRESS/debian` (signed by a key made with the image), and the world's
Alibaba router forwards that address to a small HTTP server the lab runs on the host for the
run (`serve`), through QEMU's user network. The gateway's user-data runs as it would on an ECS:
cloud-init's `package_update` runs `apt-get update`, which checks the mirror's signature, and
its `packages` are installed by apt from real Debian packages.

What it holds: the packages any user-data of the program can name (`PACKAGES`, from
userdata.cloud_config) with their dependencies, as the image's apt resolves them, downloaded
from Debian's registry when the image is built (lab/image/build.sh). So a lab run needs no
registry once the image is cached, and `apt-get update` in a one-vCPU TCG guest reads an index
of a hundred packages instead of Debian's 60,000 (docs/lab-findings.md #38).
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from userdata.cloud_config import BGP_PACKAGES, PAIR_PACKAGES
from userdata.cloud_config import PACKAGES as GATEWAY_PACKAGES

# inside Alibaba's in-VPC service range (100.100.0.0/16), like the mirror ECS images use;
# on no lab network (lab.topology keeps it out of every plan and network it picks)
ADDRESS = "100.100.2.148"
PORT = 80  # what the gateway's apt asks; the Alibaba router forwards it to `serve`'s port
SUITE = "bookworm"
COMPONENT = "main"
ARCH = "amd64"
KEYRING = "/usr/share/keyrings/aws2aliyun-lab-mirror.gpg"
# every package a gateway's user-data installs: a single gateway, a pair's, with BGP
PACKAGES = tuple(dict.fromkeys((*GATEWAY_PACKAGES, *PAIR_PACKAGES, *BGP_PACKAGES)))
# the mirror's directory in the cached image (lab.image.Image.mirror), served at the root
DIRNAME = "mirror"


def sources_list() -> str:
    """The image's /etc/apt/sources.list: the mirror alone."""
    return f"deb [signed-by={KEYRING}] http://{ADDRESS}/debian {SUITE} {COMPONENT}\n"


def build_env() -> dict[str, str]:
    """What lab/image/build.sh needs to build the mirror (part of the image's cache key)."""
    return {
        "MIRROR_PACKAGES": " ".join(PACKAGES),
        "MIRROR_SOURCES_LIST": sources_list(),
        "MIRROR_KEYRING": KEYRING,
        "MIRROR_SUITE": SUITE,
        "MIRROR_COMPONENT": COMPONENT,
        "MIRROR_ARCH": ARCH,
    }


def lab_env(port: int) -> str:
    """lab.env's lines for the Alibaba router's forward (guest/boot.sh)."""
    return f"MIRROR_ADDR='{ADDRESS}'\nMIRROR_PORT='{PORT}'\nMIRROR_HOST_PORT='{port}'\n"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class Server:
    """The mirror served on 127.0.0.1 (QEMU's user network reaches it as its host address) for
    one lab run: `with Server(dir) as s: s.port`."""

    def __init__(self, directory: Path):
        if not (directory / "debian" / "dists" / SUITE / "InRelease").is_file():
            raise FileNotFoundError(f"no package mirror in {directory} (rebuild the image: python -m lab image)")
        handler = functools.partial(_Quiet, directory=str(directory))
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="lab-mirror", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
