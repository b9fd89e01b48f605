# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The network's derived values: the subnets of the created VPC, the load balancer's ingress rules, what is wrong
with the given subnets.

Documentation: subnet_cidrs.yml, ingress_rules.yml and given_subnet_problems.yml beside this file.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.nbstack.cloud.plugins.plugin_utils.network import subnet_plan


def subnet_cidrs(vpc_cidr):
    """{public: [two CIDRs], private: [two CIDRs]} inside the VPC's range."""
    try:
        return subnet_plan(vpc_cidr)
    except ValueError as error:
        raise AnsibleFilterError(f"No subnet plan for {vpc_cidr}: {error}") from error


def ingress_rules(cidrs, ports):
    """One TCP rule per range, on the listener ports, in ec2_security_group's format."""
    rules = []
    for cidr in cidrs:
        key = "cidr_ipv6" if ":" in str(cidr) else "cidr_ip"
        rules.append(
            {
                "proto": "tcp",
                "ports": [int(port) for port in ports],
                key: str(cidr),
                "rule_desc": "nbstack: allowed address range",
            }
        )
    return rules


#: DescribeAvailabilityZones' ZoneType of a region's own zones (the others: local-zone, wavelength-zone).
AVAILABILITY_ZONE = "availability-zone"

#: What each subnet setting is for, which is why one zone may hold only one of its subnets.
SUBNET_USES = {
    # An Application Load Balancer: one subnet per zone, in two zones or more (CreateLoadBalancer).
    "notebook_public_subnet_ids": "the load balancer takes one subnet per zone, in two zones or more",
    # EFS: one mount target per zone (CreateMountTarget's MountTargetConflict).
    "notebook_private_subnet_ids": "the work volume has one mount target per zone",
}


def given_subnet_problems(found, vpc_id, public, private, region="", zones=None):
    """What keeps the given subnets from being used, one problem per subnet or zone.

    A subnet must exist, be in the given VPC and be given once; no two of
    one list may share a zone; the public ones must be in zones of one type
    and not on an Outpost; and every private subnet's zone must have a
    public one. `found` is ec2_vpc_subnet_info's `subnets` for the given IDs,
    `zones` aws_az_info's `availability_zones` for their zones (a zone it
    lacks counts as an Availability Zone).
    """
    by_id = {subnet["id"]: subnet for subnet in found or []}
    zone_type = {zone["zone_name"]: zone.get("zone_type", AVAILABILITY_ZONE) for zone in zones or []}
    where = f" in {region}" if region else ""
    problems = []
    in_zones: dict[str, dict[str, list[str]]] = {}
    for setting, ids in (("notebook_public_subnet_ids", public), ("notebook_private_subnet_ids", private)):
        in_zone = in_zones[setting] = {}
        # An ID that is not a text is the settings' own check's to report.
        given = [subnet_id for subnet_id in ids if isinstance(subnet_id, str)]
        for subnet_id in dict.fromkeys(given):
            subnet = by_id.get(subnet_id)
            if given.count(subnet_id) > 1:
                problems.append(f"{setting}: {subnet_id} is given {given.count(subnet_id)} times; give each subnet once")
            if subnet is None:
                problems.append(f"{setting}: {subnet_id} does not exist{where}; set the ID of a subnet of {vpc_id}")
            elif subnet["vpc_id"] != vpc_id:
                problems.append(
                    f"{setting}: {subnet_id} is in {subnet['vpc_id']}, not in notebook_vpc_id {vpc_id}; "
                    f"set the ID of a subnet of {vpc_id}"
                )
            elif setting == "notebook_public_subnet_ids" and subnet.get("outpost_arn"):
                # CreateLoadBalancer: an Application Load Balancer on an Outpost takes that one subnet.
                problems.append(
                    f"{setting}: {subnet_id} is on an Outpost ({subnet['outpost_arn']}), and a load balancer takes an"
                    f" Outpost subnet only on its own; set the ID of a subnet of {vpc_id} in one of the region's zones"
                )
            else:
                in_zone.setdefault(subnet["availability_zone"], []).append(subnet_id)
        for zone, shared in sorted(in_zone.items()):
            if len(shared) > 1:
                problems.append(
                    f"{setting}: {', '.join(shared[:-1])} and {shared[-1]} are in the same zone, {zone}, and "
                    f"{SUBNET_USES[setting]}; keep one subnet of each zone"
                )
    balanced = in_zones["notebook_public_subnet_ids"]
    types = {zone: zone_type.get(zone, AVAILABILITY_ZONE) for zone in balanced}
    if len(set(types.values())) > 1:
        # "If you enable multiple zones for your load balancer, the zones must be of the same type" (ALB guide).
        problems.append(
            "notebook_public_subnet_ids: the subnets are in zones of different types ("
            + ", ".join(f"{zone}: {kind}" for zone, kind in sorted(types.items()))
            + "), and a load balancer's zones must all be of one type; give public subnets of one type of zone"
        )
    # The load balancer neither checks nor sends anything to a target in a zone
    # it has no subnet in: a server placed there never answers. (Said only once
    # every public subnet is known: a typo in one is its own problem.)
    elif balanced and sum(map(len, balanced.values())) == len(set(public)):
        balanced_type = next(iter(types.values()))
        for zone, subnets in sorted(in_zones["notebook_private_subnet_ids"].items()):
            if zone not in balanced:
                mend = (
                    f"give a public subnet in {zone} too, or a private subnet in a zone the load balancer has"
                    if zone_type.get(zone, AVAILABILITY_ZONE) == balanced_type
                    else f"give a private subnet in a zone the load balancer has ({zone} is a"
                    f" {zone_type.get(zone, AVAILABILITY_ZONE)}, and a load balancer's zones must all be of one type)"
                )
                problems.append(
                    f"notebook_private_subnet_ids: {', '.join(subnets)} is in {zone}, where the load balancer has no"
                    f" subnet (notebook_public_subnet_ids are in {', '.join(sorted(balanced))}), so a server placed"
                    f" there would never be reached; {mend}"
                )
    return problems


class FilterModule:
    """Derived values of the network."""

    def filters(self):
        return {
            "subnet_cidrs": subnet_cidrs,
            "ingress_rules": ingress_rules,
            "given_subnet_problems": given_subnet_problems,
        }
