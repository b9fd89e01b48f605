"""Checks of the preflight role that Jinja cannot express readably.

Python's ipaddress module is the parser here: ansible.utils' ipaddr filters
would add netaddr as a dependency for two calls.
"""

from __future__ import annotations

import ipaddress
from typing import Any


def nbstack_invalid_cidrs(cidrs: Any) -> list[str]:
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


def nbstack_public_cidrs(cidrs: list[Any]) -> list[str]:
    """Entries that open the server to the whole internet (0.0.0.0/0, ::/0)."""
    public = []
    for entry in cidrs:
        try:
            if ipaddress.ip_network(str(entry), strict=False).prefixlen == 0:
                public.append(str(entry))
        except ValueError:
            continue
    return public


def nbstack_unusable_secrets(values: dict[str, Any], placeholder: str) -> list[str]:
    """Names (never values) of secrets that are missing, empty or still placeholders."""
    return sorted(
        name
        for name, value in values.items()
        if value is None or not str(value).strip() or str(value).startswith(placeholder)
    )


class FilterModule:
    """Ansible filters of the preflight role."""

    def filters(self) -> dict[str, Any]:
        return {
            "nbstack_invalid_cidrs": nbstack_invalid_cidrs,
            "nbstack_public_cidrs": nbstack_public_cidrs,
            "nbstack_unusable_secrets": nbstack_unusable_secrets,
        }
