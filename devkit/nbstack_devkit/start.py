"""Start the notebook server on this machine the way the container starts it.

The image runs docker-stacks' start.sh under `tini -g`; this machine has no
start.sh, so the local ECS agent, the image tests and the startup bench run
the devkit's stand-in for it, `start.sh` next to this file (under tini too,
see container.py). Like start.sh it is bash: it sources the image's hook in
its own shell, unsets the variables JUPYTER_ENV_VARS_TO_UNSET names, drops
to the notebook user and execs the server (its header says how). It is not
in the image, which ships only what runs in the container.

This module prepares what start.sh gets from the image (its ENV and CMD),
and runs it from the command line:

    python -m nbstack_devkit.start [--hooks-dir DIR] [--env-file FILE] [-- COMMAND ...]

--hooks-dir defaults to the image's build context, files/image/before-notebook.d.
--env-file adds KEY=VALUE lines (a task definition's environment and
secrets) to the inherited environment. The directory of the running Python
is put first on PATH so that the hooks' `python3` is this one, and the
command's `jupyter-lab` this Python's. The command defaults to the image's
CMD, `jupyter-lab`.

The notebook user stands in for the image's jovyan: NB_USER when set, else
`nobody` (on every Debian system). Run as a non-root user (a developer's
laptop), there is nothing to drop to: everything runs as that user, as in
docker-stacks' non-root mode, and the secrets stay readable in the init's
environment; the isolation of secrets is only exercised when run as root.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from nbstack_runtime.settings import SECRET_VARIABLES

from .paths import HOOKS_DIR

#: The devkit's bash stand-in for docker-stacks' start.sh.
START_SH = Path(__file__).with_name("start.sh")
#: The image's CMD: what start.sh execs as the notebook user (a test checks the Dockerfile's).
IMAGE_CMD = ("jupyter-lab",)
#: The Dockerfile sets the same value (a test checks that).
DEFAULT_JUPYTER_ENV = {"JUPYTER_ENV_VARS_TO_UNSET": ",".join(SECRET_VARIABLES)}
#: The user that stands in for the image's jovyan when NB_USER is not set.
DEFAULT_NOTEBOOK_USER = "nobody"


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments ignored; no quoting rules."""
    env: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{path}:{number}: expected KEY=VALUE")
        env[key.strip()] = value
    return env


def environment(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` over the image's ENV (the secrets to unset, NB_USER), with this Python first on PATH."""
    env = dict(DEFAULT_JUPYTER_ENV)  # the Dockerfile's ENV, unless the caller overrides it
    env.setdefault("NB_USER", DEFAULT_NOTEBOOK_USER)  # the image's ENV names jovyan
    env.update(environ)
    bin_dir = str(Path(sys.executable).parent)
    if env.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        env["PATH"] = os.pathsep.join(filter(None, [bin_dir, env.get("PATH", "")]))
    return env


def server_command(command: Sequence[str] = ()) -> list[str]:
    """What start.sh execs as the notebook user: `command`, or the image's CMD."""
    return list(command or IMAGE_CMD)


def start_command(command: Sequence[str] = (), hooks_dir: Path = HOOKS_DIR) -> list[str]:
    """start.sh with the hooks and the server command, to run with `environment(...)`."""
    return ["bash", str(START_SH), str(hooks_dir), *server_command(command)]


def main(argv: list[str] | None = None) -> NoReturn:
    parser = argparse.ArgumentParser(description="Run the container's startup the way start.sh does.")
    parser.add_argument("--hooks-dir", type=Path, default=HOOKS_DIR)
    parser.add_argument("--env-file", type=Path, action="append", default=[])
    parser.add_argument("command", nargs=argparse.REMAINDER, help="after --: the command to exec")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    for env_file in args.env_file:
        env.update(read_env_file(env_file))
    env = environment(env)
    command = start_command(args.command[1:] if args.command[:1] == ["--"] else args.command, args.hooks_dir)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main()
