# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading the static templates: their parameters, and the constraints CloudFormation enforces on them.

CloudFormation refuses a parameter value that breaks its AllowedPattern,
AllowedValues, MinValue/MaxValue or MinLength/MaxLength before it changes
anything; the emulator the tests run against enforces none of these, so the
project checks them itself (preflight, and the tests of the defaults).
"""

from __future__ import annotations

import re

import yaml


class _TemplateLoader(yaml.SafeLoader):
    """Reads a CloudFormation template, keeping short-form functions (!Ref, !Sub) as plain values."""


_TemplateLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def parameters(template_body):
    """The template's Parameters section, by name."""
    return (yaml.load(template_body, Loader=_TemplateLoader) or {}).get("Parameters") or {}


def parameter_value(value):
    """Render a parameter value the way CloudFormation stores it (and the stack role sends it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(parameter_value(item) for item in value)
    if value is None:
        return ""
    return str(value)


#: A number as the playbooks send one and the container reads one back.
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def refusal(spec, text):
    """Why CloudFormation would refuse this text for a parameter of this spec, or "" when it accepts it.

    ``text`` is the value as it is sent (stack.parameter_value renders it).
    Patterns are matched as Java matches them there: the whole text, ASCII
    classes only (Python's \\d would take other digits).
    """
    if spec.get("Type") == "Number":
        if not _NUMBER.fullmatch(text):
            return "it is not a plain number"
        number = float(text)
        if "MinValue" in spec and number < float(spec["MinValue"]):
            return f"it is below {spec['MinValue']}"
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            return f"it is above {spec['MaxValue']}"
    if "AllowedValues" in spec and text not in [str(allowed) for allowed in spec["AllowedValues"]]:
        return "it is not one of " + ", ".join(str(allowed) for allowed in spec["AllowedValues"])
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], text, re.ASCII):
        return "it must be " + str(spec.get("ConstraintDescription") or f"like {spec['AllowedPattern']}").rstrip(".")
    if "MinLength" in spec and len(text) < int(spec["MinLength"]):
        return f"it is shorter than {spec['MinLength']} characters"
    if "MaxLength" in spec and len(text) > int(spec["MaxLength"]):
        return f"it is longer than {spec['MaxLength']} characters"
    return ""
