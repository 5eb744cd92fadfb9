"""What the lab collects when a check fails: both ends' state, named for the engineer who reads it.

`collect` is the full dump appended to every failed basic check; the analyses point at one
cause each (marks, MSS clamp, IKE identity); `fault_context` is what a failover problem needs.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from core import paths
from lab import blackhole, swan

if TYPE_CHECKING:
    from lab.session import Session

DIAG_MARK = "--- diagnostics (ECS, AWS-like peers, routers) ---"

DIAG_HEAD = r"""
sec() { echo "=== $1"; }
swanctl() { command swanctl "$@" 2>&1 | grep -v "^plugin '.*': failed to load"; }
red() { sed -E 's/0x[0-9a-f]{16,}/[key]/g'; }
"""
# on the ECS (wherever it runs: the world VM's root namespace, a replacement's VM, a pair's active gateway)
ECS_DIAG_SCRIPT = r"""
sec "ecs: swanctl --list-sas"; swanctl --list-sas 2>&1
sec "ecs: swanctl --list-conns"; swanctl --list-conns 2>&1 | head -80
sec "ecs: ip xfrm state (keys redacted)"; ip xfrm state 2>&1 | red
sec "ecs: ip xfrm policy"; ip xfrm policy 2>&1
sec "ecs: ip -d link show type vti"; ip -d link show type vti 2>&1
sec "ecs: ip -br addr"; ip -br addr 2>&1
sec "ecs: ip route / ip rule"; ip route 2>&1; ip rule 2>&1; ip route show table 220 2>&1
sec "ecs: iptables-save"; iptables-save 2>&1 || echo "(iptables-save not available)"
sec "ecs: strongswan journal (last lines)"; journalctl -u strongswan --no-pager -n 50 2>&1
sec "ecs: aws2aliyun-updown log"; journalctl -t aws2aliyun-updown --no-pager -n 20 2>&1
sec "ecs: cloud-init status"; cloud-init status --long 2>&1
sec "ecs: cloud-init.log (last lines)"; tail -n 40 /var/log/cloud-init.log 2>&1
sec "ecs: cloud-init-output.log (last lines)"; tail -n 25 /var/log/cloud-init-output.log 2>&1
sec "ecs: keepalived (a pair's gateway)"; cat /run/aws2aliyun/ha-role 2>&1; journalctl -u keepalived --no-pager -n 12 2>&1; journalctl -t aws2aliyun-ha --no-pager -n 12 2>&1
"""
# in the world VM: the AWS-like ends and the routers
WORLD_DIAG_SCRIPT = r"""
for n in 1 2; do
  sec "aws$n: swanctl --list-sas"; /bin/sh /run/lab/peer.sh exec $n swanctl --list-sas 2>&1 | grep -v "^plugin '.*': failed to load"
  sec "aws$n: ip xfrm state (keys redacted)"; ip -n aws$n xfrm state 2>&1 | red
  sec "aws$n: ip xfrm policy"; ip -n aws$n xfrm policy 2>&1
  sec "aws$n: ip route"; ip -n aws$n route 2>&1
  sec "aws$n: charon log (last lines)"; tail -n 40 /run/lab/log/aws$n-charon.log 2>&1
