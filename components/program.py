"""The program `__main__.py` runs: read stack config, validate it, build one VpnLink, export.

A thin caller of the component: each config key becomes the VpnLinkArgs field of the same
name (snake_case), secrets as secret Outputs; the component validates them again, with the
same rules (core.settings), as it does for any other program's arguments."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi import runtime
from pulumi.runtime import config as runtime_config

from components.args import VpnLinkArgs
from components.link import VpnLink
from core.settings import KEYS, NAMESPACE, REQUIRED_PROVIDER_KEYS, Settings, SettingsError, load_settings

LINK_NAME = "link"


def _given_names() -> list[str]:
    """The names of the config keys the engine passed, so that `load_settings` can name a
    mistyped one. `pulumi up` passes its config in the environment (`get_config_env`);
    `set_all_config` (the offline mocks, Automation API inline programs) keeps it in a map
    that Pulumi 3.272 has no public listing of, so only the names are taken from that map
    (and none if a later Pulumi drops it); the values are read with `get_config`."""
    passed = getattr(runtime_config, "CONFIG", None)
    return [*runtime.get_config_env(), *(passed.get() if passed is not None else ())]


def stack_config() -> tuple[dict[str, Any], set[str]]:
    """Every config value the engine gave this program, and which of them are secrets.

    Values and secrecy come from Pulumi's public config functions, wherever the engine put
    them (`pulumi up`'s environment, or `set_all_config`): the declared keys, the
    providers' regions and every other key the engine passed.
    """
    declared = [f"{NAMESPACE}:{k.name}" for k in KEYS]
    names = dict.fromkeys([*_given_names(), *REQUIRED_PROVIDER_KEYS, *declared])
    raw = {name: value for name in names if (value := runtime.get_config(name)) is not None}
    secret_env = set(runtime.get_config_secret_keys_env())
    secret_keys = {name for name in raw if name in secret_env or runtime.is_config_secret(name)}
    return raw, secret_keys


def settings_or_error() -> Settings:
    raw, secret_keys = stack_config()
    try:
        return load_settings(raw, secret_keys)
    except SettingsError as e:
        # RunError: the engine prints the message alone, no traceback.
        raise pulumi.RunError(str(e)) from None


def link_args(raw: dict[str, Any], secret_keys: set[str]) -> VpnLinkArgs:
    """The stack's config as VpnLink arguments: every project key that is set, by its field
    name; a secret key's value as a secret Output."""
    args: dict[str, Any] = {}
    for k in KEYS:
        full = f"{NAMESPACE}:{k.name}"
        if full in raw:
            value = raw[full]
            secret = (full in secret_keys or k.secret) and k.deferrable
            args[k.arg] = pulumi.Output.secret(value) if secret else value
    return VpnLinkArgs(**args)  # type: ignore[typeddict-item]  # built from KEYS, the fields' own source


def main() -> VpnLink:
    settings = settings_or_error()
    for note in settings.notes:
        pulumi.log.warn(note)
    raw, secret_keys = stack_config()
    link = VpnLink(LINK_NAME, link_args(raw, secret_keys))
    for key, value in link.outputs.items():
        pulumi.export(key, value)
    return link
