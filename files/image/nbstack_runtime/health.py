"""The health sidecar: answers the ALB's `GET /health` from /proc, never over Jupyter's HTTP.

Jupyter can be too busy to answer (a kernel message storm, a huge notebook
save) or even stopped by a debugger; the target group must not kill the task
for that. The sidecar is a separate process that reads the pid file the
server extension writes at load time and looks the process up in /proc:

- 200 while the process exists in any state but zombie/dead (running,
  sleeping, disk wait, stopped by SIGSTOP);
- 503 before the pid file exists (not started yet) and once the process has
  exited (gone, zombie, or the pid reused by another process: the pid file
  records the process start time to tell them apart).

Run: python -m nbstack_runtime.health --port 8889 --pid-file ~/.nbstack/jupyter.pid
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import procfs
from .logs import setup_logging

log = logging.getLogger("nbstack.health")

#: /proc states of a process that has exited but not been reaped (or is being).
EXITED_STATES = frozenset({"Z", "X", "x"})


def write_pid_file(path: Path, pid: int | None = None) -> None:
    """Record `pid` and its start time (atomically) for the sidecar."""
    pid = os.getpid() if pid is None else pid
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    found = procfs.stat(pid)
    tmp.write_text(f"{pid} {found.start_time if found else None}\n")
    os.replace(tmp, path)


@dataclass(frozen=True)
class Status:
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


class _Handler(BaseHTTPRequestHandler):
    server_version = "nbstack-health"
    pid_file: Path

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.split("?", 1)[0] != "/health":
            self._reply(404, {"error": "not found"})
            return
        status = check(self.pid_file)
        self._reply(200 if status.healthy else 503, status.__dict__)

    def _reply(self, code: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        # The ALB asks every few seconds; only failures are worth a log line.
        if len(args) >= 2 and str(args[1]) != "200":
            log.warning("%s %s", self.address_string(), format % args)


def serve(port: int, pid_file: Path, host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Bind the sidecar's HTTP server (the caller runs serve_forever)."""
    handler = type("Handler", (_Handler,), {"pid_file": pid_file})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--pid-file", type=Path, required=True, help="written by the server extension")
    parser.add_argument("--own-pid-file", type=Path, help="where to record this sidecar's pid")
    parser.add_argument("--idle-watcher", action="store_true", help="also run the idle watcher (nbstack_runtime.idle)")
    args = parser.parse_args(argv)
    setup_logging()
    server = serve(args.port, args.pid_file, args.host)
    if args.own_pid_file:
        write_pid_file(args.own_pid_file)
    # SIGTERM (tini -g sends it to the whole process group on `docker stop`)
    # ends the sidecar cleanly; the ALB has stopped routing to the task by then.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log.info("health sidecar on %s:%d watching %s", args.host, args.port, args.pid_file)
    watcher_exit = threading.Event()
    if args.idle_watcher:
        _start_idle_watcher(args.pid_file, watcher_exit)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        watcher_exit.set()  # a stop already under way still finishes (non-daemon thread)
        server.server_close()
    return 0


def _start_idle_watcher(pid_file: Path, should_exit: threading.Event) -> None:
    """Run the idle watcher next to the health endpoint; a broken one never takes health down."""
    try:
        from . import idle
        from .settings import Settings

        def jupyter_pid() -> int | None:
            status = check(pid_file)
            return status.pid if status.healthy else None

        idle.start_in_thread(Settings.from_environ(), jupyter_pid, should_exit)
    except Exception:
        log.exception("idle watcher not started")


if __name__ == "__main__":
    sys.exit(main())