done
sec "awsrouter: routes and tunnel choice"; ip -n awsrouter route 2>&1; tail -n 5 /run/lab/log/awsrouter.log 2>&1
sec "alirouter: routes and NAT counters"; ip -n alirouter route 2>&1; ip netns exec alirouter chroot /opt/labroot nft list ruleset 2>&1
"""


def collect(s: Session) -> dict[str, str]:
    """Every section of the ECS's and the world's scripts (the world VM's root namespace is
    the first ECS; a pair's active gateway and a replacement run in VMs of their own)."""
    if not s.world.alive():
        return {"vm": "not running"}
    if s.ecs is s.world:
        res = s.sh(DIAG_HEAD + ECS_DIAG_SCRIPT + WORLD_DIAG_SCRIPT, timeout=90)
        text = res.out
    else:
        ecs = s.ecs_sh(DIAG_HEAD + ECS_DIAG_SCRIPT, timeout=90)
        res = s.sh(DIAG_HEAD + WORLD_DIAG_SCRIPT, timeout=90)
        text = ecs.out + "\n" + res.out
    out: dict[str, str] = {}
    cur = None
    for line in text.splitlines():
        if line.startswith("=== "):
            cur = line[4:]
            out[cur] = ""
        elif cur:
            out[cur] += line + "\n"
    return out or {"error": res.text()[-2000:]}


def as_text(diag: dict[str, str]) -> str:
    return "\n\n" + DIAG_MARK + "\n" + "\n".join(f"=== {k}\n{v.rstrip()}" for k, v in diag.items())


def auth_analysis(s: Session, numbers: list[int]) -> str:
    """What the AWS-like peers saw: identities, proposals, authentication."""
    out = []
    for n in numbers:
        log = s.sh(
            f"grep -E 'looking for|peer config|AUTHENTICATION_FAILED|authentication of|"
            f"NO_PROPOSAL_CHOSEN|no acceptable|proposal|IDir|IDii|pre-shared key' "
            f"/run/lab/log/aws{n}-charon.log | tail -n 15",
            30,
        ).out
        ids = set(re.findall(r"\.\.\.\S+?\[([^\]]+)\]", log))
        ids.discard("%any")
        wrong = sorted(x for x in ids if x != s.inputs.eip)
        if wrong:
            out.append(
                f"aws{n}: the ECS presented IKE identity {', '.join(wrong)}, but the AWS side "
                f"expects the customer gateway's address (the EIP {s.inputs.eip}) as identity"
            )
        elif not log.strip():
            out.append(f"aws{n}: no IKE request reached the AWS-like endpoint")
        out.append(f"aws{n} log:\n{log.rstrip()}")
    conns = s.ecs_sh("swanctl --list-conns 2>&1 | grep -E '^[a-z0-9]+:|local|remote|id:' | head -40", 30).out
    out.append("ECS connections (swanctl --list-conns):\n" + conns.rstrip())
    return "\n".join(out)


def mss_analysis(s: Session) -> str:
    rules = s.ecs_sh(
        "iptables-save -t mangle 2>&1; echo '# nft rules setting maxseg:'; "
        "nft list ruleset 2>/dev/null | grep -i 'maxseg size set'",
        30,
    ).out
    # a rule that rewrites the MSS, not one that merely matches on it
    clamp = [
        ln.strip()
        for ln in rules.splitlines()
        if (" -j TCPMSS" in ln and ln.startswith("-A")) or "maxseg size set" in ln
    ]
    head = "ECS TCP MSS clamp rules: " + (
        "\n  " + "\n  ".join(clamp)
        if clamp
        else "NONE - no TCPMSS rule in the ECS's mangle table and no nftables maxseg rule; the AWS "
        "side does no path-MTU discovery, so full-size segments into the tunnel are lost"
    )
    return head + "\nECS mangle table:\n" + rules.rstrip()


def path_analysis(s: Session) -> str:
    """Routes and marks along the path (ECS VTIs vs xfrm marks, AWS router's choice)."""
    t = s.topo
    res = s.sh(
        "echo '## ECS routes to the AWS prefixes'; "
        + "".join(f"ip route show {p}; " for p in t.aws_prefixes)
        + f"ip route get {t.awshost_ip} from {t.alihost_ip} iif eth0 2>&1; "
        + "echo '## ECS VTIs'; ip -d link show type vti; echo '## ECS xfrm policy'; ip xfrm policy; "
        + "echo '## awsrouter'; ip -n awsrouter route; tail -n 3 /run/lab/log/awsrouter.log; "
        + "echo '## alirouter'; ip -n alirouter route",
        30,
    ).out
    vti_part = res.split("## ECS VTIs", 1)[1].split("## ECS xfrm policy", 1)[0] if "## ECS VTIs" in res else ""
    pol_part = res.split("## ECS xfrm policy", 1)[1].split("## awsrouter", 1)[0] if "## ECS xfrm policy" in res else ""
    keys = swan.parse_vti_keys(vti_part)
    marks = swan.parse_xfrm_policy_marks(pol_part)
    lines = []
    out_marks = {int(m, 16) for d, m in marks if d == "out"}
    for name, (_ikey, okey) in sorted(keys.items()):
        if okey not in out_marks:
            lines.append(
                f"MARK MISMATCH: ECS VTI {name} has key {okey} but no outbound xfrm policy carries "
                f"mark {okey} (policy marks: {sorted(out_marks) or 'none'}): the tunnel's CHILD_SA "
                "mark_in/mark_out and the VTI key disagree, so its traffic matches no SA"
            )
    if keys and not lines:
        lines.append(f"ECS VTI keys {dict(keys)} match xfrm policy marks {sorted(out_marks)}")
    return "\n".join(lines) + "\n" + res.rstrip()


FAULT_CONTEXT_MARK = "## ECS route to the first AWS prefix"  # fault_context's first line


def fault_context(s: Session) -> str:
    """What an engineer looks at first after a failover problem."""
    ecs = s.ecs_sh(
        f"echo '{FAULT_CONTEXT_MARK}'; ip route show {s.topo.aws_prefixes[0]}; "
        "echo '## ECS SAs'; swanctl --list-sas 2>&1 | grep -v \"^plugin '\" | head -30; "
        "echo '## updown log'; journalctl -t aws2aliyun-updown --no-pager -n 12 2>&1; "
        "echo '## watchdog log'; journalctl -t aws2aliyun-watchdog --no-pager -n 10 2>&1; "
        f"echo '## liveness'; {paths.LIVENESS_PATH} --status 2>&1; "
        f"journalctl -u {paths.LIVENESS_SERVICE} --no-pager -n 12 -o cat 2>&1; "
        "echo '## ECS charon (last lines)'; journalctl -u strongswan --no-pager -n 25 2>&1; "
        "echo '## ECS charon, tunnel events of the last 6 min (not DPD)'; "
        "journalctl -u strongswan --no-pager --since -6min 2>&1 | grep -vE 'DPD|INFORMATIONAL|packet:' "
        "| grep -iE 'tunnel|NO_PROP|AUTH|giving up|retransmit|delet|initiat|establish|error|fail' | tail -40; ",
        60,
    ).out
    return (
        ecs
        + s.sh(
            "echo '## aws1 charon, the last 6 min without vici'; grep -v vici /run/lab/log/aws1-charon.log | tail -40; "
            "echo '## aws1 swanctl --load-all log'; tail -n 8 /run/lab/log/aws1-swanctl.log 2>&1; "
            "echo '## awsrouter'; tail -n 6 /run/lab/log/awsrouter.log; "
            f"echo '## blackhole'; {blackhole.NFT} list table inet labfault 2>&1",
            60,
        ).out
    )
