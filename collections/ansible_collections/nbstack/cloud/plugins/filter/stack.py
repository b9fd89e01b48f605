# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stacks: their parameters, and whether one differs from what a run wants.

CloudFormation only says "no updates are to be performed" after a change set
or an update call; comparing the stack's template, parameters and tags first
is one read instead, and lets a re-run with nothing changed report changed=0.

Documentation: one .yml per filter beside this file.
"""

from __future__ import annotations

import ast

from ansible_collections.nbstack.cloud.plugins.module_utils.contract import group_parameter
from ansible_collections.nbstack.cloud.plugins.plugin_utils.template import parameter_value
from ansible_collections.nbstack.cloud.plugins.plugin_utils.template import parameters as template_parameters


def cfn_parameters(group, name):
    """A group of settings as template parameters: warehouse.role_arn becomes WarehouseRoleArn."""
    return {group_parameter(name, key): value for key, value in group.items()}


def stored_parameter_value(value):
    """Read back a stored parameter value in the form parameter_value writes.

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
            return parameter_value(items)
    return text


def ssm_parameter_paths(current, template_body, names=None):
    """The SSM parameter paths the existing stack resolves, by parameter name.

    Its SSM-typed parameters, or only ``names`` among them (the ones the
    stack's resources use; a template may declare one for each variant).
    CloudFormation reads them again only when the stack is updated; the
    stack role reads their current values to see whether they have moved on.
    """
    if not current:
        return {}
    declared = template_parameters(template_body)
    values = current.get("stack_parameters") or {}
    return {
        name: str(values[name])
        for name, spec in sorted(declared.items())
        if str((spec or {}).get("Type", "")).startswith("AWS::SSM::Parameter::Value<")
        and values.get(name)
        and (names is None or name in names)
    }


def _resolved_changes(current, ssm_values):
    """SSM-typed parameters whose path now holds another value than the stack resolved.

    ``ssm_values`` maps SSM paths to their current value.
    """
    before, after = {}, {}
    for parameter in (current.get("stack_description") or {}).get("parameters") or []:
        path, resolved = parameter.get("parameter_value"), parameter.get("resolved_value")
        now = ssm_values.get(path)
        if resolved is not None and now is not None and now != resolved:
            before[parameter["parameter_key"]] = f"{path} = {resolved}"
            after[parameter["parameter_key"]] = f"{path} = {now}"
    return before, after


def stack_changes(current, template_body, parameters, tags, ssm_values=None):
    """Compare a stack (as cloudformation_info returns it) with the wanted one.

    ``ssm_values`` maps the paths of the SSM-typed parameters to read
    (ssm_parameter_paths) to their current value; one whose path has moved on
    from the value the stack resolved (an AMI released since) counts as a
    change, which an update picks up.

    Returns ``differs``, the ``reasons`` (what differs, by name, never by value),
    and ``before``/``after`` views for a --diff; ``after.parameters`` are the
    string values to send.
    """
    wanted_parameters = {key: parameter_value(value) for key, value in parameters.items()}
    wanted_tags = {key: parameter_value(value) for key, value in tags.items()}
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
    # Only the parameters this run sets; the others keep template defaults.
    stored_parameters = {key: stored_parameter_value(current_parameters.get(key)) for key in wanted_parameters}
    before = {
        "template": (current.get("stack_template") or "").strip().splitlines(),
        "parameters": stored_parameters,
        "tags": dict(current.get("stack_tags") or {}),
    }
    reasons = []
    if before["template"] != after["template"]:
        reasons.append("template")
    reasons.extend(
        f"parameter {key}" for key in sorted(wanted_parameters) if stored_parameters.get(key) != wanted_parameters[key]
    )
    if before["tags"] != wanted_tags:
        reasons.append("tags")
    resolved_before, resolved_after = _resolved_changes(current, ssm_values or {})
    if resolved_before:
        before["resolved"], after["resolved"] = resolved_before, resolved_after
        reasons.extend(f"parameter {key} (its SSM parameter has a new value)" for key in sorted(resolved_before))
    return {"differs": bool(reasons), "reasons": reasons, "before": before, "after": after}


def change_line(change):
    """One line of a change set preview: what happens to which resource."""
    line = f"{change['action']} {change['logical_id']} ({change['type']})"
    if change.get("replacement") in ("True", "Conditional"):
        line += " - REPLACED" if change["replacement"] == "True" else " - may be replaced"
    return line


class FilterModule:
    """Stacks: parameters and changes."""

    def filters(self):
        return {
            "cfn_parameters": cfn_parameters,
            "stack_changes": stack_changes,
            "ssm_parameter_paths": ssm_parameter_paths,
            "change_line": change_line,
        }
