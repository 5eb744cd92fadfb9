"""BENCHMARKS.md and its failover timeline, generated from lab reports (issue 4).

    python -m lab benchmarks reports/lab-dev.json reports/lab-legacy.json \\
        --out BENCHMARKS.md --plot docs/failover-timeline.png

`make benchmarks` runs the lab for both profiles first. Nothing here is typed by hand:
every number comes from a report, and a metric a report lacks is shown as "not measured".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lab import goals, registry


@dataclass(frozen=True)
class BenchRow:
    """A metrics row as BENCHMARKS.md prints it: the registry's row with its check and goal."""

    label: str
    check: str  # the check whose metrics hold it
    key: str  # metric name in that check
    unit: str = "s"
    goal: str = ""


def rows() -> tuple[BenchRow, ...]:
    """Every registry row, in the registry's order, with the goal declared for its metric."""
    out = []
    for spec in registry.SPECS:
        for row in spec.rows:
            goal, v1 = registry.goal_of(spec, row.key), registry.goal_of(spec, row.key, ike_version=1)
            text = goal.text if goal else ("informational" if row.informational else "")
            if v1 is not None and v1 != goal:  # IKEv1's own bound (lab/goals.py Bound)
                text = f"{text or 'none'}; IKEv1: {v1.text}"
            out.append(BenchRow(row.label, spec.name, row.key, row.unit, text))
    return tuple(out)


DIRECTIONS = (
    ("uplink_rx", "uplink (Alibaba -> AWS)", "#1f77b4"),
    ("downlink_rx", "downlink (AWS -> Alibaba)", "#d62728"),
)
PANELS = (
    ("failover", "ours: tunnel 1 blackholed at t=0"),
    ("failback", "ours: block lifted at t=0"),
    ("baseline", "seed 000: tunnel 1 blackholed at t=0"),
)


def is_pair(rep: dict) -> bool:
    return bool(((rep.get("config") or {}).get("plan") or {}).get("havip"))


def is_bgp(rep: dict) -> bool:
    return ((rep.get("config") or {}).get("plan") or {}).get("routing") == "bgp"


def profile_name(rep: dict) -> str:
    cfg = rep.get("config") or {}
    plan = cfg.get("plan") or {}
    prof = str(cfg.get("crypto_profile") or plan.get("crypto_profile") or "?").replace(" (default)", "")
    bgp = ((cfg.get("plan") or {}).get("bgp") or {}) if is_bgp(rep) else {}
    routing = (", BGP, Transit Gateway (ECMP)" if bgp.get("ecmp") else ", BGP") if is_bgp(rep) else ""
    return prof + (", gateway pair" if is_pair(rep) else "") + routing


def _worse(m: dict, up: str, down: str):
    values = [m.get(up), m.get(down)]
    return max(v for v in values if v is not None) if any(v is not None for v in values) else None


# (what happens, one gateway: (check, metric or (uplink, downlink)), a pair: (check, (uplink, downlink)))
AVAILABILITY = (
    (
        "the gateway reboots / the active gateway is powered off",
        ("reboot_persistence", "reboot_to_established_s"),
        ("ha_active_killed", ("ha_uplink_outage_s", "ha_downlink_outage_s")),
    ),
    (
        "strongSwan dies on the (active) gateway",
        ("charon_restart_ecs", ("uplink_outage_s", "downlink_outage_s")),
        ("ha_strongswan_killed", ("ha_uplink_outage_s", "ha_downlink_outage_s")),
    ),
    (
        "`pulumi up` replaces the gateway(s) (a user-data change)",
        ("psk_rotation", ("rotation_uplink_outage_s", "rotation_downlink_outage_s")),
        ("ha_rolling_replacement", ("rolling_uplink_outage_s", "rolling_downlink_outage_s")),
    ),
)


