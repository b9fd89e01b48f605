"""Startup and autosave timings of the notebook container, against real local servers.

    python bench/startup.py

Generates a realistic notebook repository (~300 notebooks, some history) on
a local smart-HTTP git server, then measures, one run each:

1. container start: from launching the startup hooks (clone included) to the
   first authenticated /api/status answer, started exactly as the tests start
   it (nbstack_devkit.start: hooks, unset secrets, exec jupyter lab);
2. bare `jupyter server` (and bare `jupyter lab`, what the image runs) on the
   same checkout, to the same authenticated answer;
3. autosave of 50 changed notebooks (snapshot + push).

Figures are wall-clock seconds on this machine; ratios are against bare
`jupyter server`.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests

from nbstack_devkit.container import start_container, stop_process_group
from nbstack_devkit.gitserver import GitHttpServer, git
from nbstack_devkit.waits import free_port, wait_until
from nbstack_runtime.autosave import autosave

NOTEBOOKS = 300
COMMITS = 20


def notebook(number: int, revision: int) -> str:
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": [f"# Analysis {number}\n", f"Revision {revision}\n"]},
        {
            "cell_type": "code",
            "execution_count": 1,
            "metadata": {},
            "outputs": [{"name": "stdout", "output_type": "stream", "text": ["x" * 200 + "\n"] * 5}],
            "source": ["import pandas as pd\n", f"df = pd.DataFrame({{'v': range({number})}})\n", "df.describe()\n"],
        },
    ]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1) + "\n"


def revisions() -> Iterator[dict[str, str]]:
    """The repository's history: the first commit creates every notebook, each later one touches a tenth."""
    for revision in range(COMMITS):
        numbers = range(NOTEBOOKS) if revision == 0 else range(revision % 10, NOTEBOOKS, 10)
        yield {f"team{number % 12}/analysis_{number:03d}.ipynb": notebook(number, revision) for number in numbers}


def wait_authenticated(base: str, login: Callable[[str], int], process: subprocess.Popen[bytes]) -> float:
    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError("server exited")
        try:
            return login(base) == 200
        except requests.ConnectionError:
            return False

    wait_until(ready, timeout=120, what="an authenticated answer", interval=0.02)
    return time.monotonic()


def password_status(password: str) -> callable:  # type: ignore[valid-type]
    def status(base: str) -> int:
        http = requests.Session()
        http.get(base + "login", timeout=5)
        http.post(base + "login", data={"password": password, "_xsrf": http.cookies.get("_xsrf", "")}, timeout=5)
        return http.get(base + "api/status", timeout=5).status_code

    return status


def token_status(token: str) -> callable:  # type: ignore[valid-type]
    return lambda base: requests.get(base + "api/status", headers={"Authorization": f"token {token}"}, timeout=5).status_code


def container_start(server: GitHttpServer, repo: str, tmp: Path) -> tuple[float, Path]:
    home, work = tmp / "home", tmp / "home" / "work"
    home.mkdir()
    port, password = free_port(), secrets.token_hex(8)
    env = {
        "PATH": os.environ["PATH"], "HOME": str(home),
        "NBSTACK_PREFIX": "bench", "NBSTACK_NOTEBOOK_PORT": str(port), "NBSTACK_HEALTH_PORT": str(free_port()),
        "NBSTACK_WORK_DIR": str(work), "NBSTACK_REPO_URL": server.url(repo),
        "NBSTACK_GIT_USER_NAME": "Bench", "NBSTACK_GIT_USER_EMAIL": "bench@example.com",
        "NBSTACK_GIT_TOKEN": server.token, "NBSTACK_NOTEBOOK_PASSWORD": password,
    }
    if "PYTHONPATH" in os.environ:  # a checkout's runtime and devkit over the installed ones, as the tests run them
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    started = time.monotonic()
    process = start_container(env, tmp / "container.log")
    try:
        ready = wait_authenticated(f"http://127.0.0.1:{port}/bench/", password_status(password), process)
    finally:
        stop_process_group(process, 60)
    return ready - started, work


def bare_start(subcommand: str, work: Path, tmp: Path) -> float:
    home = tmp / f"home-bare-{subcommand}"
    home.mkdir()
    port, token = free_port(), secrets.token_hex(16)
    command = ["jupyter", subcommand, f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={work}", "--no-browser"]
    if os.geteuid() == 0:
        command.append("--ServerApp.allow_root=True")
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "HOME": str(home)}
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ready = wait_authenticated(f"http://127.0.0.1:{port}/", token_status(token), process)
    finally:
        stop_process_group(process, 60)
    return ready - started


def autosave_time(work: Path, files: int = 50) -> tuple[float, str]:
    changed = sorted(work.glob("team*/analysis_*.ipynb"))[:files]
    for path in changed:
        path.write_text(path.read_text().replace("Revision", "Edited revision"))
    os.environ["HOME"] = str(work.parent)  # the container's HOME: its ~/.gitconfig names the credentials
    if os.geteuid() == 0:
        # As root the checkout is the notebook user's, which git refuses to work in ("dubious ownership").
        os.environ.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="safe.directory", GIT_CONFIG_VALUE_0=str(work))
    started = time.monotonic()
    result = autosave(work, "bench", timeout=90)
    elapsed = time.monotonic() - started
    if not result.pushed:
        raise RuntimeError(f"autosave did not push: {result}")
    return elapsed, result.ref or ""


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="nbstack-bench-") as tmp_name:
        tmp = Path(tmp_name)
        server = GitHttpServer(tmp / "git", token=secrets.token_hex(16)).start()
        try:
            (tmp / "git").mkdir(exist_ok=True)
            server.create_repo_from("notebooks.git", revisions())
            count = len(git("ls-tree", "-r", "--name-only", "main", cwd=server.root / "notebooks.git").split())
            print(f"repository: {count} files, {COMMITS} commits")
            container, work = container_start(server, "notebooks.git", tmp)
            bare_server = bare_start("server", work, tmp)
            bare_lab = bare_start("lab", work, tmp)
            saved, ref = autosave_time(work)
        finally:
            server.stop()
    rows = [
        ("bare jupyter server -> authenticated /api/status", bare_server),
        ("bare jupyter lab -> authenticated /api/status", bare_lab),
        ("container start (hooks incl. clone, jupyter lab) -> authenticated /api/status", container),
        ("autosave of 50 changed notebooks (snapshot + push)", saved),
    ]
    for label, seconds in rows:
        print(f"{label:<82} {seconds:6.2f} s  x{seconds / bare_server:4.2f}")
    print(f"startup overhead of the hooks over bare jupyter lab: {container - bare_lab:+.2f} s")
    print(f"autosave ref: {ref}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
