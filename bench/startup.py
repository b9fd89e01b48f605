"""Startup and autosave timings of the notebook container, against real local servers.

    python bench/startup.py [--rounds N]

Generates a realistic notebook repository (~300 notebooks, some history) on
a local smart-HTTP git server, then measures, N rounds (default 5) taken in
turn so that a busy machine slows each kind alike:

1. container start: from launching the startup hooks (clone included) to the
   first /api/status answer its API token authenticates (as the bare
   servers' is their token's; up.yml always sets an API token), and then,
   apart, a first password login; started exactly as the tests start
   it (nbstack_devkit.container: tini, then the devkit's bash stand-in for
   start.sh: hooks, unset secrets, drop to the notebook user, exec the
   image's CMD, jupyter-lab), each round into a fresh HOME and work
   directory (so each one clones); split, from the container's log, into
   the devkit's launch (to the hook being sourced: a mount namespace when
   the paths are closed to the notebook user, tini, the stand-in), the
   image's hook (to start.sh's exec: validate, hash, config, sidecar) and
   the rest (jupyter-lab, which imports while the repository clones, and
   listens once it is cloned). Not modelled, so not counted: start.sh's root preamble
   before the hooks (a few `id` and `sed` calls) and sudo, which the image
   runs where the devkit execs setpriv;
2. bare `jupyter server` (and bare `jupyter lab`, what the image runs, but
   through the `jupyter` command) on the same checkout, to the same
   authenticated answer;
3. autosave of 50 changed notebooks (snapshot + push), once.

Figures are wall-clock seconds on this machine, the median of the rounds
(and the fastest); ratios are against bare `jupyter server`'s median.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
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


def password_status(password: str) -> Callable[[str], int]:
    def status(base: str) -> int:
        http = requests.Session()
        http.get(base + "login", timeout=5)
        http.post(base + "login", data={"password": password, "_xsrf": http.cookies.get("_xsrf", "")}, timeout=5)
        return http.get(base + "api/status", timeout=5).status_code

    return status


def token_status(token: str) -> Callable[[str], int]:
    return lambda base: requests.get(base + "api/status", headers={"Authorization": f"token {token}"}, timeout=5).status_code


def log_time(log: str, marker: str) -> float:
    """When the container's log line holding `marker` was written (the devkit's and the hooks' format), epoch seconds."""
    line = next(line for line in log.splitlines() if marker in line)
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def container_start(server: GitHttpServer, repo: str, tmp: Path) -> tuple[dict[str, float], Path]:
    """One container start into a fresh HOME; its phases in seconds, and its work directory."""
    home, work = tmp / "home", tmp / "home" / "work"
    home.mkdir()
    port, password, api_token = free_port(), secrets.token_hex(8), secrets.token_urlsafe(36)
    env = {
        "PATH": os.environ["PATH"], "HOME": str(home),
        "NBSTACK_PREFIX": "bench", "NBSTACK_NOTEBOOK_PORT": str(port), "NBSTACK_HEALTH_PORT": str(free_port()),
        "NBSTACK_WORK_DIR": str(work), "NBSTACK_REPO_URL": server.url(repo),
        "NBSTACK_GIT_USER_NAME": "Bench", "NBSTACK_GIT_USER_EMAIL": "bench@example.com",
        "NBSTACK_GIT_TOKEN": server.token, "NBSTACK_NOTEBOOK_PASSWORD": password, "NBSTACK_API_TOKEN": api_token,
    }
    if "PYTHONPATH" in os.environ:  # a checkout's runtime and devkit over the installed ones, as the tests run them
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    started, launched = time.monotonic(), time.time()
    process = start_container(env, tmp / "container.log")
    base = f"http://127.0.0.1:{port}/bench/"
    try:
        # Ready as the bare servers are: the first request its token (here the API token, which up.yml
        # always sets) authenticates; then, apart, a person's first password login (an argon2 check).
        ready = wait_authenticated(base, token_status(api_token), process)
        login_started = time.monotonic()
        if password_status(password)(base) != 200:
            raise RuntimeError("the password login failed")
        login = time.monotonic() - login_started
    finally:
        stop_process_group(process, 60)
    log = (tmp / "container.log").read_text(errors="replace")
    sourced, executed = log_time(log, "Sourcing shell script"), log_time(log, "Executing the command")
    return {
        "total": ready - started,
        "stand-in": sourced - launched,
        "hook": executed - sourced,
        "jupyter": ready - started - (executed - launched),
        "login": login,
    }, work


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="starts of each kind, taken in turn (default 5)")
    rounds = parser.parse_args(argv).rounds
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="nbstack-bench-") as tmp_name:
        tmp = Path(tmp_name)
        server = GitHttpServer(tmp / "git", token=secrets.token_hex(16)).start()
        try:
            (tmp / "git").mkdir(exist_ok=True)
            server.create_repo_from("notebooks.git", revisions())
            count = len(git("ls-tree", "-r", "--name-only", "main", cwd=server.root / "notebooks.git").split())
            print(f"repository: {count} files, {COMMITS} commits; {rounds} round(s)")
            work = None
            for number in range(rounds):
                directory = tmp / f"round-{number}"
                directory.mkdir()
                phases, round_work = container_start(server, "notebooks.git", directory)
                work = work or round_work
                for name, seconds in phases.items():
                    times.setdefault(f"container {name}", []).append(seconds)
                times.setdefault("bare server", []).append(bare_start("server", work, directory))
                times.setdefault("bare lab", []).append(bare_start("lab", work, directory))
            assert work is not None
            saved, ref = autosave_time(work)
        finally:
            server.stop()
    rows = [
        ("bare jupyter server -> authenticated /api/status", "bare server"),
        ("bare jupyter lab -> authenticated /api/status", "bare lab"),
        ("container start (hooks, clone, jupyter lab) -> authenticated /api/status", "container total"),
        ("  launch -> hook sourced (devkit's stand-in for tini + start.sh)", "container stand-in"),
        ("  hook sourced -> start.sh's exec (the image's hook: validate, hash, config, sidecar)", "container hook"),
        ("  jupyter-lab -> authenticated /api/status (the clone runs meanwhile)", "container jupyter"),
        ("then a first password login (login page, form post, /api/status)", "container login"),
    ]
    base = statistics.median(times["bare server"])
    print(f"{'':<92} {'median':>8} {'fastest':>8}  ratio")
    for label, key in rows:
        median, fastest = statistics.median(times[key]), min(times[key])
        print(f"{label:<92} {median:6.2f} s {fastest:6.2f} s  x{median / base:4.2f}")
    print(f"{'autosave of 50 changed notebooks (snapshot + push), once':<92} {saved:6.2f} s")
    overhead = statistics.median(times["container total"]) - statistics.median(times["bare lab"])
    print(f"startup overhead of the hooks over bare jupyter lab (medians): {overhead:+.2f} s")
    print(f"autosave ref: {ref}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
