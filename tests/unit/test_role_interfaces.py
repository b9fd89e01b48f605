"""Each role declares its interface once, and says it in three places that must agree.

meta/argument_specs.yml (validated by Ansible when the role starts),
defaults/main.yml (a comment above each default) and README.md (the table a
newcomer reads) list the same variables.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(path.name for path in (ROOT / "roles").iterdir() if path.is_dir())


def spec(role: str) -> dict:
    return yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]


@pytest.mark.parametrize("role", ROLES)
def test_every_option_has_a_type_and_a_description(role: str) -> None:
    for entry, body in spec(role).items():
        assert body.get("short_description"), f"{role}:{entry} has no short_description"
        for name, option in (body.get("options") or {}).items():
            assert option.get("type") and option.get("description"), f"{role}:{entry} option {name}"


@pytest.mark.parametrize("role", ROLES)
def test_the_defaults_are_the_options_of_the_main_entry_point(role: str) -> None:
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {}
    options = spec(role)["main"].get("options") or {}
    assert sorted(defaults) == sorted(options)
    text = (ROOT / "roles" / role / "defaults" / "main.yml").read_text().splitlines()
    for name in defaults:
        line = next(number for number, content in enumerate(text) if content.startswith(f"{name}:"))
        # A comment above the variable, or above the group of variables it belongs to.
        while line > 0 and text[line - 1].strip() and not text[line - 1].startswith("#"):
            line -= 1
        assert line > 0 and text[line - 1].startswith("#"), f"{role}: {name} has no comment above its default"


@pytest.mark.parametrize("role", ROLES)
def test_the_readme_lists_every_variable(role: str) -> None:
    readme = (ROOT / "roles" / role / "README.md").read_text()
    for entry, body in spec(role).items():
        for name in body.get("options") or {}:
            assert f"| `{name}` |" in readme, f"roles/{role}/README.md does not list {name} ({entry})"
