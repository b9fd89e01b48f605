"""The sidecar process: the ALB's `GET /health`, and the idle watcher next to it.

Started in the background by the health startup hook, with no secret in its
environment; it outlives the hook and ends on SIGTERM (tini -g sends it to
the whole process group on `docker stop`).

- ``GET /health``: 200 while the Jupyter process exists (even SIGSTOPped),
  503 before it started and after it exited (nbstack_runtime.health);
- the idle watcher (nbstack_runtime.watcher) in a thread, when the settings
  turn it on; a broken watcher never takes the health endpoint down.

Run: python -m nbstack_runtime.sidecar --port 8889 --pid-file ~/.nbstack/jupyter.pid [--idle-watcher]
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .health import check, write_pid_file
from .logs import setup_logging

log = logging.getLogger("nbstack.health")

HEALTH_PATH = "/health"


class _Handler(BaseHTTPRequestHandler):
    server_version = "nbstack-health"
    pid_file: Path

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != HEALTH_PATH:
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

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's signature)
        # The ALB asks every few seconds; only failures are worth a log line.
        if len(args) >= 2 and str(args[1]) != "200":
            log.warning("%s %s", self.address_string(), format % args)


def serve(port: int, pid_file: Path, host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Bind the health endpoint's HTTP server (the caller runs serve_forever)."""
    handler = type("Handler", (_Handler,), {"pid_file": pid_file})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


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


if __name__ == "__main__":
    sys.exit(main())
