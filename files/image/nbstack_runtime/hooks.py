"""Entry point of the startup hooks in /usr/local/bin/before-notebook.d/.

Each hook script is one line: `exec python3 -m nbstack_runtime.hooks <step>`.
docker-stacks' start.sh runs them in name order as the container user, then
unsets JUPYTER_ENV_VARS_TO_UNSET and execs Jupyter. A step that fails logs
why and exits non-zero; start.sh logs that and carries on, so one broken
integration (say, the warehouse) does not keep the notebook server down.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable

from . import gitsetup, jupyter_config, warehouse
from .logs import setup_logging
from .settings import Settings, SettingsError, without_secrets

log = logging.getLogger("nbstack.hooks")


def step_git(settings: Settings) -> bool:
    gitsetup.configure(settings)
    gitsetup.clone_if_missing(settings)
    return True


def step_warehouse(settings: Settings) -> bool:
    warehouse.configure(settings)
    return True


def step_jupyter(settings: Settings) -> bool:
    return jupyter_config.configure(settings)


def step_health(settings: Settings) -> bool:
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
        cwd="/",
    )
    log.info("health sidecar started (pid %d, port %d)", process.pid, settings.health_port)
    return True


STEPS: dict[str, Callable[[Settings], bool]] = {
    "git": step_git,
    "warehouse": step_warehouse,
    "jupyter": step_jupyter,
    "health": step_health,
}


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in STEPS:
        log.error("usage: python -m nbstack_runtime.hooks {%s}", ",".join(STEPS))
        return 2
    try:
        settings = Settings.from_environ()
        return 0 if STEPS[args[0]](settings) else 1
    except SettingsError as error:
        log.error("%s", error)
    except Exception as error:  # the hook must say what failed, in one line a person can act on
        log.error("startup step %r failed: %s", args[0], error)
        log.debug("details", exc_info=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
