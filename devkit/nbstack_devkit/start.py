"""Start the notebook server on this machine the way the container starts it.

The image runs docker-stacks' start.sh; this machine has no start.sh, so the
local ECS agent, the image tests and the startup bench run this instead. It
is not in the image (which ships only what runs in the container) and
mimics start.sh for a non-root container user, in order:

1. run the hooks in a before-notebook.d directory in name order (executables
   are run; `*.sh` files are sourced by bash and their exported changes kept;
   a failing hook is logged and skipped, as run-hooks.sh does);
2. unset every variable named in JUPYTER_ENV_VARS_TO_UNSET (comma-separated),
   and the variable itself;
3. exec the command (default: `jupyter $DOCKER_STACKS_JUPYTER_CMD`, i.e.
   `jupyter lab`, plus NOTEBOOK_ARGS), so this process *becomes* the server,
   just as start.sh's `exec` does: its pid is the server's pid.

    python -m nbstack_devkit.start [--hooks-dir DIR] [--env-file FILE] [-- COMMAND ...]

--hooks-dir defaults to the image's build context, files/image/before-notebook.d.
--env-file adds KEY=VALUE lines (a task definition's environment and
secrets) to the inherited environment. The directory of the running Python
is put first on PATH so that the hooks' `python3` is this one. Run as root
(CI), `--ServerApp.allow_root=True` is added, since docker-stacks would have
dropped to jovyan instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from nbstack_runtime.settings import SECRET_VARIABLES

from .paths import HOOKS_DIR

log = logging.getLogger("nbstack.start")

#: The Dockerfile sets the same value (a test checks that).
DEFAULT_JUPYTER_ENV = {"JUPYTER_ENV_VARS_TO_UNSET": ",".join(SECRET_VARIABLES)}


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


def run_hooks(hooks_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Run every hook in `hooks_dir`; return the environment afterwards."""
    env = dict(environ)
    if not hooks_dir.is_dir():
        raise FileNotFoundError(f"hooks directory {hooks_dir} does not exist")
    for hook in sorted(hooks_dir.iterdir()):
        if hook.name.endswith(".sh"):
            log.info("Sourcing shell script: %s", hook)
            # Source in bash, then print the resulting environment NUL-separated.
            done = subprocess.run(
                ["bash", "-c", 'source "$1" >&2 && env -0', "run-hook", str(hook)],
                env=env,
                stdout=subprocess.PIPE,
                check=False,
            )
            if done.returncode == 0:
                env = dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
            else:
                log.error("%s has failed, continuing execution", hook)
        elif os.access(hook, os.X_OK) and hook.is_file():
            log.info("Running executable: %s", hook)
            if subprocess.run([str(hook)], env=env, check=False).returncode != 0:
                log.error("%s has failed, continuing execution", hook)
        else:
            log.info("Ignoring non-executable: %s", hook)
    return env


def unset_listed(environ: Mapping[str, str]) -> dict[str, str]:
    """start.sh's unset_explicit_env_vars."""
    env = dict(environ)
    for name in env.pop("JUPYTER_ENV_VARS_TO_UNSET", "").replace(",", " ").split():
        env.pop(name, None)
    return env


def server_command(environ: Mapping[str, str], command: Sequence[str] = ()) -> list[str]:
    """The command start-notebook.py would hand to start.sh."""
    if command:
        cmd = list(command)
    else:
        cmd = ["jupyter", environ.get("DOCKER_STACKS_JUPYTER_CMD", "lab")]
        cmd += shlex.split(environ.get("NOTEBOOK_ARGS", ""))
    if os.geteuid() == 0 and cmd[0] == "jupyter":
        cmd.append("--ServerApp.allow_root=True")
    return cmd


def prepare(hooks_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Hooks then unset: the environment the server is exec'd with."""
    env = dict(DEFAULT_JUPYTER_ENV)  # the Dockerfile's ENV, unless the caller overrides it
    env.update(environ)
    bin_dir = str(Path(sys.executable).parent)
    if env.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        env["PATH"] = os.pathsep.join(filter(None, [bin_dir, env.get("PATH", "")]))
    return unset_listed(run_hooks(hooks_dir, env))


def main(argv: list[str] | None = None) -> NoReturn:
    parser = argparse.ArgumentParser(description="Run the container's startup the way start.sh does.")
    parser.add_argument("--hooks-dir", type=Path, default=HOOKS_DIR)
    parser.add_argument("--env-file", type=Path, action="append", default=[])
    parser.add_argument("command", nargs=argparse.REMAINDER, help="after --: the command to exec")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    env = dict(os.environ)
    for env_file in args.env_file:
        env.update(read_env_file(env_file))
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    env = prepare(args.hooks_dir, env)
    cmd = server_command(env, command)
    log.info("Executing the command: %s", shlex.join(cmd))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(cmd[0], cmd, env)


if __name__ == "__main__":
    main()
