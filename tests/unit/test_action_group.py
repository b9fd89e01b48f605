"""The action group `nbstack.cloud.aws` names every AWS module a task uses.

Each play's `module_defaults: group/nbstack.cloud.aws` gives the region to
the group's modules only. The group names the amazon.aws and community.aws
modules one by one (meta/runtime.yml says why), so a task with a module
missing from it would run without the play's region: these tests find every
such task in the playbooks, roles and molecule scenarios, reading each
task as Ansible does (a module key, `action:` or `local_action:`, a short
name or a redirect).
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
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


#: Where a play or a block holds its tasks.
TASK_LISTS = ("tasks", "pre_tasks", "post_tasks", "handlers", "block", "rescue", "always")


def tasks(items: Any) -> Iterator[dict[str, Any]]:
    """Every task in a playbook's plays, or in a role's task list, blocks opened."""
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        if "hosts" in item or "block" in item:
            for key in TASK_LISTS:
                yield from tasks(item.get(key))
        elif not any(key.endswith("import_playbook") for key in item):
            yield item


def ansible_files() -> Iterator[Path]:
    yield from ROOT.glob("*.yml")
    for folder in ("playbooks", "roles", "molecule"):
        yield from (path for path in (ROOT / folder).rglob("*.y*ml") if "meta" not in path.parts)


def scan() -> dict[str, list[str]]:
    """Each AWS module a task names, as Ansible reads the task (a module key, action: or local_action:, any name form).

    Run in a process of its own (used_aws_modules): Ansible's collection loader is configured once per
    process, and another test may have configured it first, without this checkout's collections.
    """
    from ansible.parsing.mod_args import ModuleArgsParser
    from ansible.plugins.loader import init_plugin_loader, module_loader

    init_plugin_loader([str(ROOT / "collections")])
    used: dict[str, list[str]] = {}
    for path in ansible_files():
        for document in yaml.safe_load_all(path.read_text()):
            for task in tasks(document):
                action = ModuleArgsParser(task).parse()[0]
                assert "{{" not in action, f"{path}: a task's module is a template ({action}); name it"
                found = module_loader.find_plugin_with_context(action)
                assert found.resolved, f"{path}: the module {action} is not found: {found.exit_reason}"
                if AWS_MODULE.match(found.resolved_fqcn):
                    used.setdefault(found.resolved_fqcn, []).append(str(path.relative_to(ROOT)))
    return used


@functools.cache
def used_aws_modules() -> dict[str, list[str]]:
    done = subprocess.run([sys.executable, __file__], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.splitlines()[-1]))


def test_the_group_names_every_aws_module_a_task_uses() -> None:
    used = used_aws_modules()
    assert "amazon.aws.cloudformation" in used  # the scan finds tasks at all
    missing = {module: files for module, files in used.items() if module not in group()}
    assert not missing, f"add these to action_groups.aws in {COLLECTION / 'meta' / 'runtime.yml'}: {missing}"


def test_the_group_names_each_module_of_this_collection() -> None:
    modules = {path.stem for path in (COLLECTION / "plugins" / "modules").glob("*.py")}
    assert modules and modules <= group(), sorted(modules - group())


def test_the_group_names_no_module_that_is_not_used() -> None:
    """A module left in the group after its last task went is looked up in every play for nothing."""
    named = {member for member in group() if AWS_MODULE.match(member)}
    assert named <= set(used_aws_modules()), sorted(named - set(used_aws_modules()))


if __name__ == "__main__":
    print(json.dumps(scan()))
