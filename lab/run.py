"""One lab run: plan -> image -> VM -> wait for cloud-init and the tunnels -> checks -> report."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path

from lab import image as image_mod
from lab import machine, mutations, peer, security, swan
from lab.faults import FAULT_CHECKS, run_fault_checks
from lab.inputs import LabInputs, PlanError, from_plan, run_plan
from lab.report import CHECKS, Progress, Report, run_check
from lab.topology import Topology, plan_topology, render_env
from lab.vm import VM, ExecResult

REPO = Path(__file__).resolve().parent.parent
GUEST_DIR = Path(__file__).parent / "guest"
PROBE = "python3 /run/lab/probe.py"
PEER = "/bin/sh /run/lab/peer.sh exec"
TERMINAL_CLOUD_INIT = ("done", "error", "disabled", "degraded done", "degraded error")


@dataclass
class Options:
    config_file: Path
    report_path: Path | None = None
    only: tuple[str, ...] = ()
    mutate: str | None = None
    plan_json: Path | None = None
    bulk_mb: int = 20
    boot_timeout_s: int = 900
    establish_grace_s: int = 180
    rebuild_image: bool = False
    memory_mb: int = 2048
    cpus: int = 2
    faults: bool = True  # issue 4's fault and failover checks (`--no-faults` skips them)


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


def write_seed(directory: Path, user_data: str, hostname: str) -> Path:
    """A NoCloud seed (cloud-localds) for one instance: the user-data byte for byte, a
    meta-data with a fresh instance-id (a new instance to cloud-init). Returns seed.img."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "user-data").write_bytes(user_data.encode())
    (directory / "meta-data").write_text(f"instance-id: i-lab-{uuid.uuid4().hex[:12]}\nlocal-hostname: {hostname}\n")
    seed = directory / "seed.img"
    subprocess.run(
        ["cloud-localds", str(seed), str(directory / "user-data"), str(directory / "meta-data")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return seed


def labcfg_tar(files: dict[str, tuple[bytes, int]], mtime: int | None = None) -> bytes:
    """A lab config disk (guest/lab-boot unpacks it into /run/lab and runs its boot.sh): a tar
    of name -> (data, mode), padded to whole 4 KiB blocks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, (data, mode) in sorted(files.items()):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), mode, int(time.time()) if mtime is None else mtime
            tar.addfile(ti, io.BytesIO(data))
    data = buf.getvalue()
    return data + b"\0" * (-len(data) % 4096)


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


def verify_script_path(user_data: str) -> str | None:
    """The write_files entry whose path ends in -verify (what the pulumi-command step runs)."""
    try:
        import yaml

        doc = yaml.safe_load(user_data) or {}
        for f in doc.get("write_files") or []:
            if str(f.get("path", "")).endswith("-verify"):
                return str(f["path"])
        return None
    except ImportError:
        m = re.search(r"^\s*-?\s*path:\s*(\S+-verify)\s*$", user_data, re.M)
        return m.group(1) if m else None


class Lab:
    def __init__(self, opts: Options, progress: Progress | None = None):
        self.o = opts
        self.p = progress or Progress()
        self.report = Report()
        self.vm: VM | None = None  # the world VM; its root namespace is the first ECS
        self.ecs_vm: VM | None = None  # the VM holding the ECS now (a replacement: its own VM)
        self.extra_vms: list[VM] = []  # gateway VMs of their own (lab/rotation.py), stopped by close()
        self.run_dir: Path | None = None
        self.inputs: LabInputs | None = None
        self.topo: Topology | None = None
        self.user_data = ""
        self._diag: dict[str, str] | None = None
        self.abort_code: int | None = None
        self.t_established: float | None = None
        all_checks = CHECKS + (FAULT_CHECKS if opts.faults else ())
        self.wanted = set(opts.only) if opts.only else set(all_checks)
        self.report.expected = tuple(n for n in all_checks if n in self.wanted)

    # ------------------------------------------------------------------ orchestration
    def run(self) -> Report:
        r = self.report
        r.config = {
            **stack_profile(self.o.config_file),
            "mutation": self.o.mutate,
            "user_data_mutated": bool(self.o.mutate),
            "only": list(self.o.only) or None,
            "machine": machine.info(),
        }
        r.config["faults"] = self.o.faults
        try:
            self._prepare()
            self._boot()
            self._wait_for_link()
            self._checks()
            if self.o.faults and self.wanted & set(FAULT_CHECKS):
                self.p.phase("faults", "fault and failover checks (probes at 10 pps each way)")
                run_fault_checks(self, self.wanted)
        except LabAbortError as e:
            r.error = str(e)
            self.abort_code = e.exit_code
            self.p.say(f"ABORT: {e}")
        except Exception:  # a bug or an unexpected host failure: still report and clean up
            r.error = "lab error:\n" + traceback.format_exc()
            self.abort_code = 3
            self.p.say(r.error)
        finally:
            self.p.phase("cleanup", "stopping QEMU, removing temporary files")
            self.close()
            self.p.end()
            r.metrics["phases_s"] = dict(self.p.phases)
            r.metrics["total_s"] = round(self.p.elapsed(), 1)
        return r

    def close(self) -> None:
        for extra in self.extra_vms:
            extra.stop()
        if self.vm:
            self.vm.stop()
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
            try:
                self.user_data = mutations.apply(self.o.mutate, original, i)
            except mutations.MutationError as e:
                raise LabAbortError(str(e), exit_code=2) from None
            r.config["fault_injection"] = (
                f"user-data deliberately mutated ({self.o.mutate}): " + mutations.MUTATIONS[self.o.mutate].description
            )
            r.config["mutated_user_data_sha256"] = hashlib.sha256(self.user_data.encode()).hexdigest()
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
        r.config["image"] = {"key": img.key, "path": str(img.path), "built_now": img.built_now}
        r.metrics["image_cached"] = not img.built_now
        if img.built_now:
            r.metrics["image_build_s"] = round(img.build_seconds, 1)

        self.p.phase("seed", "NoCloud seed (user-data byte for byte) and lab config disk")
        remove_stale_run_dirs()
        self.run_dir = Path(tempfile.mkdtemp(prefix=RUN_DIR_PREFIX))
        self.run_dir.chmod(0o700)
        (self.run_dir / "owner.pid").write_text(f"{os.getpid()}\n")
        write_seed(self.run_dir, self.user_data, i.hostname)
        self._write_labcfg(self.run_dir / "labcfg.tar")

    def _write_labcfg(self, path: Path) -> None:
        assert self.inputs and self.topo
        files: dict[str, tuple[bytes, int]] = {"lab.env": (render_env(self.topo).encode(), 0o644)}
        for f in GUEST_DIR.iterdir():
            if f.is_file():
                files[f.name] = (f.read_bytes(), 0o755 if f.suffix in (".sh", ".py") else 0o644)
        # the AWS end declares a silent ECS dead after its DPD timeout, as AWS does
        dpd = max((t.dpd_timeout_s for t in self.inputs.tunnels), default=30)
        files["peer-strongswan.conf"] = (peer.strongswan_conf(dpd).encode(), 0o644)
        for t, pn in zip(self.inputs.tunnels, self.topo.peers, strict=False):
            files[f"aws{t.number}.swanctl.conf"] = (peer.swanctl_conf(t, self.inputs.eip, pn.mark).encode(), 0o600)
        data = labcfg_tar(files)
        path.write_bytes(data)
        path.chmod(0o600)

    def _boot(self) -> None:
        assert self.run_dir and self.topo
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
            vswitch_ports=self.vswitch_ports(),
        )
        self.ecs_vm = self.vm
        self.vm.start()
        try:
            t = self.vm.wait_agent(timeout=240)
        except Exception as e:
            raise LabAbortError(f"boot: {e}") from None
        self.report.metrics["boot_to_agent_s"] = round(t, 1)
        self.p.say(f"guest agent up {t:.0f}s after VM start")
        boot = self.vm.sh("systemctl is-active lab-boot.service; tail -n 5 /run/lab/log/boot.log", 30)
        if not boot.out.startswith("active"):
            raise LabAbortError(
                "lab network setup (lab-boot.service) failed:\n"
                + boot.text()
                + "\n"
                + self.vm.sh("journalctl -u lab-boot --no-pager | tail -40; tail -60 /run/lab/log/boot.log", 30).text()
            )

    def vswitch_ports(self) -> tuple[Path, ...]:
        """Spare vSwitch ports on the world VM for gateway VMs of their own: one for the
        replacement gateway when psk_rotation runs (none otherwise: the QEMU command line of
        every other run is what it always was)."""
        assert self.run_dir
        from lab.rotation import VSWITCH_PORT

        return (self.run_dir / VSWITCH_PORT,) if "psk_rotation" in self.wanted and self.o.faults else ()

    # ------------------------------------------------------------------ waiting
    def _wait_for_link(self) -> None:
        assert self.vm and self.inputs
        vm, i = self.vm, self.inputs
        self.p.phase("cloud-init", "waiting for cloud-init (packages from Debian's registry) and both tunnels")
        script = (
            "echo \"CI:$(cloud-init status 2>/dev/null | sed -n 's/^status: //p')\"; "
            'echo "SW:$(command -v swanctl >/dev/null && echo yes || echo no)"; '
            "echo ---; swanctl --list-sas --pretty 2>/dev/null"
        )
        deadline = time.monotonic() + self.o.boot_timeout_s
        status, ci_done_at, seen = "", None, set()
        tunnel_up: dict[int, float] = {}
        last_sas: list[dict] = []
        while time.monotonic() < deadline:
            res = vm.sh(script, timeout=40)
            head, _, sas_text = res.out.partition("---\n")
            m = re.search(r"CI:(.*)", head)
            new_status = m.group(1).strip() if m else ""
            if new_status and new_status != status:
                status = new_status
                self.p.say(f"cloud-init: {status}")
            if "SW:yes" in head and "swanctl" not in seen:
                seen.add("swanctl")
                self.p.say("strongSwan installed on the ECS (by cloud-init)")
            last_sas = swan.parse_pretty(sas_text)
            for t in i.tunnels:
                if t.number not in tunnel_up and swan.established(last_sas, t.outside_address):
                    tunnel_up[t.number] = vm.since_start()
                    self.p.say(f"tunnel{t.number} ESTABLISHED {tunnel_up[t.number]:.0f}s after VM start")
            if len(tunnel_up) == len(i.tunnels) and self.t_established is None:
                self.t_established = max(tunnel_up.values())
            if status in TERMINAL_CLOUD_INIT and ci_done_at is None:
                ci_done_at = vm.since_start()
                deadline = min(deadline, time.monotonic() + self.o.establish_grace_s)
            if ci_done_at is not None and self.t_established is not None:
                break
            if not vm.alive():
                raise LabAbortError("QEMU exited during boot:\n" + vm.tail_file(vm.console, 40))
            time.sleep(3)
        self.ci_status = status
        self.tunnel_up = tunnel_up
        m = self.report.metrics
        m["boot_to_cloud_init_done_s"] = round(ci_done_at, 1) if ci_done_at is not None else None
        m["boot_to_established_s"] = round(self.t_established, 1) if self.t_established else None

    # ------------------------------------------------------------------ checks
    def _checks(self) -> None:
        self.p.phase("checks")
        order = [
            "cloud_init_clean",
            "tunnels_established",
            "icmp_ali_to_aws",
            "icmp_aws_to_ali",
            "tcp_ali_to_aws",
            "tcp_aws_to_ali",
            "udp_ali_to_aws",
            "udp_aws_to_ali",
            "nat_t",
            "bulk_tcp_mtu",
            "single_sa_pair",
            "verify_script",
            "host_firewall",
            "secrets_on_instance",
        ]
        for name in order:
            if name not in self.wanted:
                continue
            c = run_check(name, getattr(self, "check_" + name))
            self.report.add(c)
            self.p.say(
                f"{'PASS' if c.ok else 'FAIL'} {name} ({c.seconds:.1f}s): "
                f"{c.detail.splitlines()[0] if c.detail else ''}"[:160]
            )
        failed = [c for c in self.report.checks if not c.ok]
        if failed:
            self.p.say("collecting diagnostics from both ends")
            diag = self.diagnostics()
            text = "\n".join(f"=== {k}\n{v.rstrip()}" for k, v in diag.items())
            for c in failed:
                c.detail += "\n\n--- diagnostics (ECS, AWS-like peers, routers) ---\n" + text

    # helpers -------------------------------------------------------------
    def sh(self, script: str, timeout: float = 60) -> ExecResult:
        """In the world VM's root namespace (the first ECS; `ip netns exec NS` for the rest)."""
        assert self.vm
        return self.vm.sh(script, timeout=timeout)

    def ecs_sh(self, script: str, timeout: float = 60) -> ExecResult:
        """On the ECS, wherever it runs now (the world VM's root namespace until it is replaced)."""
        vm = self.ecs_vm or self.vm
        assert vm
        return vm.sh(script, timeout=timeout)

    def probe(self, args: str, timeout: float = 90) -> dict:
        res = self.sh(f"{PROBE} {args}", timeout=timeout)
        try:
            return json.loads(res.out.strip().splitlines()[-1])
        except (IndexError, ValueError):
            return {"ok": False, "error": "probe failed: " + res.text()[-1500:]}

    def ecs_sas(self) -> list[dict]:
        return swan.parse_pretty(self.ecs_sh("swanctl --list-sas --pretty 2>&1", 30).out)

    def peer_sas(self, n: int) -> list[dict]:
        return swan.parse_pretty(self.sh(f"{PEER} {n} swanctl --list-sas --pretty 2>&1", 30).out)

    def hosts(self, direction: str) -> tuple[str, str, str, str]:
        """(client ns, client ip, server ns, server ip) for ali_to_aws / aws_to_ali."""
        t = self.topo
        assert t
        ali, aws = ("alihost", t.alihost_ip), ("awshost", t.awshost_ip)
        src, dst = (ali, aws) if direction == "ali_to_aws" else (aws, ali)
        return src[0], src[1], dst[0], dst[1]

    # the checks ----------------------------------------------------------
    def check_cloud_init_clean(self):
        res = self.sh(
            "cloud-init status --long 2>&1; echo '=== result.json'; cat /run/cloud-init/result.json 2>&1; "
            "echo '=== failed units'; systemctl --failed --no-legend --plain 2>&1; "
            "echo '=== warnings'; grep -E ' (WARNING|ERROR|CRITICAL)' /var/log/cloud-init.log | tail -n 30",
            60,
        )
        text = res.out
        status = re.search(r"^status: (.*)$", text, re.M)
        status_s = status.group(1).strip() if status else "unknown"
        errors: list = []
        m = re.search(r"=== result.json\n(.*?)\n=== failed units", text, re.S)
        try:
            result = json.loads(m.group(1)) if m else {}
            errors = (result.get("v1") or {}).get("errors") or []
        except ValueError:
            errors = ["/run/cloud-init/result.json missing or unreadable (cloud-init did not finish)"]
        f = re.search(r"=== failed units\n(.*?)=== warnings", text, re.S)
        failed_units = [ln.split()[0] for ln in (f.group(1) if f else "").splitlines() if ln.strip()]
        warn_lines = text.split("=== warnings\n", 1)[1].strip().splitlines() if "=== warnings\n" in text else []
        serious = [w for w in warn_lines if " ERROR" in w or " CRITICAL" in w]
        # The lab image boots without a single cloud-init warning or failed unit, so any comes
        # from the user-data (schema problems, failed modules, a unit it installed): "clean"
        # means none at all.
        ok = status_s == "done" and not errors and not warn_lines and not failed_units
        metrics = {
            "status": status_s,
            "errors": len(errors),
            "log_warnings": len(warn_lines) - len(serious),
            "log_errors": len(serious),
            "failed_units": failed_units,
        }
        if ok:
            return True, "status done, no errors, no warnings in cloud-init.log, no failed systemd unit", metrics
        detail = (
            f"cloud-init status '{status_s}', {len(errors)} errors, {len(serious)} ERROR and "
            f"{len(warn_lines) - len(serious)} WARNING lines in cloud-init.log, failed units: "
            f"{', '.join(failed_units) or 'none'}\n"
            + "\n".join(str(e) for e in errors)
            + "\n"
            + "\n".join(warn_lines[-20:])
        )
        if failed_units:
            detail += "\n" + self.sh(f"systemctl status --no-pager -n 15 {' '.join(failed_units)} 2>&1", 30).out
        return False, detail + "\n" + text[:3000], metrics

    def check_tunnels_established(self):
        assert self.inputs
        ecs = self.ecs_sas()
        problems, lines = [], []
        metrics: dict = {"boot_to_established_s": round(self.t_established, 1) if self.t_established else None}
        for t in self.inputs.tunnels:
            metrics[f"tunnel{t.number}_established_s"] = (
                round(self.tunnel_up[t.number], 1) if t.number in self.tunnel_up else None
            )
            peer_sas = self.peer_sas(t.number)
            e_ok = swan.established(ecs, t.outside_address)
            p_ok = swan.established(peer_sas, self.inputs.eip)
            states = [sa.get("state") for sa in swan.sas_to(ecs, t.outside_address)]
            lines.append(
                f"tunnel{t.number}: ECS {'ESTABLISHED' if e_ok else 'not established'} "
                f"(IKE SA states {states or 'none'}), AWS-like peer aws{t.number} "
                f"{'ESTABLISHED' if p_ok else 'not established'}"
            )
            if not (e_ok and p_ok):
                problems.append(t.number)
        if not problems:
            return (
                True,
                (
                    f"both tunnels ESTABLISHED with a CHILD_SA on both ends, "
                    f"{metrics['boot_to_established_s']}s after VM start\n" + "\n".join(lines)
                ),
                metrics,
            )
        detail = "not established: " + ", ".join(f"tunnel{n}" for n in problems) + "\n" + "\n".join(lines)
        detail += "\n" + self.auth_analysis(problems)
        return False, detail, metrics

    def auth_analysis(self, numbers: list[int]) -> str:
        """What the AWS-like peers saw: identities, proposals, authentication."""
        assert self.inputs
        out = []
        for n in numbers:
            log = self.sh(
                f"grep -E 'looking for|peer config|AUTHENTICATION_FAILED|authentication of|"
                f"NO_PROPOSAL_CHOSEN|no acceptable|proposal|IDir|IDii|pre-shared key' "
                f"/run/lab/log/aws{n}-charon.log | tail -n 15",
                30,
            ).out
            ids = set(re.findall(r"\.\.\.\S+?\[([^\]]+)\]", log))
            ids.discard("%any")
            wrong = sorted(x for x in ids if x != self.inputs.eip)
            if wrong:
                out.append(
                    f"aws{n}: the ECS presented IKE identity {', '.join(wrong)}, but the AWS side "
                    f"expects the customer gateway's address (the EIP {self.inputs.eip}) as identity"
                )
            elif not log.strip():
                out.append(f"aws{n}: no IKE request reached the AWS-like endpoint")
            out.append(f"aws{n} log:\n{log.rstrip()}")
        conns = self.sh("swanctl --list-conns 2>&1 | grep -E '^[a-z0-9]+:|local|remote|id:' | head -40", 30).out
        out.append("ECS connections (swanctl --list-conns):\n" + conns.rstrip())
        return "\n".join(out)

    def check_single_sa_pair(self):
        assert self.inputs
        i = self.inputs
        ecs = self.ecs_sas()
        ecs_x = swan.parse_xfrm_states(self.ecs_sh("ip xfrm state", 30).out)
        problems, metrics = [], {}
        for t in i.tunnels:
            peer_sas = self.peer_sas(t.number)
            peer_x = swan.parse_xfrm_states(self.sh(f"ip -n aws{t.number} xfrm state", 30).out)
            for end, sas, remote, xs, me in (
                ("ECS", ecs, t.outside_address, ecs_x, i.private_ip),
                (f"aws{t.number}", peer_sas, i.eip, peer_x, t.outside_address),
            ):
                ike = swan.sas_to(sas, remote)
                kids = [c for sa in ike for c in swan.children(sa) if c.get("state") == "INSTALLED"]
                x_in = [x for x in xs if x.src == remote and x.dst == me]
                x_out = [x for x in xs if x.src == me and x.dst == remote]
                key = f"tunnel{t.number}_{'ecs' if end == 'ECS' else 'aws'}"
                metrics[key] = {
                    "ike_sas": len(ike),
                    "child_sas": len(kids),
                    "xfrm_in": len(x_in),
                    "xfrm_out": len(x_out),
                }
                if (len(ike), len(kids), len(x_in), len(x_out)) != (1, 1, 1, 1):
                    problems.append(
                        f"tunnel{t.number} on {end}: {len(ike)} IKE SAs, {len(kids)} CHILD_SAs "
                        f"INSTALLED, xfrm states in/out {len(x_in)}/{len(x_out)} (want 1, 1, 1/1)"
                    )
        if problems:
            return False, "\n".join(problems), metrics
        return True, "one IKE SA and one CHILD_SA pair per tunnel on both ends", metrics

    def check_nat_t(self):
        assert self.inputs and self.topo
        i = self.inputs
        ecs = self.ecs_sas()
        ecs_x = swan.parse_xfrm_states(self.sh("ip xfrm state", 30).out)
        problems, facts = [], []
        for t in i.tunnels:
            sas = swan.sas_to(ecs, t.outside_address)
            psas = swan.sas_to(self.peer_sas(t.number), i.eip)
            for end, group, nat_key in (("ECS", sas, "nat-local"), (f"aws{t.number}", psas, "nat-remote")):
                if not group:
                    problems.append(f"tunnel{t.number}: no IKE SA on {end}")
                for sa in group:
                    ports = (sa.get("local-port"), sa.get("remote-port"))
                    if ports != ("4500", "4500") or sa.get(nat_key) != "yes":
                        problems.append(
                            f"tunnel{t.number} on {end}: IKE ports {ports[0]}->{ports[1]}, "
                            f"{nat_key}={sa.get(nat_key, 'no')} (want 4500->4500, NAT detected)"
                        )
                    for c in swan.children(sa):
                        if c.get("encap") != "yes":
                            problems.append(f"tunnel{t.number} on {end}: CHILD_SA {c.get('name')} not UDP-encapsulated")
            xs = [x for x in ecs_x if t.outside_address in (x.src, x.dst)]
            bad = [x for x in xs if x.encap != "espinudp sport 4500 dport 4500"]
            if not xs or bad:
                problems.append(
                    f"tunnel{t.number}: ECS xfrm states without espinudp 4500/4500: "
                    f"{[(x.src, x.dst, x.encap or 'none') for x in bad] or 'no states'}"
                )
            facts.append(f"tunnel{t.number}: {len(xs)} ECS xfrm states espinudp 4500/4500")
        ali_ns, ali_ip, aws_ns, aws_ip = self.hosts("ali_to_aws")
        obs = self.probe(f"natt internet p-ali --src-ns {ali_ns} --dst {aws_ip} --src-ns {aws_ns} --dst {ali_ip}", 90)
        metrics = {k: obs.get(k) for k in ("esp_in_udp_4500", "esp_raw", "udp_500", "ike_4500")}
        if not obs.get("esp_in_udp_4500"):
            problems.append(f"no ESP-in-UDP/4500 seen between the EIP and AWS while hosts pinged: {obs}")
        if obs.get("esp_raw"):
            problems.append(f"{obs['esp_raw']} raw ESP (IP proto 50) packets on the internet side: {obs.get('sample')}")
        if problems:
            return False, "\n".join(problems), metrics
        return (
            True,
            (
                "IKE and ESP on UDP 4500 both ways (ECS behind the EIP's NAT); internet capture: "
                f"{obs.get('esp_in_udp_4500')} ESP-in-UDP, {obs.get('esp_raw')} raw ESP\n" + "\n".join(facts)
            ),
            metrics,
        )

    def _icmp(self, direction: str):
        cns, cip, sns, sip = self.hosts(direction)
        r = self.probe(f"ping {cns} {sip} --count 5", 60)
        ok = r.get("received", 0) >= 4
        metrics = {
            "transmitted": r.get("transmitted"),
            "received": r.get("received"),
            "rtt_avg_ms": r.get("rtt_avg_ms"),
        }
        detail = f"{cns} {cip} -> {sns} {sip}: {r.get('received')}/{r.get('transmitted')} echo replies"
        if not ok:
            detail += "\n" + str(r.get("output", r)) + "\n" + self.path_analysis()
        return ok, detail, metrics

    def check_icmp_ali_to_aws(self):
        return self._icmp("ali_to_aws")

    def check_icmp_aws_to_ali(self):
        return self._icmp("aws_to_ali")

    def _tcp(self, direction: str):
        cns, cip, sns, sip = self.hosts(direction)
        r = self.probe(f"tcp {cns} {cip} {sns} {sip} --port 5001 --bytes 262144 --timeout 30", 90)
        saw = (r.get("server_saw") or {}).get("peer")
        ok = bool(r.get("ok")) and saw == cip
        metrics = {"bytes": r.get("sent"), "seconds": r.get("seconds")}
        detail = f"{cns} {cip} -> {sns} {sip}:5001, 256 KiB echoed with matching sha256, server saw {saw}"
        if not ok:
            detail = f"{cns} {cip} -> {sns} {sip}:5001 failed: {r}"
            if saw and saw != cip:
                detail += f"\nthe server saw source {saw}, not {cip}: something NATs traffic between the VPCs"
            detail += "\n" + self.path_analysis()
        return ok, detail, metrics

    def check_tcp_ali_to_aws(self):
        return self._tcp("ali_to_aws")

    def check_tcp_aws_to_ali(self):
        return self._tcp("aws_to_ali")

    def _udp(self, direction: str):
        cns, cip, sns, sip = self.hosts(direction)
        r = self.probe(f"udp {cns} {cip} {sns} {sip} --port 5002 --count 20 --timeout 40", 90)
        echoed, saw = r.get("echoed", 0), r.get("server_saw")
        ok = echoed >= 18 and saw == [cip]
        metrics = {"sent": r.get("sent"), "echoed": echoed}
        detail = (
            f"{cns} {cip} -> {sns} {sip}:5002: {echoed}/{r.get('sent')} datagrams (64-1200 B) echoed, server saw {saw}"
        )
        if not ok:
            detail += f"\n{r}\n" + self.path_analysis()
        return ok, detail, metrics

    def check_udp_ali_to_aws(self):
        return self._udp("ali_to_aws")

    def check_udp_aws_to_ali(self):
        return self._udp("aws_to_ali")

    def check_bulk_tcp_mtu(self):
        n = self.o.bulk_mb * 1024 * 1024
        results, problems, metrics = [], [], {"bytes_each": n}
        # data AWS -> Alibaba on a connection the Alibaba host opened (its SYN crosses the ECS
        # into the tunnel), then Alibaba -> AWS on one the AWS host opened.
        for label, direction in (("aws_to_ali", "ali_to_aws"), ("ali_to_aws", "aws_to_ali")):
            cns, cip, sns, sip = self.hosts(direction)
            # Fresh hosts: forget path MTUs learnt by earlier checks (ICMP from the ECS), so
            # only the ECS's MSS clamp can keep full-size segments out of the tunnel.
            self.sh("for ns in alihost awshost; do ip netns exec $ns ip route flush cache; done", 30)
            r = self.probe(f"bulk {cns} {cip} {sns} {sip} --port 5003 --bytes {n} --stall 20 --timeout 300", 360)
            results.append((label, r))
            metrics[f"{label}_mbit_s"] = r.get("mbit_s")
            metrics[f"{label}_seconds"] = r.get("seconds")
            metrics[f"{label}_receiver_mss"] = r.get("receiver_mss")
            if not r.get("ok"):
                problems.append(
                    f"{sns} {sip} -> {cns} {cip} ({self.o.bulk_mb} MiB, connection opened by {cns}): "
                    f"{r.get('error') or 'incomplete'} after {r.get('bytes')} of {n} bytes, "
                    f"receiver MSS {r.get('receiver_mss')}\nsender's TCP: {r.get('sender_ss', '')}"
                )
        if problems:
            return False, "\n".join(problems) + "\n" + self.mss_analysis(), metrics
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

    def mss_analysis(self) -> str:
        rules = self.sh(
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

    def path_analysis(self) -> str:
        """Routes and marks along the path (ECS VTIs vs xfrm marks, AWS router's choice)."""
        assert self.topo
        t = self.topo
        res = self.sh(
            f"echo '## ECS route to the AWS VPC'; ip route show {t.aws_vpc_cidr}; "
            f"ip route get {t.awshost_ip} from {t.alihost_ip} iif eth0 2>&1; "
            "echo '## ECS VTIs'; ip -d link show type vti; echo '## ECS xfrm policy'; ip xfrm policy; "
            "echo '## awsrouter'; ip -n awsrouter route; tail -n 3 /run/lab/log/awsrouter.log",
            30,
        ).out
        vti_part = res.split("## ECS VTIs", 1)[1].split("## ECS xfrm policy", 1)[0] if "## ECS VTIs" in res else ""
        pol_part = (
            res.split("## ECS xfrm policy", 1)[1].split("## awsrouter", 1)[0] if "## ECS xfrm policy" in res else ""
        )
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

    def check_verify_script(self):
        """The command the program's pulumi-command step runs when the plan has one (stacks
        with `verify: true`), else the user-data's verify script as is."""
        assert self.inputs
        path = verify_script_path(self.user_data)
        if not path:
            return False, "no write_files entry ending in '-verify' in the user-data", {}
        planned = [c for c in self.inputs.verify_commands if path in c]
        command = planned[0] if planned else path
        res = self.sh(command, timeout=400 if planned else 150)
        ok = res.rc == 0 and not res.timed_out
        head = f"`{command}` ({'the planned pulumi-command step' if planned else 'from the user-data'}) exited {res.rc}"
        if res.timed_out:
            head += " (timed out)"
        return ok, head + "\n" + res.text()[-3000:], {"exit_code": res.rc}

    def check_host_firewall(self):
        return security.check_host_firewall(self)

    def check_secrets_on_instance(self):
        return security.check_secrets_on_instance(self)

    # ------------------------------------------------------------------ diagnostics
    DIAG_SCRIPT = r"""
sec() { echo "=== $1"; }
swanctl() { command swanctl "$@" 2>&1 | grep -v "^plugin '.*': failed to load"; }
red() { sed -E 's/0x[0-9a-f]{16,}/[key]/g'; }
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

    def diagnostics(self) -> dict[str, str]:
        if self._diag is None:
            if not self.vm or not self.vm.alive():
                self._diag = {"vm": "not running"}
            else:
                res = self.sh(self.DIAG_SCRIPT, timeout=90)
                self._diag = {}
                cur = None
                for line in res.out.splitlines():
                    if line.startswith("=== "):
                        cur = line[4:]
                        self._diag[cur] = ""
                    elif cur:
                        self._diag[cur] += line + "\n"
                if not self._diag:
                    self._diag = {"error": res.text()[-2000:]}
        return self._diag
