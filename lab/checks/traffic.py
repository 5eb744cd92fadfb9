"""Traffic between the VPCs' hosts through the link: ICMP, TCP, UDP both ways between every
Alibaba host and every AWS host (one per routed prefix, the pairs of a check at once), and
bulk TCP through the MSS clamp between the first pair."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from lab import diagnostics
from lab.report import Outcome

if TYPE_CHECKING:
    from lab.session import Session


Pair = tuple[str, str, str, str]  # client ns, client ip, server ns, server ip
Verdict = tuple[bool, str, dict]  # ok, the pair's line (with what went wrong), its metrics
PORT_STEP = 10  # pair k of a check uses its base port + k * PORT_STEP (its servers run at once)


def label(pair: Pair) -> str:
    cns, cip, sns, sip = pair
    return f"{cns} {cip} -> {sns} {sip}"


def summarize(pairs: list[Pair], verdicts: list[Verdict]) -> Outcome:
    """One check's outcome over its pairs: ok when every pair is. One pair: its line and
    metrics, as before several prefixes. Several: a head line naming the failed pairs, every
    pair's line with PASS/FAIL, the first pair's metrics and every pair's under `pairs`."""
    ok = all(v[0] for v in verdicts)
    metrics = dict(verdicts[0][2])
    if len(pairs) == 1:
        return ok, verdicts[0][1], metrics
    failed = [label(p) for p, v in zip(pairs, verdicts, strict=True) if not v[0]]
    head = (
        f"all {len(pairs)} pairs passed" if ok else f"{len(failed)} of {len(pairs)} pairs failed: {'; '.join(failed)}"
    )
    lines = [f"{'PASS' if v[0] else 'FAIL'}  {v[1]}" for v in verdicts]
    metrics["pairs"] = [{"pair": label(p), "ok": v[0], **v[2]} for p, v in zip(pairs, verdicts, strict=True)]
    return ok, "\n".join([head, *lines]), metrics


def _run_pairs(
    s: Session,
    direction: str,
    kind: str,
    options: str,
    port: Callable[[int], int],
    judge: Callable[[int, Pair, dict], Verdict],
    timeout: float,
) -> Outcome:
    """Every pair of `direction` at once (one guest process, pair k on port(k)), judged one
    by one; a failure gets the path's diagnostics once."""
    pairs = s.pairs(direction)
    results = s.probe_pairs(kind, [(*p, port(k)) for k, p in enumerate(pairs)], options, timeout)
    ok, detail, metrics = summarize(
        pairs, [judge(k, p, r) for k, (p, r) in enumerate(zip(pairs, results, strict=True))]
    )
    if not ok:
        detail += "\n" + diagnostics.path_analysis(s)
    return ok, detail, metrics


def _icmp_judge(_k: int, pair: Pair, r: dict) -> Verdict:
    ok = r.get("received", 0) >= 4
    metrics = {
        "transmitted": r.get("transmitted"),
        "received": r.get("received"),
        "rtt_avg_ms": r.get("rtt_avg_ms"),
    }
    line = f"{label(pair)}: {r.get('received')}/{r.get('transmitted')} echo replies"
    if not ok:
        line += "\n" + str(r.get("output", r))
    return ok, line, metrics


def _icmp(s: Session, direction: str) -> Outcome:
    return _run_pairs(s, direction, "ping", "--count 5", lambda _k: 0, _icmp_judge, 60)


def icmp_ali_to_aws(s: Session) -> Outcome:
    return _icmp(s, "ali_to_aws")


def icmp_aws_to_ali(s: Session) -> Outcome:
    return _icmp(s, "aws_to_ali")


def _tcp_port(k: int) -> int:
    return 5001 + k * PORT_STEP


def _tcp_judge(k: int, pair: Pair, r: dict) -> Verdict:
    cip = pair[1]
    saw = (r.get("server_saw") or {}).get("peer")
    ok = bool(r.get("ok")) and saw == cip
    metrics = {"bytes": r.get("sent"), "seconds": r.get("seconds")}
    line = f"{label(pair)}:{_tcp_port(k)}, 256 KiB echoed with matching sha256, server saw {saw}"
    if not ok:
        line = f"{label(pair)}:{_tcp_port(k)} failed: {r}"
        if saw and saw != cip:
            line += f"\nthe server saw source {saw}, not {cip}: something NATs traffic between the VPCs"
    return ok, line, metrics


def _tcp(s: Session, direction: str) -> Outcome:
    return _run_pairs(s, direction, "tcp", "--bytes 262144 --timeout 30", _tcp_port, _tcp_judge, 90)


def tcp_ali_to_aws(s: Session) -> Outcome:
    return _tcp(s, "ali_to_aws")


def tcp_aws_to_ali(s: Session) -> Outcome:
    return _tcp(s, "aws_to_ali")


def _udp_port(k: int) -> int:
    return 5002 + k * PORT_STEP


def _udp_judge(k: int, pair: Pair, r: dict) -> Verdict:
    echoed, saw = r.get("echoed", 0), r.get("server_saw")
    ok = echoed >= 18 and saw == [pair[1]]
    metrics = {"sent": r.get("sent"), "echoed": echoed}
    line = f"{label(pair)}:{_udp_port(k)}: {echoed}/{r.get('sent')} datagrams (64-1200 B) echoed, server saw {saw}"
    if not ok:
        line += f"\n{r}"
    return ok, line, metrics


def _udp(s: Session, direction: str) -> Outcome:
    return _run_pairs(s, direction, "udp", "--count 20 --timeout 40", _udp_port, _udp_judge, 90)


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
