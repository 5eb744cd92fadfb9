"""A corpus of invalid stack files: each is refused by the plan (exit 2) naming its key,
and nothing is planned. The key each file must be rejected for is in its header."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools import offline
from tools import plan as plan_cli

CORPUS = sorted((Path(__file__).parent / "invalid_stacks").glob("Pulumi.*.yaml"))
EXPECT = re.compile(r"^# expect-error: (\S+)$", re.MULTILINE)


def expected_key(path: Path) -> str:
    m = EXPECT.search(path.read_text())
    assert m, f"{path.name} must say which key it is rejected for"
    return m.group(1)


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 20


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_invalid_stack_is_refused_naming_its_key(path, capsys, monkeypatch):
    def must_not_run(*_a, **_k):
        raise AssertionError("the program ran: resources would have been created")

    monkeypatch.setattr(offline, "run", must_not_run)
    code = plan_cli.main(["--config-file", str(path)])
    err = capsys.readouterr().err
    assert code == 2, err
    key = expected_key(path)
    assert any(line.startswith(f"error: {key}:") for line in err.splitlines()), err
    assert "Traceback" not in err


def test_the_cli_exits_2_without_a_traceback():
    path = CORPUS[0]
    out = subprocess.run(
        [sys.executable, "-m", "tools.plan", "--config-file", str(path)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and f"error: {expected_key(path)}:" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
