"""Encrypted vault files for the local runs: `make demo`, the tests, the benches.

Each of them makes its own throw-away vault the way a user makes theirs
(ansible-vault encrypt with a password file), so the playbooks read a real
encrypted vault everywhere.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .paths import BIN


@dataclass
class Vault:
    """An encrypted vault file, its password file and the values it holds."""

    path: Path
    password_file: Path
    #: Kept out of reprs, so that no failure report prints them.
    values: dict[str, str] = field(repr=False)


def random_values() -> dict[str, str]:
    """Unguessable values for the three vault keys, easy to look for in output."""
    return {
        "vault_github_token": "ghp_" + secrets.token_hex(16),
        "vault_notebook_password": "nbpw-" + secrets.token_hex(12),
        "vault_warehouse_password": "whpw-" + secrets.token_hex(12),
    }


def write_vault(folder: Path, values: dict[str, str]) -> Vault:
    """Encrypt `values` into folder/vault.yml under a fresh password file."""
    password_file = folder / "vault-password"
    password_file.write_text(f"vault-{secrets.token_hex(12)}\n")
    password_file.chmod(0o600)
    path = folder / "vault.yml"
    path.write_text(yaml.safe_dump(values))
    path.chmod(0o600)
    subprocess.run(
        [str(BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(password_file), str(path)],
        check=True,
        capture_output=True,
    )
    if not path.read_text().startswith("$ANSIBLE_VAULT;"):
        raise RuntimeError(f"ansible-vault did not encrypt {path}")
    return Vault(path, password_file, dict(values))
