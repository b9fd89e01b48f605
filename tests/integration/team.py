"""The made-up team the integration tests provision: its settings file, the app name in it, and its vaults.

A module of its own (not the conftest) so that test modules can import the
name for their expected stack names; the fixtures use the same file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from nbstack_devkit.playbooks import PlaybookRun, Playbooks
from nbstack_devkit.vault import PersonVaults

SETTINGS = Path(__file__).with_name("settings.yml")
#: notebook_app_name: the first part of every stack and secret name the tests look for.
APP = str(yaml.safe_load(SETTINGS.read_text())["notebook_app_name"])
#: A prefix that can name a vault file (preflight refuses the others, whatever the vault).
PERSON = re.compile(r"[a-z][a-z0-9-]{0,27}")


def given_prefix(args: Sequence[str]) -> str | None:
    """The prefix an ansible-playbook command line gives with -e (prefix=NAME, or a JSON object), else None."""
    found = None
    for flag, value in zip(args, args[1:], strict=False):
        if flag != "-e":
            continue
        if value.startswith("prefix="):
            found = value.removeprefix("prefix=")
        elif value.startswith("{"):
            found = json.loads(value).get("prefix", found)
    return found


class PersonPlaybooks(Playbooks):
    """The playbooks as an admin runs them for several people: each person's up.yml with their own vault file.

    Once two people's servers exist, the team's vault file is refused (it
    would give them one password and token), so a module that provisions
    several prefixes runs each with a per-person file (PersonVaults), written
    on the person's first run with the team vault's values: the module's
    checks of those values (leaks, logins) stay as they are. A run without a
    vault, or for a prefix that cannot name a file, runs as Playbooks does.
    """

    def __init__(self, playbooks: Playbooks, folder: Path) -> None:
        super().__init__(playbooks.emulator, playbooks.settings, playbooks.vault)
        self.people = PersonVaults(folder)

    def run(self, playbook: str, *extra: str, with_vault: bool = True, **options: Any) -> PlaybookRun:
        prefix = given_prefix(extra)
        if not with_vault or self.vault is None or prefix is None or not PERSON.fullmatch(prefix):
            return super().run(playbook, *extra, with_vault=with_vault, **options)
        if prefix not in self.people.vaults:
            self.people.write(prefix, dict(self.vault.values))
        return super().run(playbook, *self.people.args(prefix), *extra, with_vault=False, **options)
