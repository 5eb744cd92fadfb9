"""components.program reads stack config through Pulumi's public config functions, from
`pulumi up`'s environment and from `set_all_config` (the offline mocks) alike."""

from __future__ import annotations

import inspect
import json

import pulumi
import pytest
from pulumi import runtime

from components import program
from tests.conftest import dev_values

PSK = "aws2aliyun-vpc:tunnel1PresharedKey"


@pytest.fixture
def no_config(monkeypatch):
    for name in ("PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS"):
        monkeypatch.delenv(name, raising=False)
    runtime.set_all_config({}, [])
    yield
    runtime.set_all_config({}, [])


def as_engine_env(monkeypatch, values: dict, secret_keys: list[str]) -> None:
    """As the language host hands config to `pulumi up`'s program."""
    monkeypatch.setenv(
        "PULUMI_CONFIG", json.dumps({k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()})
    )
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(secret_keys))


def test_engine_environment_is_read_with_secrets(no_config, monkeypatch):
    values = dev_values(tunnel1PresharedKey="Abc.defgh_1234")
    as_engine_env(monkeypatch, {**values, "aws:skipMetadataApiCheck": "false"}, [PSK])
    raw, secret_keys = program.stack_config()
    assert raw["aws2aliyun-vpc:awsVpcCidr"] == "10.10.0.0/16" and raw[PSK] == "Abc.defgh_1234"
    assert raw["aws:region"] == values["aws:region"] and "aws:skipMetadataApiCheck" in raw
    assert secret_keys == {PSK}
    assert program.settings_or_error().notes == ()


def test_set_all_config_is_read_with_secrets(no_config):
    values = {
        k: v if isinstance(v, str) else json.dumps(v)
        for k, v in dev_values(tunnel1PresharedKey="Abc.defgh_1234").items()
    }
    runtime.set_all_config(values, [PSK])
    raw, secret_keys = program.stack_config()
    assert raw[PSK] == "Abc.defgh_1234" and raw["alicloud:region"] == values["alicloud:region"]
    assert secret_keys == {PSK}
    assert program.settings_or_error().tunnel_preshared_keys[0] == "Abc.defgh_1234"


def test_a_mistyped_key_under_pulumi_up_is_a_run_error_naming_it(no_config, monkeypatch):
    as_engine_env(monkeypatch, {**dev_values(), "aws2aliyun-vpc:aliVpcCdir": "172.16.0.0/16"}, [])
    with pytest.raises(pulumi.RunError) as err:
        program.settings_or_error()
    assert "aws2aliyun-vpc:aliVpcCdir: is not a setting of this project (did you mean aliVpcCidr?)" in str(err.value)


def test_plaintext_secret_in_the_environment_is_noted(no_config, monkeypatch):
    as_engine_env(monkeypatch, dev_values(tunnel1PresharedKey="Abc.defgh_1234"), [])
    assert program.settings_or_error().notes == (
        "tunnel1PresharedKey is set in plain text; use `pulumi config set --secret tunnel1PresharedKey`",
    )


def test_a_mistyped_key_under_the_mocks_is_a_run_error_naming_it(no_config):
    values = {**dev_values(), "aws2aliyun-vpc:aliVpcCdir": "172.16.0.0/16"}
    runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}, [])
    with pytest.raises(pulumi.RunError) as err:
        program.settings_or_error()
    assert "aws2aliyun-vpc:aliVpcCdir: is not a setting of this project (did you mean aliVpcCidr?)" in str(err.value)


def test_values_and_secrecy_come_from_public_functions():
    source = inspect.getsource(program)
    assert "_SECRET_KEYS" not in source and "runtime_config.CONFIG" not in source
    # The one non-public read: the names set_all_config was given, which no public function lists.
    assert source.count('"CONFIG"') == 1
