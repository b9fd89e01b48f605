"""The container's startup, run by the one hook in /usr/local/bin/before-notebook.d/.

The task starts as root (the task definition's `user` is 0), so docker-stacks'
start.sh, and tini before it as PID 1, run as root: their environment holds
the secrets ECS injected, and /proc/<pid>/environ of a root process is not
readable by the notebook user. start.sh sources `10-nbstack-start.sh` as
root, which runs `python3 -I -m nbstack_runtime.hooks start` (this module),
the only Python the hook starts:

1. **start** (root): read and validate every setting, check that the Jupyter
   password is set and hash it (argon2). Any problem: one log line per
   setting, exit 1; the hook then ends start.sh, so the container stops
   with Jupyter never started (fail closed).
2. **configure** (the notebook user, NB_USER): a child started with the
   notebook user's ids and an environment without any secret (its
   interpreter starts while root hashes); it receives the git token, the
   warehouse password, the password *hash* and the API token's *digest* on
   stdin (never on a command line or in an environment). It writes
   Jupyter's config (0600, owned by the user) and starts the health sidecar
   (the user's process, no secret in its environment); a failure of either
   stops the container, as an invalid setting does. The plaintext Jupyter
   password and API token never leave the root process.
3. Once both have succeeded, the child says so on its standard output
   (READY; it has first recorded its pid in `startup.pid`) and goes on, as
   the notebook user, with the integrations: git (identity, credentials,
   the clone) and the warehouse files. A failure there is logged and left
   out. **start** then prints the validated work directory on its standard
   output (the only thing it prints there: logs go to stderr, and so does
   the child's and the sidecar's output) and exits; the hook makes that
   directory start.sh's working directory, so that Jupyter, and every
   terminal it opens, starts in the clone.
4. So Jupyter imports (most of a start) while the repository clones, and
   listens only once the clone has ended: the server extension, which
   Jupyter loads before it binds its port, waits while `startup.pid` names
   a live process (nbstack_runtime.extension.wait_for_the_start_step).
   Nobody can make a file in a directory a clone is still filling, so a
   clone stopped half-way (marked nbstack.cloneIncomplete, see gitsetup)
   holds nothing of anyone's, is not autosaved, and is made again at the
   next start.

Neither process imports jupyter_server: they only validate, hash and write
files, and Jupyter's own import is most of what a start costs.

start.sh then unsets JUPYTER_ENV_VARS_TO_UNSET (the secret variables) and
execs Jupyter as NB_USER with sudo, so nothing the notebook user runs has a
secret in its environment. Started as a non-root user instead (a developer's
`docker run`, the devkit off root), the same steps run as that user, with a
warning: then PID 1's environment keeps the secrets where the user can read it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import pwd
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import NoReturn

from . import gitsetup, health, jupyter_config, warehouse
from .logs import setup_logging
from .settings import SECRET_VARIABLES, Secret, Settings, SettingsError, without_secrets

log = logging.getLogger("nbstack.hooks")

#: docker-stacks' notebook user, as its image sets NB_USER.
DEFAULT_NB_USER = "jovyan"
#: docker-stacks' root-mode options that would give the notebook user more
#: than its own files: refused, so a task definition cannot turn them on.
REFUSED_ROOT_OPTIONS = ("GRANT_SUDO",)
#: What the notebook user's step writes to the start step once Jupyter may start.
READY = b"nbstack-ready\n"


class StartupError(RuntimeError):
    """The container must not start; the message names the setting and the fix."""


def check_root_options(environ: Mapping[str, str]) -> None:
    for name in REFUSED_ROOT_OPTIONS:
        if environ.get(name, "").strip().lower() in ("1", "yes"):
            raise StartupError(f"{name} is set: the notebook user must not get sudo; remove {name} from the task")


def check_secrets_unset(environ: Mapping[str, str]) -> None:
    """The image's list of what start.sh unsets before Jupyter must still name every secret.

    Jupyter, and so every kernel and terminal, gets the container's
    environment minus JUPYTER_ENV_VARS_TO_UNSET (the Dockerfile sets it); a
    task that overrides the list would hand them the secrets.
    """
    listed = set(filter(None, re.split(r"[,\s]+", environ.get("JUPYTER_ENV_VARS_TO_UNSET", ""))))
    # start.sh hands each name to `unset`, where one with a subscript (a[$(cmd)]) would run code as root.
    odd = sorted(name for name in listed if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name))
    if odd:
        raise StartupError(
            f"JUPYTER_ENV_VARS_TO_UNSET names {', '.join(map(repr, odd))}, not variable names: start.sh would hand "
            "them to `unset`; remove JUPYTER_ENV_VARS_TO_UNSET from the task (the image sets it)"
        )
    missing = [name for name in SECRET_VARIABLES if name not in listed]
    if missing:
        raise StartupError(
            f"JUPYTER_ENV_VARS_TO_UNSET does not name {', '.join(missing)}: Jupyter would keep them in its "
            "environment; remove JUPYTER_ENV_VARS_TO_UNSET from the task (the image sets it)"
        )


def notebook_user(environ: Mapping[str, str]) -> pwd.struct_passwd:
    name = environ.get("NB_USER", "").strip() or DEFAULT_NB_USER
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        raise StartupError(f"NB_USER names {name!r}, which is not a user in this container") from None
    if user.pw_uid == 0:
        raise StartupError(f"NB_USER {name!r} is root: the notebook user must be unprivileged")
    return user


def check_secret_values(settings: Settings) -> None:
    """Refuse a missing Jupyter password and a guessable API token (before anything starts)."""
    if not settings.notebook_password:
        raise StartupError(
            "NBSTACK_NOTEBOOK_PASSWORD is empty: Jupyter does not start without a password; "
            "set the notebook password secret and start the task again"
        )
    token = settings.api_token.value
    if token and len(token) < jupyter_config.API_TOKEN_MIN_LENGTH:
        raise StartupError(
            f"NBSTACK_API_TOKEN has fewer than {jupyter_config.API_TOKEN_MIN_LENGTH} characters: a short token "
            "could be guessed; store a longer random one in the API token secret (up.yml -e rotate_api_token=true "
            "makes a new one) and start the task again"
        )


def secret_payload(settings: Settings) -> dict[str, str]:
    """What the notebook user's files need from the secrets; the Jupyter password only as its hash."""
    check_secret_values(settings)
    token = settings.api_token.value
    return {
        "git_token": settings.git_token.value,
        "warehouse_password": settings.warehouse_password.value,
        "notebook_password_hash": jupyter_config.hash_password(settings.notebook_password.value),
        "api_token_hash": jupyter_config.hash_api_token(token) if token else "",
    }


