# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of the settings that Jinja cannot express readably (preflight role).

Python's ipaddress module is the parser here: ansible.utils' ipaddr filters
would add netaddr as a dependency for a few calls. Documentation:
invalid_cidrs.yml, public_cidrs.yml, unusable_secrets.yml,
vpc_cidr_problem.yml, settings_groups.yml and group_problems.yml beside this
file.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.nbstack.cloud.plugins.module_utils.contract import group_parameter
from ansible_collections.nbstack.cloud.plugins.plugin_utils.network import DOCKER_BRIDGE, PRIVATE_RANGES, VPC_PREFIX_LENGTHS
from ansible_collections.nbstack.cloud.plugins.plugin_utils.template import parameter_value, parameters, refusal


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
    if not any(network.subnet_of(private) for private in PRIVATE_RANGES):
        return "it is not inside a private range (" + ", ".join(map(str, PRIVATE_RANGES)) + ")"
    if network.overlaps(DOCKER_BRIDGE):
        return f"it overlaps {DOCKER_BRIDGE}, the Docker bridge of every ECS instance"
    return ""


def settings_groups(options, role_prefix, setting_prefix):
    """The argument spec of the settings groups a role takes whole, under the settings' names.

    Each option of the role named <role_prefix><group> that has suboptions
    is the setting <setting_prefix><group>, required, with the same
    suboptions: validating the settings against it refuses a missing or
    unknown key, a wrong type or a value outside its choices.
    """
    return {
        setting_prefix + name[len(role_prefix):]: {"type": "dict", "required": True, "options": option["options"]}
        for name, option in options.items()
        if name.startswith(role_prefix) and option.get("options")
    }


def group_problems(groups, template_body, setting_prefix, spec=None):
    """Why a value of a settings group would be refused, naming the setting (never the value).

    Each key of a group <setting_prefix><group> becomes the template
    parameter named after the group and the key (contract.group_parameter);
    its constraints are checked here on the value as it would be sent, before
    anything in AWS is changed. With ``spec`` (settings_groups' result), a
    group must be a mapping and a key declared int a whole number: the
    container reads "5439.0" as no port at all.
    """
    declared = parameters(template_body)
    problems = []
    for setting, values in sorted(groups.items()):
        if not isinstance(values, dict):
            problems.append(f"{setting}: it is not a group of keys (with -e, give it as JSON)")
            continue
        group = setting[len(setting_prefix):] if setting.startswith(setting_prefix) else setting
        keys = ((spec or {}).get(setting) or {}).get("options") or {}
        for key, value in sorted(values.items()):
            whole = isinstance(value, int) and not isinstance(value, bool) or str(value).isdigit()
            if (keys.get(key) or {}).get("type") == "int" and not whole:
                problems.append(f"{setting}.{key}: it is not a whole number")
                continue
            parameter = group_parameter(group, key)
            reason = refusal(declared[parameter], parameter_value(value)) if parameter in declared else ""
            if reason:
                problems.append(f"{setting}.{key}: {reason} ({parameter} in the instance template)")
    return problems


class FilterModule:
    """Checks of the settings."""

    def filters(self):
        return {
            "invalid_cidrs": invalid_cidrs,
            "public_cidrs": public_cidrs,
            "unusable_secrets": unusable_secrets,
            "vpc_cidr_problem": vpc_cidr_problem,
            "settings_groups": settings_groups,
            "group_problems": group_problems,
        }
