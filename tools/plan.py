"""python -m tools.plan [--stack NAME | --config-file PATH] [--json PATH] [--show-secrets]

Runs the program offline under Pulumi mocks: validates the stack's settings, prints the
resource tree and the stack outputs, and optionally writes the plan as JSON. Secrets are
masked as "[secret]" unless --show-secrets. Invalid settings: exit 2, one line per problem.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from core.settings import SettingsError, load_settings
from tools import offline, stackfile

EXIT_INVALID = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m tools.plan", description=__doc__.split("\n\n")[1])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--stack", default=None, help="stack name: reads Pulumi.<NAME>.yaml (default: dev)")
    src.add_argument("--config-file", type=Path, help="a stack file to plan instead")
    ap.add_argument("--json", type=Path, help="write the plan as JSON to this path ('-' for stdout)")
    ap.add_argument("--show-secrets", action="store_true", help="show secret values instead of [secret]")
    ap.add_argument("--quiet", action="store_true", help="no tree, only problems and the JSON")
    return ap.parse_args(argv)


def tree(plan: offline.Plan, show_secrets: bool) -> str:
    children: dict[str, list[offline.Resource]] = {}
    for r in plan.resources:
        children.setdefault(r.parent, []).append(r)
    lines: list[str] = []

    def walk(r: offline.Resource, prefix: str, last: bool, root: bool) -> None:
        ident = f"  {r.id}" if r.id else ""
        branch = "" if root else ("└─ " if last else "├─ ")
        lines.append(f"{prefix}{branch}{r.type}  {r.name}{ident}")
        kids = children.get(r.urn, [])
        for i, k in enumerate(kids):
            walk(k, prefix + ("" if root else ("   " if last else "│  ")), i == len(kids) - 1, False)

    for root in children.get("", []):
        walk(root, "", True, True)
    lines.append("")
    lines.append("Outputs:")
    width = max((len(k) for k in plan.outputs), default=0)
    for key, value in sorted(plan.outputs.items()):
        shown = offline.reveal(value, show_secrets)
        lines.append(f"  {key.ljust(width)}  {shown}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    path = args.config_file or stackfile.stack_path(args.stack or "dev")
    started = time.monotonic()
    try:
        stack = stackfile.load(path, name=args.stack)
    except stackfile.StackFileError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INVALID
    try:
        load_settings(stack.values, stack.secret_keys)
    except SettingsError as e:
        print(f"error: {path.name}: invalid settings, nothing planned:", file=sys.stderr)
        for problem in e.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_INVALID
    for note in stack.notes:
        print(f"note: {note}", file=sys.stderr)

    plan = offline.run(stack)
    elapsed = time.monotonic() - started
    for warning in plan.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not args.quiet:
        custom = sum(1 for r in plan.resources if r.custom)
        print(f"aws2aliyun-vpc offline plan, stack {stack.name} ({path.name}): {custom} resources, {elapsed:.1f}s")
        print(tree(plan, args.show_secrets))
    if args.json:
        text = json.dumps(plan.to_json(args.show_secrets), indent=2, sort_keys=True) + "\n"
        if str(args.json) == "-":
            sys.stdout.write(text)
        else:
            args.json.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
