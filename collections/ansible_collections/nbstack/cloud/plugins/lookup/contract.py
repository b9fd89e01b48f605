# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The names nbstack's layers agree on, for roles and playbooks."""

from __future__ import annotations

DOCUMENTATION = r"""
name: contract
version_added: 0.1.0
short_description: The names nbstack's layers agree on
description:
  - Returns values of the collection's contract (C(plugins/module_utils/contract.py)),
    the one place the roles take them from.
  - C(prefix_pattern) and C(app_name_pattern) are the regular expressions a
    prefix and an app name must match, whole; they end in C(\Z), not C($),
    so that C(match) refuses a trailing newline.
  - C(secrets) lists each secret as a dict with C(name) (under
    C(<app>/<prefix>/) in Secrets Manager), C(vault_key) (empty for a secret
    up.yml generates, the API token), C(variable) (in the
    container) and C(parameter) (of the instance template).
  - C(tag_keys) names the tag keys by role, C(app), C(prefix), C(kind),
    C(last_activity), C(stopped_at) and C(stop_reason).
  - C(user_prefix) is the default prefix, the local user name lower-cased,
    with characters outside C([a-z0-9-]) turned into C(-).
options:
  _terms:
    description: Names of the values.
    type: list
    elements: str
    required: true
    choices: [prefix_pattern, app_name_pattern, secrets, tag_keys, user_prefix]
"""

EXAMPLES = r"""
- name: Check the prefix
  ansible.builtin.assert:
    that: prefix is match(lookup('nbstack.cloud.contract', 'prefix_pattern'))

- name: List the vault keys
  ansible.builtin.debug:
    msg: "{{ lookup('nbstack.cloud.contract', 'secrets') | map(attribute='vault_key') }}"
"""

RETURN = r"""
_raw:
  description: One value per name.
  type: list
"""

import getpass

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.nbstack.cloud.plugins.module_utils import contract

VALUES = {
    "prefix_pattern": lambda: contract.PREFIX_PATTERN,
    "app_name_pattern": lambda: contract.APP_NAME_PATTERN,
    "secrets": lambda: [secret._asdict() for secret in contract.SECRETS],
    "tag_keys": lambda: {
        "app": contract.APP_TAG,
        "prefix": contract.PREFIX_TAG,
        "kind": contract.KIND_TAG,
        "last_activity": contract.LAST_ACTIVITY_TAG,
        "stopped_at": contract.STOPPED_AT_TAG,
        "stop_reason": contract.STOP_REASON_TAG,
    },
    "user_prefix": lambda: contract.prefix_from_user_name(getpass.getuser()),
}


class LookupModule(LookupBase):
    """Values of the contract by name."""

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        unknown = [term for term in terms if term not in VALUES]
        if unknown:
            raise AnsibleLookupError(f"No such contract value: {', '.join(unknown)}; one of {', '.join(VALUES)}")
        return [VALUES[term]() for term in terms]
