# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which subnet each of the work stack's mount targets is in, from run to run.

A mount target's subnet is set when it is made: another subnet replaces it,
and CloudFormation makes the new one before it deletes the old one, which
EFS refuses in the same availability zone (MountTargetConflict). So each
subnet keeps the slot it has, a new one takes a free slot, and a run that
both drops and adds subnets drops first. Documentation:
mount_target_plan.yml beside this file.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

#: The work stack's parameters, one per mount target (files/cloudformation/work.yml).
SLOTS = ("MountTargetSubnet1", "MountTargetSubnet2", "MountTargetSubnet3")


def mount_target_plan(subnets, current=None):
    """{slots, dropped, first}: where each subnet goes, the subnets whose mount targets go, and a drops-only update.

    `current` is the work stack's parameters as found ({} or None: no stack yet).
    """
    if not isinstance(subnets, list) or not all(isinstance(subnet, str) for subnet in subnets):
        raise AnsibleFilterError(f"mount_target_plan expects a list of subnet ids, got {subnets!r}")
    wanted = sorted(set(subnets))
    found = {slot: (current or {}).get(slot) or "" for slot in SLOTS}
    kept = {slot: subnet if subnet in wanted else "" for slot, subnet in found.items()}
    slots = dict(kept)
    new = [subnet for subnet in wanted if subnet not in kept.values()]
    for slot in SLOTS:
        if not slots[slot] and new:
            slots[slot] = new.pop(0)
    dropped = [subnet for slot, subnet in found.items() if subnet and not kept[slot]]
    added = slots != kept
    return {"slots": slots, "dropped": dropped, "first": kept if dropped and added else None}


class FilterModule:
    """The work volume's derived values."""

    def filters(self):
        return {"mount_target_plan": mount_target_plan}
