"""Polling and loopback ports: the two things every local server needs."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, what: str = "a condition", interval: float = 0.05) -> T:
    """Call `predicate` until it returns something truthy, and return that.

    Local servers answer within a second or two, so a short interval keeps the
    tests and the benches' timings close to the real moment. The predicate may
    raise to give up early (a server that exited will never answer).

    Raises TimeoutError naming `what` after `timeout` seconds.
    """
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now.

    The kernel picks it; another process could take it before the caller
    binds, which on a test machine is rare enough to accept.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