def start(environ: Mapping[str, str]) -> int:
    """Step 1 (root): validate, hash, run `configure` as the notebook user, then print the work directory."""
    check_root_options(environ)
    check_secrets_unset(environ)
    settings = Settings.from_environ(environ)
    check_secret_values(settings)
    child_env = without_secrets(environ)
    child_env.pop("JUPYTER_ENV_VARS_TO_UNSET", None)
    uid = gid = groups = None
    if os.geteuid() == 0:
        user = notebook_user(environ)
        uid, gid, groups = user.pw_uid, user.pw_gid, os.getgrouplist(user.pw_name, user.pw_gid)
        child_env.update(USER=user.pw_name, LOGNAME=user.pw_name)
        log.info("preparing the notebook user's files as %s (uid %d)", user.pw_name, user.pw_uid)
    else:
        log.warning(
            "started as uid %d, not root: the task's secrets stay readable in this container's PID 1 "
            "environment; run the task as root (user 0), which drops to the notebook user itself",
            os.geteuid(),
        )
    # Started before the password is hashed: its interpreter starts while
    # argon2 runs here (about as long). It reads nothing but stdin until then.
    child = subprocess.Popen(
        [sys.executable, "-m", "nbstack_runtime.hooks", "configure"],
        stdin=subprocess.PIPE,
        # Its READY line only (see tell_root_ready). The hook reads this
        # process's standard output to its end: nothing else may hold it.
        stdout=subprocess.PIPE,
        env=child_env,
        cwd="/",
        user=uid,
        group=gid,
        extra_groups=groups,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        payload = json.dumps(secret_payload(settings)).encode()
    except BaseException:
        child.kill()  # nothing reached it: it has written nothing yet
        child.wait()
        raise
    with contextlib.suppress(BrokenPipeError):  # it failed before reading: its exit code says so below
        child.stdin.write(payload)
        child.stdin.close()
    for line in child.stdout:
        if line == READY:
            # Jupyter's config is written and the sidecar runs; the child
            # goes on cloning while Jupyter starts, which waits for it.
            child.stdout.close()
            print(settings.work_dir, flush=True)  # where the hook moves start.sh, and so Jupyter
            return 0
        sys.stderr.buffer.write(line)  # nothing else is printed there; a stray line goes to the log
    code = child.wait()
    log.error(
        "the notebook user's start step ended (exit code %d) before Jupyter's config and sidecar were ready", code
    )
    return code or 1


def configure(settings: Settings, payload: Mapping[str, str], ready: Callable[[], None] = lambda: None) -> None:
    """Step 2 (the notebook user): Jupyter config and the sidecar, `ready()`, then git and warehouse."""
    settings = dataclasses.replace(
        settings,
        git_token=Secret(payload.get("git_token", "")),
        warehouse_password=Secret(payload.get("warehouse_password", "")),
    )
    # What makes the server safe to start (its config with the password hash)
    # and visible (the sidecar) must succeed, and comes first: root execs
    # Jupyter only once both have (`ready`).
    jupyter_config.configure(settings, payload["notebook_password_hash"], payload.get("api_token_hash", ""))
    start_sidecar(settings)
    ready()
    # Then, while Jupyter imports (most of its start), the integrations. One
    # that fails (a clone the network or the token refuses, the warehouse
    # files) is logged and left out: the server is still of use and its log
    # says what to fix. Jupyter does not listen before this process has
    # ended (the extension waits for it, see the module docstring).
    for name, step in (("git", _git), ("warehouse", warehouse.configure)):
        try:
            step(settings)
        except Exception as error:
            log.error("startup step %r failed, the server starts without it: %s", name, error)


def tell_root_ready(settings: Settings) -> None:
    """The notebook user's step: Jupyter may be started (its config is written, the sidecar runs).

    Recorded first, in the pid file the extension reads, that this process
    goes on with the clone; then READY on the pipe to the start step, and
    standard output moves to the log (the start step reads no further).
    """
    health.write_pid_file(settings.startup_pid_file)
    sys.stdout.flush()
    os.write(sys.stdout.fileno(), READY)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


def _git(settings: Settings) -> None:
    gitsetup.configure(settings)
    gitsetup.clone_if_missing(settings)


def start_sidecar(settings: Settings) -> None:
    """Start the sidecar in the background, with no secret in its environment."""
    settings.jupyter_pid_file.unlink(missing_ok=True)  # a stale file would report a dead server as alive
    settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nbstack_runtime.sidecar",
            "--port",
            str(settings.health_port),
            "--pid-file",
            str(settings.jupyter_pid_file),
            "--own-pid-file",
            str(settings.health_pid_file),
            "--idle-watcher",
        ],
        env=without_secrets(os.environ),
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr.fileno(),  # never the pipe to the start step: it outlives it
        cwd="/",
    )
    log.info("health sidecar started (pid %d, port %d)", process.pid, settings.health_port)


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args = sys.argv[1:] if argv is None else argv
    if args not in (["start"], ["configure"]):
        log.error("usage: python -m nbstack_runtime.hooks {start,configure}")
        return 2
    try:
        if args == ["start"]:
            return start(os.environ)
        payload = json.loads(sys.stdin.buffer.read() or b"{}")
        settings = Settings.from_environ()
        try:
            configure(settings, payload, ready=lambda: tell_root_ready(settings))
        finally:
            settings.startup_pid_file.unlink(missing_ok=True)
        return 0
    except SettingsError as error:
        for problem in error.problems:  # one line each: CloudWatch shows a line per event
            log.error("invalid container setting: %s", problem)
    except StartupError as error:
        log.error("%s", error)
    except Exception as error:  # the container's log must say what failed, in one line a person can act on
        log.error("container startup failed in step %r: %s", args[0], error)
        log.debug("details", exc_info=True)
    return 1


def exit_now(code: int) -> NoReturn:
    """End the process without the interpreter's teardown (output flushed first).

    The root start step's exit is on the way to Jupyter: the hook's command
    substitution waits for it, and freeing its modules (argon2's among them)
    takes about 15 ms. It holds nothing else then (no thread, no open file of
    its own; the notebook user's step was handed its input and goes on).
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    if sys.argv[1:] == ["start"]:
        exit_now(main())
    sys.exit(main())
