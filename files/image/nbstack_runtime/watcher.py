"""Idle watcher: stop paying for a notebook server nobody uses, never for a busy one.

Runs in the sidecar (a thread next to the health endpoint). Every
NBSTACK_IDLE_POLL_SECONDS it asks the Jupyter server over its REST API, with
``no_track_activity`` so that asking is not itself activity:

- ``/api/status``: ``last_activity`` (API requests, kernel messages,
  terminal output) and ``connections``;
- ``/api/kernels``: each kernel's ``execution_state``;
- ``/api/terminals``: each terminal's ``last_activity``; a terminal whose shell
  has a command running (a child process, seen in /proc) counts as busy too,
  so a silent ``python train.py`` in a terminal is not stopped.

The policy (nbstack_runtime.policy) decides; once it says stop:

1. autosave runs, as on SIGTERM (nothing unpushed is lost), and its outcome
   is tagged on the service (nbstack:autosave). When the work directory is on
   the instance's disk, a failed save, or paths left out of it, postpone the
   stop to the next poll; on the person's work volume (NBSTACK_WORK_KEPT),
   which outlives the instance, the files stay there and the stop goes on
   (the tag says what was not pushed);
2. the scaler (nbstack_runtime.scaler) takes the auto scaling group to zero;
   the task ends with its instance;
3. once that call has succeeded, the service is tagged with when and why
   (nbstack:stopped-at, nbstack:stop-reason), which status.yml shows.

A failed group call (after the client's own retries) is logged, nothing is
recorded as stopped, the service is marked ``running`` again (its record of
the save must not vouch for work done before the next attempt), and the
stop is tried again at the next poll (decided again first): the server is
never left running while its tags say stopped, and the watcher never gives
up on a stop it decided.

Compute billing stops; the stack, its routing and its secrets stay, and
``up.yml`` starts the group again. While it watches, the watcher also
publishes the last activity as the tag nbstack:last-activity (at most every
PUBLISH_INTERVAL_SECONDS): ``status.yml`` reads it to say "idle for".

Once the server answers, the watcher marks the service ``running <start>``
in nbstack:autosave (autosave.mark; tried at every poll until written), and
an idle stop marks ``stopping <time>`` before its save: a record of a save
never vouches for work made after it, even when ECS started this task by
itself and this stop's own record cannot be written. ``down.yml -e
purge_work=true`` after an idle stop trusts only a record (saved or nothing).

The watcher reads the API with a token from a 0600 file that the jupyter hook
writes; Jupyter accepts it through nbstack_runtime.identity.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from . import procfs
from .autosave import RECORD_TIMEOUT_SECONDS, Result, TagOrder, mark, record
from .contract import LAST_ACTIVITY_TAG, STOP_REASON_TAG, STOPPED_AT_TAG
from .policy import BUSY_KERNEL_STATES, Activity, Decision, decide, iso
from .scaler import AwsScaler, Scaler
from .settings import Settings, why_idle_watcher_off

log = logging.getLogger("nbstack.idle")

#: How often the last activity may be written to the service's tags.
PUBLISH_INTERVAL_SECONDS = 300.0
#: The endpoints the watcher reads (relative to the base URL); its token opens only these.
STATUS_ENDPOINT = "api/status"
KERNELS_ENDPOINT = "api/kernels"
TERMINALS_ENDPOINT = "api/terminals"
WATCHED_ENDPOINTS = (STATUS_ENDPOINT, KERNELS_ENDPOINT, TERMINALS_ENDPOINT)


def parse_time(value: str) -> datetime:
    """Jupyter's ISO timestamps ('...Z' or '+00:00') as aware datetimes."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)


# --- Reading the server --------------------------------------------------------


