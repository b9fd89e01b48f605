# shellcheck shell=bash
# nbstack startup hook. docker-stacks' start.sh *sources* it (a `*.sh` hook),
# as root, after its own root set-up and before it unsets the secrets and
# drops to the notebook user for Jupyter. The work is in the nbstack_runtime
# package (see its hooks module): validate every setting, hash the password,
# write the notebook user's files as that user, start the health sidecar.
# One Python process for all of it (each one costs an interpreter's start):
# once Jupyter may start (its config written, the sidecar running) it prints
# the work directory, and nothing else, on stdout. The clone goes on while
# Jupyter imports; Jupyter listens only once it has ended.
#
# Sourced, not executed, on purpose: run-hooks.sh logs a failing executable
# hook and carries on, and Jupyter would then start with its own defaults
# (token login, no sidecar). `exit` in a sourced hook ends start.sh itself, so
# any invalid setting stops the container before Jupyter ever listens. No
# `set -e` here: it would stay on in start.sh.
#
# Isolated, because this step runs as root while the working directory and
# HOME are the notebook user's: `-I` keeps the working directory off
# sys.path, skips the user's site-packages (and its .pth files) and ignores
# PYTHON* variables. Nothing the notebook user wrote is imported as root.
# (-I alone is enough: the working directory stays as start.sh left it.)

if ! nbstack_work_dir="$(python3 -I -m nbstack_runtime.hooks start)"; then
    echo "nbstack: container startup failed (see the errors above); stopping without starting Jupyter" >&2
    exit 1
fi

# Last, the working directory start.sh execs Jupyter in: the work directory
# (the clone). A terminal opened from JupyterLab starts in Jupyter's own
# working directory, so `git status` there works with no `cd`. Nothing runs
# as root after this but start.sh's own unset and sudo. A failed `cd` (the
# directory is missing) only leaves terminals in HOME; with start.sh's
# `set -e` on, it must not end the start.
if [ -n "${nbstack_work_dir}" ] && cd -- "${nbstack_work_dir}"; then
    echo "nbstack: Jupyter starts in ${nbstack_work_dir}" >&2
else
    echo "nbstack: could not enter the work directory; terminals open in ${PWD}" >&2
fi
unset nbstack_work_dir
