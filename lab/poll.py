"""The lab's one polling helper: ask until an answer comes or the deadline passes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(
    probe: Callable[[], T],
    timeout: float,
    interval: float = 2.0,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T | None:
    """Call `probe` every `interval` seconds until it returns something truthy (returned)
    or `timeout` seconds have passed (None). It is always called at least once."""
    deadline = clock() + timeout
    while True:
        answer = probe()
        if answer:
            return answer
        if clock() + interval > deadline:
            return None
        sleep(interval)
