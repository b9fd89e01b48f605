"""A git server over smart HTTP with basic auth, standing in for GitHub with a token.

`git http-backend` (git's own smart-HTTP server, run as CGI) behind
http.server on loopback: the container clones, fetches and pushes over real
HTTP with a real credential, as it does against GitHub. The image tests, the
startup bench and the demo use it; whoever starts one stops it.
"""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def git(*args: str, cwd: Path | str | None = None, env: dict[str, str] | None = None) -> str:
    """git with a fixed identity and no user/system config (reproducible in CI)."""
    full_env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
        "GIT_TERMINAL_PROMPT": "0",
        **(env or {}),
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=full_env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout


@dataclass
class GitHttpServer:
    """Smart-HTTP git server over `git http-backend`, basic auth with one token."""

    root: Path
    token: str
    port: int = 0
    fail_pushes: bool = False  # answer receive-pack with 500 (a broken remote)
    push_attempts: int = 0
    requests: list[str] = field(default_factory=list)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, repo: str) -> str:
        return f"{self.base_url}/{repo}"

    def start(self) -> GitHttpServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                self._cgi()

            def do_POST(self) -> None:  # noqa: N802
                self._cgi()

            def _authorized(self) -> str | None:
                header = self.headers.get("Authorization", "")
                if not header.startswith("Basic "):
                    return None
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                return user if password == server.token else None

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks: list[bytes] = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _cgi(self) -> None:
                path, _, query = self.path.partition("?")
                server.requests.append(f"{self.command} {path}")
                user = self._authorized()
                if user is None:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = self._body() if self.command == "POST" else b""
                if "git-receive-pack" in self.path and self.command == "POST":
                    server.push_attempts += 1
                    if server.fail_pushes:
                        self.send_response(500)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                env = {
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "GIT_PROJECT_ROOT": str(server.root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "GIT_CONFIG_NOSYSTEM": "1",
                    "GIT_CONFIG_GLOBAL": "/dev/null",
                    "REMOTE_USER": user,
                    "REMOTE_ADDR": self.client_address[0],
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                    "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                }
                done = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
                head, _, payload = done.stdout.partition(b"\r\n\r\n")
                status, headers = 200, []
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()

    def create_repo(self, name: str, files: dict[str, str], commits: int = 1) -> Path:
        """A bare repo `name` on the server whose main branch holds `files`, after `commits` revisions."""
        earlier = ({rel: f"{text}\n# revision {number}\n" for rel, text in files.items()} for number in range(commits - 1))
        return self.create_repo_from(name, [*earlier, files])

    def create_repo_from(self, name: str, revisions: Iterable[dict[str, str]]) -> Path:
        """A bare repo `name` on the server: one commit on main per revision, each writing its files."""
        bare = self.root / name
        git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
        git("config", "http.receivepack", "true", cwd=bare)
        with tempfile.TemporaryDirectory() as tmp:
            git("init", "--quiet", "--initial-branch=main", tmp)
            for number, files in enumerate(revisions):
                for rel, text in files.items():
                    target = Path(tmp) / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(text)
                git("add", "-A", cwd=tmp)
                git("commit", "--quiet", "-m", f"Revision {number}", cwd=tmp)
            git("push", "--quiet", str(bare), "main", cwd=tmp)
        return bare

    def refs(self, name: str, pattern: str = "refs/heads/") -> dict[str, str]:
        out = git("for-each-ref", "--format=%(refname) %(objectname)", pattern, cwd=self.root / name)
        return dict(line.split(maxsplit=1) for line in out.splitlines())
