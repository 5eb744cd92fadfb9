"""Security checks on the running gateway: the host firewall and where secrets end up.

- `host_firewall`: the program's nftables table is loaded, and a TCP connection from an
  internet host (AWS's tunnel 1 endpoint, which may send only IKE) to the EIP's SSH port
  (sshd listens on the ECS) is silently dropped while the tunnels are up.
- `secrets_on_instance`: every file holding a tunnel PSK is root's and unreadable by
  others (0600/0400), and neither PSK appears in the journal.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from lab.report import Outcome

if TYPE_CHECKING:
    from lab.session import Session

# Runs in the ECS (root namespace). The PSKs come on stdin, one per line, never in argv.
SECRETS_SCRIPT = r"""
IFS= read -r k1; IFS= read -r k2
bad=0
for f in $(grep -rlsF -e "$k1" -e "$k2" /etc /var/lib/cloud /var/log /run /tmp /root /home 2>/dev/null); do
  st=$(stat -c '%a %U' "$f")
  case $st in
    "600 root"|"400 root") echo "ok $st $f" ;;
    *) echo "EXPOSED $st $f"; bad=1 ;;
  esac
done
if journalctl --no-pager -o cat 2>/dev/null | grep -qF -e "$k1" -e "$k2"; then
  echo "EXPOSED journal: a PSK appears in the journal"; bad=1
fi
echo "rc=$bad"
"""

FIREWALL_SCRIPT = r"""
echo "=== nft list table inet aws2aliyun"
nft list table inet aws2aliyun 2>&1 | head -40
echo "=== sshd listening on the ECS"
ss -ltn 2>&1 | grep -E ':22\b' || echo "(sshd not listening)"
echo "=== connect from an internet host (AWS tunnel 1 endpoint) to EIP:22"
ip netns exec aws1 python3 - "$1" <<'PY'
import json, socket, sys
s = socket.socket(); s.settimeout(4)
try:
    s.connect((sys.argv[1], 22)); r = "connected"
except socket.timeout:
    r = "timeout"
except OSError as e:
    r = "error: " + str(e)
print(json.dumps({"ssh_from_internet": r}))
PY
"""


def host_firewall(s: Session) -> Outcome:
    eip = s.topo.eip
    res = s.sh(FIREWALL_SCRIPT.replace('"$1"', eip), timeout=60)
    out = res.text()
    loaded = "table inet aws2aliyun" in out and "chain input" in out
    verdict = "unknown"
    for line in out.splitlines():
        if line.startswith("{") and "ssh_from_internet" in line:
            verdict = json.loads(line)["ssh_from_internet"]
    listening = "(sshd not listening)" not in out
    ok = loaded and verdict == "timeout"
    if not loaded:
        head = "the gateway's nftables table `inet aws2aliyun` is not loaded (aws2aliyun-firewall.service)"
    elif verdict != "timeout":
        head = f"a TCP connection from an internet host to {eip}:22 was not dropped ({verdict}): the host firewall lets it in"
    else:
        head = f"nftables table loaded; internet host -> {eip}:22 dropped ({'sshd listening behind it' if listening else 'sshd not listening'})"
    return ok, head + "\n" + out[-3000:], {"ssh_from_internet": verdict, "sshd_listening": listening}


def secrets_on_instance(s: Session) -> Outcome:
    keys = [t.preshared_key for t in s.inputs.tunnels]
    res = s.ecs.agent.sh(SECRETS_SCRIPT, timeout=90, stdin=("\n".join(keys) + "\n").encode())
    out = res.out
    exposed = [line for line in out.splitlines() if line.startswith("EXPOSED")]
    files = [line.split(" ", 3)[3] for line in out.splitlines() if line.startswith("ok ")]
    ok = res.rc == 0 and "rc=0" in out and not exposed and bool(files)
    if exposed:
        head = "secrets exposed: " + "; ".join(exposed)
    elif not files:
        head = "no file on the ECS holds the PSKs: the secrets file is missing (or the check is broken)"
    else:
        head = f"PSKs only in root-only files ({', '.join(files)}), not in the journal"
    return ok, head + "\n" + out[-2000:], {"files_with_psk": len(files), "exposed": len(exposed)}
