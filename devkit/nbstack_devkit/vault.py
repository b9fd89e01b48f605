"""Encrypted vault files for the local runs: `make demo`, the tests, the benches.

Each of them makes its own throw-away vault the way a user makes theirs
(ansible-vault encrypt with a password file), so the playbooks read a real
encrypted vault everywhere: one team file (notebook_team_vault, one person),
or a folder of per-person files, each under its owner's vault id (a team).
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import urllib.parse
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
    #: The vault id it is encrypted under (a person's prefix), or None for the default one.
    vault_id: str | None = None


def random_values() -> dict[str, str]:
    """Unguessable values for the three vault keys, easy to look for in output."""
    return {
        "vault_github_token": "ghp_" + secrets.token_hex(16),
        "vault_notebook_password": "nbpw-" + secrets.token_hex(12),
        "vault_warehouse_password": "whpw-" + secrets.token_hex(12),
    }


def leak_forms(value: str) -> set[str]:
    """The forms a secret value could leak in: as it is, JSON-escaped, URL-quoted, or base64.

    Base64 text of a value inside a longer string depends on the value's
    offset modulo 3, so each of the three alignments is listed, without the
    characters that the value's neighbours would change.
    """
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], urllib.parse.quote(value, safe="")}
    raw = value.encode()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode().rstrip("=")
        # Drop the characters that mix in the neighbours' bytes on either side.
        start = -(-offset * 4 // 3)
        end = (offset + len(raw)) * 4 // 3
        forms.add(encoded[start:end][:-1] if (offset + len(raw)) % 3 else encoded[start:end])
    return {form for form in forms if len(form) >= 8}


def write_vault(
    folder: Path, values: dict[str, str], name: str = "vault.yml", vault_id: str | None = None
) -> Vault:
    """Encrypt `values` into folder/<name> under a fresh password file (beside it, not a .yml)."""
    password_file = folder / f"{name}.password"
    password_file.write_text(f"vault-{secrets.token_hex(12)}\n")
    password_file.chmod(0o600)
    path = folder / name
    path.write_text(yaml.safe_dump(values))
    path.chmod(0o600)
    password = ["--vault-id", f"{vault_id}@{password_file}"] if vault_id else ["--vault-password-file", str(password_file)]
    subprocess.run([str(BIN / "ansible-vault"), "encrypt", *password, str(path)], check=True, capture_output=True)
    if not path.read_text().startswith("$ANSIBLE_VAULT;"):
        raise RuntimeError(f"ansible-vault did not encrypt {path}")
    return Vault(path, password_file, dict(values), vault_id)


@dataclass
class PersonVaults:
    """A notebook_vault_dir of per-person vault files, <prefix>.yml, each under the vault id <prefix>."""

    folder: Path
    vaults: dict[str, Vault] = field(default_factory=dict, repr=False)

    def write(self, prefix: str, values: dict[str, str]) -> Vault:
        """Write (or replace) a person's file, as `ansible-vault create --vault-id <prefix>@...` would."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.vaults[prefix] = write_vault(self.folder, values, f"{prefix}.yml", vault_id=prefix)
        return self.vaults[prefix]

    def args(self, prefix: str) -> list[str]:
        """The command-line arguments of a run for `prefix`: this folder, and that person's vault id only."""
        found = self.vaults.get(prefix)
        vault_id = ["--vault-id", f"{prefix}@{found.password_file}"] if found else []
        return ["-e", f"notebook_vault_dir={self.folder}", *vault_id]
