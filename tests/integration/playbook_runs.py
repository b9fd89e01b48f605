"""Running the project's playbooks against the local AWS emulator, for the tests.

Imported by the integration tests and by this folder's conftest (which holds
the fixtures); a module name of its own, since every test folder has a conftest.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from nbstack_devkit.emulator import Emulator
from nbstack_devkit.vault import Vault

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SETTINGS = Path(__file__).with_name("settings.yml")
APP = "nbtest"


@dataclass
class PlaybookRun:
    """What one ansible-playbook run printed and how it ended."""

    args: list[str]
    returncode: int
    output: str

    @property
    def recap(self) -> dict[str, int]:
        found = re.search(r"localhost\s*:\s*(ok=.*)$", self.output, re.MULTILINE)
        assert found, f"no PLAY RECAP in output:\n{self.output[-3000:]}"
        return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", found.group(1))}

    @property
    def text(self) -> str:
        """The output with line wrapping undone, for matching sentences."""
        return " ".join(self.output.split())

    @property
    def changed(self) -> int:
        return self.recap["changed"]


class Playbooks:
    """Runs the project's playbooks as a user would, against the emulator."""

    def __init__(self, emulator: Emulator, vault: Vault) -> None:
        self.emulator = emulator
        self.vault = vault

    def env(self) -> dict[str, str]:
        env = self.emulator.environ()
        env.update(
            {
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_FORCE_COLOR": "0",
                "PATH": f"{BIN}:{env.get('PATH', '')}",
            }
        )
        return env

    def run(self, playbook: str, *extra: str, settings: bool = True, with_vault: bool = True) -> PlaybookRun:
        args = [str(BIN / "ansible-playbook"), playbook]
        if settings:
            args += ["-e", f"@{SETTINGS}"]
        if with_vault:
            args += ["-e", f"@{self.vault.path}", "--vault-password-file", str(self.vault.password_file)]
        args += list(extra)
        done = subprocess.run(args, cwd=ROOT, env=self.env(), capture_output=True, text=True, timeout=900)
        return PlaybookRun(args, done.returncode, done.stdout + done.stderr)

    def up(self, prefix: str, *extra: str) -> PlaybookRun:
        return self.run("up.yml", "-e", f"prefix={prefix}", *extra)

    def down(self, prefix: str, *extra: str) -> PlaybookRun:
        return self.run("down.yml", "-e", f"prefix={prefix}", *extra, with_vault=False)


def ok(run: PlaybookRun) -> PlaybookRun:
    """Fail with the tail of the output when a playbook failed."""
    assert run.returncode == 0, f"{' '.join(run.args)} failed:\n{run.output[-6000:]}"
    return run
