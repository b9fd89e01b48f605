"""The container's process tree on this machine: started under tini in a session of its own, stopped as `docker stop` stops it.

The image's PID 1 is `tini -g -- start.sh`, started as root (the task
definition's user 0): start.sh runs the hooks as root, unsets the secrets
and drops to the notebook user for Jupyter, so tini keeps the task's whole
environment where the notebook user cannot read it. Here the same init runs
the devkit's stand-in for start.sh (`tini -s -g -- bash start.sh ...`, see
start.py; -s makes tini reap orphans as PID 1 does) in a new session, which stands for
the container: `docker stop` is SIGTERM to tini, which passes it to the
start's process group (the server and the health sidecar); whatever is left
after the stop timeout is SIGKILLed, the whole session at once.

As root, what the image and the host provide for the notebook user is made
here: HOME (the image's /home/jovyan) and the work directory (the volume)
owned by that user (NB_USER, `nobody` by default, standing in for jovyan).
The user must be able to run this virtualenv's Python and reach the
checkout, HOME and the work directory; where a directory on the way is
closed to it (root's 0700 HOME holding the interpreter, pytest's 0700
temporary directories), the container gets a mount namespace of its own,
as a real one has, in which exactly those paths are opened (`open_the_way`);
nothing on the host changes. Not root, everything runs as the
current user (see start.py). Without tini on PATH (`apt-get install tini`),
the start runs directly and a warning says so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from .paths import ROOT
from .start import DEFAULT_NOTEBOOK_USER, environment, start_command

log = logging.getLogger("nbstack.container")


def notebook_user(env: Mapping[str, str]) -> pwd.struct_passwd | None:
    """The user Jupyter runs as: NB_USER (default `nobody`) when root, None when not root."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam(env.get("NB_USER") or DEFAULT_NOTEBOOK_USER)


def needed_paths(env: Mapping[str, str]) -> list[Path]:
    """What the notebook user's processes must reach: this Python, its packages, the checkout, HOME, the work directory."""
    paths = [
        Path(sys.executable).resolve().parent,
        Path(sys.base_prefix).resolve(),
        Path(sys.prefix).resolve(),
        ROOT,
        *(Path(p).resolve() for p in env.get("PYTHONPATH", "").split(os.pathsep) if p),
        *(Path(env[name]) for name in ("HOME", "NBSTACK_WORK_DIR") if env.get(name)),
    ]
    return list(dict.fromkeys(p for p in paths if p.exists()))


def blocked_directory(path: Path, user: pwd.struct_passwd) -> Path | None:
    """The first directory on the way to `path` that `user` may not enter, or None."""
    groups = set(os.getgrouplist(user.pw_name, user.pw_gid))
    for directory in [*reversed(path.parents), path]:
        if not directory.is_dir():
            continue
        info = directory.stat()
        if info.st_uid == user.pw_uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid in groups:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return directory
    return None


