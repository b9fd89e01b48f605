"""Jupyter Server extension: waits for the start step, writes the pid file, autosaves at stop, slows password guessing.

At load, which is before the server binds its port, it waits while the
start step's notebook-user process still clones into the work directory
(see wait_for_the_start_step and nbstack_runtime.hooks): the clone runs
while Jupyter imports, and the server listens only once it has ended.

Why an extension and not a wrapper process: in the container tini runs
`start.sh`, which execs `jupyter-lab` (the image's CMD), so the Jupyter
process is tini's child and the container ends when it exits. On SIGTERM, jupyter_server 2.x
(ServerApp._signal_stop -> stop -> _stop -> _cleanup) awaits
`cleanup_extensions()`, i.e. every ExtensionApp's `stop_extension()`,
*before* shutting kernels down and stopping the IO loop. Awaiting the
autosave there means it finishes before the process exits, with no extra
process in the signal path. The same hook runs for File > Shut Down.

Login throttling: ThrottledLoginHandler is the identity provider's
``login_handler_class`` (jupyter_server's own extension point, set in the
server configuration by jupyter_config). Each login attempt from a client
waits LOGIN_DELAY_STEP_SECONDS, doubled for every failed attempt since its
last success, up to LOGIN_DELAY_MAX_SECONDS; the first attempt and the first
after a success do not wait. Attempts sent side by side queue behind each
other instead of waiting together; one whose turn is further away than the
longest wait is refused (429) without its password being checked. The wait
is ``await asyncio.sleep``: the event loop goes on serving everyone else.
The API token (nbstack_runtime.identity) counts against the same throttle:
a wrong token is a failed attempt, and a client with failed attempts waits
its turn before its token is checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections import OrderedDict
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.login import LoginFormHandler
from jupyter_server.extension.application import ExtensionApp

from .autosave import RECORD_TIMEOUT_SECONDS, Result, autosave, record
from .health import check, write_pid_file
from .scaler import AwsScaler
from .settings import Settings, SettingsError

log = logging.getLogger("nbstack.extension")


#: How much longer than the clone's own limit (Settings.clone_timeout) Jupyter waits for the start step
#: (gitsetup sets a timed-out clone aside, then the warehouse files): within the limit's reserve, so
#: Jupyter still listens and passes its checks before ECS would replace the task.
START_STEP_MARGIN_SECONDS = 10.0


def wait_for_the_start_step(settings: Settings, timeout: float | None = None, poll: float = 0.02) -> bool:
    """Hold Jupyter back while the start step's notebook-user process still clones into the work directory.

    Called while the server loads its extensions, which is before it binds
    its port: nobody can make a file in a directory a clone is still
    filling (an unfinished clone is emptied and made again at the next
    start). The start step lets Jupyter start as soon as its config and the
    sidecar are ready, so that the clone runs while Jupyter imports; this is
    where the two meet. Usually the clone has long ended. Returns whether it
    had; past `timeout` the server starts anyway, and says so.
    """
    if timeout is None:
        timeout = settings.clone_timeout + START_STEP_MARGIN_SECONDS
    deadline = time.monotonic() + timeout
    said = False
    while check(settings.startup_pid_file).healthy:
        if not said:
            log.info("nbstack: waiting for the start step (the repository's clone) before the server listens")
            said = True
        if time.monotonic() > deadline:
            log.error("nbstack: the start step still runs after %.0f s; the server starts without waiting", timeout)
            return False
        time.sleep(poll)
    if said:
        log.info("nbstack: the start step has ended")
    return True


class NbstackExtension(ExtensionApp):
    """Loaded (not launched) next to JupyterLab; has no handlers of its own."""

    name = "nbstack_runtime"

    def initialize_settings(self) -> None:
        try:
            self._settings: Settings | None = Settings.from_environ()
        except SettingsError as error:
            log.error("nbstack extension disabled: %s", error)
            self._settings = None
            return
        wait_for_the_start_step(self._settings)
        write_pid_file(self._settings.jupyter_pid_file)
        self.log.info("nbstack: pid file %s written", self._settings.jupyter_pid_file)

    async def stop_extension(self) -> None:
        # A second SIGTERM makes ServerApp run its cleanup again; share the first
        # autosave instead of starting another one next to it.
        task = getattr(self, "_autosave_task", None)
        if task is None:
            task = self._autosave_task = asyncio.ensure_future(self._autosave())
        await asyncio.shield(task)

    async def _autosave(self) -> None:
        settings = getattr(self, "_settings", None)
        if settings is None:
            return
        self.log.info("nbstack: autosaving %s before the server stops", settings.work_dir)
        try:
            # In a thread so the (already stopping) event loop stays responsive;
            # autosave() and record() bound themselves, wait_for is a backstop.
            result = await asyncio.wait_for(
                asyncio.to_thread(save_and_record, settings),
                timeout=settings.autosave_timeout + RECORD_TIMEOUT_SECONDS + 5,
            )
            self.log.info("nbstack: autosave %s %s", result.status, result.ref or "")
        except Exception:  # never let a failed autosave keep the server from stopping
            self.log.exception("AUTOSAVE FAILED: unexpected error")


def save_and_record(settings: Settings) -> Result:
    """Autosave, then tag the outcome on the person's service (when the task knows its service)."""
    result = autosave(
        settings.work_dir,
        settings.prefix,
        timeout=settings.autosave_timeout,
        max_file_mb=settings.autosave_max_file_mb,
    )
    if settings.cluster and settings.service:
        record(result, AwsScaler(settings.cluster, settings.service, settings.autoscaling_group, settings.aws_region))
    else:
        log.info("nbstack: NBSTACK_CLUSTER or NBSTACK_SERVICE not set: the autosave's outcome is not tagged")
    return result


