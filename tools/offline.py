"""Run the Pulumi program offline under mocks and record what the engine would see.

The program (`__main__.py`) runs unchanged; a recording mock monitor keeps every
registration: type, name, parent, inputs and outputs with their camelCase property names
and which values are secrets.
"""

from __future__ import annotations

import asyncio
import runpy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_in_stack

from core.settings import NAMESPACE
from tools.mocks import CloudMocks
from tools.stackfile import ROOT, StackConfig

SECRET_SIG = "4dabf18193072939515e22adb298388d"  # noqa: S105 - Pulumi wire format marker
SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105 - Pulumi wire format marker
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
MASK = "[secret]"


class Secret:
    """A recorded value that was a Pulumi secret."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __repr__(self) -> str:
        return "Secret([secret])"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.value == self.value


def _decode(value: Any) -> Any:
    """Protobuf struct (as dict) -> python, secrets wrapped in `Secret`."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE:
            return Secret(_decode(value.get("value")))
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def reveal(value: Any, show_secrets: bool) -> Any:
    """Plain JSON-able value: secrets unwrapped, or masked as "[secret]"."""
    if isinstance(value, Secret):
        return reveal(value.value, show_secrets) if show_secrets else MASK
    if isinstance(value, dict):
        return {k: reveal(v, show_secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v, show_secrets) for v in value]
    return value


def is_secret(value: Any) -> bool:
    return isinstance(value, Secret)


@dataclass
class Resource:
    urn: str
    type: str
    name: str
    id: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    depends_on: list[str] = field(default_factory=list)
    # Resource options as the engine receives them (replaceOnChanges, ignoreChanges, ...).
    options: dict[str, Any] = field(default_factory=dict)

    def input(self, key: str) -> Any:
        """An input's value, secret or not."""
        v = self.inputs.get(key)
        return v.value if isinstance(v, Secret) else v

    def output(self, key: str) -> Any:
        v = self.outputs.get(key)
        return v.value if isinstance(v, Secret) else v

    def to_json(self, show_secrets: bool) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "id": self.id,
            "parent": self.parent,
            "inputs": reveal(self.inputs, show_secrets),
            "outputs": reveal(self.outputs, show_secrets),
        }


@dataclass
class Plan:
    stack: str
    resources: list[Resource]
    outputs: dict[str, Any]
    warnings: list[str]

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> Resource:
        found = self.of_type(type_)
        if len(found) != 1:
            raise LookupError(f"expected one {type_}, found {len(found)}")
        return found[0]

    def by_urn(self, urn: str) -> Resource:
        return next(r for r in self.resources if r.urn == urn)

    def to_json(self, show_secrets: bool = False) -> dict[str, Any]:
        return {
            "resources": [r.to_json(show_secrets) for r in self.resources],
            "outputs": reveal(self.outputs, show_secrets),
        }


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, keeping each registration as the engine would receive it."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.recorded: list[Resource] = []
        self.stack_outputs: dict[str, Any] = {}
        self.stack_urn = ""

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        inputs = _decode(json_format.MessageToDict(request.object))
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urn = response.urn
            self.recorded = [r for r in self.recorded if r.type != request.type]
            self.recorded.insert(0, Resource(response.urn, request.type, request.name, "", "", False, {}, {}))
            return response
        outputs = _decode(json_format.MessageToDict(response.object)) if response.object else {}
        secret_outputs = set(request.additionalSecretOutputs)
        for key in list(outputs):
            if not is_secret(outputs[key]) and (key in secret_outputs or is_secret(inputs.get(key))):
                outputs[key] = Secret(outputs[key])
        self.recorded.append(
            Resource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                id=response.id if request.custom else "",
                parent=request.parent,
                custom=request.custom,
                inputs=inputs if request.custom else {},
                outputs=outputs if request.custom else {},
                depends_on=list(request.dependencies),
                options={
                    "replaceOnChanges": list(request.replaceOnChanges),
                    "ignoreChanges": list(request.ignoreChanges),
                    "deleteBeforeReplace": request.deleteBeforeReplace,
                    "additionalSecretOutputs": sorted(secret_outputs),
                    # the names this resource had before (pulumi.Alias(name=...)): no replacement
                    "aliasNames": sorted(a.spec.name for a in request.aliases if a.HasField("spec") and a.spec.name),
                },
            )
        )
        return response

    def RegisterResourceOutputs(self, request):  # noqa: N802 - gRPC method name
        if request.urn == self.stack_urn:
            self.stack_outputs = _decode(json_format.MessageToDict(request.outputs))
        return super().RegisterResourceOutputs(request)


def run(stack: StackConfig, program: Callable[[], Any] | None = None, mocks: CloudMocks | None = None) -> Plan:
    """Run `__main__.py` (or `program`, which may return an awaitable) for this stack's
    config under the mocks (the project's own unless given), and return what was registered."""
    mocks = mocks or CloudMocks()
    monitor = RecordingMonitor(mocks)
    # Everything Pulumi creates (futures of the root stack included) must live on this loop.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    pulumi.runtime.set_all_config(stack.engine_values(), sorted(stack.secret_keys))
    # Reset between runs, as Pulumi's own test harness does; the signature only admits a Resource.
    pulumi_settings.set_root_resource(None)  # type: ignore[arg-type]
    warnings: list[str] = []
    pulumi.runtime.set_mocks(mocks, project=NAMESPACE, stack=stack.name, preview=False, monitor=monitor)
    pulumi_settings.set_root_resource(None)  # type: ignore[arg-type]  # set_mocks registered one: clear it too
    engine = pulumi_settings.SETTINGS.engine
    original_log = engine.Log

    def log(request):  # keep warnings for the caller, as the CLI would show them
        if request.severity >= 2:  # warning and above
            warnings.append(request.message)
        return original_log(request)

    engine.Log = log
    if program is None:
        path = str(ROOT / "__main__.py")

        def program() -> None:
            runpy.run_path(path, run_name="__main__")

    try:
        loop.run_until_complete(run_in_stack(program))
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    return Plan(
        stack=stack.name, resources=_ordered(monitor.recorded), outputs=monitor.stack_outputs, warnings=warnings
    )


def _ordered(resources: list[Resource]) -> list[Resource]:
    """Registration order depends on the event loop; sort by depth, then URN, for stable plans."""
    parent = {r.urn: r.parent for r in resources}

    def depth(urn: str) -> int:
        d = 0
        while parent.get(urn):
            urn, d = parent[urn], d + 1
        return d

    return sorted(resources, key=lambda r: (depth(r.urn), r.urn))
