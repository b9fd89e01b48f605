# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A digest of what decides up.yml's result: the settings given, and the code and templates that use them."""

from __future__ import annotations

DOCUMENTATION = r"""
name: inputs_digest
version_added: 0.1.0
short_description: Digest up.yml's inputs, so that a run can tell it has the last run's
description:
  - Hashes (sha256) the settings given in O(settings), as JSON with sorted keys, and the contents of every
    file under the paths given as terms (folders recursively, without Python byte-code caches), with
    each file's path relative to its term.
  - Also hashed - every C(-e) of the command line (a C(-e @FILE) by the file's bytes; one that names a
    C(vault_) key is left out), so that a variable given there is an input whatever its name; and the
    versions of ansible-core, amazon.aws and community.aws, whose modules the playbooks run.
  - Two runs with the same digest give the playbooks the same settings and the same code, so
    M(nbstack.cloud.short_way) may take the last whole run's result as this run's while AWS is unchanged.
  - Never pass a secret value in O(settings) (the digest is stored in a file); secrets are compared with
    Secrets Manager instead.
options:
  _terms:
    description: Files and folders whose contents are inputs (roles, playbooks, templates, plugins).
    type: list
    elements: path
    required: true
  settings:
    description: The settings, by name.
    type: dict
    required: true
  unhashed:
    description: Names whose C(-e NAME=VALUE) is left out of the digest (a flag that changes how a run goes, not what it applies).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Digest this run's inputs
  ansible.builtin.set_fact:
    last_run__inputs: "{{ lookup('nbstack.cloud.inputs_digest', 'roles', 'files/cloudformation', settings={'prefix': prefix}) }}"
"""

RETURN = r"""
_raw:
  description: One sha256 hex digest of all the terms and the settings together.
  type: list
  elements: str
"""

import hashlib
import json
import os

from ansible import context
from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.release import __version__ as ansible_version


def files_under(path):
    """Every file under path (or path itself), sorted, without byte-code caches."""
    if os.path.isfile(path):
        return [path]
    found = []
    for folder, folders, names in os.walk(path):
        folders[:] = sorted(name for name in folders if name != "__pycache__")
        found += [os.path.join(folder, name) for name in sorted(names) if not name.endswith(".pyc")]
    return found


def extra_vars(unhashed=()):
    """What the command line gave with -e, a file by its bytes, without what names a vault_ key or an unhashed name."""
    given = []
    for extra in context.CLIARGS.get("extra_vars") or ():
        if extra.partition("=")[0].strip() in unhashed:
            continue
        if extra.startswith("@"):
            try:
                with open(os.path.expanduser(extra[1:]), "rb") as handle:
                    given.append(hashlib.sha256(handle.read()).hexdigest())
            except OSError:
                given.append(extra)
        elif "vault_" not in extra:
            given.append(extra)
    return given


def versions():
    """The versions of the code outside this project that the playbooks run."""
    from ansible_collections.amazon.aws.plugins.module_utils.common import AMAZON_AWS_COLLECTION_VERSION
    from ansible_collections.community.aws.plugins.module_utils.common import COMMUNITY_AWS_COLLECTION_VERSION

    return [ansible_version, AMAZON_AWS_COLLECTION_VERSION, COMMUNITY_AWS_COLLECTION_VERSION]


def digest(paths, settings, given=(), running=()):
    hashed = hashlib.sha256(json.dumps([settings, list(given), list(running)], sort_keys=True, default=str).encode())
    for path in paths:
        if not os.path.exists(path):
            raise AnsibleLookupError(f"inputs_digest: {path} does not exist")
        for name in files_under(path):
            hashed.update(b"\0" + os.path.relpath(name, os.path.dirname(path)).encode() + b"\0")
            with open(name, "rb") as handle:
                hashed.update(hashlib.sha256(handle.read()).digest())
    return hashed.hexdigest()


class LookupModule(LookupBase):
    """One digest of the terms' files and the settings."""

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        return [digest(terms, self.get_option("settings"), extra_vars(self.get_option("unhashed")), versions())]
