"""Reading Pulumi stack files (`Pulumi.<stack>.yaml`) the way the engine hands them over."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.settings import NAMESPACE

ROOT = Path(__file__).resolve().parent.parent

# Encrypted (`secure:`) values cannot be decrypted offline; the plan stands in a value
# that passes validation and stays a secret.
SECURE_PLACEHOLDERS = {
    f"{NAMESPACE}:tunnel1PresharedKey": "offline.placeholder.tunnel1_psk",
    f"{NAMESPACE}:tunnel2PresharedKey": "offline.placeholder.tunnel2_psk",
    f"{NAMESPACE}:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\noffline-placeholder\n-----END OPENSSH PRIVATE KEY-----\n",
}


class StackFileError(ValueError):
    pass


@dataclass
class StackConfig:
    """A stack's config as the engine passes it to the program (structured values as JSON)."""

    name: str
    path: Path
    values: dict[str, Any]
    secret_keys: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def engine_values(self) -> dict[str, str]:
        """Values as strings, structured ones JSON-encoded, as PULUMI_CONFIG carries them."""
        out = {}
        for k, v in self.values.items():
            if isinstance(v, str):
                out[k] = v
            else:
                out[k] = json.dumps(v)
        return out


def stack_path(stack: str) -> Path:
    return ROOT / f"Pulumi.{stack}.yaml"


def load(path: Path, name: str | None = None) -> StackConfig:
    """Parse a stack file; `secure:` values become placeholders marked secret."""
    if name is None:
        base = path.name
        name = (
            base[len("Pulumi.") : -len(".yaml")] if base.startswith("Pulumi.") and base.endswith(".yaml") else path.stem
        )
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise StackFileError(f"{path}: no such stack file") from None
    except yaml.YAMLError as e:
        raise StackFileError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise StackFileError(f"{path}: expected a mapping with a `config:` key")
    config = doc.get("config") or {}
    if not isinstance(config, dict):
        raise StackFileError(f"{path}: `config:` must be a mapping of keys to values")
    result = StackConfig(name=name, path=path, values={})
    for key, value in config.items():
        full = key if ":" in str(key) else f"{NAMESPACE}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            result.secret_keys.add(full)
            placeholder = SECURE_PLACEHOLDERS.get(full)
            if placeholder is None:
                result.notes.append(f"{full} is encrypted and cannot be read offline; left unset")
                continue
            result.notes.append(f"{full} is encrypted; the offline plan uses a placeholder")
            value = placeholder
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            value = str(value)
        result.values[full] = value
    return result
