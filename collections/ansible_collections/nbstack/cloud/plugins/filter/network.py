# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The network's derived values: the subnets of the created VPC, the load balancer's ingress rules, what is wrong
with the given subnets.

Documentation: subnet_cidrs.yml, ingress_rules.yml, given_subnet_problems.yml and lookup_failure.yml beside
this file.
"""

from __future__ import annotations

import re

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

#: Why a subnet outside the region's Availability Zones cannot be used: an
#: ALB's zones are all of one type, every private subnet holds a mount
#: target, and Outposts offer no EFS.
AZ_ONLY = "the load balancer and the work volume's mount targets are placed in Availability Zones only"

LOOKUP_SETTINGS = "notebook_public_subnet_ids, notebook_private_subnet_ids"
REFUSED = re.compile("UnauthorizedOperation|AccessDenied")


def lookup_failure(result, action):
    """Why a lookup that failed (a registered result) gave no answer: its error, and the permission when refused."""
    message = str(result.get("msg") or "no answer")
    hint = f"; check that the credentials may call {action}" if REFUSED.search(message) else ""
    return f"could not be looked up: {message}{hint}"


def _unanswered(what, result, action):
    return f"{LOOKUP_SETTINGS}: the {what} {lookup_failure(result, action)}"


def given_subnet_problems(found, vpc_id, public, private, region="", zones=None):
    """What keeps the given subnets from being used, one problem per subnet or zone.

    A subnet must exist, be in the given VPC, in one of the region's
    Availability Zones (not a Local or Wavelength Zone, not on an Outpost),
    and be given once; no two of one list may share a zone; and every
    private subnet's zone must have a public one. `found` is what
    ec2_vpc_subnet_info answered for the given IDs, `zones` what aws_az_info
    answered for their zones (skipped: their types are not checked). A
    lookup that failed is a problem of its own.
    """
    if "subnets" not in found:
        return [_unanswered("subnets", found, "ec2:DescribeSubnets")]
    by_id = {subnet["id"]: subnet for subnet in found["subnets"]}
    where = f" in {region}" if region else ""
    problems = []
    zone_type = None
    if zones and not zones.get("skipped"):
        if "availability_zones" in zones:
            zone_type = {zone["zone_name"]: zone.get("zone_type") for zone in zones["availability_zones"]}
        else:
            problems.append(_unanswered("subnets' zones", zones, "ec2:DescribeAvailabilityZones"))
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
                continue
            if subnet["vpc_id"] != vpc_id:
                problems.append(
                    f"{setting}: {subnet_id} is in {subnet['vpc_id']}, not in notebook_vpc_id {vpc_id}; "
                    f"set the ID of a subnet of {vpc_id}"
                )
                continue
            zone = subnet["availability_zone"]
            if subnet.get("outpost_arn"):
                elsewhere = f"on an Outpost ({subnet['outpost_arn']})"
            elif zone_type is not None and zone_type.get(zone) != AVAILABILITY_ZONE:
                kind = zone_type.get(zone)
                elsewhere = f"in {zone}, " + (
                    f"a {kind}" if kind
                    else "a zone of no known type" if zone in zone_type
                    else "a zone DescribeAvailabilityZones did not list"
                )
            else:
                in_zone.setdefault(zone, []).append(subnet_id)
                continue
            problems.append(
                f"{setting}: {subnet_id} is {elsewhere}, not in an Availability Zone, and {AZ_ONLY}; set the ID of"
                f" a subnet of {vpc_id} in one of {region or 'the region'}'s Availability Zones"
            )
        for zone, shared in sorted(in_zone.items()):
            if len(shared) > 1:
                problems.append(
                    f"{setting}: {', '.join(shared[:-1])} and {shared[-1]} are in the same zone, {zone}, and "
                    f"{SUBNET_USES[setting]}; keep one subnet of each zone"
                )
    # The load balancer neither checks nor sends anything to a target in a zone
    # it has no subnet in: a server placed there never answers. (Said only once
    # every public subnet is usable: a typo in one is its own problem.)
    balanced = in_zones["notebook_public_subnet_ids"]
    if balanced and sum(map(len, balanced.values())) == len(set(public)):
        for zone, subnets in sorted(in_zones["notebook_private_subnet_ids"].items()):
            if zone not in balanced:
                problems.append(
                    f"notebook_private_subnet_ids: {', '.join(subnets)} is in {zone}, where the load balancer has no"
                    f" subnet (notebook_public_subnet_ids are in {', '.join(sorted(balanced))}), so a server placed"
                    f" there would never be reached; give a public subnet in {zone} too, or a private subnet in a zone"
                    " the load balancer has"
                )
    return problems


class FilterModule:
    """Derived values of the network."""

    def filters(self):
        return {
            "subnet_cidrs": subnet_cidrs,
            "ingress_rules": ingress_rules,
            "given_subnet_problems": given_subnet_problems,
            "lookup_failure": lookup_failure,
        }