def open_the_way(paths: list[Path], user: pwd.struct_passwd) -> None:
    """In this process's own mount namespace, let `user` reach every one of `paths`, and nothing more.

    Each directory on the way that the user may not enter (e.g. root's 0700
    HOME, which holds this Python on some machines) is covered with an empty
    0755 tmpfs into which the paths below it are bind-mounted back, so the
    user can enter exactly those. Nothing outside this namespace changes.
    """
    for _ in range(16):  # each round opens one level; paths are never that deep in 0700 directories
        blocked: dict[Path, set[str]] = {}
        for path in paths:
            directory = blocked_directory(path, user)
            if directory is not None and directory != path:
                blocked.setdefault(directory, set()).add(path.relative_to(directory).parts[0])
        if not blocked:
            return
        for directory, children in sorted(blocked.items()):
            stage = Path(tempfile.mkdtemp(prefix="nbstack-mount-"))
            _mount("--bind", str(directory), str(stage))
            _mount("-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(directory))
            for child in sorted(children):
                (directory / child).mkdir() if (stage / child).is_dir() else (directory / child).touch()
                _mount("--bind", str(stage / child), str(directory / child))
            subprocess.run(["umount", "--lazy", str(stage)], check=True)
            stage.rmdir()
    raise PermissionError(f"cannot open the way to {paths} for {user.pw_name}")


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def provide_user_dirs(env: Mapping[str, str], user: pwd.struct_passwd) -> None:
    """HOME and the work directory, owned by the notebook user, as the image and the host provide them."""
    for name in ("HOME", "NBSTACK_WORK_DIR"):
        if env.get(name):
            path = Path(env[name])
            path.mkdir(parents=True, exist_ok=True)
            if path.stat().st_uid != user.pw_uid:
                os.chown(path, user.pw_uid, user.pw_gid)


def start_container(
    env: Mapping[str, str], log_path: Path, cwd: Path | None = None, command: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """Run the container's init and startup (hooks, secrets unset, exec jupyter-lab) with `env`; returns at once.

    `command` stands for the image's CMD, as a task definition's command does.
    Its output goes to `log_path`, as a container's goes to its log driver.
    The returned process is the init (tini); `server_pid` finds the server.
    """
    env = environment(env)
    command = start_command(command)
    tini = shutil.which("tini")
    if tini:
        command = [tini, "-s", "-g", "--", *command]
    else:
        log.warning("tini is not installed: the start runs without the image's init (apt-get install tini)")
    user = notebook_user(env)
    if user is not None:
        provide_user_dirs(env, user)
        paths = needed_paths(env)
        if any(blocked_directory(path, user) for path in paths):
            # A mount namespace of its own, as a container has, where the way is open.
            command = [
                "unshare", "--mount", "--propagation", "private", "--",
                sys.executable, "-m", "nbstack_devkit.container", user.pw_name, *map(str, paths), "--", *command,
            ]  # fmt: skip
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
    """The start's (then the server's) pid: tini's first child, or the process itself without tini.

    None while the container's process has not become tini yet.
    """
    if not shutil.which("tini"):
        return process.pid
    try:
        init = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return None
    if Path(init.decode()).name != "tini":
        return None
    return first_child(process.pid)


def first_child(parent: int) -> int | None:
    """The child tini started (the start, then the server), or None once it has exited.

    tini (-s) also adopts what the start step leaves running (the health
    sidecar), so its children are not all the start: the start leads a
    process group of its own (tini makes one for it, to pass signals on),
    while an adopted process stays in the start's group. (Not the lowest
    pid: pids wrap, at 32768 on many machines.)
    """
    leaders = [(proc.started, proc.pid) for proc in _processes() if proc.parent == parent and proc.group == proc.pid]
    return min(leaders)[1] if leaders else None


def signal_container(process: subprocess.Popen[bytes], sig: int) -> None:
    """A signal as docker sends it: to the init, which passes it to the start's process group (tini -g).

    SIGKILL cannot be passed on: like the end of a container, it kills every process of the session.
    """
    if sig == signal.SIGKILL:
        for pid in [proc.pid for proc in _processes() if proc.session == process.pid]:
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


class Proc(NamedTuple):
    pid: int
    parent: int
    group: int
    session: int
    started: int  # clock ticks since boot


def _processes() -> list[Proc]:
    """Every process, from /proc/<pid>/stat."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2 :].split()
            found.append(Proc(int(entry.name), int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19])))
    return found


def main(argv: list[str]) -> None:
    """`python -m nbstack_devkit.container USER PATH... -- COMMAND...`: open the way to PATHs, then exec COMMAND.

    Run by start_container as root in a new mount namespace (`unshare --mount`).
    """
    separator = argv.index("--")
    user, paths, command = pwd.getpwnam(argv[0]), [Path(p) for p in argv[1:separator]], argv[separator + 1 :]
    open_the_way(paths, user)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
