"""Values of the instance stack that are derived rather than configured."""

from __future__ import annotations

import hashlib
from typing import Any

from ansible.errors import AnsibleFilterError

# Rules below this priority are left to people who add rules by hand.
FIRST_PRIORITY = 1000
# ALB listener rule priorities go up to 50000.
LAST_PRIORITY = 50000


def nbstack_rule_priority(prefix: str, taken: list[Any]) -> int:
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


def nbstack_memory_reservation(memory_mib: int) -> int:
    """MiB the container reserves: the instance's memory less what the OS and ECS agent need.

    Leaves 10 % (at least 512 MiB, at most 4 GiB) to the host; ECS reports a
    little less memory than the instance type's nominal size.
    """
    headroom = min(max(int(memory_mib) // 10, 512), 4096)
    return max(int(memory_mib) - headroom, 512)


class FilterModule:
    """Ansible filters of the instance role."""

    def filters(self) -> dict[str, Any]:
        return {
            "nbstack_rule_priority": nbstack_rule_priority,
            "nbstack_memory_reservation": nbstack_memory_reservation,
        }
