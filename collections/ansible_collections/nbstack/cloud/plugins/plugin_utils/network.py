# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The address plan of the network stack, computed from the VPC's range.

CloudFormation's Fn::Cidr would do this in the template, but the emulator
the tests run against has no Fn::Cidr; computing the four subnets here keeps
the template static and lets preflight check the range first.
"""

from __future__ import annotations

import ipaddress

#: VPC sizes the plan supports: the public subnets are 1/256 of the VPC, and
#: an application load balancer needs at least a /27 in each of its subnets.
VPC_PREFIX_LENGTHS = (16, 17, 18, 19)
#: RFC 1918: the ranges AWS recommends for a VPC. CreateVpc accepts others
#: too (ranges routed on the internet, which the VPC would then shadow), or
#: refuses them (loopback, link-local); the project keeps to these.
PRIVATE_RANGES = tuple(ipaddress.IPv4Network(cidr) for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
#: The Docker bridge network of every ECS-optimized instance; a VPC that
#: overlaps it cannot be reached from containers.
DOCKER_BRIDGE = ipaddress.IPv4Network("172.17.0.0/16")


def subnet_plan(vpc_cidr):
    """Two public and two private subnets of a VPC /16 to /19.

    Public (load balancer, NAT gateway): the first two blocks of 1/256 of the
    VPC. Private (instances): the second and third blocks of 1/16. For
    10.42.0.0/16 that is 10.42.0.0/24, 10.42.1.0/24, 10.42.16.0/20 and
    10.42.32.0/20.
    """
    vpc = ipaddress.IPv4Network(str(vpc_cidr), strict=True)
    if vpc.prefixlen not in VPC_PREFIX_LENGTHS:
        raise ValueError(f"{vpc} is not /{VPC_PREFIX_LENGTHS[0]} to /{VPC_PREFIX_LENGTHS[-1]}")
    small = list(vpc.subnets(new_prefix=vpc.prefixlen + 8))
    large = list(vpc.subnets(new_prefix=vpc.prefixlen + 4))
    return {"public": [str(small[0]), str(small[1])], "private": [str(large[1]), str(large[2])]}
