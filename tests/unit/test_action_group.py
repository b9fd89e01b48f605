"""The action group `nbstack.cloud.aws` names every AWS module a task uses.

Each play's `module_defaults: group/nbstack.cloud.aws` gives the region to
the group's modules only. The group names the amazon.aws and community.aws
modules one by one (meta/runtime.yml says why), so a task with a module
missing from it would run without the play's region: these tests find every
such task in the playbooks, roles and molecule scenarios.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = ROOT / "collections" / "ansible_collections" / "nbstack" / "cloud"
AWS_MODULE = re.compile(r"^(amazon|community)\.aws\.[a-z0-9_]+$")


def group() -> set[str]:
    runtime = yaml.safe_load((COLLECTION / "meta" / "runtime.yml").read_text())
    return {member for member in runtime["action_groups"]["aws"] if isinstance(member, str)}


def keys(node: Any) -> Iterator[str]:
    """Every mapping key in a YAML document, at any depth (tasks sit in blocks, handlers and plays)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from keys(item)


def ansible_files() -> Iterator[Path]:
    yield from ROOT.glob("*.yml")
    for folder in ("playbooks", "roles", "molecule"):
        yield from (ROOT / folder).rglob("*.yml")


def used_aws_modules() -> dict[str, list[str]]:
    used: dict[str, list[str]] = {}
    for path in ansible_files():
        for document in yaml.safe_load_all(path.read_text()):
            for key in keys(document):
                if AWS_MODULE.match(key):
                    used.setdefault(key, []).append(str(path.relative_to(ROOT)))
    return used


def test_the_group_names_every_aws_module_a_task_uses() -> None:
    used = used_aws_modules()
    assert "amazon.aws.cloudformation" in used  # the scan finds tasks at all
    missing = {module: files for module, files in used.items() if module not in group()}
    assert not missing, f"add these to action_groups.aws in {COLLECTION / 'meta' / 'runtime.yml'}: {missing}"


def test_the_group_names_each_aws_module_of_this_collection() -> None:
    modules = {path.stem for path in (COLLECTION / "plugins" / "modules").glob("*.py")
               if "AnsibleAWSModule" in path.read_text()}
    assert modules and modules <= group(), sorted(modules - group())


def test_the_group_names_no_module_that_is_not_used() -> None:
    """A module left in the group after its last task went is looked up in every play for nothing."""
    named = {member for member in group() if AWS_MODULE.match(member)}
    assert named <= set(used_aws_modules()), sorted(named - set(used_aws_modules()))
