# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The team-wide settings: where a checkout differs from what the shared stacks hold.

The network and persistent stacks, and the load balancer's inbound rules,
are the team's; every person's up.yml would otherwise apply them from their
own checkout, so the last one to run would win (and could lock the others
out). Preflight names each difference and stops, unless the run says it
means to change the team's settings (-e team_update=true).

Documentation: team_differences.yml beside this file.
"""

from __future__ import annotations

import difflib
import hashlib

from ansible_collections.nbstack.cloud.plugins.filter.stack import stored_parameter_value
from ansible_collections.nbstack.cloud.plugins.module_utils.wording import counted
from ansible_collections.nbstack.cloud.plugins.plugin_utils.template import parameter_value


def _shown(value):
    return value if value not in ("", None) else '""'


def _template_difference(name, path, stored, wanted):
    before = (stored or "").strip().splitlines()
    after = (wanted or "").strip().splitlines()
    if before == after:
        return None
    changed = sum(1 for line in difflib.unified_diff(before, after, lineterm="", n=0) if line[:1] in "+-") - 2

    def digest(lines):
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:12]

    return {
        "setting": path,
        "stack": f"a template with sha256 {digest(before)} in the {name} stack",
        "checkout": f"one with sha256 {digest(after)} ({counted(max(changed, 1), 'line')} changed)",
    }


def team_differences(shared, wanted, templates, allowed_cidrs, alb_cidrs=None):
    """Each team-wide value this checkout would change in the shared stacks.

    ``shared`` maps network and persistent to the stack as
    amazon.aws.cloudformation_info returns it (with its template), or to
    {} when the stack does not exist. ``wanted`` lists {setting, stack,
    parameter, value}: the value this checkout would send. ``templates``
    maps network and persistent to the checkout's template paths and
    bodies ({path, body}). ``alb_cidrs`` are the ranges the load balancer's
    security group lets in (None: not read); none yet (a first run that
    stopped before setting them) is no difference, as adding removes no one.

    Returns {setting, stack, checkout} for each difference, in the order
    given: parameters, then the ranges, then the templates.
    """
    differences = []
    for item in wanted:
        current = shared.get(item["stack"]) or {}
        stored = current.get("stack_parameters") or {}
        if not current or item["parameter"] not in stored:
            continue
        before = stored_parameter_value(stored[item["parameter"]])
        after = parameter_value(item["value"])
        if before != after:
            differences.append({"setting": item["setting"], "stack": _shown(before), "checkout": _shown(after)})
    if alb_cidrs:
        before = sorted({str(cidr) for cidr in alb_cidrs})
        after = sorted({str(cidr) for cidr in allowed_cidrs or []})
        if before != after:
            differences.append(
                {"setting": "notebook_allowed_cidrs", "stack": ", ".join(before), "checkout": ", ".join(after) or "none"}
            )
    for name in ("network", "persistent"):
        current = shared.get(name) or {}
        if current and name in templates:
            found = _template_difference(
                name, templates[name]["path"], current.get("stack_template"), templates[name]["body"]
            )
            if found:
                differences.append(found)
    return differences


def team_difference_line(difference):
    """One difference as a person reads it."""
    return f"{difference['setting']}: the shared stacks hold {difference['stack']}, this checkout has {difference['checkout']}"


class FilterModule:
    """Team-wide settings."""

    def filters(self):
        return {"team_differences": team_differences, "team_difference_line": team_difference_line}