def availability_section(reports: Sequence[dict]) -> list[str]:
    """One gateway against a pair (issue 13): the outage, worse direction, of what takes the
    gateway away, from the first report of each kind."""
    single = next((r for r in reports if not is_pair(r)), None)
    pair = next((r for r in reports if is_pair(r)), None)
    if single is None or pair is None:
        return []

    def value(rep: dict, where: tuple) -> str:
        check, key = where
        m = check_metrics(rep, check)
        v = m.get(key) if isinstance(key, str) else _worse(m, *key)
        return f"{_fmt(v, 's')} (`{check}`)"

    out = [
        "",
        "## One gateway or a pair",
        "",
        f"The outage, worse direction, of what takes the gateway away: one gateway ({profile_name(single)})",
        f"against a pair behind a HaVip ({profile_name(pair)}). A reboot of the one gateway is timed from",
        "the reboot command to both tunnels up again (the lab's world shares its VM, so no probes cross it).",
        "",
        "| what happens | one gateway | a pair |",
        "| --- | --- | --- |",
    ]
    for label, one, two in AVAILABILITY:
        out.append(f"| {label} | {value(single, one)} | {value(pair, two)} |")
    return out


# (what happens, static routing: (check, metric), BGP: (check, metric)), per direction
ROUTING_ROWS = (
    (
        "tunnel 1 blackholed, uplink outage",
        ("failover_tunnel1", "uplink_outage_s"),
        ("failover_tunnel1", "uplink_outage_s"),
    ),
    (
        "tunnel 1 blackholed, downlink outage",
        ("failover_tunnel1", "downlink_outage_s"),
        ("failover_tunnel1", "downlink_outage_s"),
    ),
    ("block lifted: probes lost", ("failback", "failback_lost"), ("failback", "failback_lost")),
    (
        "BGP down on tunnel 1's AWS end (IPsec up), uplink outage",
        None,
        ("bgp_down_ipsec_up", "uplink_outage_s"),
    ),
    (
        "BGP down on tunnel 1's AWS end (IPsec up), downlink outage",
        None,
        ("bgp_down_ipsec_up", "downlink_outage_s"),
    ),
)


def routing_section(reports: Sequence[dict]) -> list[str]:
    """Static routing against BGP (issue 14): the same faults, per direction, from the first
    single-gateway report of each routing on the same IKE version."""
    bgp = next(
        (
            r
            for r in reports
            if is_bgp(r) and not (((r.get("config") or {}).get("plan") or {}).get("bgp") or {}).get("ecmp")
        ),
        None,
    )
    if bgp is None:
        return []
    ike = ((bgp.get("config") or {}).get("plan") or {}).get("ike_version")
    static = next(
        (
            r
            for r in reports
            if not is_bgp(r)
            and not is_pair(r)
            and ((r.get("config") or {}).get("plan") or {}).get("ike_version") == ike
        ),
        None,
    )
    if static is None:
        return []

    def value(rep: dict, where: tuple | None) -> str:
        if where is None:
            return "no BGP"
        check, key = where
        unit = "" if key.endswith("_lost") else "s"
        return _fmt(check_metrics(rep, check).get(key), unit)

    out = [
        "",
        "## Static routing or BGP",
        "",
        f"The same faults with static routes ({profile_name(static)}) and with BGP ({profile_name(bgp)}).",
        "Uplink: the gateway's liveness daemon finds the dead tunnel either way; with BGP it shuts that",
        "tunnel's session down so its routes go at once. Downlink: with static routes AWS's end moves when",
        "its DPD gives up on the tunnel; with BGP the gateway announces each Alibaba prefix's halves over",
        "the answering tunnel, and AWS, routing by the longest prefix first, moves at once. Failing back,",
        "BGP waits until the tunnel has answered for the AWS end's DPD timeout + 2 s (docs/lab-findings.md",
        "#35), so its block-lifted-to-preferred time is the longer one, with nothing lost either way.",
        "",
        "| what happens | static | BGP |",
        "| --- | --- | --- |",
    ]
    for label, one, two in ROUTING_ROWS:
        out.append(f"| {label} | {value(static, one)} | {value(bgp, two)} |")
    return out


def check_metrics(rep: dict, name: str) -> dict:
    for c in rep.get("checks") or []:
        if c.get("name") == name:
            return c.get("metrics") or {}
    return {}


def metric(rep: dict, row: BenchRow):
    return check_metrics(rep, row.check).get(row.key)


def _fmt(v, unit: str) -> str:
    if v is None:
        return "not measured"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        v = f"{v:.2f}" if unit == "x" else f"{v:.1f}"
    return f"{v} {unit}".strip() if unit and unit != "x" else (f"{v}x" if unit == "x" else str(v))


