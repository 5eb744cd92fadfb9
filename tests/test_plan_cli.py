"""`python -m tools.plan`: the offline plan as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.settings import KEYS
from userdata.cloud_config import decode_user_data

ROOT = Path(__file__).resolve().parent.parent


def plan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.plan", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def stack_file(tmp_path: Path, **config) -> Path:
    doc = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    for key, value in config.items():
        full = key if ":" in key else f"aws2aliyun-vpc:{key}"
        if value is None:
            doc["config"].pop(full, None)
        else:
            doc["config"][full] = value
    path = tmp_path / "Pulumi.test.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_dev_stack_prints_the_tree_and_outputs():
    out = plan("--stack", "dev")
    assert out.returncode == 0, out.stderr
    assert "aws2aliyun:index:VpnLink  link" in out.stdout
    assert "└─ " in out.stdout and "alicloud:ecs/instance:Instance  link-gateway" in out.stdout
    assert "tunnel1PresharedKey" in out.stdout and "[secret]" in out.stdout


def test_json_masks_secrets_unless_asked(tmp_path):
    masked, shown = tmp_path / "masked.json", tmp_path / "shown.json"
    assert plan("--stack", "dev", "--quiet", "--json", str(masked)).returncode == 0
    assert plan("--stack", "dev", "--quiet", "--json", str(shown), "--show-secrets").returncode == 0
    m, s = json.loads(masked.read_text()), json.loads(shown.read_text())
    assert set(m) == {"resources", "outputs"}
    for r in m["resources"]:
        assert set(r) == {"urn", "type", "name", "id", "parent", "inputs", "outputs"}
    ecs_m = next(r for r in m["resources"] if r["type"] == "alicloud:ecs/instance:Instance")
    ecs_s = next(r for r in s["resources"] if r["type"] == "alicloud:ecs/instance:Instance")
    assert ecs_m["inputs"]["userData"] == "[secret]"
    assert decode_user_data(ecs_s["inputs"]["userData"]).startswith("#cloud-config\n")
    assert m["outputs"]["tunnel1PresharedKey"] == "[secret]"
    psk = s["outputs"]["tunnel1PresharedKey"]
    assert psk != "[secret]" and psk not in masked.read_text()
    vpn = next(r for r in s["resources"] if r["type"] == "aws:ec2/vpnConnection:VpnConnection")
    assert vpn["outputs"]["tunnel1Address"].startswith("192.0.2.")
    eip = next(r for r in s["resources"] if r["type"] == "alicloud:ecs/eipAddress:EipAddress")
    assert eip["outputs"]["ipAddress"].startswith("198.51.100.")


@pytest.mark.parametrize(
    ("config", "keys"),
    [
        ({"awsVpcCidr": "10.0.0.0/33"}, ["awsVpcCidr"]),
        ({"aliVpcCidr": "10.10.0.0/16", "aliVswitchCidr": "10.10.1.0/24"}, ["aliVpcCidr"]),
        ({"tunnel1InsideCidr": "169.254.5.0/30", "dpdTimeoutSeconds": 10}, ["tunnel1InsideCidr", "dpdTimeoutSeconds"]),
        ({"sshAllowedCidrs": ["0.0.0.0/0"]}, ["sshAllowedCidrs[0]"]),
        ({"cryptoProfile": "fast", "ecsImage": "centos"}, ["cryptoProfile", "ecsImage"]),
    ],
)
def test_bad_settings_exit_2_naming_every_key_without_traceback(tmp_path, config, keys):
    out = plan("--config-file", str(stack_file(tmp_path, **config)))
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ") and "invalid settings" not in line]
    for key in keys:
        assert any(line.startswith(f"error: {key}:") for line in errors), out.stderr
    assert "VpnLink" not in out.stdout, "nothing is planned"


def test_missing_stack_file_is_a_clean_error(tmp_path):
    out = plan("--config-file", str(tmp_path / "Pulumi.nope.yaml"))
    assert out.returncode == 2 and "no such stack file" in out.stderr and "Traceback" not in out.stderr


def test_encrypted_values_are_placeholders_not_failures(tmp_path):
    path = stack_file(tmp_path, tunnel1PresharedKey={"secure": "v1:AAAAbbbb"})
    out = plan("--config-file", str(path), "--quiet", "--json", "-")
    assert out.returncode == 0, out.stderr
    assert "tunnel1PresharedKey is encrypted" in out.stderr


def test_pulumi_yaml_schema_matches_the_settings_keys():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    from tools import schema

    assert (ROOT / "Pulumi.yaml").read_text() == schema.render(), "regenerate: python -m tools.schema --write"
    assert project["name"] == "aws2aliyun-vpc"
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}
    schema = project["config"]
    assert list(schema) == [k.name for k in KEYS]
    for k in KEYS:
        entry = schema[k.name]
        assert entry["type"] == k.type and entry["default"] == k.default, k.name
        assert entry["description"] == k.description, k.name


def test_stack_files_hold_no_plaintext_secret():
    for path in ROOT.glob("Pulumi.*.yaml"):
        config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
        for key, value in config.items():
            if key.endswith(("PresharedKey", "PrivateKey")):
                assert isinstance(value, dict) and "secure" in value, f"{path.name}: {key} must be set with --secret"
