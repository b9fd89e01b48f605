# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The network's derived values: the subnets of the created VPC, the load balancer's ingress rules.

Documentation: subnet_cidrs.yml and ingress_rules.yml beside this file.
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


class FilterModule:
    """Derived values of the network."""

    def filters(self):
        return {"subnet_cidrs": subnet_cidrs, "ingress_rules": ingress_rules}
