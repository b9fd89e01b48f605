# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The names nbstack's layers agree on, for the Ansible side.

Roles, modules and filters take tag keys, stack and secret names, the
prefix pattern and the autosave branch pattern from here. The notebook
container has its own copy (files/image/nbstack_runtime/contract.py: the
image ships without this collection), the static templates spell the tag
keys and patterns out, and unit tests keep all three in agreement.
"""

from __future__ import annotations

import re
from collections import namedtuple

#: Every stack, secret and tagged resource of one team carries the app name.
APP_TAG = "nbstack:app"
#: A person's stack, its secrets and its resources carry the person's prefix.
PREFIX_TAG = "nbstack:prefix"
#: What a stack is: one of KINDS.
KIND_TAG = "nbstack:kind"
#: A person has an instance stack (<app>-<prefix>: the server, removed by
#: down.yml) and a work stack (<app>-<prefix>-work: their files, kept until
#: down.yml -e purge_work=true).
KINDS = ("network", "persistent", "instance", "work")
#: The kinds that belong to one person (named and tagged with the prefix).
PERSONAL_KINDS = ("instance", "work")
#: A person's instances carry the notebook image their warm-up pulls (the
#: instance stack's group propagates it; the user data reads it from the
#: instance metadata).
IMAGE_TAG = "nbstack:image"

#: The container instance attribute a person's instance registers with
#: (ECS_INSTANCE_ATTRIBUTES in the launch template's user data), which the
#: task definition's memberOf constraint matches.
PREFIX_ATTRIBUTE = "nbstack.prefix"

#: Tags the notebook's sidecar writes on the person's ECS service.
LAST_ACTIVITY_TAG = "nbstack:last-activity"
STOPPED_AT_TAG = "nbstack:stopped-at"
STOP_REASON_TAG = "nbstack:stop-reason"
#: The outcome of the latest autosave, written by the container after every
#: save: "<saved|nothing|failed> <UTC time YYYY-MM-DDTHH:MM:SSZ>[ <branch>][ left-out=<n>][ <commit>]";
#: "running <UTC time>" once the server answers (the time it started), "stopping <UTC time>"
#: while an idle stop saves; a record replaces either.
AUTOSAVE_TAG = "nbstack:autosave"
#: Removed when up.yml starts a stopped server again.
STOP_TAGS = (STOPPED_AT_TAG, STOP_REASON_TAG)

# Patterns end in \Z, never $: Python's $ also matches before a final
# newline, so "alice\n" would pass a ^...$ check (re.match, Jinja's match test).
# CloudFormation matches a template's AllowedPattern against the whole value;
# the templates spell the same patterns as ^...$ (tests compare the bodies).
_PREFIX = r"[a-z][a-z0-9-]{0,27}"
#: A person's prefix: the stack suffix, the URL path and the secrets' folder.
PREFIX_PATTERN = rf"^{_PREFIX}\Z"
#: The team's app name: prefixes every stack and secret name.
APP_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,30}\Z"

#: Prefixes that are no person's: <app>-<prefix> would name a shared stack of
#: this app (persistent, network), or, ending in -persistent or -network, a
#: shared stack of another app whose name is <app>-<start of the prefix>;
#: ending in -work, it would name the work stack of the person whose prefix
#: is its start. down.yml deletes the stack named <app>-<prefix>.
RESERVED_PREFIXES = tuple(kind for kind in KINDS if kind != "instance")

#: Branches the container pushes unsaved work to: autosave/<prefix>/<UTC stamp>.
AUTOSAVE_BRANCH_PREFIX = "autosave/"
AUTOSAVE_BRANCH_PATTERN = rf"^{AUTOSAVE_BRANCH_PREFIX}{_PREFIX}/[0-9]{{8}}T[0-9]{{6}}Z\Z"


#: One secret: its name under <app>/<prefix>/, the vault key holding its
#: value ("" for a secret up.yml generates in Secrets Manager and keeps
#: there), the container variable it reaches, the instance template
#: parameter carrying its ARN.
Secret = namedtuple("Secret", ["name", "vault_key", "variable", "parameter"])
SECRETS = (
    Secret("github-token", "vault_github_token", "NBSTACK_GIT_TOKEN", "GitTokenSecretArn"),
    Secret("notebook-password", "vault_notebook_password", "NBSTACK_NOTEBOOK_PASSWORD", "NotebookPasswordSecretArn"),
    Secret("warehouse-password", "vault_warehouse_password", "NBSTACK_WAREHOUSE_PASSWORD", "WarehousePasswordSecretArn"),
    Secret("api-token", "", "NBSTACK_API_TOKEN", "ApiTokenSecretArn"),
)


def stack_name(app, kind, prefix=""):
    """<app>-network, <app>-persistent, or a person's <app>-<prefix> and <app>-<prefix>-work."""
    if kind not in KINDS:
        raise ValueError(f"unknown stack kind {kind!r}; one of {', '.join(KINDS)}")
    if kind == "instance":
        return f"{app}-{prefix}"
    if kind == "work":
        return f"{app}-{prefix}-work"
    return f"{app}-{kind}"