def check_status(rep: dict, name: str) -> str:
    for c in rep.get("checks") or []:
        if c.get("name") == name:
            again = " (2nd attempt)" if (c.get("metrics") or {}).get("first_attempt") else ""
            return ("PASS" if c.get("ok") else "**FAIL**") + again
    return "not run"


LOSS_RATES = (0.01, 0.03, 0.05, 0.15)  # the expected false verdicts per day, at these losses each way
LOSSY_DESIGNS = (
    ("lossy_path", "ours", "ours: data-plane liveness, calm DPD"),
    ("baseline_lossy_path", "previous", "before liveness: DPD 2 s, 4 transmissions"),
)


def lossy_section(names: Sequence[str], reports: Sequence[dict]) -> list[str]:
    """The lossy path, both designs side by side: what the soak measured, and what the
    arithmetic expects per tunnel per day at other losses (lab/checks/lossy.py)."""
    from lab.checks import lossy

    path = next(
        (check_metrics(r, "lossy_path").get("path") for r in reports if check_metrics(r, "lossy_path").get("path")),
        None,
    )
    out = [
        "",
        "## Lossy cross-border path",
        "",
        f"The link left alone on a simulated cross-border path ({path or 'not measured'}; netem on the",
        "lab's internet, `lab/netem.py`) while probes run, once with the program's design and once with",
        "the design before data-plane liveness (`lab/previous.py`). A teardown is charon giving up on its",
        "peer (either end); a route switch is the traffic moved off tunnel 1; a standby withdrawal the",
        "same on tunnel 2, which carries nothing.",
        "",
        "| design | profile | soak | teardowns | route switches | standby withdrawals | probes lost up / down |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for check, _, label in LOSSY_DESIGNS:
        for name, r in zip(names, reports, strict=True):
            m = check_metrics(r, check)
            loss = f"{_fmt(m.get('uplink_loss_pct'), '%')} / {_fmt(m.get('downlink_loss_pct'), '%')}"
            out.append(
                f"| {label} | {name} | {_fmt(m.get('soak_s'), 's')} | {_fmt(m.get('teardowns'), '')} | "
                f"{_fmt(m.get('route_switches'), '')} | {_fmt(m.get('standby_withdrawals'), '')} | {loss} |"
            )
    out += [
        "",
        "Expected false verdicts per tunnel per day on a path that is otherwise fine, at loss p each way",
        "(computed, `lab/checks/lossy.py` `expected_per_day`: for ours a liveness verdict, which moves the",
        "route, plus a DPD teardown; before liveness a DPD teardown):",
        "",
        "| design | " + " | ".join(f"p = {p:.0%}" for p in LOSS_RATES) + " |",
        "| --- | " + " | ".join("---" for _ in LOSS_RATES) + " |",
    ]
    for _, design, label in LOSSY_DESIGNS:
        out.append(f"| {label} | " + " | ".join(f"{lossy.expected_per_day(design, p):.2g}" for p in LOSS_RATES) + " |")
    out.append(
        "| ours on IKEv1 (legacy): R_U_THERE never retransmitted | "
        + " | ".join(f"{lossy.expected_per_day('ours', p, ike_version=1):.2g}" for p in LOSS_RATES)
        + " |"
    )
    return out


def ikev1_section() -> list[str]:
    """The checks IKEv1 (legacy) is held to a bound of its own on, and why (lab/registry.py)."""
    specs = [s for s in registry.SPECS if s.ikev1]
    out = [
        "",
        "## IKEv1's own bounds",
        "",
        "The legacy profile (IKEv1) must pass every check and meet every goal above, except where the",
        "protocol itself cannot; there `make test` holds it to this bound instead:",
        "",
        "| check | goal | IKEv1 bound | why |",
        "| --- | --- | --- | --- |",
    ]
    for s in specs:
        assert s.ikev1 is not None
        goal = "; ".join(g.text for g in s.goals) or "none"
        bound = "; ".join(f"{g.metric} {g.text}" for g in s.ikev1.goals)
        out.append(f"| `{s.name}` | {goal} | {bound} | {s.ikev1.why} |")
    off = [s for s in registry.SPECS if 1 not in s.ike_versions]
    if off:
        out += ["", "Not run on IKEv1 yet: " + "; ".join(f"`{s.name}`" for s in off) + f" ({off[0].not_on_ikev1})."]
    return out


def render(reports: Sequence[tuple[str, dict]], plot_path: str | None, command: str) -> str:
    """BENCHMARKS.md's text from (report path, report) pairs; pure."""
    names = [profile_name(r) for _, r in reports]
    out = [
        "# Benchmarks",
        "",
        "Generated by `make benchmarks` (`python -m lab benchmarks`) from lab reports: do not edit.",
        "Every number is measured in the lab (`lab/`): the program's exact user-data booted in a Debian 12",
        "VM under QEMU (TCG, no KVM), against two AWS-like strongSwan endpoints, with",
        "sequence-numbered probes at 10 packets/s each way between the two VPC hosts. Outage per",
        "direction = the longest gap between consecutively received probes, minus one interval.",
        "",
        f"Reproduce: `{command}`",
        "",
        "## Metrics",
        "",
        "| metric | goal | " + " | ".join(names) + " |",
        "| --- | --- | " + " | ".join("---" for _ in names) + " |",
    ]
    for row in rows():
        vals = [_fmt(metric(r, row), row.unit) for _, r in reports]
        out.append(f"| {row.label} | {row.goal} | " + " | ".join(vals) + " |")
    out += [
        "",
        "The downlink goal follows from the AWS end's DPD timeout, which the lab models as AWS",
        "documents it (DPD every 10 s, the peer declared dead after `dpdTimeoutSeconds` of silence);",
        "downlink goal here: "
        + ", ".join(
            f"{n} {_fmt(goals.FAILOVER_DOWNLINK.limit_for(check_metrics(r, 'failover_tunnel1')), 's')}"
            for n, (_, r) in zip(names, reports, strict=True)
        )
        + ". The baseline is seed 000's ipsec.conf on the ECS (IKEv1 aes128-sha1-modp1024,",
        "DPD 10 s / 30 s, `dpdaction=restart`, charon's default retransmissions) against an AWS end",
        "with AWS's defaults narrowed to the same proposal (`lab/baseline.py`), in the same VM right",
        "after our own checks. PSK rotation: both PSKs changed as `pulumi up` applies it (AWS modifies",
        "tunnel 1, then tunnel 2; then the ECS is replaced delete-before-replace by a fresh VM booted",
        "from the new user-data), so its outage is bounded by a full boot and the package install under",
        "TCG: reported, with no goal (`lab/checks/rotation.py`).",
        *lossy_section(names, [r for _, r in reports]),
        *availability_section([r for _, r in reports]),
        *routing_section([r for _, r in reports]),
        *ikev1_section(),
        "",
        "## Checks",
        "",
        "| check | " + " | ".join(names) + " |",
        "| --- | " + " | ".join("---" for _ in names) + " |",
    ]
    for name in registry.ALL:
        out.append(f"| `{name}` | " + " | ".join(check_status(r, name) for _, r in reports) + " |")
    if plot_path:
        out += [
            "",
            "## Failover timeline",
            "",
            "Probes received per 0.5 s, per direction (10 pps each way = 5 per bin when nothing is lost);",
            "dashed lines: the fault injected or lifted.",
            "",
            f"![failover timeline]({plot_path})",
        ]
    out += ["", "## Where it ran", ""]
    out += ["| | " + " | ".join(names) + " |", "| --- | " + " | ".join("---" for _ in names) + " |"]
    machines = [(r.get("config") or {}).get("machine") or {} for _, r in reports]
    for key, label in (
        ("date_utc", "date"),
        ("git_commit", "commit"),
        ("host_cpu", "host CPU"),
        ("host_cpus", "host CPUs"),
        ("host_memory_gib", "host memory (GiB)"),
        ("host_kernel", "host kernel"),
        ("host_load_1m", "host load (1 min) at start"),
        ("qemu", "QEMU"),
        ("lab_runs_side_by_side", "lab runs on the machine at once"),
    ):
        out.append(f"| {label} | " + " | ".join(str(m.get(key, "unknown")) for m in machines) + " |")
    extra = [
        ("user-data sha256", lambda r: f"`{(r.get('config') or {}).get('user_data_sha256', '?')[:16]}…`"),
        ("stack file", lambda r: f"`{(r.get('config') or {}).get('config_file', '?')}`"),
        ("lab total", lambda r: _fmt((r.get("metrics") or {}).get("total_s"), "s")),
        ("report", None),
    ]
    for label, fn in extra:
        if fn is None:
            # the file's name only: a generated page never carries the machine's paths
            out.append(f"| {label} | " + " | ".join(f"`{Path(p).name}`" for p, _ in reports) + " |")
        else:
            out.append(f"| {label} | " + " | ".join(fn(r) for _, r in reports) + " |")
    return "\n".join(out) + "\n"


def bins(times: Sequence[float], start: float, end: float, width: float = 0.5) -> tuple[list[float], list[int]]:
    """Counts of `times` per `width`-second bin over [start, end): (bin starts, counts)."""
    n = max(1, int((end - start) / width + 0.999))
    counts = [0] * n
    for t in times:
        k = int((t - start) // width)
        if 0 <= k < n:
            counts[k] += 1
    return [start + k * width for k in range(n)], counts


def plot_window(tl: dict, before: float = 5.0, longest: float = 60.0) -> tuple[float, float]:
    """From `before` s ahead of the fault to the last instant both directions were probed
    (so no half-filled bin at either end reads as loss)."""
    firsts = [tl[f][0] for f, _, _ in DIRECTIONS if tl.get(f)]
    lasts = [tl[f][-1] for f, _, _ in DIRECTIONS if tl.get(f)]
    start = max(tl["start"], -before, max(firsts, default=tl["start"]))
    end = min(tl["end"], longest, min(lasts, default=tl["end"]))
    return start, max(end - 0.5, start + 0.5)


def plot(reports: Sequence[tuple[str, dict]], path: Path) -> bool:
    """The failover timeline PNG; False when no report has a timeline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(profile_name(r), (r.get("metrics") or {}).get("failover_timelines") or {}) for _, r in reports]
    rows = [(n, tl) for n, tl in rows if tl]
    if not rows:
        return False
    fig, axes = plt.subplots(
        len(rows), len(PANELS), figsize=(5.2 * len(PANELS), 3.0 * len(rows)), squeeze=False, sharey=True
    )
    for (name, tls), ax_row in zip(rows, axes, strict=True):
        for (key, title), ax in zip(PANELS, ax_row, strict=True):
            tl = tls.get(key)
            ax.set_title(f"{name} - {title}", fontsize=9)
            ax.grid(alpha=0.3)
            if not tl:
                ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
                continue
            start, end = plot_window(tl)
            per_bin = tl.get("rate_pps", 10) * 0.5
            for (field, label, color), lw in zip(DIRECTIONS, (2.6, 1.2), strict=True):
                xs, ys = bins(tl[field], start, end)
                ax.step(xs, ys, where="post", label=label, color=color, lw=lw, alpha=0.85)
            ax.axhline(per_bin, color="grey", lw=0.6, ls=":")
            for ev, t in tl.get("events") or []:
                if start <= t <= end:
                    ax.axvline(t, color="black", ls="--", lw=0.9)
                    ax.text(t, per_bin * 1.12, f" {ev}", fontsize=7, va="bottom")
            ax.set_xlim(start, end)
            ax.set_ylim(0, per_bin * 1.45)
            ax.set_xlabel("seconds from the fault", fontsize=8)
        ax_row[0].set_ylabel("probes received / 0.5 s", fontsize=8)
    axes[0][0].legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: Sequence[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m lab benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("reports", nargs="+", type=Path, help="lab report JSON files (one per profile)")
    p.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    p.add_argument("--plot", type=Path, default=Path("docs/failover-timeline.png"))
    p.add_argument("--command", default="make benchmarks", help="how to reproduce (written into the file)")
    a = p.parse_args(argv)
    reports = []
    for rp in a.reports:
        try:
            reports.append((str(rp), json.loads(rp.read_text())))
        except (OSError, ValueError) as e:
            print(f"cannot read report {rp}: {e}")
            return 2
    has_plot = plot(reports, a.plot)
    rel = None
    if has_plot:
        try:
            rel = str(a.plot.resolve().relative_to(a.out.resolve().parent))
        except ValueError:
            rel = str(a.plot)
    a.out.write_text(render(reports, rel, a.command))
    print(f"wrote {a.out}" + (f" and {a.plot}" if has_plot else " (no timelines in the reports: no plot)"))
    return 0
