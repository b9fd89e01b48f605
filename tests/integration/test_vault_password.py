"""The commands as the README writes them, with the team vault encrypted as the README says.

One scenario for the module, on an empty account, in a copy of the checkout
(the test encrypts its team vault, which the checkout must keep as shipped):
real values go into the file the README's "Secrets" section encrypts, and
`ansible-vault encrypt` encrypts it. Then, with no vault password,
`up.yml` is refused with a message naming the password it needs and changes
nothing; `up.yml` with the password brings alice up; `status.yml` and
`down.yml` run without it. A team vault left at its old place,
group_vars/all/vault.yml, gets a message saying where to move it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from team import APP, SETTINGS

from nbstack_devkit.emulator import Clients, Emulator
from nbstack_devkit.paths import BIN, ROOT
from nbstack_devkit.playbooks import PlaybookRun, Playbooks, ok
from nbstack_devkit.vault import leak_forms, random_values

PREFIX = "alice"
#: The commands as the README shows them, after the settings of these tests (-e @settings.yml).
UP = ["up.yml", "-e", f"prefix={PREFIX}", "--ask-vault-pass"]
STATUS = ["status.yml"]
DOWN = ["down.yml", "-e", f"prefix={PREFIX}"]


def copy_checkout(target: Path) -> Path:
    """The checkout's files as git knows them (tracked, and new ones not ignored), in `target`; links stay links."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            (target / name).symlink_to(source.readlink())
        elif source.is_file():
            shutil.copy2(source, target / name)
    return target


def readme_team_vault(checkout: Path) -> str:
    """The file the README's "Secrets" section encrypts: `ansible-vault encrypt <file>`."""
    secrets = checkout.joinpath("README.md").read_text().split("### Secrets", 1)[1]
    found = re.search(r"^ansible-vault encrypt (\S+)$", secrets, re.MULTILINE)
    assert found, "the README's Secrets section shows no ansible-vault encrypt command"
    return found.group(1)


def run(playbooks: Playbooks, checkout: Path, command: list[str], password_file: Path | None = None) -> PlaybookRun:
    """ansible-playbook <command> in the copy, against the emulator; --ask-vault-pass answered from a file.

    --ask-vault-pass reads the terminal, which a test has not: the same
    password is given with --vault-password-file, or no password at all.
    """
    command = [word for word in command if word != "--ask-vault-pass"]
    password = ["--vault-password-file", str(password_file)] if password_file else []
    # The test settings turn per-person vault files off; here the folder is as shipped, the team vault in it.
    folder = ["-e", f"notebook_vault_dir={checkout / 'vault'}"]
    args = [str(BIN / "ansible-playbook"), *command[:1], "-e", f"@{SETTINGS}", *folder, *command[1:], *password]
    done = subprocess.run(
        args, cwd=checkout, env=playbooks.env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=900, start_new_session=True,
    )
    return PlaybookRun(args, done.returncode, done.stdout + done.stderr)


def account_state(aws: Clients) -> dict[str, Any]:
    """The stacks and secrets of the account."""
    return {
        "stacks": sorted(s["StackName"] for s in aws.cloudformation.describe_stacks()["Stacks"]),
        "secrets": sorted(s["Name"] for s in aws.secretsmanager.list_secrets()["SecretList"]),
    }


@pytest.fixture(scope="module")
def scenario(emulator: Emulator, playbooks: Playbooks, aws: Clients, tmp_path_factory: pytest.TempPathFactory) -> dict:
    emulator.reset()
    ok(playbooks.image("-e", "prefix=alice"))  # once for the team, as the README says
    checkout = copy_checkout(tmp_path_factory.mktemp("checkout"))
    team_vault = readme_team_vault(checkout)
    values = random_values()
    checkout.joinpath(team_vault).write_text(yaml.safe_dump(values))
    password_file = tmp_path_factory.mktemp("password") / "team-vault-password"
    password_file.write_text("team-vault-password-for-the-test\n")
    subprocess.run(
        [str(BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(password_file), team_vault],
        cwd=checkout, check=True, capture_output=True,
    )
    assert checkout.joinpath(team_vault).read_text().startswith("$ANSIBLE_VAULT;")
    runs: dict[str, PlaybookRun] = {}
    before = account_state(aws)
    runs["up without the password"] = run(playbooks, checkout, UP)
    after_refusal = account_state(aws)
    runs["up"] = ok(run(playbooks, checkout, UP, password_file))
    runs["status"] = run(playbooks, checkout, STATUS)
    runs["down"] = run(playbooks, checkout, DOWN)
    after_down = account_state(aws)
    # An upgraded checkout that kept its team vault at the old place.
    old = checkout / "group_vars" / "all" / "vault.yml"
    old.write_text(yaml.safe_dump(values))
    runs["status with the old vault"] = run(playbooks, checkout, STATUS)
    old.unlink()
    return {
        "checkout": checkout, "team vault": team_vault, "values": values, "runs": runs,
        "before": before, "after refusal": after_refusal, "after down": after_down,
    }


def test_the_readme_shows_the_commands_as_run(scenario: dict) -> None:
    readme = scenario["checkout"].joinpath("README.md").read_text()
    for command in (UP, STATUS, DOWN):
        assert "ansible-playbook " + " ".join(command) in readme, command


def test_up_without_the_password_names_the_password_it_needs(scenario: dict) -> None:
    run = scenario["runs"]["up without the password"]
    assert run.returncode != 0
    team_vault = scenario["checkout"] / scenario["team vault"]
    assert f"{team_vault} is encrypted, and up.yml needs its vault password" in run.text, run.tail()
    assert f'run "ansible-playbook up.yml -e prefix={PREFIX} --ask-vault-pass"' in run.text
    assert "nothing in AWS was changed" in run.text
    assert scenario["after refusal"] == scenario["before"]


def test_up_with_the_password_uses_the_team_vault(scenario: dict, aws: Clients) -> None:
    assert scenario["runs"]["up"].returncode == 0
    stored = aws.secretsmanager.get_secret_value(SecretId=f"{APP}/{PREFIX}/notebook-password")["SecretString"]
    assert stored == scenario["values"]["vault_notebook_password"]


def test_status_runs_without_the_vault_password(scenario: dict) -> None:
    run = ok(scenario["runs"]["status"])
    # alice's row: "- alice   running  m5.xlarge ..."
    assert re.search(rf"^\s*- {PREFIX}\s+running\s", run.output, re.MULTILINE), run.tail()


def test_down_runs_without_the_vault_password(scenario: dict) -> None:
    ok(scenario["runs"]["down"])
    assert f"{APP}-{PREFIX}" not in scenario["after down"]["stacks"]


def test_a_team_vault_at_its_old_place_is_named_with_where_to_move_it(scenario: dict) -> None:
    run = scenario["runs"]["status with the old vault"]
    assert run.returncode != 0
    assert "group_vars/all/vault.yml: the team vault is now" in run.text, run.tail()
    assert f'"mv group_vars/all/vault.yml {scenario["checkout"] / "vault" / "team.yml"}"' in run.text


def test_no_vault_value_in_any_output(scenario: dict) -> None:
    for name, value in scenario["values"].items():
        for form in leak_forms(value):
            for label, run in scenario["runs"].items():
                assert form not in run.output, f"{name} appears in the output of {label}"