def stack_tags(app, kind, prefix=""):
    """The tags a stack of this kind carries (CloudFormation copies them to its resources)."""
    tags = {APP_TAG: app, KIND_TAG: kind}
    if kind in PERSONAL_KINDS:
        tags[PREFIX_TAG] = prefix
    return tags


def stack_kind(name, tags, app):
    """What a stack is for the app (one of KINDS), or None when it is not one of the app's.

    Stacks made before the kind tag existed are known by their prefix tag
    (a person's) or their name (the shared ones) until their next update.
    """
    if tags.get(APP_TAG) != app:
        return None
    kind = tags.get(KIND_TAG)
    if kind in KINDS:
        return kind
    if tags.get(PREFIX_TAG):
        return "instance"
    return next((shared for shared in ("network", "persistent") if name == stack_name(app, shared)), None)


def reserved_prefix(text):
    """The shared stack kind a prefix would name (see RESERVED_PREFIXES), or "" when it names none."""
    for kind in RESERVED_PREFIXES:
        if text == kind or str(text).endswith("-" + kind):
            return kind
    return ""


def secrets_folder(app, prefix=""):
    """<app>/ (every person's secrets), or <app>/<prefix>/ (one person's)."""
    return f"{app}/{prefix}/" if prefix else f"{app}/"


def group_parameter(group, key):
    """The template parameter a setting of a group becomes: warehouse.role_arn is WarehouseRoleArn."""
    return "".join(part.capitalize() for part in f"{group}_{key}".split("_"))


def prefix_from_user_name(name):
    """The default prefix for a local user name: lower-cased, other characters turned into "-"."""
    return re.sub(r"[^a-z0-9-]", "-", name.lower())


def autosave_folder(prefix):
    """Where a person's autosave branches are: autosave/<prefix>/."""
    return f"{AUTOSAVE_BRANCH_PREFIX}{prefix}/"


def autosave_record(value):
    """The AUTOSAVE_TAG value as a dict (status, at, branch, left_out, commit), or None when there is none.

    A status this side does not know is kept as it is; callers treat only
    "saved" and "nothing" as a save that succeeded.
    """
    parts = str(value or "").split()
    if not parts:
        return None
    record = {"status": parts[0], "at": "", "branch": "", "left_out": 0, "commit": ""}
    for part in parts[1:]:
        if len(part) in (40, 64) and all(c in "0123456789abcdef" for c in part):
            record["commit"] = part  # written since the record named its commit; "" in an older one
        elif part.startswith("left-out=") and part[len("left-out="):].isdigit():
            record["left_out"] = int(part[len("left-out="):])
        elif part.startswith(AUTOSAVE_BRANCH_PREFIX):
            record["branch"] = part
        elif not record["at"]:
            record["at"] = part
    return record
