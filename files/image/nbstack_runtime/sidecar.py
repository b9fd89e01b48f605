"""The sidecar process: the ALB's `GET /health`, and the idle watcher next to it.

Started in the background by the health startup hook, with no secret in its
environment; it outlives the hook and ends on SIGTERM (tini -g sends it to
the whole process group on `docker stop`).

- ``GET /health``: 200 while the Jupyter process exists (even SIGSTOPped),
  503 before it started and after it exited (nbstack_runtime.health). The
  port is reachable without a login, so the answer is the status code and a
  one-word body: no pid, process state, path or software version;
- the idle watcher (nbstack_runtime.watcher) in a thread, when the settings
  turn it on; a broken watcher never takes the health endpoint down.

Why asyncio and not a thread per connection (http.server's
ThreadingHTTPServer) or a thread pool: a client that opens connections and
sends nothing would hold a thread each, without bound, or fill a bounded
pool so that the load balancer's check waits behind it. On one event loop an
idle connection costs a socket and a small coroutine; each connection has a
deadline for its whole request (REQUEST_TIMEOUT_SECONDS), and past
MAX_CONNECTIONS the oldest open connection is closed to make room, so a
fresh check is always read and answered at once, and the sidecar's threads
(the loop's, and the watcher's) and sockets stay bounded.

Run: python -m nbstack_runtime.sidecar --port 8889 --pid-file ~/.nbstack/jupyter.pid [--idle-watcher]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path

from . import procfs
from .health import check, write_pid_file
from .logs import setup_logging

log = logging.getLogger("nbstack.health")

HEALTH_PATH = "/health"
#: Seconds a connection has to deliver its whole request head and take the answer.
#: The target group's check is one small request answered in milliseconds; its timeout is 10 s.
REQUEST_TIMEOUT_SECONDS = 5.0
#: Connections open at once; a new one beyond this closes the oldest.
MAX_CONNECTIONS = 64
#: Largest request head read (request line and headers); a longer one is dropped.
MAX_REQUEST_BYTES = 8192

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def response(code: int, body: str, head_only: bool = False) -> bytes:
    """A complete HTTP/1.1 answer that closes the connection; no Server header (no version to read)."""
    data = body.encode()
    head = (
        f"HTTP/1.1 {code} {_REASONS[code]}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(data)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n"
        "\r\n"
    )
    return head.encode() + (b"" if head_only else data)


class HealthServer:
    """The health endpoint on an asyncio event loop, run by whichever thread calls serve_forever.

    Shaped like socketserver's servers (server_address, serve_forever,
    shutdown, server_close) so that a caller can run it in a thread of its own.
    The socket is bound when the object is made.
    """

    def __init__(
        self,
        host: str,
        port: int,
        pid_file: Path,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.pid_file = pid_file
        self.request_timeout = request_timeout
        self.max_connections = max_connections
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.create_server((host, port), family=family, backlog=128)
        self.server_address = self._socket.getsockname()
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._finished = threading.Event()
        # Open connections and their tasks, in the order they arrived (dicts keep insertion order).
        self._connections: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}
        self._last_reason: str | None = None

    # --- socketserver-like control ---------------------------------------------

    def serve_forever(self) -> None:
        """Answer until shutdown() (from another thread) or stop_soon() (from a signal handler)."""
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._finished.set()

    def stop_soon(self) -> None:
        """Ask serve_forever to return; safe from another thread and from a signal handler."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop serve_forever and wait until it has returned."""
        self.stop_soon()
        self._finished.wait(timeout)

    def server_close(self) -> None:
        self._socket.close()
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()

    # --- the loop ----------------------------------------------------------------

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._connection, sock=self._socket, limit=MAX_REQUEST_BYTES)
        try:
            await self._stop.wait()
        finally:
            server.close()
            # Open connections end now, not at their deadline: since Python 3.12
            # wait_closed() waits for every connection the server accepted.
            pending = list(self._connections.values())
            for writer in list(self._connections):
                writer.transport.abort()
            await asyncio.gather(*pending, return_exceptions=True)
            await server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # start_server runs each connection in a task
        self._connections[writer] = task
        while len(self._connections) > self.max_connections:
            # The oldest, most likely a client that never asks: its socket is closed, so its
            # read ends (IncompleteReadError). Out of the table at once: several connections
            # can arrive before its task runs again. (Closing, not cancelling the task: some
            # Python 3.12 releases log an error for every cancelled connection task.)
            oldest = next(iter(self._connections))
            del self._connections[oldest]
            oldest.transport.abort()
        answered = False
        try:
            # One deadline for the whole exchange, however slowly the request trickles in.
            await asyncio.wait_for(self._exchange(reader, writer), self.request_timeout)
            answered = True
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # a client that sent too little, too much, too late, or left: closed without an answer
        finally:
            self._connections.pop(writer, None)
            if answered:
                writer.close()  # the answer is already flushed (drained)
            else:
                writer.transport.abort()  # nothing worth flushing; do not wait for a client that does not read

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        writer.write(self._answer(head))
        await writer.drain()

    def _answer(self, head: bytes) -> bytes:
        try:
            method, target, version = head.split(b"\r\n", 1)[0].decode("ascii").split(" ")
        except ValueError:  # not three fields, or not ASCII
            return response(400, "bad request\n")
        if not version.startswith("HTTP/"):
            return response(400, "bad request\n")
        if target.split("?", 1)[0] != HEALTH_PATH:
            return response(404, "not found\n")
        if method not in ("GET", "HEAD"):
            return response(405, "method not allowed\n")
        try:
            status = check(self.pid_file)
        except Exception:  # e.g. an unreadable pid file: not healthy, and said in the log
            log.exception("health: the check failed")
            return response(503, "unavailable\n", method == "HEAD")
        if status.reason != self._last_reason:  # the details go to the log, once per change
            level = logging.INFO if status.healthy else logging.WARNING
            log.log(level, "health: %s (%s)", "healthy" if status.healthy else "not healthy", status.reason)
            self._last_reason = status.reason
        return (
            response(200, "ok\n", method == "HEAD")
            if status.healthy
            else response(503, "unavailable\n", method == "HEAD")
        )


