"""One lab run: plan -> image -> VM -> wait for cloud-init and the tunnels -> checks -> report.

The checks themselves, their order and their goals are in `lab.registry`; each gets the
running lab as a `lab.session.Session`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from lab import (
    REPO,
    bgp,
    cloudinit,
    diagnostics,
    gateways,
    machine,
    mirror,
    mutations,
    peer,
    poll,
    registry,
    swan,
    vswitch,
)
from lab import image as image_mod
from lab.checks import ha
from lab.checks.rotation import VSWITCH_PORT
from lab.image import Image
from lab.inputs import LabInputs, PlanError, from_plan, run_plan, verify_script_path
from lab.options import Options
from lab.report import Check, Progress, Report
from lab.seed import labcfg_tar, write_seed
from lab.session import PEER, BootFacts, Session
from lab.topology import Topology, plan_topology, render_env
from lab.vm import VM, ExecResult
from lab.vswitch import VSwitchPort
from userdata.cloud_config import gzip_user_data

GUEST_DIR = Path(__file__).parent / "guest"


RUN_DIR_PREFIX = "aws2aliyun-lab-"


def remove_stale_run_dirs() -> None:
    """Temporary directories of lab runs that were killed outright (SIGKILL: no cleanup ran;
    their QEMU died with them through its parent-death signal)."""
    for d in Path(tempfile.gettempdir()).glob(RUN_DIR_PREFIX + "*"):
        try:
            pid = int((d / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if not Path(f"/proc/{pid}").exists():
            shutil.rmtree(d, ignore_errors=True)


class LabAbortError(Exception):
    """The lab itself could not run (not a check failure)."""

    def __init__(self, message: str, exit_code: int = 3):
        super().__init__(message)
        self.exit_code = exit_code


def repo_relative(path: Path) -> str:
    """A path as reports show it: relative to the repository when inside it (reports and
    BENCHMARKS.md never carry the machine's own paths), else its name."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return path.name


def stack_profile(config_file: Path) -> dict:
    """Stack name and crypto profile, for the report (the plan has the real values)."""
    out = {"config_file": repo_relative(config_file), "stack": config_file.stem.removeprefix("Pulumi.")}
    try:
        import yaml  # available in the project's venv (pulumi depends on it)

        cfg = (yaml.safe_load(config_file.read_text()) or {}).get("config") or {}
        out["crypto_profile"] = cfg.get("aws2aliyun-vpc:cryptoProfile", "modern (default)")
    except Exception as e:  # the plan validates the file; this is only a label
        out["crypto_profile"] = f"unknown ({type(e).__name__})"
    return out


def vswitch_ports(run_dir: Path, wanted: set[str], topo: Topology | None = None) -> tuple[VSwitchPort, ...]:
    """Spare vSwitch ports on the world VM for gateway VMs of their own: a pair's two
    gateways, and two more for their replacements when ha_rolling_replacement runs; one for
    the replacement gateway when psk_rotation runs on a single gateway (none otherwise: the
    QEMU command line of every other run is what it always was)."""
    if topo is not None and topo.pair:
        count = len(topo.gateways) * (2 if ha.ROLLING_CHECK in wanted else 1)
        return tuple(vswitch.port(run_dir, k) for k in range(1, count + 1))
    return (vswitch.port(run_dir, VSWITCH_PORT),) if "psk_rotation" in wanted else ()


def stages(opts: Options) -> list[Options]:
    """What one `lab run` does, one entry per report: the run itself, or with several
    mutations one run per mutation (on one VM), each with its own checks unless --only."""
    names = (opts.mutate, *opts.then_mutate) if opts.mutate else ()
    if len(names) < 2:
        return [opts]
    return [
        dataclasses.replace(opts, mutate=n, then_mutate=(), only=opts.only or mutations.MUTATIONS[n].checks)
        for n in names
    ]


class Lab:
    def __init__(self, opts: Options, progress: Progress | None = None):
        self.p = progress or Progress()
        self.stages = stages(opts)
        self.reports: list[tuple[str | None, Report]] = []  # (mutation, its report), in run order
        self._begin(self.stages[0])
        self.vm: VM | None = None  # the world VM; its root namespace is the first ECS (one gateway)
        self.gateway_vms: dict[int, VM] = {}  # a pair's gateways, each in a VM of its own, by number
        self.session: Session | None = None
        self.run_dir: Path | None = None
        self.image: Image | None = None
        self.mirror: mirror.Server | None = None
        self.inputs: LabInputs | None = None
        self.topo: Topology | None = None
        self.user_data = ""
        self.abort_code: int | None = None

    # ------------------------------------------------------------------ orchestration
    def _begin(self, opts: Options) -> None:
        """A new report for this run (or this mutation of it), with its options and checks."""
        self.o = opts
        all_checks = registry.CHECKS + (registry.FAULT_CHECKS if opts.faults else ())
        self.wanted = set(opts.only) if opts.only else set(all_checks)
        self.report = Report(expected=tuple(n for n in all_checks if n in self.wanted))
        self.report.config = {
            **stack_profile(opts.config_file),
            "mutation": opts.mutate,
            "user_data_mutated": bool(opts.mutate),
            "only": list(opts.only) or None,
            "machine": machine.info(),
            "faults": opts.faults,
        }
        self.reports.append((opts.mutate, self.report))
        self.began = self.p.elapsed()

    def _finish_report(self) -> None:
        self.p.end()
        self.report.metrics["phases_s"] = dict(self.p.phases)
        self.report.metrics["total_s"] = round(self.p.elapsed() - self.began, 1)
        self.p.phases = {}

    def run(self) -> Report:
        """Every stage in order; returns the last report (all are in `reports`)."""
        try:
            self._prepare()
            self._boot()
            boot = self._wait_for_link()
            self.report.config["mutation_applied"] = "by cloud-init, at the VM's first boot" if self.o.mutate else None
            self._check(boot)
            for stage in self.stages[1:]:
                self._next_mutation(stage)
        except LabAbortError as e:
            self.report.error = str(e)
            self.abort_code = e.exit_code
            self.p.say(f"ABORT: {e}")
        except Exception:  # a bug or an unexpected host failure: still report and clean up
            self.report.error = "lab error:\n" + traceback.format_exc()
            self.abort_code = 3
            self.p.say(self.report.error)
        finally:
            self._goals_done()  # whatever happened, nobody waits for it any longer
            self.p.phase("cleanup", "stopping QEMU, removing temporary files")
            self.close()
            self._finish_report()
        return self.report

    def _goals_done(self) -> None:
        if self.o.goals_done and not self.o.goals_done.exists():
            self.o.goals_done.touch()
            self.p.say(f"every check whose goals need a quiet machine has run ({self.o.goals_done} created)")

    def _check(self, boot: BootFacts) -> None:
        assert self.vm and self.inputs and self.topo and self.run_dir and self.image
        self.session = Session(
            inputs=self.inputs,
            topo=self.topo,
            user_data=self.user_data,
            world=self.vm,
            gateways=self.gateway_vms,
            run_dir=self.run_dir,
            image=self.image,
            report=self.report,
            progress=self.p,
            opts=self.o,
            boot=boot,
        )
        self._run_checks(self.session)

    def _next_mutation(self, opts: Options) -> None:
        """The next mutation on the same VM: its files written, the VM rebooted, its checks."""
        assert self.vm and self.inputs and opts.mutate
        before, previous, first = self.user_data, self.o.mutate, self.report
        self._finish_report()
        self._begin(opts)
        r = self.report
        for key in ("plan_source", "plan", "topology", "image"):  # the same plan, image and VM
            r.config[key] = first.config.get(key)
        r.metrics["image_cached"] = first.metrics.get("image_cached")
        self.user_data = self._mutated(self.inputs.user_data, opts.mutate)
        r.config["verify_script"] = verify_script_path(self.user_data)
        self.p.phase("rewrite", f"FAULT INJECTION: user-data mutated ({opts.mutate}); its files written on the ECS")
        try:
            files = mutations.changed_files(before, self.user_data)
        except mutations.MutationError as e:
            raise LabAbortError(str(e), exit_code=2) from None
        for f in files:
            res = self.vm.sh(
                f'p={shlex.quote(f["path"])}; cat > "$p.new" && chown {shlex.quote(f["owner"])} "$p.new" '
                f'&& chmod {shlex.quote(f["permissions"])} "$p.new" && mv "$p.new" "$p"',
                30,
                stdin=f["content"].encode(),
            )
            if not res.ok:
                raise LabAbortError(f"writing {f['path']} on the ECS failed: {res.text()}")
        self.vm.sh("sync", 60)
        r.config["mutation_applied"] = (
            f"on the VM of the mutation before ({previous}): the {len(files)} file(s) its user-data writes "
            f"differently ({', '.join(f['path'] for f in files)}) rewritten, then the VM rebooted"
        )
        if opts.pause_until:
            self._pause_until(opts.pause_until)
        self.p.phase("reboot", "rebooting the VM (the world's namespaces and the ECS start afresh)")
        t0 = time.monotonic()
        try:
            t = self.vm.reboot(timeout=opts.boot_timeout_s)
        except Exception as e:
            raise LabAbortError(f"reboot: {e}") from None
        r.metrics["reboot_to_agent_s"] = round(t, 1)
        self._wait_lab_boot()
        boot = self._wait_for_link(since=lambda: time.monotonic() - t0)
        self._check(boot)

    def _pause_until(self, path: Path) -> None:
        """Pause the VM until `path` exists (a scheduler's go), announcing it with path.paused."""
        assert self.vm
        if path.exists():
            return
        self.p.phase("pause", f"VM paused until {path} exists")
        self.vm.pause()
        Path(f"{path}.paused").touch()
        poll.until(path.exists, timeout=float("inf"), interval=2.0)
        self.vm.resume()

    def close(self) -> None:
        for extra in [*(self.session.extra_vms if self.session else ()), *self.gateway_vms.values()]:
            extra.stop()
        if self.vm:
            self.vm.stop()
        if self.mirror:
            self.mirror.close()
            self.mirror = None
        if self.run_dir and self.run_dir.exists():
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def _prepare(self) -> None:
        r = self.report
        self.p.phase(
            "plan",
            f"plan JSON {self.o.plan_json}"
            if self.o.plan_json
            else f"python -m tools.plan --config-file {self.o.config_file}",
        )
        try:
            if self.o.plan_json:
                plan = json.loads(Path(self.o.plan_json).read_text())
                r.config["plan_source"] = str(self.o.plan_json)
            else:
                with tempfile.TemporaryDirectory(prefix="aws2aliyun-plan-") as d:
                    plan = run_plan(self.o.config_file, Path(d) / "plan.json", REPO)
                r.config["plan_source"] = "python -m tools.plan"
            self.inputs = from_plan(plan)
        except PlanError as e:
            raise LabAbortError("plan: " + "\n".join(e.problems), exit_code=2) from None
        i = self.inputs
        original = i.user_data
        self.user_data = original
        r.config["user_data_sha256"] = hashlib.sha256(original.encode()).hexdigest()
        r.config["user_data_bytes"] = len(original.encode())
        if self.o.mutate:
            self.user_data = self._mutated(original, self.o.mutate)
            self.p.say(f"FAULT INJECTION: user-data mutated ({self.o.mutate})")
        self.topo = plan_topology(i)
        r.config["plan"] = i.summary()
        r.config["topology"] = self.topo.summary()
        r.config["verify_script"] = verify_script_path(self.user_data)

        self.p.phase("image", "Debian 12 image (cached by its inputs)")
        try:
            img = image_mod.ensure_image(log=self.p.say, rebuild=self.o.rebuild_image)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            raise LabAbortError(str(e)) from None
        self.image = img
        try:  # the image's apt source, for this run (lab/mirror.py)
            self.mirror = mirror.Server(img.mirror)
        except OSError as e:  # no mirror in the image (FileNotFoundError), no port to serve on
            raise LabAbortError(f"package mirror: {e}") from None
        r.config["image"] = {"key": img.key, "path": str(img.path), "built_now": img.built_now}
        r.metrics["image_cached"] = not img.built_now
        if img.built_now:
            r.metrics["image_build_s"] = round(img.build_seconds, 1)

        self.p.phase("seed", "NoCloud seed (user-data byte for byte) and lab config disk")
        remove_stale_run_dirs()
        self.run_dir = Path(tempfile.mkdtemp(prefix=RUN_DIR_PREFIX))
        self.run_dir.chmod(0o700)
        (self.run_dir / "owner.pid").write_text(f"{os.getpid()}\n")
        if i.pair:  # the gateways boot in VMs of their own (_boot_gateways); the world VM runs no ECS
            write_seed(self.run_dir, gateways.WORLD_USER_DATA.encode(), "aws2aliyun-lab-world")
        else:
            write_seed(self.run_dir, gzip_user_data(self.user_data), i.hostname)
        self._write_labcfg(self.run_dir / "labcfg.tar")

    def _mutated(self, original: str, name: str) -> str:
        """The user-data with this mutation, said in the report (with the plan's facts)."""
        assert self.inputs
        r = self.report
        r.config["user_data_sha256"] = hashlib.sha256(original.encode()).hexdigest()
        r.config["user_data_bytes"] = len(original.encode())
        try:
            text = mutations.apply(name, original, self.inputs)
        except mutations.MutationError as e:
            raise LabAbortError(str(e), exit_code=2) from None
        r.config["fault_injection"] = (
            f"user-data deliberately mutated ({name}): " + mutations.MUTATIONS[name].description
        )
        r.config["mutated_user_data_sha256"] = hashlib.sha256(text.encode()).hexdigest()
        return text

    def _write_labcfg(self, path: Path) -> None:
        assert self.inputs and self.topo
        assert self.mirror
        env = render_env(self.topo) + mirror.lab_env(self.mirror.port)
        files: dict[str, tuple[bytes, int]] = {"lab.env": (env.encode(), 0o644)}
        for f in GUEST_DIR.iterdir():
            if f.is_file():
                files[f.name] = (f.read_bytes(), 0o755 if f.suffix in (".sh", ".py") else 0o644)
        # the AWS end declares a silent ECS dead after its DPD timeout, as AWS does
        dpd = max((t.dpd_timeout_s for t in self.inputs.tunnels), default=30)
        files["peer-strongswan.conf"] = (peer.strongswan_conf(dpd).encode(), 0o644)
        for t, pn in zip(self.inputs.tunnels, self.topo.peers, strict=False):
            files[f"aws{t.number}.swanctl.conf"] = (peer.swanctl_conf(t, self.inputs.eip, pn.mark).encode(), 0o600)
        if self.inputs.bgp:
            for name, text in bgp.files(self.inputs.bgp, self.topo).items():
                files[name] = (text.encode(), 0o644)
        data = labcfg_tar(files)
        path.write_bytes(data)
        path.chmod(0o600)

    def _boot(self) -> None:
        assert self.run_dir and self.topo and self.image
        img = self.image
        self.p.phase("boot", "QEMU (TCG), waiting for the guest agent")
        self.vm = VM(
            self.run_dir,
            img.kernel,
            img.initrd,
            img.disk,
            self.run_dir / "seed.img",
            self.run_dir / "labcfg.tar",
            self.topo.slirp_net,
            self.o.memory_mb,
            self.o.cpus,
            vswitch_ports=vswitch_ports(self.run_dir, self.wanted, self.topo),
        )
        self.vm.start()
        try:
            t = self.vm.wait_agent(timeout=self.o.boot_timeout_s)
        except Exception as e:
            raise LabAbortError(f"boot: {e}") from None
        self.report.metrics["boot_to_agent_s"] = round(t, 1)
        self.p.say(f"guest agent up {t:.0f}s after VM start")
        self._wait_lab_boot()
        if self.topo.pair:
            self._boot_gateways()

    def _boot_gateways(self) -> None:
        """A pair: each gateway in a VM of its own, booted by cloud-init from its own planned
        user-data, its NIC on a port of the world VM's vSwitch (started once the world's
        network, the vSwitch's DHCP among it, is up)."""
        assert self.run_dir and self.topo and self.image and self.inputs
        by_number = {g.number: g for g in self.inputs.gateways}
        for g in self.topo.gateways:
            vm = gateways.gateway_vm(
                self.run_dir,
                self.image,
                self.topo.slirp_net,
                key=f"pair-gw{g.number}",
                port=g.port,
                mac=g.mac,
                user_data=by_number[g.number].user_data,
                hostname=by_number[g.number].hostname,
                memory_mb=self.o.memory_mb,
                cpus=gateways.PAIR_GATEWAY_CPUS,
            )
            self.gateway_vms[g.number] = vm
            vm.start()
            self.p.say(f"gateway {g.number} of the pair: VM started (MAC {g.mac}, {g.ip})")

    def _wait_lab_boot(self) -> None:
        assert self.vm
        vm = self.vm

        def settled() -> ExecResult | None:
            """lab-boot.service done (the guest agent may answer while it still runs on a busy host)."""
            res = vm.sh("systemctl is-active lab-boot.service; tail -n 5 /run/lab/log/boot.log", 30)
            return None if res.out.startswith(("activating", "reloading")) else res

        boot = poll.until(settled, self.o.boot_timeout_s, interval=2.0) or vm.sh("systemctl status lab-boot", 30)
        if not boot.out.startswith("active"):
            raise LabAbortError(
                "lab network setup (lab-boot.service) failed:\n"
                + boot.text()
                + "\n"
                + self.vm.sh("journalctl -u lab-boot --no-pager | tail -40; tail -60 /run/lab/log/boot.log", 30).text()
            )

    # ------------------------------------------------------------------ waiting
    def _wait_for_link(self, since: Callable[[], float] | None = None) -> BootFacts:
        """cloud-init done (on every gateway), then both tunnels up (on the ECS, or a pair's active
        gateway); times `since` the world VM's start (or a reboot)."""
        assert self.vm and self.inputs
        i = self.inputs
        world = self.vm
        vms = list(self.gateway_vms.values()) or [world]
        since = since or world.since_start
        self.p.phase("cloud-init", "waiting for cloud-init (packages from the image's mirror) and both tunnels")
        # cloud-init's own JSON status files, whether strongSwan is installed yet, the ECS's SAs
        script = (
            f"{cloudinit.STATUS_SCRIPT}; echo; echo ---; "
            "command -v swanctl >/dev/null && echo swanctl-installed; echo ---; "
            "swanctl --list-sas --pretty 2>/dev/null"
        )
        facts = BootFacts()
        latest: dict[int, list[dict]] = {}  # each gateway's SAs at the last look
        seen: set[int] = set()
        statuses: dict[int, str] = {}
        who = dict(enumerate(f"gateway {n}" for n in self.gateway_vms)) or {0: "the ECS"}

        def look() -> bool:
            """One look at each gateway: cloud-init's status, strongSwan, the tunnels."""
            for k, vm in enumerate(vms):
                res = vm.sh(script, timeout=40)
                ci_json, _, rest = res.out.partition("---\n")
                head, _, sas_text = rest.partition("---\n")
                status = cloudinit.status(ci_json)
                if status and status != statuses.get(k):
                    statuses[k] = status
                    self.p.say(f"cloud-init: {status}" + (f" ({who[k]})" if self.gateway_vms else ""))
                if "swanctl-installed" in head and k not in seen:
                    seen.add(k)
                    self.p.say(f"strongSwan installed on {who[k]} (by cloud-init)")
                sas = swan.parse_pretty(sas_text)
                latest[k] = sas
                for t in i.tunnels:
                    if t.number not in facts.tunnel_up_s and swan.established(sas, t.outside_address):
                        facts.tunnel_up_s[t.number] = since()
                        self.p.say(
                            f"tunnel{t.number} ESTABLISHED {facts.tunnel_up_s[t.number]:.0f}s after VM (re)start"
                        )
                if not vm.alive():
                    raise LabAbortError("QEMU exited during boot:\n" + vm.tail_file(vm.console, 40))
            done = [statuses.get(k, "") for k in range(len(vms))]
            # the first that is not done is the one to report; all terminal: the worst
            facts.cloud_init_status = next((x for x in done if x not in cloudinit.TERMINAL), None) or next(
                (x for x in done if x != "done"), done[0]
            )
            if all(x in cloudinit.TERMINAL for x in done) and facts.cloud_init_done_s is None:
                facts.cloud_init_done_s = since()
            return facts.cloud_init_done_s is not None

        def all_up() -> bool:
            look()
            return len(facts.tunnel_up_s) == len(i.tunnels)

        def both_ends_now() -> bool:
            """Every tunnel established now on a gateway and on its AWS-like peer. A tunnel seen
            up once may have gone since: under host load the AWS end's DPD once cleared SAs the
            gateway still listed, 45 s after they came up (docs/lab-findings.md #30), and the
            checks would have started on a link being re-established."""
            look()
            peers = {
                t.number: swan.parse_pretty(world.sh(f"{PEER} exec {t.number} swanctl --list-sas --pretty", 30).out)
                for t in i.tunnels
            }
            outside = {t.number: t.outside_address for t in i.tunnels}
            down = [f"tunnel{n}" for n in swan.not_up_on_both_ends(latest.values(), peers, outside, i.eip)]
            if down and down != said[-1]:
                self.p.say(f"{', '.join(down)}: not established on both ends now, waiting before the checks")
            said.append(down)
            facts.lost_before_checks += [x for x in down if x not in facts.lost_before_checks]
            return not down

        said: list[list[str]] = [[]]

        # cloud-init finished (within the boot timeout), then every tunnel up (within the grace),
        # then still up on both ends when the checks start
        if poll.until(look, self.o.boot_timeout_s, interval=3.0) and poll.until(
            all_up, self.o.establish_grace_s, interval=3.0
        ):
            poll.until(both_ends_now, self.o.establish_grace_s, interval=3.0)
        m = self.report.metrics
        m["boot_to_cloud_init_done_s"] = round(facts.cloud_init_done_s, 1) if facts.cloud_init_done_s else None
        m["boot_to_established_s"] = round(facts.established_s, 1) if facts.established_s else None
        m["tunnels_lost_before_checks"] = facts.lost_before_checks
        return facts

    # ------------------------------------------------------------------ checks
    def _run_checks(self, s: Session) -> None:
        """Every wanted check in the registry's order; the basic checks' failures get the
        diagnostics of both ends, the fault checks run on one lab in order."""
        ike = s.inputs.ike_version
        count = len(s.inputs.gateways) or 1
        off_ike = [spec for spec in registry.SPECS if spec.name in self.wanted and ike not in spec.ike_versions]
        off_count = [
            spec
            for spec in registry.SPECS
            if spec.name in self.wanted and count not in spec.gateway_counts and spec not in off_ike
        ]
        routing = s.inputs.routing_mode
        off_routing = [
            spec
            for spec in registry.SPECS
            if spec.name in self.wanted and routing not in spec.routings and spec not in off_ike + off_count
        ]
        off = off_ike + off_count + off_routing
        if off:  # not run on this link's IKE version or gateway count, and why (the report says so)
            self.report.expected = tuple(n for n in self.report.expected if n not in {x.name for x in off})
        if off_ike:
            self.report.config["not_on_this_ike_version"] = {x.name: x.not_on_ikev1 for x in off_ike}
        if off_count:
            why = registry.NOT_ON_A_PAIR if count == 2 else "a gateway pair's check (gatewayCount 2)"
            self.report.config["not_on_this_gateway_count"] = {x.name: why for x in off_count}
        if off_routing:
            why = registry.NOT_ON_BGP if routing != "static" else "a BGP stack's check (routing: bgp)"
            self.report.config["not_on_this_routing"] = {x.name: why for x in off_routing}
        basic = [spec for spec in registry.SPECS if not spec.fault and spec.name in self.wanted and spec not in off]
        faults = [spec for spec in registry.SPECS if spec.fault and spec.name in self.wanted and spec not in off]
        last_with_goals = registry.quiet_until(basic + faults)
        if last_with_goals is None:
            self._goals_done()
        self.p.phase("checks")
        for spec in basic:
            self._say(self._run_one(spec, s))
            if spec is last_with_goals:
                self._goals_done()
        failed = [c for c in self.report.checks if not c.ok]
        if failed:
            self.p.say("collecting diagnostics from both ends")
            text = diagnostics.as_text(diagnostics.collect(s))
            if s.gateways:  # a pair: every gateway's role, addresses, SAs and hand-over logs
                text += "\n--- the pair's gateways ---\n" + ha.pair_context(s)
            for c in failed:
                c.detail += text
        if faults:
            self.p.phase("faults", "fault and failover checks (probes at 10 pps each way)")
        for spec in faults:
            if not s.world.alive():
                self.report.add(Check(spec.name, False, 0.0, "VM not running", {}))
                continue
            self._say(self._run_one(spec, s))
            if s.blackhole.blocked and spec.hands_over_to not in self.wanted:
                s.blackhole.unblock_all()
            if spec is last_with_goals:
                self._goals_done()
        if s.blackhole.blocked:
            s.blackhole.unblock_all()
        m = self.report.metrics
        if s.events:
            m["fault_events"] = [(e, round(t, 3)) for e, t in s.events]
        if s.timelines:
            m["failover_timelines"] = {name: r.timeline(t_ref, s.events) for name, (r, t_ref) in s.timelines.items()}
        m.update(registry.headline(self.report.checks))

    def _run_one(self, spec: registry.Spec, s: Session) -> Check:
        s.notes.clear()
        c = registry.run_retrying(spec, s, before_retry=s.blackhole.unblock_all)
        if s.notes:  # what the lab did first (a restart after an earlier check broke the link)
            head, _, rest = c.detail.partition("\n")
            c.detail = head + "\nlab: " + "; ".join(s.notes) + ("\n" + rest if rest else "")
        self.report.add(c)
        return c

    def _say(self, c: Check) -> None:
        first = c.detail.splitlines()[0] if c.detail else ""
        self.p.say(f"{'PASS' if c.ok else 'FAIL'} {c.name} ({c.seconds:.1f}s): {first[:200]}")
