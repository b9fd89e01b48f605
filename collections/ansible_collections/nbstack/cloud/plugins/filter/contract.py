# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names of the contract that take values: stacks, their tags, the secrets' and the autosaves' folders.

The rules live in plugins/module_utils/contract.py; these filters hand them
to the roles. Documentation: stack_name.yml, stack_tags.yml, secrets_folder.yml and
autosave_folder.yml beside this file.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.nbstack.cloud.plugins.module_utils import contract


def stack_name(app, kind, prefix=""):
    """<app>-network, <app>-persistent, or a person's <app>-<prefix>."""
    try:
        return contract.stack_name(app, kind, prefix)
    except ValueError as error:
        raise AnsibleFilterError(str(error)) from error


def stack_tags(app, kind, prefix=""):
    """The tags of a stack of this kind."""
    return contract.stack_tags(app, kind, prefix)


def secrets_folder(app, prefix=""):
    """<app>/ (everyone's secrets) or <app>/<prefix>/ (one person's)."""
    return contract.secrets_folder(app, prefix)


def autosave_folder(prefix):
    """autosave/<prefix>/: where the container pushes a person's unsaved work."""
    return contract.autosave_folder(prefix)


class FilterModule:
    """Names of the contract."""

    def filters(self):
        return {
            "stack_name": stack_name,
            "stack_tags": stack_tags,
            "secrets_folder": secrets_folder,
            "autosave_folder": autosave_folder,
        }
