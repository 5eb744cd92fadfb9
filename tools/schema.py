"""python -m tools.schema [--write]: the `config:` schema of Pulumi.yaml, from the settings' KEYS.

Pulumi.yaml's schema (types, defaults, descriptions) is generated from
components/settings.py so the two cannot drift; a test checks they are equal.
"""

from __future__ import annotations

import sys

import yaml

from components.settings import KEYS
from tools.stackfile import ROOT

HEADER = "# Project file. `config:` is generated from components/settings.py by `python -m tools.schema --write`.\n"


def project() -> dict:
    doc: dict = {
        "name": "aws2aliyun-vpc",
        "description": "A site-to-site IPsec VPN between an AWS VPC and an Alibaba Cloud VPC: AWS VPN connection "
        "with two tunnels, a strongSwan ECS behind an EIP on Alibaba Cloud.",
        "runtime": {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}},
        "config": {},
    }
    for k in KEYS:
        entry: dict = {"type": k.type}
        if k.type == "array":
            entry["items"] = {"type": "string"}
        entry["description"] = k.description
        entry["default"] = k.default
        doc["config"][k.name] = entry
    return doc


def render() -> str:
    return HEADER + yaml.safe_dump(project(), sort_keys=False, width=120)


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        (ROOT / "Pulumi.yaml").write_text(render())
    else:
        sys.stdout.write(render())
