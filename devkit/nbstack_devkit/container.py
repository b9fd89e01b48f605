"""The container's process tree on this machine: started in a group of its own, stopped as `docker stop` stops it.

The image runs Jupyter under `tini -g`, which passes `docker stop`'s SIGTERM
to the whole process group (the server, its kernels and terminals, the
health sidecar). Here the container's startup (`nbstack_devkit.start`) runs
in a new session, so that its process group is the container's, and
`stop_process_group` signals it the same way. The local ECS agent and the
image tests use both; the startup bench stops its bare Jupyter the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger("nbstack.container")


def start_container(env: Mapping[str, str], log_path: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Run the container's startup (hooks, secrets unset, exec jupyter lab) with `env`; returns at once.

    Its output goes to `log_path`, as a container's goes to its log driver.
    The returned process is the server itself once start has exec'd it.
    """
    with log_path.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "nbstack_devkit.start"],
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a group of its own, like a container's, for tini -g style signals
        )


def stop_process_group(process: subprocess.Popen[bytes], timeout: float) -> int:
    """What `docker stop` does to a container run with `tini -g`: SIGTERM to the
    whole process group, up to `timeout` seconds, then SIGKILL to whatever is
    left (the sidecar outlives the server). Returns the leader's exit code."""
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("Process group %s did not stop within %s s: SIGKILL", process.pid, timeout)
    _signal_group(process.pid, signal.SIGKILL)
    return process.wait(10)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group has already gone
        os.killpg(pid, sig)
