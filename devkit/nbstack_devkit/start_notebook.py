"""The devkit's stand-in for docker-stacks' start-notebook.py, the image's CMD.

start.sh runs it last, as the notebook user (after sudo there, setpriv
here): it execs `jupyter $DOCKER_STACKS_JUPYTER_CMD` (default `lab`) with
NOTEBOOK_ARGS and its own arguments, as the image's does, so a container
start here pays the same second interpreter start. Standard library only,
run with `-I` (isolated: nothing from the notebook user's directories).
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Mapping, Sequence


def command(environ: Mapping[str, str], args: Sequence[str] = ()) -> list[str]:
    """What start-notebook.py execs (RESTARTABLE and JupyterHub aside)."""
    return ["jupyter", environ.get("DOCKER_STACKS_JUPYTER_CMD", "lab"), *shlex.split(environ.get("NOTEBOOK_ARGS", "")), *args]


def main() -> None:
    cmd = command(os.environ, sys.argv[1:])
    now = time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    # In the devkit's log format (bench/startup.py reads its time).
    print(f"{stamp},{int(now % 1 * 1000):03d} INFO nbstack.start-notebook: Executing the command: {shlex.join(cmd)}", file=sys.stderr, flush=True)
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main()
