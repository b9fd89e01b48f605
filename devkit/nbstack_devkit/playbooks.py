"""Running the project's playbooks against the emulator, as a user runs them against AWS.

One runner for the tests, the benches and the demo: the same command line
(`ansible-playbook <playbook> -e @<settings> -e notebook_team_vault=<vault>
--vault-password-file <file> ...`: the vault is the team vault up.yml reads),
run from the checkout with this virtualenv's ansible-playbook,
in an environment that points boto3 at the emulator.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import yaml

from .emulator import Emulator
from .paths import BIN, ROOT
from .registry import install_docker_standin
from .vault import Vault


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

    def tail(self, lines: int = 40) -> str:
        """The last lines of the output: where Ansible says what failed."""
        return "".join(self.output.splitlines(keepends=True)[-lines:])


class Playbooks:
    """Runs the project's playbooks with one settings file and one vault, against one emulator."""

    def __init__(self, emulator: Emulator, settings: Path, vault: Vault | None = None) -> None:
        self.emulator = emulator
        self.settings = settings
        self.vault = vault

    @property
    def app(self) -> str:
        """The settings' notebook_app_name: the first part of every stack and secret name."""
        return str(yaml.safe_load(self.settings.read_text())["notebook_app_name"])

    def env(self) -> dict[str, str]:
        """The playbooks' environment: the emulator's, plain output, this virtualenv's tools first."""
        env = self.emulator.environ()
        env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PATH=f"{BIN}:{env.get('PATH', '')}")
        return env

    def run(
        self,
        playbook: str,
        *extra: str,
        settings: bool = True,
        with_vault: bool = True,
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
        timeout: float = 900,
    ) -> PlaybookRun:
        """Run one playbook to its end and return what it printed.

        `env` adds to (or overrides) the environment; with `log`, the output
        goes to that file as it is printed (a person can follow it) and is
        read back from there. The playbook runs in a session of its own, so a
        Ctrl-C meant for the caller (the demo) does not cut it short.
        """
        args = [str(BIN / "ansible-playbook"), playbook]
        if settings:
            args += ["-e", f"@{self.settings}"]
        if with_vault:
            if self.vault is None:
                raise ValueError(f"{playbook} is to run with a vault, but these playbooks have none")
            # The team vault, as a person sets it: only up.yml reads it.
            args += ["-e", f"notebook_team_vault={self.vault.path}", "--vault-password-file", str(self.vault.password_file)]
        args += list(extra)
        environ = {**self.env(), **(env or {})}
        if log is None:
            done = subprocess.run(
                args,
                cwd=ROOT,
                env=environ,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                start_new_session=True,
            )
            return PlaybookRun(args, done.returncode, done.stdout + done.stderr)
        with log.open("w") as output:
            code = subprocess.run(
                args,
                cwd=ROOT,
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                start_new_session=True,
            ).returncode
        return PlaybookRun(args, code, log.read_text(errors="replace"))

    def up(self, prefix: str, *extra: str, log: Path | None = None, image: bool = True) -> PlaybookRun:
        """up.yml for `prefix`; first, unless `image` is false, image.yml when this checkout's image is not in ECR.

        The README's order on a new account: image.yml once for the team,
        then up.yml. image.yml runs with the same settings (`extra`) and the
        registry stand-in for Docker (nbstack_devkit.registry); when it fails
        (its preflight refuses a team setting), its run is returned and
        up.yml is not run. A run with --check (a preview) is run as it is.
        """
        if image and "--check" not in extra and not self.image_pushed():
            first = self.image("-e", f"prefix={prefix}", *extra, log=log)
            if first.returncode != 0:
                return first
        return self.run("up.yml", "-e", f"prefix={prefix}", *extra, log=log)

    def image(self, *extra: str, log: Path | None = None) -> PlaybookRun:
        """image.yml (no vault), with the registry stand-in as `docker`."""
        with tempfile.TemporaryDirectory(prefix="nbstack-docker-") as folder:
            install_docker_standin(Path(folder))
            env = {"PATH": f"{folder}:{self.env()['PATH']}"}
            return self.run("image.yml", *extra, with_vault=False, env=env, log=log)

    def image_pushed(self) -> bool:
        """Whether both variants of this checkout's image are in the emulator's ECR."""
        tag = _image_context().content_tag(ROOT / "files" / "image")
        ecr = self.emulator.client("ecr")
        for variant_tag in (tag, f"gpu-{tag}"):
            try:
                ecr.describe_images(repositoryName=f"{self.app}/notebook", imageIds=[{"imageTag": variant_tag}])
            except (ecr.exceptions.RepositoryNotFoundException, ecr.exceptions.ImageNotFoundException):
                return False
        return True

    def down(self, prefix: str, *extra: str, log: Path | None = None) -> PlaybookRun:
        return self.run("down.yml", "-e", f"prefix={prefix}", *extra, with_vault=False, log=log)


def _image_context() -> ModuleType:
    """The collection's image_context (the tag image.yml gives this checkout's image), loaded from its file.

    The devkit runs outside Ansible (make demo), where the collection is not
    importable as ansible_collections.nbstack; the module imports nothing of Ansible's.
    """
    path = ROOT / "collections" / "ansible_collections" / "nbstack" / "cloud" / "plugins" / "plugin_utils" / "image_context.py"
    spec = importlib.util.spec_from_file_location("nbstack_image_context", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ok(run: PlaybookRun) -> PlaybookRun:
    """The run, if it succeeded; else an AssertionError with the command and the tail of its output."""
    if run.returncode != 0:
        raise AssertionError(f"{' '.join(run.args)} failed:\n{run.output[-6000:]}")
    return run
