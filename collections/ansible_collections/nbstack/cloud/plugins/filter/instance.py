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


#: MiB the ECS agent keeps out of what it registers (ECS_RESERVED_MEMORY in
#: the instance template's user data): the agent, Docker and the host's own
#: services.
AGENT_RESERVED_MIB = 256
#: What the reservation leaves to the kernel: a share of the advertised
#: memory and MiB besides.
KERNEL_SHARE = 0.06
KERNEL_MIB = 256


def memory_reservation(memory_mib):
    """MiB the container reserves: less than ECS registers on any instance of the type.

    ECS registers the memory the kernel reports (MemTotal) less
    ECS_RESERVED_MEMORY. MemTotal is below the advertised size by the
    kernel's page tables (about 1.6 %), its code and firmware reservations:
    207 MiB on an m4.large in the ECS documentation (7985 of 8192), 513 MiB
    on an inf1.xlarge (7679), about 2.5 % on the largest types; it is taken
    to be at least 95 % of the advertised memory less 256 MiB. The
    reservation leaves 6 % and 256 MiB to the kernel and ECS_RESERVED_MEMORY
    to the agent: a point of the advertised memory below that bound, so the
    task is placed on every type, from 2 GiB to the largest (the unit tests
    hold the table). The reservation is a soft limit (MemoryReservation): it
    decides placement only, and the container may use the instance's whole
    memory beyond it, so the margin costs nothing. A type too small to leave
    the container 512 MiB gets less, which the instance template's MinValue
    refuses and preflight reports.
    """
    return int(int(memory_mib) * (1 - KERNEL_SHARE)) - KERNEL_MIB - AGENT_RESERVED_MIB


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
