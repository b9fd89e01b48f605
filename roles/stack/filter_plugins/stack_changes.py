"""Decide whether a CloudFormation stack differs from what a run wants.

CloudFormation only says "no updates are to be performed" after a change set
or an update call; comparing the stack's template, parameters and tags first is
one read instead, and lets a re-run with nothing changed report changed=0.
"""

from __future__ import annotations

import ast
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


def stored_parameter_value(value: Any) -> str | None:
    """Read back a stored parameter value in the form stack_parameter_value writes.

    List parameters come back comma-joined from CloudFormation; some
    implementations of its API (the local emulator among them) render them as
    a bracketed list instead. Both mean the same list.
    """
    if value is None:
        return None
    text = str(value)
    if text.startswith("[") and text.endswith("]"):
        try:
            items = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(items, list):
            return stack_parameter_value(items)
    return text


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
        "parameters": {key: stored_parameter_value(current_parameters.get(key)) for key in wanted_parameters},
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


def nbstack_change_line(change: dict[str, Any]) -> str:
    """One line of a change set preview: what happens to which resource."""
    line = f"{change['action']} {change['logical_id']} ({change['type']})"
    if change.get("replacement") in ("True", "Conditional"):
        line += " - REPLACED" if change["replacement"] == "True" else " - may be replaced"
    return line


class FilterModule:
    """Ansible filters of the stack role."""

    def filters(self) -> dict[str, Any]:
        return {"nbstack_stack_changes": nbstack_stack_changes, "nbstack_change_line": nbstack_change_line}
