"""What one lab run is asked to do (`python -m lab run`'s options)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LOSSY_S = 600.0  # seconds per lossy-path soak: where the design before liveness measurably trips


@dataclass
class Options:
    config_file: Path
    report_path: Path | None = None
    only: tuple[str, ...] = ()
    mutate: str | None = None  # the run's mutation (of the first boot, with several)
    then_mutate: tuple[str, ...] = ()  # further mutations on the same VM, each after a reboot
    # with further mutations: pause the VM before each, create this path + ".paused" and go on
    # once the path exists (a scheduler runs measured lab runs meanwhile; tests/labjobs.py)
    pause_until: Path | None = None
    # create this path once every check whose goals need a quiet machine has run (the run's
    # timing-sensitive part is over: a scheduler may load the machine again; tests/labjobs.py)
    goals_done: Path | None = None
    plan_json: Path | None = None
    bulk_mb: int = 20
    boot_timeout_s: int = 900
    establish_grace_s: int = 180
    rebuild_image: bool = False
    memory_mb: int = 2048
    cpus: int = 2
    faults: bool = True  # issue 4's fault and failover checks (`--no-faults` skips them)
    lossy_s: float = LOSSY_S  # each lossy-path soak (lab/checks/lossy.py)
