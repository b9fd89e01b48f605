# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a stack update would replace the person's instance.

A new launch template version, or other subnets, makes the auto scaling
group's rolling update replace the running instance (with its task,
mid-work). up.yml stops the
server first when this says so, and keeps the stack's AMI while the server
runs. Documentation: launch_template_changes.yml beside this file.
"""

from __future__ import annotations

import re

import yaml

from ansible_collections.nbstack.cloud.plugins.filter.stack import stored_parameter_value
from ansible_collections.nbstack.cloud.plugins.plugin_utils.template import parameter_value

#: The template's resource that replaces the instance when it changes.
LAUNCH_TEMPLATE = "LaunchTemplate"
#: The group's properties whose change replaces its instances too (the rolling
#: update policy: a new launch template, or other subnets).
GROUP = "AutoScalingGroup"
GROUP_REPLACING = ("VPCZoneIdentifier",)
_SUB_NAME = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


class _TaggedLoader(yaml.SafeLoader):
    """Reads a template keeping short-form functions (!Sub, !If) as {"Fn::<name>": value}."""


def _tagged(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_TaggedLoader.add_multi_constructor("!", _tagged)


def _load(template):
    if isinstance(template, dict):
        return template
    return yaml.load(template or "", Loader=_TaggedLoader) or {}


def _names(value, conditions, seen):
    """Parameter names a template fragment refers to: Ref, ${Name} in Sub, and the parameters of its conditions."""
    found = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                local = set(inner[1]) if isinstance(inner, list) and len(inner) > 1 else set()
                found |= {name for name in _SUB_NAME.findall(str(text)) if name not in local}
                if isinstance(inner, list) and len(inner) > 1:
                    found |= _names(inner[1], conditions, seen)
            elif key in ("Fn::If", "Condition"):
                name = inner[0] if isinstance(inner, list) else inner
                if isinstance(name, str) and name in conditions and name not in seen:
                    seen.add(name)
                    found |= _names(conditions[name], conditions, seen)
                found |= _names(inner[1:] if isinstance(inner, list) else [], conditions, seen)
            else:
                found |= _names(inner, conditions, seen)
    elif isinstance(value, list):
        for inner in value:
            found |= _names(inner, conditions, seen)
    return found


def launch_template_changes(current, template_body, parameters):
    """What an update would change that replaces the instance: the launch template, the group's subnets, or their parameters.

    ``current`` is the stack as amazon.aws.cloudformation_info describes it
    with its template (empty when the stack does not exist: nothing to
    replace); ``parameters`` the values this run sends. Returns the names
    that differ, "LaunchTemplate" for the resource's own definition and
    "AutoScalingGroup.VPCZoneIdentifier" for the group's subnets.
    """
    if not current:
        return []
    wanted = _load(template_body)
    before = _load(current.get("stack_template"))

    def replacing(template):
        resources = template.get("Resources") or {}
        group = (resources.get(GROUP) or {}).get("Properties") or {}
        return resources.get(LAUNCH_TEMPLATE), {key: group.get(key) for key in GROUP_REPLACING}

    resource, group = replacing(wanted)
    resource_before, group_before = replacing(before)
    changes = []
    if resource != resource_before:
        changes.append(LAUNCH_TEMPLATE)
    changes += [f"{GROUP}.{key}" for key in GROUP_REPLACING if group[key] != group_before[key]]
    declared = wanted.get("Parameters") or {}
    stored = current.get("stack_parameters") or {}
    for name in sorted(_names([resource, group], wanted.get("Conditions") or {}, set()) & set(declared)):
        value = parameters[name] if name in parameters else declared[name].get("Default")
        if parameter_value(value) != stored_parameter_value(stored.get(name)):
            changes.append(name)
    return changes


class FilterModule:
    """Capacity decisions of the instance role."""

    def filters(self):
        return {"launch_template_changes": launch_template_changes}
