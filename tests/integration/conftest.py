"""Fixtures that run the real playbooks against the local AWS emulator.

The emulator runs for the whole session on a free loopback port; each test
scenario starts from an empty account (the fixtures reset it), runs
ansible-playbook exactly as a user would, and asserts with boto3 describe calls.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator

import pytest

from emulator import Emulator
from playbook_runs import BIN, ROOT, Clients, Playbooks, Vault


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    server = Emulator().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Vault:
    """A real ansible-vault file with unguessable values, to look for in output."""
    folder = tmp_path_factory.mktemp("vault")
    values = {
        "vault_github_token": "ghp_" + secrets.token_hex(16),
        "vault_notebook_password": "nbpw-" + secrets.token_hex(12),
        "vault_warehouse_password": "whpw-" + secrets.token_hex(12),
    }
    password_file = folder / "vault-password"
    password_file.write_text("test-vault-" + secrets.token_hex(8) + "\n")
    path = folder / "vault.yml"
    path.write_text("".join(f"{key}: {value}\n" for key, value in values.items()))
    subprocess.run(
        [str(BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(password_file), str(path)],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    assert path.read_text().startswith("$ANSIBLE_VAULT;")
    return Vault(path, password_file, values)


@pytest.fixture(scope="session")
def playbooks(emulator: Emulator, vault: Vault) -> Playbooks:
    return Playbooks(emulator, vault)


@pytest.fixture(scope="session")
def aws(emulator: Emulator) -> "Clients":
    return Clients(emulator)
