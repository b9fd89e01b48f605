"""Decide whether a CloudFormation stack differs from what a run wants.

CloudFormation only says "no updates are to be performed" after a change set
or an update call; comparing the stack's template, parameters and tags first is
one read instead, and lets a re-run with nothing changed report changed=0.
"""

from __future__ import annotations

import ast
from typing import Any

import yaml


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


class _TemplateLoader(yaml.SafeLoader):
    """Reads a CloudFormation template, keeping short-form functions (!Ref, !Sub) as plain values."""


_TemplateLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def nbstack_ssm_parameter_paths(
    current: dict[str, Any], template_body: str, names: list[str] | None = None
) -> dict[str, str]:
    """The SSM parameter paths the existing stack resolves, by parameter name.

    Its SSM-typed parameters, or only ``names`` among them (the ones the
    stack's resources use; a template may declare one for each variant).
    CloudFormation reads them again only when the stack is updated; the
    stack role looks them up to see whether they have moved on since.
    """
    if not current:
        return {}
    declared = (yaml.load(template_body, Loader=_TemplateLoader) or {}).get("Parameters") or {}
    values = current.get("stack_parameters") or {}
    return {
        name: str(values[name])
        for name, spec in sorted(declared.items())
        if str((spec or {}).get("Type", "")).startswith("AWS::SSM::Parameter::Value<")
        and values.get(name)
        and (names is None or name in names)
    }


def _resolved_changes(
    current: dict[str, Any], resolved_now: dict[str, Any]
) -> tuple[dict[str, str], dict[str, str]]:
    """SSM-typed parameters whose path now holds another value than the stack resolved.

    ``resolved_now`` maps parameter names to the current value at their path.
    """
    before, after = {}, {}
    for parameter in (current.get("stack_description") or {}).get("parameters") or []:
        path, resolved = parameter.get("parameter_value"), parameter.get("resolved_value")
        now = resolved_now.get(parameter.get("parameter_key"))
        if resolved is not None and now is not None and now != resolved:
            before[parameter["parameter_key"]] = f"{path} = {resolved}"
            after[parameter["parameter_key"]] = f"{path} = {now}"
    return before, after


def nbstack_stack_changes(
    current: dict[str, Any],
    template_body: str,
    parameters: dict[str, Any],
    tags: dict[str, Any],
    resolved_now: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Compare a stack (as cloudformation_info returns it) with the wanted one.

    ``resolved_now`` maps SSM-typed parameters to their path's current value; an
    SSM-typed parameter whose path has moved on from the value the stack
    resolved (an AMI released since) counts as a change, which an update
    picks up.

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
    resolved_before, resolved_after = _resolved_changes(current, resolved_now or {})
    if resolved_before:
        before["resolved"], after["resolved"] = resolved_before, resolved_after
        reasons.extend(f"parameter {key} (its SSM parameter has a new value)" for key in sorted(resolved_before))
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
        return {
            "nbstack_stack_changes": nbstack_stack_changes,
            "nbstack_ssm_parameter_paths": nbstack_ssm_parameter_paths,
            "nbstack_change_line": nbstack_change_line,
        }
