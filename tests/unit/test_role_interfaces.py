"""Each role declares its interface once, and says it in three places that must agree.

meta/argument_specs.yml (validated by Ansible when the role starts) lists
every input; defaults/main.yml holds only the real defaults (a comment above
each), which the spec states too, while required inputs and inputs only
some paths need have none; README.md (the table a newcomer reads) lists
every input (a group's keys are in the spec and the project README).
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
def test_every_default_is_an_option_with_that_default(role: str) -> None:
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {}
    options = spec(role)["main"].get("options") or {}
    assert set(defaults) <= set(options), f"{role}: defaults that are no option: {set(defaults) - set(options)}"
    for name, option in options.items():
        if option.get("required"):
            assert name not in defaults and "default" not in option, f"{role}: required {name} has a default"
        if name in defaults:
            assert option.get("default", None) == defaults[name], f"{role}: {name} defaults differ"
        else:
            assert "default" not in option, f"{role}: {name} has a default in its spec only"
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
