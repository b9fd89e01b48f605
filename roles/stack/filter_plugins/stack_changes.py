"""Decide whether a CloudFormation stack differs from what a run wants.

CloudFormation only says "no updates are to be performed" after a change set
or an update call; comparing the stack's template, parameters and tags first is
one read instead, and lets a re-run with nothing changed report changed=0.
"""

from __future__ import annotations

from typing import Any


def stack_parameter_value(value: Any) -> str:
    """Render a parameter value the way CloudFormation stores it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(stack_parameter_value(item) for item in value)
    if value is None:
        return ""
    return str(value)


def nbstack_stack_changes(
    current: dict[str, Any],
    template_body: str,
    parameters: dict[str, Any],
    tags: dict[str, Any],
) -> dict[str, Any]:
    """Compare a stack (as cloudformation_info returns it) with the wanted one.

    Returns ``differs``, the ``reasons`` (what differs, by name, never by value),
    and ``before``/``after`` views for a --diff; ``after.parameters`` are the
    string values to send.
    """
    wanted_parameters = {key: stack_parameter_value(value) for key, value in parameters.items()}
    wanted_tags = {key: stack_parameter_value(value) for key, value in tags.items()}
    after = {
        "template": template_body.strip().splitlines(),
        "parameters": wanted_parameters,
        "tags": wanted_tags,
    }
    if not current:
        return {
            "differs": True,
            "reasons": ["the stack does not exist"],
            "before": {"template": [], "parameters": {}, "tags": {}},
            "after": after,
        }

    current_parameters = current.get("stack_parameters") or {}
    before = {
        "template": (current.get("stack_template") or "").strip().splitlines(),
        # Only the parameters this run sets; the others keep template defaults.
        "parameters": {key: current_parameters.get(key) for key in wanted_parameters},
        "tags": dict(current.get("stack_tags") or {}),
    }
    reasons = []
    if before["template"] != after["template"]:
        reasons.append("template")
    reasons.extend(
        f"parameter {key}"
        for key in sorted(wanted_parameters)
        if before["parameters"].get(key) != wanted_parameters[key]
    )
    if before["tags"] != wanted_tags:
        reasons.append("tags")
    return {"differs": bool(reasons), "reasons": reasons, "before": before, "after": after}


class FilterModule:
    """Ansible filters of the stack role."""

    def filters(self) -> dict[str, Any]:
        return {"nbstack_stack_changes": nbstack_stack_changes}
