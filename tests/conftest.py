"""Shared fixtures: stack configs and offline plans under the project's mocks."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

from core.settings import NAMESPACE
from tools import offline, stackfile

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT / "Pulumi.dev.yaml"


def dev_values(**overrides: Any) -> dict[str, Any]:
    """The dev stack's raw config with project keys overridden (None removes a key)."""
    values = dict(stackfile.load(DEV).values)
    for key, value in overrides.items():
        full = key if ":" in key else f"{NAMESPACE}:{key}"
        if value is None:
            values.pop(full, None)
        else:
            values[full] = value
    return values


def stack_with(name: str = "dev", secret_keys: tuple[str, ...] = (), **overrides: Any) -> stackfile.StackConfig:
    return stackfile.StackConfig(name=name, path=DEV, values=dev_values(**overrides), secret_keys=set(secret_keys))


@functools.lru_cache(maxsize=16)
def _plan_cached(items: tuple[tuple[str, Any], ...]) -> offline.Plan:
    overrides = {k: (list(v) if isinstance(v, tuple) else v) for k, v in items}
    return offline.run(stack_with(**overrides))


def plan_for(**overrides: Any) -> offline.Plan:
    """The offline plan of the dev stack with overrides (cached: plans are deterministic)."""
    items = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in overrides.items()))
    return _plan_cached(items)


@pytest.fixture(scope="session")
def dev_plan() -> offline.Plan:
    return offline.run(stackfile.load(DEV))


@pytest.hookimpl(trylast=True)  # after -m/-k have deselected
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """The lab tests run last; the lab runs they wait for start now (tests/labjobs.py orders
    them), so the quick tests run beside the lab's first, unmeasured, boots."""
    lab = [i for i in items if i.get_closest_marker("lab")]
    if not lab or config.option.collectonly:
        return
    items[:] = [i for i in items if not i.get_closest_marker("lab")] + lab
    from tests import test_lab

    test_lab.LAB_JOBS.start({n for n in map(test_lab.job_name, lab) if n})
