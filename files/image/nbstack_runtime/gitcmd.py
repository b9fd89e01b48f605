"""Running git from the runtime: never with a secret in its environment, never prompting."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from .settings import without_secrets


def git_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for git: no secrets, and never an interactive prompt."""
    env = without_secrets(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.pop("GIT_ASKPASS", None)
    env.pop("SSH_ASKPASS", None)
    if extra:
        env.update(extra)
    return env


def git(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    check: bool = True,
    input: str | None = None,  # noqa: A002 (subprocess.run's name)
) -> subprocess.CompletedProcess[str]:
    """Run git with captured output; raise CalledProcessError (with stderr) when `check`.

    git reads `input` on its standard input; without it, nothing (never the terminal).
    """
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=git_environ(env),
        capture_output=True,
        text=True,
        # A file name that is not valid text survives the round trip (os.fsencode).
        errors="surrogateescape",
        timeout=timeout,
        check=check,
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
    )


def git_in_own_group(
    args: Sequence[str], *, timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """git in a process group of its own, the whole group killed past `timeout` (then TimeoutExpired).

    subprocess.run kills only git itself on a timeout: a clone's remote
    helper (git-remote-https) and index-pack go on writing into the
    repository. Killing the group leaves nothing running there.
    """
    with subprocess.Popen(
        ["git", *args],
        cwd=cwd,
        env=git_environ(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="surrogateescape",
        start_new_session=True,  # a process group of its own (process_group= needs Python 3.11)
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, process.args, stdout, stderr)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
