"""Start the notebook server on this machine the way the container starts it.

The image runs docker-stacks' start.sh under `tini -g`; this machine has no
start.sh, so the local ECS agent, the image tests and the startup bench run
this instead (under tini too, see container.py). It is not in the image
(which ships only what runs in the container) and mimics start.sh, in order:

1. run the hooks in a before-notebook.d directory in name order, as the
   user this runs as (root in the image, since the task starts as root):
   executables are run, and a failing one is logged and skipped; `*.sh`
   files are sourced by bash and their exported changes and working
   directory kept (PWD; the exec below runs there, as start.sh's does), a
   failing one is logged and skipped, and one that calls `exit` ends the
   start (as `exit` in a sourced hook ends start.sh): this process exits
   with its code;
2. unset every variable named in JUPYTER_ENV_VARS_TO_UNSET (comma-separated),
   and the variable itself;
3. as root, drop to the notebook user NB_USER (start.sh: `sudo --user`),
   keeping HOME (the image's HOME is that user's home, as sudo's
   --set-home makes it);
4. exec the command (default: `jupyter $DOCKER_STACKS_JUPYTER_CMD`, i.e.
   `jupyter lab`, plus NOTEBOOK_ARGS), so this process *becomes* the server.

    python -m nbstack_devkit.start [--hooks-dir DIR] [--env-file FILE] [-- COMMAND ...]

--hooks-dir defaults to the image's build context, files/image/before-notebook.d.
--env-file adds KEY=VALUE lines (a task definition's environment and
secrets) to the inherited environment. The directory of the running Python
is put first on PATH so that the hooks' `python3` is this one.

The notebook user stands in for the image's jovyan: NB_USER when set, else
`nobody` (on every Debian system). Run as a non-root user (a developer's
laptop), there is nothing to drop to: everything runs as that user, as in
docker-stacks' non-root mode, and the secrets stay readable in the init's
environment; the isolation of secrets is only exercised when run as root.
"""

from __future__ import annotations

import argparse
import logging
import os
import pwd
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
#: The user that stands in for the image's jovyan when NB_USER is not set.
DEFAULT_NOTEBOOK_USER = "nobody"


class HookExit(Exception):
    """A sourced hook called `exit`: start.sh itself would end here, with this code."""

    def __init__(self, hook: Path, code: int) -> None:
        super().__init__(f"{hook} ended the start with exit code {code}")
        self.code = code


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
    """Run every hook in `hooks_dir`; return the environment afterwards.

    Its PWD is the working directory the hooks leave (this process's own
    when no sourced hook changes it), where start.sh would exec the command.
    """
    env = dict(environ)
    env["PWD"] = os.getcwd()  # what bash sets, whatever PWD the caller passed
    if not hooks_dir.is_dir():
        raise FileNotFoundError(f"hooks directory {hooks_dir} does not exist")
    for hook in sorted(hooks_dir.iterdir()):
        if hook.name.endswith(".sh"):
            log.info("Sourcing shell script: %s", hook)
            # Source in bash, then print the hook's status and the resulting
            # environment, NUL-separated. Nothing printed: the hook called
            # `exit`, which in start.sh ends start.sh.
            done = subprocess.run(
                ["bash", "-c", 'source "$1" >&2; printf "%s\\0" "$?"; env -0', "run-hook", str(hook)],
                env=env,
                cwd=env["PWD"],
                stdout=subprocess.PIPE,
                check=False,
            )
            if not done.stdout:
                raise HookExit(hook, done.returncode)
            status, _, printed = done.stdout.decode().partition("\0")
            if status == "0":
                env = dict(item.split("=", 1) for item in printed.split("\0") if "=" in item)
            else:
                log.error("%s has failed, continuing execution", hook)
        elif os.access(hook, os.X_OK) and hook.is_file():
            log.info("Running executable: %s", hook)
            if subprocess.run([str(hook)], env=env, cwd=env["PWD"], check=False).returncode != 0:
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
    return cmd


def drop_privileges(environ: Mapping[str, str]) -> dict[str, str]:
    """As root: become the notebook user (start.sh's `sudo --user $NB_USER`); return its environment.

    Not root: nothing to drop (docker-stacks' non-root mode), the environment unchanged.
    """
    env = dict(environ)
    if os.geteuid() != 0:
        log.warning("not root: Jupyter runs as uid %d; the init's environment keeps the secrets", os.geteuid())
        return env
    name = env.get("NB_USER") or DEFAULT_NOTEBOOK_USER
    user = pwd.getpwnam(name)
    if user.pw_uid == 0:
        raise ValueError(f"NB_USER {name!r} is root: the notebook user must be unprivileged")
    os.setgroups(os.getgrouplist(user.pw_name, user.pw_gid))
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    env.update(USER=user.pw_name, LOGNAME=user.pw_name)
    log.info("Running as %s (uid %d)", user.pw_name, user.pw_uid)
    return env


def prepare(hooks_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Hooks then unset: the environment the server is exec'd with."""
    env = dict(DEFAULT_JUPYTER_ENV)  # the Dockerfile's ENV, unless the caller overrides it
    env.setdefault("NB_USER", DEFAULT_NOTEBOOK_USER)  # the image's ENV names jovyan
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
    try:
        env = prepare(args.hooks_dir, env)
    except HookExit as stop:
        log.error("%s", stop)
        sys.exit(stop.code)
    if env.get("PWD") and env["PWD"] != os.getcwd():
        os.chdir(env["PWD"])  # a sourced hook's `cd` moves start.sh, and so the command
        log.info("Working directory: %s", env["PWD"])
    env = drop_privileges(env)
    cmd = server_command(env, command)
    log.info("Executing the command: %s", shlex.join(cmd))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(cmd[0], cmd, env)


if __name__ == "__main__":
    main()