class JupyterClient:
    """GETs the watched endpoints with the watcher token, never counting as activity."""

    def __init__(self, base: str, token: str, timeout: float = 10.0) -> None:
        self.base = base if base.endswith("/") else base + "/"
        self.token = token
        self.timeout = timeout

    def get(self, endpoint: str) -> Any:
        request = urllib.request.Request(
            f"{self.base}{endpoint}?no_track_activity=1",
            headers={"Authorization": f"token {self.token}", "Accept": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.load(response)

    def activity(self, jupyter_pid: int | None = None) -> Activity:
        status = self.get(STATUS_ENDPOINT)
        kernels = self.get(KERNELS_ENDPOINT)
        try:
            terminals = self.get(TERMINALS_ENDPOINT)
        except urllib.error.HTTPError as error:
            if error.code != 404:  # 404: terminals disabled
                raise
            terminals = []
        moments = [parse_time(status["last_activity"])]
        moments += [parse_time(k["last_activity"]) for k in kernels if k.get("last_activity")]
        moments += [parse_time(t["last_activity"]) for t in terminals if t.get("last_activity")]
        return Activity(
            started=parse_time(status["started"]),
            last_activity=max(moments),
            connections=int(status.get("connections", 0)),
            busy_kernels=sum(1 for k in kernels if k.get("execution_state") in BUSY_KERNEL_STATES),
            kernels=len(kernels),
            busy_terminals=min(len(terminals), busy_terminal_shells(jupyter_pid)) if jupyter_pid else 0,
            terminals=len(terminals),
        )


def busy_terminal_shells(jupyter_pid: int, table: dict[int, tuple[int, str]] | None = None) -> int:
    """Terminal shells (children of the server that are not kernels) with a command running."""
    table = procfs.process_table() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    shells = [pid for pid in children.get(jupyter_pid, []) if "kernel" not in table[pid][1]]
    return sum(1 for shell in shells if children.get(shell))


# --- The loop ------------------------------------------------------------------


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Watcher:
    """The loop: look, decide, and stop at most once."""

    read: Callable[[], Activity]
    scaler: Scaler
    autosave: Callable[[], Result]
    idle_timeout_minutes: float
    max_lifetime_hours: float = 0.0
    poll_seconds: float = 60.0
    clock: Callable[[], datetime] = _utc_now
    #: Seconds the autosave's outcome may take to reach the service's tags.
    record_timeout: float = RECORD_TIMEOUT_SECONDS
    #: The work directory outlives the instance (the person's work volume).
    work_kept: bool = False
    stopped: Decision | None = None
    #: A stop has begun: its own mark and record say more than `running`.
    stopping: bool = False
    _published: tuple[str, float] | None = None
    #: The service says `running` (autosave.mark).
    _marked: bool = False
    #: When the server started (Jupyter's /api/status), from the last poll that read it.
    _started: datetime | None = None
    #: A `running` mark's write still waits for an answer (one at a time).
    _marking: threading.Event = field(default_factory=threading.Event)
    #: The marks and the stop's record, each written whole, none over a later one.
    _tag_order: TagOrder = field(default_factory=TagOrder)

    def check_once(self) -> Decision | None:
        """One poll; returns the decision (None when the server could not be read)."""
        try:
            activity = self.read()
        except (OSError, ValueError, KeyError) as error:
            # Not started yet, restarting, or too busy to answer: never a reason to stop.
            log.info("idle watcher: server not readable (%s); trying again", error)
            return None
        now = self.clock()
        self._started = activity.started
        decision = decide(activity, now, self.idle_timeout_minutes, self.max_lifetime_hours)
        self._publish_activity(now if activity.busy else activity.last_activity)
        if decision.stop:
            self.stop(decision)
        else:
            log.debug("idle watcher: %s", decision.reason)
            if not (self._marked or self.stopping):
                # Tried at every poll until it is written: no record before this server started stands.
                self._mark_running()
        return decision

    def _mark_running(self) -> None:
        """Tag the service `running <start>` (autosave.mark), one write at a time; note whether it landed."""
        self._marked = mark(
            self.scaler,
            "running",
            self._started or self.clock(),
            timeout=self.record_timeout,
            order=self._tag_order,
            in_flight=self._marking,
        )

    def _publish_activity(self, moment: datetime) -> None:
        value = iso(moment)
        if self._published and (
            self._published[0] == value or time.monotonic() - self._published[1] < PUBLISH_INTERVAL_SECONDS
        ):
            return
        try:
            self.scaler.publish({LAST_ACTIVITY_TAG: value})
            self._published = (value, time.monotonic())
        except Exception as error:  # a status detail; never fatal to the watcher
            log.warning("idle watcher: could not publish the last activity: %s", error)
            self._published = (self._published[0] if self._published else "", time.monotonic())

    def stop(self, decision: Decision) -> None:
        """Autosave, record why on the service, then take the capacity to zero."""
        log.warning("STOPPING THE NOTEBOOK SERVER at %s: %s", iso(self.clock()), decision.reason)
        started = time.monotonic()
        # First, so that a record of an earlier stop cannot stand for this one
        # when this one's cannot be written (a purge trusts it).
        self.stopping = True  # this mark, then the record, say more than `running`
        mark(self.scaler, "stopping", self.clock(), timeout=self.record_timeout, order=self._tag_order)
        result = self.autosave()
        log.info("idle stop: autosave %s (%.1f s)", result.status, time.monotonic() - started)
        # Logs a failure; never a reason to keep paying.
        record(result, self.scaler, timeout=self.record_timeout, order=self._tag_order)
        if self.work_kept and (result.status == "failed" or result.left_out):
            # The scale-in takes the instance, not the work volume.
            unpushed = (
                f"failed ({result.detail or 'see the autosave log above'})"
                if result.status == "failed"
                else f"left {len(result.left_out)} path(s) out"
            )
            log.warning("idle stop goes on although the autosave %s: the files stay on the work volume", unpushed)
        elif result.status == "failed":
            # The group's scale-in terminates the instance, and the work
            # directory with it: no stop until a save has succeeded.
            log.error(
                "idle stop postponed: the autosave failed (%s); the work stays on this server, "
                "and the stop is tried again at the next poll",
                result.detail or "see the autosave log above",
            )
            return
        elif result.left_out:
            # Left out of the snapshot (too large, unreadable, a repository of its own):
            # on the instance's disk only, which the scale-in would take with it.
            log.error(
                "idle stop postponed: %d path(s) were left out of the autosave and live only on this server's disk "
                "(the snapshot's commit message and the log above name them); push, move or delete them, and the "
                "stop is tried again at the next poll",
                len(result.left_out),
            )
            return
        stopped_at = iso(self.clock())
        try:
            self.scaler.scale_to_zero()
        except Exception as error:
            # The instance still runs, and so does the server: nothing says
            # otherwise, and the next poll decides and tries again.
            log.error(
                "idle stop failed: the auto scaling group could not be set to 0 (%s); the server keeps running "
                "and the stop is tried again at the next poll",
                error,
            )
            # The server runs on: the record just written must not vouch for what is
            # done before the next attempt, whose own mark and record may not land.
            # Like the first mark, tried at every poll until it is written.
            self.stopping = False
            self._mark_running()
            return
        self.stopped = decision
        try:
            self.scaler.publish({STOPPED_AT_TAG: stopped_at, STOP_REASON_TAG: decision.reason})
        except Exception as error:  # a status detail: the capacity is zero already
            log.warning("idle watcher: could not record the stop on the service: %s", error)
        log.warning("idle stop done in %.1f s: capacity is zero; up.yml starts it again", time.monotonic() - started)

    def run(self, should_exit: threading.Event) -> None:
        """Poll until the stop is done (returning at once) or `should_exit` is set."""
        while not should_exit.is_set():
            try:
                self.check_once()
            except Exception:  # keep watching: the next poll may succeed (e.g. throttled API)
                log.exception("idle watcher: stop attempt failed; trying again at the next poll")
            if self.stopped is not None:
                return
            should_exit.wait(self.poll_seconds)


# --- Wiring from the settings ----------------------------------------------------


def watcher_from_settings(settings: Settings, jupyter_pid: Callable[[], int | None]) -> Watcher | None:
    """The watcher the settings ask for, or None (with a log line saying why)."""
    reason = why_idle_watcher_off(settings)
    if reason:
        log.info("idle watcher off: %s", reason)
        return None
    try:
        token = settings.idle_token_file.read_text().strip()
    except OSError:
        log.error("idle watcher off: no token file %s (the jupyter hook writes it)", settings.idle_token_file)
        return None
    client = JupyterClient(f"http://127.0.0.1:{settings.notebook_port}{settings.base_url}", token)

    def run_autosave() -> Result:
        from .autosave import autosave

        return autosave(
            settings.work_dir,
            settings.prefix,
            timeout=settings.autosave_timeout,
            max_file_mb=settings.autosave_max_file_mb,
        )

    log.info(
        "idle watcher on: timeout %g min, max lifetime %s, poll every %g s; scales %s/%s and %s",
        settings.idle_timeout_minutes,
        f"{settings.max_lifetime_hours:g} h" if settings.max_lifetime_hours > 0 else "off",
        settings.idle_poll_seconds,
        settings.cluster,
        settings.service,
        settings.autoscaling_group,
    )
    return Watcher(
        read=lambda: client.activity(jupyter_pid()),
        scaler=AwsScaler(settings.cluster, settings.service, settings.autoscaling_group, settings.aws_region),
        autosave=run_autosave,
        idle_timeout_minutes=settings.idle_timeout_minutes,
        max_lifetime_hours=settings.max_lifetime_hours,
        poll_seconds=settings.idle_poll_seconds,
        work_kept=settings.work_kept,
    )


def start_in_thread(
    settings: Settings, jupyter_pid: Callable[[], int | None], should_exit: threading.Event
) -> threading.Thread | None:
    """Start the watcher next to the health server.

    Not a daemon thread: if SIGTERM arrives in the middle of a stop, the
    interpreter waits for the scale-down calls to finish before it exits.
    """
    watcher = watcher_from_settings(settings, jupyter_pid)
    if watcher is None:
        return None
    thread = threading.Thread(target=watcher.run, args=(should_exit,), name="nbstack-idle", daemon=False)
    thread.start()
    return thread
