"""The program `__main__.py` runs: read stack config, validate it, build one VpnLink, export."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from components.link import VpnLink, VpnLinkArgs
from components.settings import Settings, SettingsError, load_settings

LINK_NAME = "link"


def stack_config() -> tuple[dict[str, Any], set[str]]:
    """Every config value the engine gave this program, and which of them are secrets."""
    raw: dict[str, Any] = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_keys = set(runtime_config.get_config_secret_keys_env()) | set(runtime_config._SECRET_KEYS.get())
    return raw, secret_keys


def settings_or_error() -> Settings:
    raw, secret_keys = stack_config()
    try:
        return load_settings(raw, secret_keys)
    except SettingsError as e:
        # RunError: the engine prints the message alone, no traceback.
        raise pulumi.RunError(str(e)) from None


def main() -> VpnLink:
    settings = settings_or_error()
    for note in settings.notes:
        pulumi.log.warn(note)
    link = VpnLink(LINK_NAME, VpnLinkArgs(settings=settings))
    for key, value in link.outputs.items():
        pulumi.export(key, value)
    return link
