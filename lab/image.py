"""The lab's Debian 12 image, built by lab/image/build.sh and cached outside the repo.

The cache key is the hash of everything under lab/image/ (package lists, build and
customize scripts, the early-boot hook) and of the package mirror's settings (lab/mirror.py:
the packages the user-data can install), so the image is rebuilt only when one of them
changes. Cache: $AWS2ALIYUN_LAB_CACHE or ~/.cache/aws2aliyun-lab.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lab import mirror

IMAGE_DIR = Path(__file__).parent / "image"
FORMAT = "2"  # bump when the cached layout changes
KEEP = 2  # older images kept besides the current one


@dataclass(frozen=True)
class Image:
    key: str
    path: Path
    built_now: bool
    build_seconds: float

    @property
    def kernel(self) -> Path:
        return self.path / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.path / "initrd.img"

    @property
    def disk(self) -> Path:
        return self.path / "disk.raw"

    @property
    def mirror(self) -> Path:
        """The package mirror built with the image (lab.mirror.Server serves it)."""
        return self.path / mirror.DIRNAME


def cache_root() -> Path:
    env = os.environ.get("AWS2ALIYUN_LAB_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "aws2aliyun-lab"


def image_key(image_dir: Path = IMAGE_DIR, build_env: dict[str, str] | None = None) -> str:
    h = hashlib.sha256(f"format={FORMAT}\n".encode())
    for k, v in sorted((mirror.build_env() if build_env is None else build_env).items()):
        h.update(f"{k}={v}\0".encode())
    for f in sorted(p for p in image_dir.rglob("*") if p.is_file()):
        h.update(f.relative_to(image_dir).as_posix().encode() + b"\0")
        h.update(f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _complete(path: Path) -> bool:
    inrelease = Path(mirror.DIRNAME, "debian", "dists", mirror.SUITE, "InRelease")
    return all((path / n).is_file() for n in ("vmlinuz", "initrd.img", "disk.raw", "manifest.txt", inrelease))


def ensure_image(log=print, rebuild: bool = False) -> Image:
    key = image_key()
    root = cache_root() / "images"
    root.mkdir(parents=True, exist_ok=True)
    path = root / key
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; others wait and reuse it
        if rebuild and path.exists():
            shutil.rmtree(path)
        if _complete(path):
            return Image(key, path, False, 0.0)
        log(f"building image {key} (mmdebstrap; a few minutes)")
        t0 = time.monotonic()
        proc = subprocess.run(
            ["bash", str(IMAGE_DIR / "build.sh"), str(path)],
            capture_output=True,
            text=True,
            timeout=1800,
            env={**os.environ, **mirror.build_env()},
        )
        if proc.returncode != 0 or not _complete(path):
            raise RuntimeError("image build failed:\n" + (proc.stderr + proc.stdout)[-4000:])
        _prune(root, keep={key})
        return Image(key, path, True, time.monotonic() - t0)


def _prune(root: Path, keep: set[str]) -> None:
    others = sorted(
        (p for p in root.iterdir() if p.is_dir() and p.name not in keep), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for p in others[KEEP:]:
        shutil.rmtree(p, ignore_errors=True)
