"""`make status`: the tunnels as AWS sees them, with the real CLIs replaced by stand-ins."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from tools.status import format_telemetry

ROOT = Path(__file__).resolve().parent.parent
OUTPUTS = {
    "vpnConnectionId": "vpn-0abc",
    "eipAddress": "198.51.100.10",
    "cryptoProfile": "modern",
    "tunnel1Address": "192.0.2.10",
    "tunnel2Address": "192.0.2.20",
}


def telemetry(s1: str, s2: str) -> list[dict]:
    return [
        {
            "OutsideIpAddress": "192.0.2.10",
            "Status": s1,
            "LastStatusChange": "2026-11-23T10:00:00Z",
            "StatusMessage": "",
        },
        {
            "OutsideIpAddress": "192.0.2.20",
            "Status": s2,
            "LastStatusChange": "2026-11-23T10:05:00Z",
            "StatusMessage": "" if s2 == "UP" else "IPSEC IS DOWN",
        },
    ]


def test_format_names_each_tunnel_and_counts_up():
    lines = format_telemetry(OUTPUTS, telemetry("UP", "DOWN"))
    assert lines[0] == "tunnel1 192.0.2.10: UP since 2026-11-23T10:00:00Z"
    assert lines[1] == "tunnel2 192.0.2.20: DOWN since 2026-11-23T10:05:00Z (IPSEC IS DOWN)"
    assert lines[2].startswith("AWS sees 1 of 2 tunnels UP")


def fake_cli(bin_dir: Path, name: str, stdout: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\ncat <<'JSON'\n{stdout}\nJSON\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_status_cli_reads_outputs_and_aws_telemetry(tmp_path):
    fake_cli(tmp_path, "pulumi", json.dumps(OUTPUTS))
    fake_cli(tmp_path, "aws", json.dumps({"VpnConnections": [{"VgwTelemetry": telemetry("UP", "UP")}]}))
    env = {**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "tools.status", "--stack", "dev"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "AWS sees 2 of 2 tunnels UP" in out.stdout
    fake_cli(tmp_path, "aws", json.dumps({"VpnConnections": [{"VgwTelemetry": telemetry("DOWN", "UP")}]}))
    out = subprocess.run(
        [sys.executable, "-m", "tools.status", "--stack", "dev"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1 and "tunnel1 192.0.2.10: DOWN" in out.stdout
