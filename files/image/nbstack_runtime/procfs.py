"""The one reader of /proc: process states, parents, start times and command lines.

The health check asks whether the Jupyter process still lives; the idle
watcher asks which terminal shells have a command running. Both read only
local files, so neither depends on Jupyter answering HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessStat:
    """The fields of /proc/<pid>/stat the runtime uses."""

    state: str  # R, S, D, T, Z, X, ...
    ppid: int
    #: Start time in clock ticks after boot, as written: told apart, never computed with.
    start_time: str


def _parse_stat(raw: str) -> ProcessStat:
    # The command name (field 2) is in parentheses and may hold spaces or ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return ProcessStat(state=fields[0], ppid=int(fields[1]), start_time=fields[19])


def stat(pid: int) -> ProcessStat | None:
    """State, parent and start time of `pid`, or None when there is no such process."""
    try:
        return _parse_stat((PROC / str(pid) / "stat").read_text())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, cmdline) of every process we can see (cmdline's NULs as spaces)."""
    table: dict[int, tuple[int, str]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # exited while we looked
        table[int(entry.name)] = (_parse_stat(raw).ppid, cmdline)
    return table
