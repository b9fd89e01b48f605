"""Fixtures that run the real playbooks against the local AWS emulator.

The emulator runs for the whole session on a free loopback port; each test
scenario starts from an empty account (the fixtures reset it), runs
ansible-playbook exactly as a user would, and asserts with boto3 describe calls.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator import Emulator
from playbook_runs import Clients, Playbooks, Vault
from vault import random_values, write_vault


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    server = Emulator().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Vault:
    """A real ansible-vault file with unguessable values, to look for in output."""
    values = random_values()
    path, password_file = write_vault(tmp_path_factory.mktemp("vault"), values)
    return Vault(path, password_file, values)


@pytest.fixture(scope="session")
def playbooks(emulator: Emulator, vault: Vault) -> Playbooks:
    return Playbooks(emulator, vault)


@pytest.fixture(scope="session")
def aws(emulator: Emulator) -> "Clients":
    return Clients(emulator)
