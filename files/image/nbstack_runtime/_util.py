"""Small helpers shared by the hooks: logging, private files, git invocations."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from .settings import without_secrets


def setup_logging() -> None:
    """Log to stderr, which the container runtime ships to CloudWatch."""
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def write_private(path: Path, content: str) -> None:
    """Write `content` to a 0600 file in a 0700 directory, atomically.

    The file is created with mode 0600 from the start (no window where it is
    world-readable) and renamed into place, so a reader never sees half a file.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, content.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


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
) -> subprocess.CompletedProcess[str]:
    """Run git with captured output; raise CalledProcessError (with stderr) when `check`."""
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=git_environ(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
        stdin=subprocess.DEVNULL,
    )
