"""python -m tools.schema [--write | --check]: the files generated from the settings' declarations.

Each config key is declared once, as a field of `core.settings.Settings` (its `KEYS`).
From those this writes Pulumi.yaml (the `config:` schema: types, defaults, descriptions),
README.md's configuration table (between the config-table markers) and
components/args.py (`VpnLinkArgs`, the component's typed inputs, from which Pulumi infers
the package schema other languages use), so none can drift; tests check all three are equal
to what this generates.

Without options it prints Pulumi.yaml; `--write` rewrites both files; `--check` exits 1
naming the files that differ.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from core.settings import KEYS, KeySpec
from tools.stackfile import ROOT

HEADER = "# Project file. `config:` is generated from core/settings.py by `python -m tools.schema --write`.\n"
TABLE_START = "<!-- config-table:start -->"
TABLE_END = "<!-- config-table:end -->"
TABLE_NOTE = "<!-- Generated from core/settings.py by `python -m tools.schema --write`: edit the keys there. -->"


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
    """Pulumi.yaml."""
    return HEADER + yaml.safe_dump(project(), sort_keys=False, width=120)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(k: KeySpec) -> str:
    if k.default == "":
        return "(empty)"
    return f"`{json.dumps(k.default) if not isinstance(k.default, str) else k.default}`"


def config_table() -> str:
    """README's configuration table, markers included."""
    rows = [TABLE_START, TABLE_NOTE, "", "| key | default | meaning |", "| --- | --- | --- |"]
    rows += [f"| `{k.name}` | {_default(k)} | {_cell(k.description)} |" for k in KEYS]
    return "\n".join([*rows, "", TABLE_END])


def with_config_table(readme: str) -> str:
    """`readme` with the text between the markers (markers included) regenerated."""
    start, end = readme.find(TABLE_START), readme.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"README.md needs the markers {TABLE_START} and {TABLE_END} around the configuration table")
    return readme[:start] + config_table() + readme[end + len(TABLE_END) :]


ARGS_HEADER = '''"""`VpnLinkArgs`: the inputs of `aws2aliyun:index:VpnLink`, the component's public contract.

Generated from core/settings.py by `python -m tools.schema --write`: edit the keys there. One
field per stack config key, in snake_case (the package schema, and so TypeScript, Go, C# and
YAML, name it as the key: `awsCidrs`), with the key's description and default. Every field is
optional; `VpnLink` validates them all at once when it is constructed.

Ids and secrets are `pulumi.Input`s: pass Outputs of your own resources (an existing VPC's id,
route table ids, a Transit Gateway id, a PSK from a secret store). CIDRs, counts and choices
are plain values: they decide which resources exist (a route per prefix) and are checked
against each other (no overlaps) before anything is created, so they must be known when the
program runs.
"""

# Not `from __future__ import annotations`: Pulumi's schema inference reads these types.
from collections.abc import Sequence
from typing import TypedDict

import pulumi


class VpnLinkArgs(TypedDict, total=False):
    """The inputs of a VpnLink: every key of the stack config, each optional."""
'''


def _arg_type(k: KeySpec) -> str:
    scalar = {"string": "str", "integer": "int", "boolean": "bool"}
    if k.type == "array":
        return "Sequence[pulumi.Input[str]]" if k.items_deferrable else "Sequence[str]"
    return f"pulumi.Input[{scalar[k.type]}]" if k.deferrable else scalar[k.type]


def args_module() -> str:
    """components/args.py."""
    lines = [ARGS_HEADER]
    for k in KEYS:
        doc = k.description + f" Default: {_default(k).replace('`', '')}."
        if k.secret:
            doc += " Secret."
        doc = doc.replace("\\", "\\\\").replace('"""', "'''")
        lines.append(f"    {k.arg}: {_arg_type(k)}")
        lines.append(f'    """{doc}"""')
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def generated(root: Path = ROOT) -> dict[Path, str]:
    """Each generated file and the text it must hold."""
    readme = root / "README.md"
    return {
        root / "Pulumi.yaml": render(),
        readme: with_config_table(readme.read_text()),
        root / "components" / "args.py": args_module(),
    }


def main(argv: list[str]) -> int:
    if "--write" in argv:
        for path, text in generated().items():
            path.write_text(text)
        return 0
    if "--check" in argv:
        stale = [path.name for path, text in generated().items() if path.read_text() != text]
        for name in stale:
            print(f"{name} is out of date: run python -m tools.schema --write", file=sys.stderr)
        return 1 if stale else 0
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
