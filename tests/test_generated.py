"""The files generated from the settings' declarations stay equal to what they generate,
and every config key is declared once."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import KEYS, KEYS_BY_NAME, PROVIDER_KEYS, Settings, SettingsError, load_settings
from tests.conftest import dev_values
from tools import schema

ROOT = Path(__file__).resolve().parent.parent


def test_readme_config_table_is_generated():
    readme = (ROOT / "README.md").read_text()
    assert readme.count(schema.TABLE_START) == 1 and readme.count(schema.TABLE_END) == 1
    assert readme == schema.with_config_table(readme), "regenerate: python -m tools.schema --write"
    table = readme[readme.index(schema.TABLE_START) : readme.index(schema.TABLE_END)]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [k.name for k in KEYS]


def test_check_fails_on_a_hand_edit(tmp_path):
    for name in ("README.md", "Pulumi.yaml", "components/args.py"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    assert all(path.read_text() == text for path, text in schema.generated(tmp_path).items())
    readme = tmp_path / "README.md"
    readme.write_text(readme.read_text().replace("| `verify` | `false` |", "| `verify` | `true` |"))
    stale = [p.name for p, text in schema.generated(tmp_path).items() if p.read_text() != text]
    assert stale == ["README.md"]


def test_schema_check_cli_passes_on_the_repository():
    out = subprocess.run(
        [sys.executable, "-m", "tools.schema", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr


def test_every_settings_field_is_a_key_a_provider_key_or_derived():
    names = [f.name for f in dataclasses.fields(Settings)]
    from_keys = [k.attr for k in KEYS]
    assert len(set(k.name for k in KEYS)) == len(KEYS) and len(set(from_keys)) == len(KEYS)
    assert set(names) == {*from_keys, *PROVIDER_KEYS.values(), "notes"}
    assert list(PROVIDER_KEYS) == ["aws:region", "alicloud:region"]


@pytest.mark.parametrize("spec", KEYS, ids=[k.name for k in KEYS])
def test_each_default_is_valid_and_described(spec):
    assert spec.type in ("string", "integer", "boolean", "array")
    assert spec.description.endswith(".") and "|" not in spec.description
    s = load_settings(dev_values(**{spec.name: spec.default}))
    unset = load_settings({k: v for k, v in dev_values().items() if not k.endswith(f":{spec.name}")})
    assert getattr(s, spec.attr) == getattr(unset, spec.attr)


def test_secret_keys_are_masked_in_problems():
    for name, spec in KEYS_BY_NAME.items():
        if spec.secret:
            with pytest.raises(SettingsError) as err:
                load_settings(dev_values(**{name: "not+valid+either", "sshPublicKey": None}))
            assert "not+valid+either" not in str(err.value)
