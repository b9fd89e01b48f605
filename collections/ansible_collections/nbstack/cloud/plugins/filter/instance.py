# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Values of the instance stack that are derived rather than configured.

Documentation: rule_priority.yml, memory_reservation.yml and
secret_parameters.yml beside this file.
"""

from __future__ import annotations

import hashlib
import json

from ansible.errors import AnsibleFilterError

from ansible_collections.nbstack.cloud.plugins.module_utils.contract import SECRETS

# Rules below this priority are left to people who add rules by hand.
FIRST_PRIORITY = 1000
# ALB listener rule priorities go up to 50000.
LAST_PRIORITY = 50000


def rule_priority(prefix, taken):
    """A free listener rule priority for a prefix.

    Starts at a point derived from the prefix (so a prefix usually lands on
    the same number) and walks forward past priorities already taken on the
    listener. The result is kept in the instance stack's parameters and reused
    on every later run, so it stays stable even when the walk was needed.
    """
    used = {int(priority) for priority in taken if str(priority).isdigit()}
    span = LAST_PRIORITY - FIRST_PRIORITY + 1
    start = int(hashlib.sha256(prefix.encode()).hexdigest(), 16) % span
    for step in range(span):
        priority = FIRST_PRIORITY + (start + step) % span
        if priority not in used:
            return priority
    raise AnsibleFilterError("The shared listener has no free rule priority left.")


def memory_reservation(memory_mib):
    """MiB the container reserves: the instance's memory less what the OS and ECS agent need.

    Leaves 10 % (at least 512 MiB, at most 4 GiB) to the host; ECS reports a
    little less memory than the instance type's nominal size.
    """
    headroom = min(max(int(memory_mib) // 10, 512), 4096)
    return max(int(memory_mib) - headroom, 512)


#: The instance template parameter that changes whenever a secret's value does.
SECRETS_VERSION_PARAMETER = "SecretsVersion"


def secrets_version(versions):
    """A digest of the secrets' current version ids: it changes exactly when a value does.

    ECS reads secrets when a task starts, so a new value reaches the server
    only through a new task: this digest is a label in the task
    definition, and a new one registers a new revision, which ECS rolls
    out. Version ids are not secret (Secrets Manager lists them to anyone
    who may describe the secret); values are never hashed.
    """
    pairs = sorted((secret.name, str((versions or {}).get(secret.name, ""))) for secret in SECRETS)
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()


def secret_parameters(arns, versions=None):
    """The instance template's secret parameters: each ARN, and the digest of the versions."""
    parameters = {secret.parameter: arns.get(secret.name, "") for secret in SECRETS}
    parameters[SECRETS_VERSION_PARAMETER] = secrets_version(versions)
    return parameters


class FilterModule:
    """Derived values of the instance stack."""

    def filters(self):
        return {
            "rule_priority": rule_priority,
            "memory_reservation": memory_reservation,
            "secret_parameters": secret_parameters,
        }