def serve(port: int, pid_file: Path, host: str = "0.0.0.0") -> HealthServer:
    """Bind the health endpoint's server (the caller runs serve_forever)."""
    return HealthServer(host, port, pid_file)


def continue_jupyter(pid_file: Path) -> None:
    """SIGCONT to a live Jupyter, and to its parent if stopped, so that a stopped Jupyter acts on its SIGTERM.

    A stopped process (SIGSTOP, ^Z) keeps SIGTERM pending until it is
    continued: without this, a Jupyter stopped by hand would never autosave,
    and ECS would kill it at the end of the stop timeout. In the image,
    Jupyter's parent is sudo (start.sh's `exec sudo`, which stays as root to
    wait for it), and sudo stops itself when its child stops: left stopped,
    it would never reap Jupyter once that has autosaved and exited, and the
    container would not end until the same kill. The kernel lets a process
    continue another of its session whatever their users, which the sidecar,
    sudo and Jupyter share. SIGCONT to a running process does nothing.
    """
    status = check(pid_file)
    if not (status.healthy and status.pid):
        return
    found = procfs.stat(status.pid)
    parent = procfs.stat(found.ppid) if found and found.ppid > 1 else None
    stopped_parent = [found.ppid] if found and parent and parent.state == "T" else []
    for pid, what in [(status.pid, "Jupyter"), *((ppid, "Jupyter's parent") for ppid in stopped_parent)]:
        try:
            os.kill(pid, signal.SIGCONT)
        except OSError as error:  # gone in between, or not ours to signal: nothing to continue
            log.warning("could not continue %s (pid %d) for its autosave: %s", what, pid, error)


def _start_idle_watcher(pid_file: Path, should_exit: threading.Event) -> None:
    """Run the idle watcher next to the health endpoint; a broken one never takes health down."""
    try:
        from .settings import Settings
        from .watcher import start_in_thread

        def jupyter_pid() -> int | None:
            status = check(pid_file)
            return status.pid if status.healthy else None

        start_in_thread(Settings.from_environ(), jupyter_pid, should_exit)
    except Exception:
        log.exception("idle watcher not started")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--pid-file", type=Path, required=True, help="written by the server extension")
    parser.add_argument("--own-pid-file", type=Path, help="where to record this sidecar's pid")
    parser.add_argument("--idle-watcher", action="store_true", help="also run the idle watcher (watcher.py)")
    args = parser.parse_args(argv)
    setup_logging()
    server = serve(args.port, args.pid_file, args.host)
    if args.own_pid_file:
        write_pid_file(args.own_pid_file)

    # SIGTERM (tini -g sends it to the whole process group on `docker stop`)
    # ends the sidecar cleanly; the ALB has stopped routing to the task by then.
    def on_sigterm(*_: object) -> None:
        continue_jupyter(args.pid_file)
        server.stop_soon()

    signal.signal(signal.SIGTERM, on_sigterm)
    log.info("health sidecar on %s:%d watching %s", args.host, args.port, args.pid_file)
    watcher_exit = threading.Event()
    if args.idle_watcher:
        _start_idle_watcher(args.pid_file, watcher_exit)
    try:
        server.serve_forever()
    finally:
        watcher_exit.set()  # a stop already under way still finishes (non-daemon thread)
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
