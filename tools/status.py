"""python -m tools.status --stack NAME [--ssh]: the link's state, as AWS and the gateway see it.

Reads the stack's outputs (`pulumi stack output`), asks AWS for the VPN connection's tunnel
telemetry (`aws ec2 describe-vpn-connections`), and with --ssh (or when the stack
verifies) runs the gateway's verify script over SSH. Needs the Pulumi CLI; the AWS CLI and
SSH parts are skipped with a note when their tool is missing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from typing import Any

from core import paths


def run(cmd: list[str], timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def format_telemetry(outputs: dict[str, Any], telemetry: list[dict[str, Any]]) -> list[str]:
    """One line per tunnel: which tunnel, AWS's status, since when, and AWS's message."""
    by_address = {t.get("OutsideIpAddress"): t for t in telemetry}
    lines = []
    for n in (1, 2):
        address = outputs.get(f"tunnel{n}Address", "?")
        t = by_address.get(address)
        if t is None:
            lines.append(f"tunnel{n} {address}: AWS reports no telemetry for this address")
            continue
        message = t.get("StatusMessage") or ""
        lines.append(
            f"tunnel{n} {address}: {t.get('Status', '?')} since {t.get('LastStatusChange', '?')}"
            + (f" ({message})" if message else "")
        )
    up = sum(1 for t in telemetry if t.get("Status") == "UP")
    lines.append(f"AWS sees {up} of 2 tunnels UP" + ("" if up == 2 else ": see README, Troubleshooting"))
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.status", description=__doc__.split("\n\n")[0])
    ap.add_argument("--stack", required=True)
    ap.add_argument("--ssh", action="store_true", help="also run the gateway's verify script over SSH")
    args = ap.parse_args(argv)

    if shutil.which("pulumi") is None:
        print("error: the Pulumi CLI is required for status (https://www.pulumi.com/docs/install/)", file=sys.stderr)
        return 2
    out = run(["pulumi", "stack", "output", "--json", "--stack", args.stack])
    if out.returncode != 0:
        print(f"error: pulumi stack output failed: {out.stderr.strip()}", file=sys.stderr)
        return 2
    outputs = json.loads(out.stdout or "{}")
    print(
        f"stack {args.stack}: VPN {outputs.get('vpnConnectionId')}, EIP {outputs.get('eipAddress')}, "
        f"profile {outputs.get('cryptoProfile')}"
    )
    healthy = True
    if shutil.which("aws") is None:
        print("note: the AWS CLI is not installed; skipping AWS's view of the tunnels")
    else:
        desc = run(
            [
                "aws",
                "ec2",
                "describe-vpn-connections",
                "--vpn-connection-ids",
                str(outputs.get("vpnConnectionId")),
                "--output",
                "json",
            ]
        )
        if desc.returncode != 0:
            print(f"error: aws ec2 describe-vpn-connections failed: {desc.stderr.strip()}", file=sys.stderr)
            return 1
        connections = json.loads(desc.stdout).get("VpnConnections", [])
        telemetry = connections[0].get("VgwTelemetry", []) if connections else []
        for line in format_telemetry(outputs, telemetry):
            print(line)
        healthy = sum(1 for t in telemetry if t.get("Status") == "UP") == 2
    if args.ssh or "verifyOutput" in outputs:
        if shutil.which("ssh") is None:
            print("note: ssh is not installed; skipping the gateway's view")
        else:
            eip = outputs.get("eipAddress")
            res = run(
                [
                    "ssh",
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "ConnectTimeout=10",
                    f"root@{eip}",
                    paths.VERIFY_PATH,
                ],
                timeout=60,
            )
            print(f"gateway {eip}: " + (res.stdout.strip() or res.stderr.strip()))
            healthy = healthy and res.returncode == 0
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
