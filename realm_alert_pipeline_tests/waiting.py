"""Waiting on a condition with a deadline: the one way tests wait for work done elsewhere."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
POLL_INTERVAL_S = 0.02


def wait_until(condition: Callable[[], T], *, timeout: float, what: str, poll: float = POLL_INTERVAL_S) -> T:
    """The first truthy value of `condition()`; AssertionError naming `what` once `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)
