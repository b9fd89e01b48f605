"""The container's process tree on this machine: started under tini in a session of its own, stopped as `docker stop` stops it.

The image's PID 1 is `tini -g -- start.sh`, started as root (the task
definition's user 0): start.sh runs the hooks as root, unsets the secrets
and drops to the notebook user for Jupyter, so tini keeps the task's whole
environment where the notebook user cannot read it. Here the same init runs
the start imitation (`tini -s -g -- python -m nbstack_devkit.start`; -s
makes tini reap orphans as PID 1 does) in a new session, which stands for
the container: `docker stop` is SIGTERM to tini, which passes it to the
start's process group (the server and the health sidecar); whatever is left
after the stop timeout is SIGKILLed, the whole session at once.

As root, what the image and the host provide for the notebook user is made
here: HOME (the image's /home/jovyan) and the work directory (the volume)
owned by that user (NB_USER, `nobody` by default, standing in for jovyan).
The user must be able to run this virtualenv's Python: `check_notebook_user`
says what is in the way when it cannot. Not root, everything runs as the
current user (see start.py). Without tini on PATH (`apt-get install tini`),
the start runs directly and a warning says so.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import pwd
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from .start import DEFAULT_NOTEBOOK_USER

log = logging.getLogger("nbstack.container")


def notebook_user(env: Mapping[str, str]) -> pwd.struct_passwd | None:
    """The user Jupyter runs as: NB_USER (default `nobody`) when root, None when not root."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam(env.get("NB_USER") or DEFAULT_NOTEBOOK_USER)


@functools.lru_cache(maxsize=4)
def check_notebook_user(uid: int, gid: int) -> None:
    """Fail with what to do when the notebook user cannot run this Python and import the runtime."""
    done = subprocess.run(
        [sys.executable, "-c", "import jupyter_server, nbstack_runtime"],
        user=uid,
        group=gid,
        extra_groups=[],
        cwd="/",
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        blocked = [str(p) for p in [Path(sys.executable), *Path(sys.executable).parents] if not _traversable(p)]
        raise PermissionError(
            f"uid {uid}, the notebook user, cannot run {sys.executable} with the runtime installed "
            f"({done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}); "
            f"directories others cannot enter: {blocked or 'none found'}. Give others search permission "
            "on the checkout's and the interpreter's directories (.ci/run does), or run as a non-root user"
        )


def _traversable(path: Path) -> bool:
    try:
        return path.is_symlink() or bool(path.stat().st_mode & 0o001) or not path.is_dir()
    except OSError:
        return False


def provide_user_dirs(env: Mapping[str, str], user: pwd.struct_passwd) -> None:
    """HOME and the work directory, owned by the notebook user, as the image and the host provide them."""
    for name in ("HOME", "NBSTACK_WORK_DIR"):
        if env.get(name):
            path = Path(env[name])
            path.mkdir(parents=True, exist_ok=True)
            if path.stat().st_uid != user.pw_uid:
                os.chown(path, user.pw_uid, user.pw_gid)


def start_container(env: Mapping[str, str], log_path: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Run the container's init and startup (hooks, secrets unset, exec jupyter lab) with `env`; returns at once.

    Its output goes to `log_path`, as a container's goes to its log driver.
    The returned process is the init (tini); `server_pid` finds the server.
    """
    user = notebook_user(env)
    if user is not None:
        check_notebook_user(user.pw_uid, user.pw_gid)
        provide_user_dirs(env, user)
    command = [sys.executable, "-m", "nbstack_devkit.start"]
    tini = shutil.which("tini")
    if tini:
        command = [tini, "-s", "-g", "--", *command]
    else:
        log.warning("tini is not installed: the start runs without the image's init (apt-get install tini)")
    with log_path.open("ab") as output:
        return subprocess.Popen(
            command,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a session of its own stands for the container
        )


def server_pid(process: subprocess.Popen[bytes]) -> int | None:
    """The start's (then the server's) pid: tini's child, or the process itself without tini."""
    if Path(str(list(process.args)[0])).name == "tini":  # type: ignore[arg-type]
        return next((pid for pid, parent, _ in _processes() if parent == process.pid), None)
    return process.pid


def signal_container(process: subprocess.Popen[bytes], sig: int) -> None:
    """A signal as docker sends it: to the init, which passes it to the start's process group (tini -g).

    SIGKILL cannot be passed on: like the end of a container, it kills every process of the session.
    """
    if sig == signal.SIGKILL:
        for pid in [pid for pid, _, session in _processes() if session == process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    else:
        with contextlib.suppress(ProcessLookupError):  # the container has already gone
            os.killpg(process.pid, sig)


def stop_process_group(process: subprocess.Popen[bytes], timeout: float) -> int:
    """What `docker stop` does to a container run with `tini -g`: SIGTERM to the
    init, passed on to the start's process group, up to `timeout` seconds, then
    SIGKILL to whatever is left (the sidecar outlives the server). Returns the
    init's exit code."""
    if process.poll() is None:
        signal_container(process, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("Container %s did not stop within %s s: SIGKILL", process.pid, timeout)
    signal_container(process, signal.SIGKILL)
    return process.wait(10)


def _processes() -> list[tuple[int, int, int]]:
    """(pid, parent pid, session id) of every process."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2 :].split()
            found.append((int(entry.name), int(fields[1]), int(fields[3])))
    return found
