"""Fixtures that run the real playbooks against the local AWS emulator.

Each module gets an emulator of its own on a free loopback port, starting as
an empty account (modules run in parallel, one worker process each, and
emulators in one process share moto's state: one at a time there); a
scenario that needs a fresh account within a module resets it. Tests run
ansible-playbook exactly as a user would, and assert with boto3 describe calls.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from team import SETTINGS

from nbstack_devkit.emulator import Clients, Emulator
from nbstack_devkit.playbooks import Playbooks
from nbstack_devkit.vault import Vault, random_values, write_vault


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    server = Emulator().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Vault:
    """A real ansible-vault file with unguessable values, to look for in output."""
    return write_vault(tmp_path_factory.mktemp("vault"), random_values())


@pytest.fixture(scope="module")
def playbooks(emulator: Emulator, vault: Vault) -> Playbooks:
    return Playbooks(emulator, SETTINGS, vault)


@pytest.fixture(scope="module")
def aws(emulator: Emulator) -> Clients:
    return Clients(emulator)
