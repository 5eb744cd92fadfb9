"""Traffic between the two VPC hosts through the link: ICMP, TCP, UDP both ways, and bulk TCP through the MSS clamp."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab import diagnostics
from lab.report import Outcome

if TYPE_CHECKING:
    from lab.session import Session


def _icmp(s: Session, direction: str):
    cns, cip, sns, sip = s.hosts(direction)
    r = s.probe(f"ping {cns} {sip} --count 5", 60)
    ok = r.get("received", 0) >= 4
    metrics = {
        "transmitted": r.get("transmitted"),
        "received": r.get("received"),
        "rtt_avg_ms": r.get("rtt_avg_ms"),
    }
    detail = f"{cns} {cip} -> {sns} {sip}: {r.get('received')}/{r.get('transmitted')} echo replies"
    if not ok:
        detail += "\n" + str(r.get("output", r)) + "\n" + diagnostics.path_analysis(s)
    return ok, detail, metrics


def icmp_ali_to_aws(s: Session) -> Outcome:
    return _icmp(s, "ali_to_aws")


def icmp_aws_to_ali(s: Session) -> Outcome:
    return _icmp(s, "aws_to_ali")


def _tcp(s: Session, direction: str):
    cns, cip, sns, sip = s.hosts(direction)
    r = s.probe(f"tcp {cns} {cip} {sns} {sip} --port 5001 --bytes 262144 --timeout 30", 90)
    saw = (r.get("server_saw") or {}).get("peer")
    ok = bool(r.get("ok")) and saw == cip
    metrics = {"bytes": r.get("sent"), "seconds": r.get("seconds")}
    detail = f"{cns} {cip} -> {sns} {sip}:5001, 256 KiB echoed with matching sha256, server saw {saw}"
    if not ok:
        detail = f"{cns} {cip} -> {sns} {sip}:5001 failed: {r}"
        if saw and saw != cip:
            detail += f"\nthe server saw source {saw}, not {cip}: something NATs traffic between the VPCs"
        detail += "\n" + diagnostics.path_analysis(s)
    return ok, detail, metrics


def tcp_ali_to_aws(s: Session) -> Outcome:
    return _tcp(s, "ali_to_aws")


def tcp_aws_to_ali(s: Session) -> Outcome:
    return _tcp(s, "aws_to_ali")


def _udp(s: Session, direction: str):
    cns, cip, sns, sip = s.hosts(direction)
    r = s.probe(f"udp {cns} {cip} {sns} {sip} --port 5002 --count 20 --timeout 40", 90)
    echoed, saw = r.get("echoed", 0), r.get("server_saw")
    ok = echoed >= 18 and saw == [cip]
    metrics = {"sent": r.get("sent"), "echoed": echoed}
    detail = f"{cns} {cip} -> {sns} {sip}:5002: {echoed}/{r.get('sent')} datagrams (64-1200 B) echoed, server saw {saw}"
    if not ok:
        detail += f"\n{r}\n" + diagnostics.path_analysis(s)
    return ok, detail, metrics


def udp_ali_to_aws(s: Session) -> Outcome:
    return _udp(s, "ali_to_aws")


def udp_aws_to_ali(s: Session) -> Outcome:
    return _udp(s, "aws_to_ali")


def bulk_tcp_mtu(s: Session) -> Outcome:
    n = s.opts.bulk_mb * 1024 * 1024
    results: list = []
    problems: list[str] = []
    metrics: dict = {"bytes_each": n}
    # data AWS -> Alibaba on a connection the Alibaba host opened (its SYN crosses the ECS
    # into the tunnel), then Alibaba -> AWS on one the AWS host opened.
    for label, direction in (("aws_to_ali", "ali_to_aws"), ("ali_to_aws", "aws_to_ali")):
        cns, cip, sns, sip = s.hosts(direction)
        # Fresh hosts: forget path MTUs learnt by earlier checks (ICMP from the ECS), so
        # only the ECS's MSS clamp can keep full-size segments out of the tunnel.
        s.sh("for ns in alihost awshost; do ip netns exec $ns ip route flush cache; done", 30)
        r = s.probe(f"bulk {cns} {cip} {sns} {sip} --port 5003 --bytes {n} --stall 20 --timeout 300", 360)
        results.append((label, r))
        metrics[f"{label}_mbit_s"] = r.get("mbit_s")
        metrics[f"{label}_seconds"] = r.get("seconds")
        metrics[f"{label}_receiver_mss"] = r.get("receiver_mss")
        if not r.get("ok"):
            problems.append(
                f"{sns} {sip} -> {cns} {cip} ({s.opts.bulk_mb} MiB, connection opened by {cns}): "
                f"{r.get('error') or 'incomplete'} after {r.get('bytes')} of {n} bytes, "
                f"receiver MSS {r.get('receiver_mss')}\nsender's TCP: {r.get('sender_ss', '')}"
            )
    if problems:
        return False, "\n".join(problems) + "\n" + diagnostics.mss_analysis(s), metrics
    return (
        True,
        (
            "path-MTU caches flushed before each transfer; "
            + "; ".join(
                f"{lbl}: {r['bytes']} B in {r['seconds']}s ({r['mbit_s']} Mbit/s), MSS {r.get('receiver_mss')}"
                for lbl, r in results
            )
        ),
        metrics,
    )