# --- Login throttling ------------------------------------------------------------

#: The wait before the second attempt after a failure; it doubles with every further failure.
LOGIN_DELAY_STEP_SECONDS = 0.5
#: The longest wait before an attempt.
LOGIN_DELAY_MAX_SECONDS = 30.0
#: A client's failures are forgotten this long after its last attempt.
LOGIN_FORGET_AFTER_SECONDS = 3600.0
#: Clients remembered at once; beyond this the one seen longest ago is forgotten.
LOGIN_MAX_CLIENTS = 10_000


class LoginThrottle:
    """Failed attempts since the last success, and the next free turn, per client; a table of bounded size.

    An attempt counts as failed from the moment it starts (so side-by-side
    guesses each take the next turn) until succeeded() clears the count.
    """

    def __init__(
        self,
        step: float = LOGIN_DELAY_STEP_SECONDS,
        maximum: float = LOGIN_DELAY_MAX_SECONDS,
        forget_after: float = LOGIN_FORGET_AFTER_SECONDS,
        max_clients: int = LOGIN_MAX_CLIENTS,
    ) -> None:
        self.step, self.maximum, self.forget_after, self.max_clients = step, maximum, forget_after, max_clients
        # client -> (attempts since the last success, when the latest one was let through); oldest first
        self._clients: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def delay(self, failures: int) -> float:
        return 0.0 if failures <= 0 else min(self.step * 2 ** (failures - 1), self.maximum)

    def attempt(self, client: str, now: float | None = None) -> float | None:
        """Give `client` a turn: the seconds to wait before its password is checked, or None to refuse it unchecked.

        The turn is a delay after now, or after the client's latest turn if
        that is still ahead (attempts sent side by side); a turn further
        away than the longest delay is refused.
        """
        now = time.monotonic() if now is None else now
        failures, latest = self._clients.pop(client, (0, now))
        if now - latest > self.forget_after:
            failures, latest = 0, now
        wait = max(0.0, latest - now) + self.delay(failures)
        if wait > self.maximum:
            self._clients[client] = (failures, latest)
            return None
        self._clients[client] = (failures + 1, now + wait)  # the most recently seen client goes last
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)
        return wait

    def succeeded(self, client: str) -> None:
        self._clients.pop(client, None)

    def __len__(self) -> int:
        return len(self._clients)


def _address(entry: str) -> str | None:
    """The IP address in an X-Forwarded-For entry ('198.51.100.7', '[2001:db8::1]:443', '198.51.100.7:443')."""
    entry = entry.strip()
    if entry.startswith("["):
        entry = entry[1 : entry.find("]")]
    elif entry.count(":") == 1:
        entry = entry.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(entry))
    except ValueError:
        return None


def client_address(peer: str, forwarded_for: str | None, behind_proxy: bool) -> str:
    """Who is logging in: the address the proxy saw, or the peer's own.

    Behind the load balancer (``ServerApp.trust_xheaders``) the client is the
    last X-Forwarded-For entry, the one the load balancer appends (its
    default ``append`` mode); whatever a client writes in that header comes
    before it. tornado's ``remote_ip`` is not used: with xheaders on it
    prefers X-Real-Ip, which the load balancer passes on untouched, so a
    client could name itself anew on every attempt.
    """
    if behind_proxy and forwarded_for:
        found = _address(forwarded_for.split(",")[-1])
        if found:
            return found
    return peer


def request_client(handler: Any) -> str:
    """Who sent a Jupyter handler's request (client_address of its socket's peer)."""
    context = getattr(handler.request.connection, "context", None)
    address = getattr(context, "address", None)  # the socket's peer, before any X- header rewrote remote_ip
    peer = str(address[0]) if isinstance(address, tuple) and address else "local"
    serverapp = handler.settings.get("serverapp")
    behind_proxy = bool(serverapp is not None and serverapp.trust_xheaders)
    return client_address(peer, handler.request.headers.get("X-Forwarded-For"), behind_proxy)


def login_throttle(app_settings: dict[str, Any]) -> LoginThrottle:
    """The server's one throttle, shared by password logins and API token checks."""
    throttle: LoginThrottle = app_settings.setdefault("nbstack_login_throttle", LoginThrottle())
    return throttle


class ThrottledLoginHandler(LoginFormHandler):
    """jupyter_server's password form, with a growing wait per client after failed attempts."""

    def _client(self) -> str:
        return request_client(self)

    @property
    def _throttle(self) -> LoginThrottle:
        return login_throttle(self.settings)

    @allow_unauthenticated
    async def post(self) -> Any:
        client = self._client()
        throttle = self._throttle
        wait = throttle.attempt(client)
        if wait is None:
            self.log.warning("nbstack: login attempt from %s refused: too many attempts at once", client)
            self.set_status(429)
            self.set_header("Retry-After", str(int(throttle.maximum)))
            self._render(message={"error": "Too many login attempts; try again later."})
            return
        if wait:
            self.log.warning("nbstack: login attempt from %s waits %.1f s after failed attempts", client, wait)
            await asyncio.sleep(wait)
        super().post()
        if self.current_user is not None:
            throttle.succeeded(client)
