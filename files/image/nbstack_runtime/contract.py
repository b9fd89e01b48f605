"""The names the container shares with the Ansible side, in one place.

The playbooks tag stacks and read the tags the sidecar writes, pass the
secrets the startup reads, validate the prefix, and list autosave branches;
they hold a copy of these names (a test compares the two). So this module
stays plain: constants and tiny functions, nothing imported.
"""

from __future__ import annotations

#: Tags on every stack (and the person's auto scaling group): which app, whose.
APP_TAG = "nbstack:app"
PREFIX_TAG = "nbstack:prefix"
#: Tags the idle watcher writes on the person's ECS service; status.yml reads them.
LAST_ACTIVITY_TAG = "nbstack:last-activity"
STOPPED_AT_TAG = "nbstack:stopped-at"
STOP_REASON_TAG = "nbstack:stop-reason"
#: The outcome of the latest autosave, on the person's ECS service (down.yml reads it):
#: `<saved|nothing|failed> <UTC time YYYY-MM-DDTHH:MM:SSZ>[ <branch>][ left-out=<n>][ <commit>]`;
#: `running <UTC time>` once the server answers (the time it started), `stopping <UTC time>`
#: while an idle stop saves; a record replaces either.
AUTOSAVE_TAG = "nbstack:autosave"

#: Secret variables. The hooks read them, then docker-stacks' start.sh unsets
#: them (the Dockerfile lists them in JUPYTER_ENV_VARS_TO_UNSET) so that the
#: Jupyter server, its kernels and terminals never see them.
SECRET_VARIABLES: tuple[str, ...] = (
    "NBSTACK_GIT_TOKEN",
    "NBSTACK_NOTEBOOK_PASSWORD",
    "NBSTACK_WAREHOUSE_PASSWORD",
    "NBSTACK_API_TOKEN",
)

_PREFIX = r"[a-z][a-z0-9-]{0,27}"
#: A person's prefix (a string: compile it where it is used).
PREFIX_PATTERN = rf"^{_PREFIX}\Z"

#: Autosave branches: autosave/<prefix>/<UTC time>; the time sorts by name.
AUTOSAVE_BRANCH_PREFIX = "autosave/"
AUTOSAVE_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
#: A whole autosave branch name (the stamp as AUTOSAVE_STAMP_FORMAT writes it).
AUTOSAVE_BRANCH_PATTERN = rf"^{AUTOSAVE_BRANCH_PREFIX}{_PREFIX}/[0-9]{{8}}T[0-9]{{6}}Z\Z"


def autosave_branch(prefix: str, stamp: str) -> str:
    """The branch an autosave of `prefix` at `stamp` goes to (`*` as stamp: a pattern for all)."""
    return f"{AUTOSAVE_BRANCH_PREFIX}{prefix}/{stamp}"
