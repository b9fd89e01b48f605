# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of the settings that Jinja cannot express readably (preflight role).

Python's ipaddress module is the parser here: ansible.utils' ipaddr filters
would add netaddr as a dependency for a few calls. Documentation:
invalid_cidrs.yml, public_cidrs.yml, unusable_secrets.yml and
vpc_cidr_problem.yml beside this file.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.nbstack.cloud.plugins.module_utils.network import DOCKER_BRIDGE, VPC_PREFIX_LENGTHS


def invalid_cidrs(cidrs):
    """Entries that are not an IPv4/IPv6 network in CIDR notation."""
    invalid = []
    for entry in cidrs if isinstance(cidrs, list) else [cidrs]:
        text = str(entry)
        try:
            ipaddress.ip_network(text, strict=True)
        except ValueError:
            invalid.append(text)
        else:
            if "/" not in text:
                invalid.append(text)
    return invalid


def public_cidrs(cidrs):
    """Entries that open the server to the whole internet (0.0.0.0/0, ::/0)."""
    public = []
    for entry in cidrs:
        try:
            if ipaddress.ip_network(str(entry), strict=False).prefixlen == 0:
                public.append(str(entry))
        except ValueError:
            continue
    return public


def unusable_secrets(values, placeholder):
    """Names (never values) of secrets that are missing, empty or still placeholders."""
    return sorted(
        name
        for name, value in values.items()
        if value is None or not str(value).strip() or str(value).startswith(placeholder)
    )


def vpc_cidr_problem(cidr):
    """Why a range cannot be the created VPC's, or "" when it can."""
    try:
        network = ipaddress.IPv4Network(str(cidr), strict=True)
    except ValueError:
        return "it is not an IPv4 network in CIDR notation with its host bits zero (like 10.42.0.0/16)"
    if network.prefixlen not in VPC_PREFIX_LENGTHS:
        return (
            f"its size /{network.prefixlen} is outside /{VPC_PREFIX_LENGTHS[0]} to /{VPC_PREFIX_LENGTHS[-1]}"
            " (the load balancer's subnets need at least /27 each)"
        )
    if not network.is_private:
        return "it is not a private range (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)"
    if network.overlaps(DOCKER_BRIDGE):
        return f"it overlaps {DOCKER_BRIDGE}, the Docker bridge of every ECS instance"
    return ""


class FilterModule:
    """Checks of the settings."""

    def filters(self):
        return {
            "invalid_cidrs": invalid_cidrs,
            "public_cidrs": public_cidrs,
            "unusable_secrets": unusable_secrets,
            "vpc_cidr_problem": vpc_cidr_problem,
        }
