"""A notebook server started the way the container starts it, with a task definition's environment made up here.

The image tests (whose conftest holds the fixtures) and the idle bench start
it against the local git server, warehouse and emulator; the demo does not
need this, since its environment comes from the task definition `up.yml`
registered (see ecs_agent).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from nbstack_runtime.contract import SECRET_VARIABLES

from .container import server_pid, signal_container, start_container, stop_process_group
from .waits import free_port, wait_until

PREFIX = "alice"
WAREHOUSE = {"user": "analyst", "database": "warehouse"}
NOTEBOOK_FILES = {
    "README.md": "# Team notebooks\n",
    "analysis/churn.ipynb": '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n',
    "lib/features.py": "def double(x):\n    return 2 * x\n",
    ".gitignore": "*.tmp\n",
}


@dataclass
class Notebook:
    """One notebook server started like the container's, and how to talk to it."""

    process: subprocess.Popen[bytes]
    home: Path
    work_dir: Path
    port: int
    health_port: int
    env: dict[str, str]
    log_path: Path
    secrets: dict[str, str] = field(default_factory=dict)
    known_pid: int | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        """The server's pid: the init's child (start execs the server, as start.sh does)."""
        if self.known_pid is None:
            self.known_pid = wait_until(lambda: server_pid(self.process) or 0, 10, what="the init's child")
        return self.known_pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{PREFIX}/"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}/health"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def exit_code(self, timeout: float = 60) -> int | None:
        """The container's exit code once it has stopped by itself, or None when it still runs after `timeout` s."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def in_terminal(
        self, http: requests.Session, command: str, done: Callable[[str], bool], timeout: float = 60
    ) -> str:
        """Type `command` into a new Jupyter terminal, as JupyterLab opens one; what it printed once `done` says so.

        The terminal is created without a `cwd` (JupyterLab's launcher sends
        none at the file browser's root) and typed into only once the shell
        has drawn its prompt: input sent before the shell has set up its
        terminal can be discarded. `done` gets everything printed so far.
        """
        import websocket  # only the tests that drive a terminal need it

        terminal = http.post(self.url + "api/terminals", json={}, timeout=30)
        terminal.raise_for_status()
        ws_url = self.url.replace("http://", "ws://") + f"terminals/websocket/{terminal.json()['name']}"
        cookies = "; ".join(f"{name}={value}" for name, value in http.cookies.items())
        connection = websocket.create_connection(ws_url, cookie=cookies, timeout=1)
        printed: list[str] = []

        def read() -> str:
            try:
                kind, *text = json.loads(connection.recv())
            except websocket.WebSocketTimeoutException:
                return "".join(printed)
            if kind == "stdout":
                printed.append("".join(text))
            return "".join(printed)

        try:
            wait_until(read, 60, what="the terminal's prompt", interval=0)
            connection.send(json.dumps(["stdin", command + "\r"]))
            try:
                wait_until(lambda: done(read()), timeout, what="the terminal's command", interval=0)
            except TimeoutError as error:
                raise TimeoutError(f"{error}; the terminal printed: {''.join(printed)!r}") from None
        finally:
            connection.close()
        return "".join(printed)

    def session(self, password: str | None = None) -> requests.Session:
        """A logged-in HTTP session (the password form, as a browser would use it)."""
        http = requests.Session()
        http.get(self.url + "login", timeout=10)
        http.headers["X-XSRFToken"] = http.cookies.get("_xsrf") or ""
        response = http.post(
            self.url + "login",
            data={"password": password or self.secrets["NBSTACK_NOTEBOOK_PASSWORD"], "_xsrf": http.cookies.get("_xsrf", "")},
            allow_redirects=False,
            timeout=10,
        )
        http.login_status = response.status_code  # type: ignore[attr-defined]
        return http

    def signal_group(self, sig: int) -> None:
        """What docker does: signal the init, which passes it on to the whole process group (`tini -g`)."""
        signal_container(self.process, sig)

    def wait_exit(self, timeout: float = 60) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        stop_process_group(self.process, 30)


def container_environ(
    home: Path, work_dir: Path, repo_url: str, token: str, warehouse: dict[str, str | int] | None
) -> dict[str, str]:
    """The task definition's environment and secrets, pointed at the local servers."""
    keep = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "TERM", "TMPDIR")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(
        # The image's base sets it, and Jupyter's terminals start it (without it, `sh`).
        SHELL="/bin/bash",
        HOME=str(home),
        NBSTACK_PREFIX=PREFIX,
        NBSTACK_BASE_URL=f"/{PREFIX}/",
        NBSTACK_NOTEBOOK_PORT=str(free_port()),
        NBSTACK_HEALTH_PORT=str(free_port()),
        NBSTACK_WORK_DIR=str(work_dir),
        NBSTACK_REPO_URL=repo_url,
        NBSTACK_GIT_USER_NAME="Alice Example",
        NBSTACK_GIT_USER_EMAIL="alice@example.com",
        NBSTACK_MODEL_BUCKET="nbstack-models",
        NBSTACK_WAREHOUSE_ROLE_ARN="arn:aws:iam::210987654321:role/warehouse-reader",
        NBSTACK_AUTOSAVE_TIMEOUT="30",
        AWS_REGION="eu-west-1",
        AWS_DEFAULT_REGION="eu-west-1",
        NBSTACK_GIT_TOKEN=token,
        NBSTACK_NOTEBOOK_PASSWORD=f"nb-{secrets.token_hex(12)}",
        NBSTACK_API_TOKEN=secrets.token_urlsafe(36),
    )
    if warehouse:
        env.update(
            NBSTACK_WAREHOUSE_HOST=str(warehouse["host"]),
            NBSTACK_WAREHOUSE_PORT=str(warehouse["port"]),
            NBSTACK_WAREHOUSE_DATABASE=str(warehouse["database"]),
            NBSTACK_WAREHOUSE_USER=str(warehouse["user"]),
            NBSTACK_WAREHOUSE_PASSWORD=str(warehouse["password"]),
        )
    return env


def start_notebook(env: dict[str, str], log_path: Path) -> Notebook:
    """Start the container's startup (hooks, unset, exec jupyter-lab) in its own process group."""
    return Notebook(
        process=start_container(env, log_path),
        home=Path(env["HOME"]),
        work_dir=Path(env["NBSTACK_WORK_DIR"]),
        port=int(env["NBSTACK_NOTEBOOK_PORT"]),
        health_port=int(env["NBSTACK_HEALTH_PORT"]),
        env=env,
        log_path=log_path,
        secrets={name: env[name] for name in SECRET_VARIABLES if env.get(name)},
    )


def wait_until_serving(notebook: Notebook, timeout: float = 90) -> None:
    def answers() -> bool:
        if notebook.process.poll() is not None:
            raise AssertionError(f"server exited with {notebook.process.returncode}:\n{notebook.log()[-4000:]}")
        try:
            return requests.get(notebook.url + "api/status", timeout=2).status_code in (200, 403)
        except requests.ConnectionError:
            return False

    wait_until(answers, timeout, what=f"the notebook server on port {notebook.port}")
    assert notebook.pid  # known while it runs


StartNotebook = Callable[..., Notebook]
