"""The idle policy, pure: given one look at the server and the time, stop or not, and why.

Idle means no busy kernel or terminal and no activity for the idle timeout
(0: never). The max lifetime (0: off) stops the server that long after it
started, busy or not. No I/O here, so every rule is testable with a clock
and a dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

#: Kernel states that mean "working on something". Not "starting": Jupyter
#: reports a kernel nobody has connected to yet as starting indefinitely.
BUSY_KERNEL_STATES = frozenset({"busy"})


def iso(moment: datetime) -> str:
    """UTC to the second with a Z: the form of the stop reasons and of the service's tags."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Activity:
    """One look at the server: what the REST API (and /proc) said."""

    started: datetime
    last_activity: datetime
    connections: int = 0
    busy_kernels: int = 0
    kernels: int = 0
    busy_terminals: int = 0
    terminals: int = 0

    @property
    def busy(self) -> bool:
        return self.busy_kernels > 0 or self.busy_terminals > 0


@dataclass(frozen=True)
class Decision:
    """Whether to stop, and the reason a person reads in the log and in status.yml."""

    stop: bool
    reason: str
    idle_seconds: float = 0.0


def counted(count: float, noun: str) -> str:
    """`count` and `noun`, singular only for exactly one: "1 kernel", "0 kernels"."""
    return f"{count:g} {noun if count == 1 else noun + 's'}"


def decide(activity: Activity, now: datetime, idle_timeout_minutes: float, max_lifetime_hours: float) -> Decision:
    """Whether to stop now, and why (the whole policy is here)."""
    if max_lifetime_hours > 0:
        lived = now - activity.started
        if lived >= timedelta(hours=max_lifetime_hours):
            return Decision(True, f"max lifetime of {max_lifetime_hours:g} h reached (started {iso(activity.started)})")
    if activity.busy:
        return Decision(
            False,
            f"busy: {activity.busy_kernels} of {counted(activity.kernels, 'kernel')}, "
            f"{activity.busy_terminals} of {counted(activity.terminals, 'terminal')}",
        )
    idle = max(0.0, (now - activity.last_activity).total_seconds())
    if idle_timeout_minutes <= 0:
        return Decision(False, "idle stop is off", idle)
    if idle >= idle_timeout_minutes * 60:
        return Decision(
            True,
            f"idle for {idle / 60:.1f} min (timeout {idle_timeout_minutes:g} min; no busy kernel, "
            f"last activity {iso(activity.last_activity)}, {counted(activity.connections, 'open connection')})",
            idle,
        )
    return Decision(False, f"idle for {idle / 60:.1f} of {idle_timeout_minutes:g} min", idle)
