"""The health check: is the Jupyter server process alive? Answered from /proc, never over Jupyter's HTTP.

Jupyter can be too busy to answer (a kernel message storm, a huge notebook
save) or even stopped by a debugger; the target group must not kill the task
for that. The server extension writes a pid file at load time (with the
process start time, so a reused pid is told apart); the sidecar looks the
process up in /proc:

- healthy while the process exists in any state but zombie/dead (running,
  sleeping, disk wait, stopped by SIGSTOP);
- not healthy before the pid file exists (not started yet) and once the
  process has exited (gone, zombie, or the pid reused by another process).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import procfs
from .privatefiles import write_private

#: /proc states of a process that has exited but not been reaped (or is being).
EXITED_STATES = frozenset({"Z", "X", "x"})


def write_pid_file(path: Path, pid: int | None = None) -> None:
    """Record `pid` (default: this process) and its start time for the sidecar, through write_private."""
    pid = os.getpid() if pid is None else pid
    found = procfs.stat(pid)
    write_private(path, f"{pid} {found.start_time if found else None}\n")


@dataclass(frozen=True)
class Status:
    """What the check found; the sidecar answers only `healthy` (as its status code) and logs the reason."""

    healthy: bool
    reason: str
    pid: int | None = None
    state: str | None = None


def check(pid_file: Path) -> Status:
    """Is the process named in `pid_file` alive? Reads only local files."""
    try:
        fields = pid_file.read_text().split()
        pid, started = int(fields[0]), fields[1]
    except FileNotFoundError:
        return Status(False, "not started")
    except (ValueError, IndexError):
        return Status(False, "unreadable pid file")
    found = procfs.stat(pid)
    if found is None:
        return Status(False, "exited", pid)
    if found.start_time != started:
        return Status(False, "exited (pid reused)", pid, found.state)
    if found.state in EXITED_STATES:
        return Status(False, "exited", pid, found.state)
    return Status(True, "alive", pid, found.state)
