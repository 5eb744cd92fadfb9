"""A VM's two small disks: the NoCloud seed (the user-data byte for byte) and the lab config tar."""

from __future__ import annotations

import io
import subprocess
import tarfile
import time
import uuid
from pathlib import Path


def write_seed(directory: Path, user_data: bytes, hostname: str) -> Path:
    """A NoCloud seed (cloud-localds) for one instance: the user-data byte for byte (a
    gateway's gzipped, as Alibaba's metadata serves it), a meta-data with a fresh instance-id
    (a new instance to cloud-init). Returns seed.img."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "user-data").write_bytes(user_data)
    (directory / "meta-data").write_text(f"instance-id: i-lab-{uuid.uuid4().hex[:12]}\nlocal-hostname: {hostname}\n")
    seed = directory / "seed.img"
    subprocess.run(
        ["cloud-localds", str(seed), str(directory / "user-data"), str(directory / "meta-data")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return seed


def labcfg_tar(files: dict[str, tuple[bytes, int]], mtime: int | None = None) -> bytes:
    """A lab config disk (guest/lab-boot unpacks it into /run/lab and runs its boot.sh): a tar
    of name -> (data, mode), padded to whole 4 KiB blocks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, (data, mode) in sorted(files.items()):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), mode, int(time.time()) if mtime is None else mtime
            tar.addfile(ti, io.BytesIO(data))
    data = buf.getvalue()
    return data + b"\0" * (-len(data) % 4096)
