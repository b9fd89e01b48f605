"""Turn the allowed address ranges into security group rules."""

from __future__ import annotations

from typing import Any


def nbstack_ingress_rules(cidrs: list[str], ports: list[int]) -> list[dict[str, Any]]:
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
    """Ansible filters of the persistent role."""

    def filters(self) -> dict[str, Any]:
        return {"nbstack_ingress_rules": nbstack_ingress_rules}
