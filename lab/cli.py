"""The lab's command line: `python -m lab run`, `python -m lab image`, `python -m lab mutations`."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from lab import REPO
from lab.options import LOSSY_S
from lab.registry import CHECKS, FAULT_CHECKS
from lab.report import Progress, report_path


def _sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["benchmarks"]:
        from lab import benchmarks

        return benchmarks.main(args[1:])
    p = argparse.ArgumentParser(prog="python -m lab", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="boot the VM with the program's user-data and run the checks")
    r.add_argument(
        "--config-file",
        type=Path,
        default=REPO / "Pulumi.dev.yaml",
        help="Pulumi stack file (default: Pulumi.dev.yaml)",
    )
    r.add_argument("--report", type=Path, help="write the JSON report here")
    r.add_argument(
        "--only",
        help=f"comma-separated checks to run (of: {', '.join(CHECKS)}; or the fault checks listed under --no-faults)",
    )
    r.add_argument(
        "--mutate",
        metavar="NAME[,NAME...]",
        help="FAULT INJECTION: break the rendered user-data on purpose (see `python -m lab mutations`); "
        "several run one after the other on one VM, each after the first by rewriting its files and "
        "rebooting, each with its own checks (unless --only) and its own report (--report PATH "
        "becomes PATH with the mutation's name before the suffix)",
    )
    r.add_argument(
        "--pause-until",
        type=Path,
        metavar="PATH",
        help="with several mutations: before each after the first, pause the VM, create PATH.paused "
        "and go on once PATH exists (for a scheduler that runs other lab runs meanwhile)",
    )
    r.add_argument(
        "--no-faults",
        dest="faults",
        action="store_false",
        help=f"skip the fault and failover checks ({', '.join(FAULT_CHECKS)}), about 12 minutes",
    )
    r.add_argument("--faults", dest="faults", action="store_true", help=argparse.SUPPRESS)  # the default
    r.add_argument("--plan-json", type=Path, help="use this plan JSON instead of running tools.plan")
    r.add_argument("--bulk-mb", type=int, default=20, help="MiB per bulk TCP transfer (default 20)")
    r.add_argument(
        "--boot-timeout",
        type=int,
        default=900,
        help="seconds to wait for the guest agent, and then for cloud-init (default 900)",
    )
    r.add_argument(
        "--establish-grace",
        type=int,
        default=180,
        help="seconds to wait for the tunnels once cloud-init is done (default 180)",
    )
    r.add_argument(
        "--lossy-s",
        type=float,
        default=LOSSY_S,
        help=f"seconds per lossy-path soak (lossy_path, baseline_lossy_path; default {LOSSY_S:g})",
    )
    r.add_argument("--rebuild-image", action="store_true", help="rebuild the cached image first")
    r.add_argument("--memory", type=int, default=2048, help="VM memory in MiB")
    r.add_argument("--cpus", type=int, default=2, choices=(1, 2, 4), help="vCPUs per VM (default 2)")
    r.add_argument(
        "--goals-done",
        type=Path,
        metavar="PATH",
        help="create PATH once every check whose goals need a quiet machine has run (for a scheduler "
        "that keeps the machine quiet until then; the registry marks the others load_tolerant)",
    )
    sub.add_parser("image", help="build (or find) the cached image and print its path")
    sub.add_parser("mutations", help="list the fault-injection mutations")
    sub.add_parser("benchmarks", help="write BENCHMARKS.md and its plot from lab reports (see --help there)")
    a = p.parse_args(args)

    if a.cmd == "mutations":
        from lab.mutations import MUTATIONS

        for m in MUTATIONS.values():
            print(f"{m.name}: {m.description.strip()} (must fail: {', '.join(m.expect_failing)})")
        return 0
    if a.cmd == "image":
        from lab.image import ensure_image

        img = ensure_image(log=lambda s: print(s, file=sys.stderr))
        print(img.path)
        return 0

    from lab.options import Options
    from lab.run import Lab

    only = tuple(x.strip() for x in (a.only or "").split(",") if x.strip())
    unknown = [x for x in only if x not in CHECKS + FAULT_CHECKS]
    if unknown:
        p.error(f"unknown check(s): {', '.join(unknown)}")
    if not a.faults and any(x in FAULT_CHECKS for x in only):
        p.error("fault checks cannot run with --no-faults")
    if not a.config_file.is_file():
        print(f"config file not found: {a.config_file}", file=sys.stderr)
        return 2
    chain: tuple[str, ...] = ()
    if a.mutate:
        from lab.mutations import MutationError, parse_names

        try:
            chain = parse_names(a.mutate)
        except MutationError as e:
            p.error(str(e))
    if a.pause_until and len(chain) < 2:
        p.error("--pause-until needs several mutations (--mutate A,B,...)")
    opts = Options(
        config_file=a.config_file.resolve(),
        report_path=a.report,
        only=only,
        mutate=chain[0] if chain else None,
        then_mutate=chain[1:],
        pause_until=a.pause_until,
        goals_done=a.goals_done,
        plan_json=a.plan_json,
        bulk_mb=a.bulk_mb,
        boot_timeout_s=a.boot_timeout,
        establish_grace_s=a.establish_grace,
        rebuild_image=a.rebuild_image,
        memory_mb=a.memory,
        cpus=a.cpus,
        faults=a.faults,
        lossy_s=a.lossy_s,
    )
    progress = Progress()
    lab = Lab(opts, progress)
    old = signal.signal(signal.SIGTERM, _sigterm)
    interrupted = False
    try:
        lab.run()
    except KeyboardInterrupt:
        interrupted = True
        lab.close()  # run()'s finally has already stopped QEMU; this makes sure of it
        lab.report.error = "interrupted"
    finally:
        signal.signal(signal.SIGTERM, old)
    for name, report in lab.reports:
        path = report_path(a.report, name if chain[1:] else None)
        if path:
            report.write(path)
        print(report.summary())
        if path:
            print(f"report: {path}")
    if interrupted:
        return 130
    if lab.abort_code:
        return lab.abort_code
    return 0 if all(r.ok for _, r in lab.reports) else 1
