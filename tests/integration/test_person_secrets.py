"""Per-person vault files: each server gets its owner's values only, and a new value reaches the server.

One scenario for the module, on an empty account: a vault folder with
alice's and bob's files, each under its owner's vault id; `up.yml` for alice
(with alice's vault id only), then for bob (bob's only); carol, who has no
file, is refused; alice's password changes and `up.yml -vvv` runs again, then
once more with nothing changed. The tests read what Secrets Manager and ECS
hold afterwards.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfnlint.decode import decode
from team import APP

from nbstack_devkit.emulator import Clients, Emulator
from nbstack_devkit.paths import ROOT
from nbstack_devkit.playbooks import PlaybookRun, Playbooks, ok
from nbstack_devkit.vault import PersonVaults, leak_forms, random_values

#: Where each vault value is stored, under <app>/<prefix>/ (what the task definition refers to).
SECRET_VAULT_KEYS = {
    "github-token": "vault_github_token",
    "notebook-password": "vault_notebook_password",
    "warehouse-password": "vault_warehouse_password",
}
#: The container variable each secret reaches (the API token is generated, not from the vault).
SECRET_VARIABLES = {
    "github-token": "NBSTACK_GIT_TOKEN",
    "notebook-password": "NBSTACK_NOTEBOOK_PASSWORD",
    "warehouse-password": "NBSTACK_WAREHOUSE_PASSWORD",
    "api-token": "NBSTACK_API_TOKEN",
}
#: A new password with characters that JSON escapes and base64 spreads over byte boundaries.
ROTATED_PASSWORD = 'nbpw-rotated-"quoted"\\slash/é-'


def run_for(playbooks: Playbooks, vaults: PersonVaults, prefix: str, *extra: str) -> PlaybookRun:
    """up.yml for one person with the vault folder and that person's vault id only (no team vault)."""
    return playbooks.run("up.yml", "-e", f"prefix={prefix}", *vaults.args(prefix), *extra, with_vault=False)


def account_state(aws: Clients) -> dict[str, Any]:
    """What a refused run must leave as it was: stacks, secrets with their versions, task definitions."""
    stacks = aws.cloudformation.describe_stacks()["Stacks"]
    secrets = aws.secretsmanager.list_secrets()["SecretList"]
    return {
        "stacks": sorted((s["StackName"], s["StackStatus"], str(s.get("LastUpdatedTime"))) for s in stacks),
        "secrets": sorted((s["Name"], json.dumps(s.get("SecretVersionsToStages"), sort_keys=True)) for s in secrets),
        "task definitions": sorted(aws.ecs.list_task_definitions()["taskDefinitionArns"]),
    }


def service_task_definition(aws: Clients, prefix: str) -> dict[str, Any]:
    """The task definition of the person's stack, which its ECS service runs.

    The stack's, not the service's as the emulator reports it: on a stack
    update the emulator re-applies a resource only when its template text
    changed, so it leaves the service on the old revision, where
    CloudFormation updates the service to the new revision's ARN (and ECS
    replaces the task). test_the_service_runs_the_stacks_task_definition
    checks on the template that the service takes that ARN. The emulator
    also registers that new revision from the template's properties without
    their container name, image, environment or labels, so only its revision
    number is compared here; its label is checked on the template.
    """
    outputs = {
        item["OutputKey"]: item["OutputValue"]
        for item in aws.cloudformation.describe_stacks(StackName=f"{APP}-{prefix}")["Stacks"][0]["Outputs"]
    }
    return aws.ecs.describe_task_definition(taskDefinition=outputs["TaskDefinitionArn"])["taskDefinition"]


def labels(task_definition: dict[str, Any]) -> dict[str, str]:
    """The container's Docker labels."""
    (container,) = task_definition["containerDefinitions"]
    return dict(container.get("dockerLabels") or {})


def secrets_version(aws: Clients, prefix: str) -> str:
    """The SecretsVersion parameter of the person's stack."""
    stack = aws.cloudformation.describe_stacks(StackName=f"{APP}-{prefix}")["Stacks"][0]
    return next(p["ParameterValue"] for p in stack["Parameters"] if p["ParameterKey"] == "SecretsVersion")


def stored(aws: Clients, prefix: str) -> dict[str, str]:
    """The person's values in Secrets Manager, by vault key."""
    return {
        key: aws.secretsmanager.get_secret_value(SecretId=f"{APP}/{prefix}/{name}")["SecretString"]
        for name, key in SECRET_VAULT_KEYS.items()
    }


@pytest.fixture(scope="module")
def scenario(emulator: Emulator, playbooks: Playbooks, aws: Clients, tmp_path_factory: pytest.TempPathFactory) -> dict:
    emulator.reset()
    ok(playbooks.image("-e", "prefix=alice"))  # once for the team, as the README says
    vaults = PersonVaults(tmp_path_factory.mktemp("person-vaults") / "vault")
    first = {prefix: dict(vaults.write(prefix, random_values()).values) for prefix in ("alice", "bob")}
    runs = {prefix: ok(run_for(playbooks, vaults, prefix)) for prefix in ("alice", "bob")}
    task_definitions = {prefix: service_task_definition(aws, prefix) for prefix in ("alice", "bob")}
    versions = {"alice": secrets_version(aws, "alice")}
    stored_first = {prefix: stored(aws, prefix) for prefix in ("alice", "bob")}

    before = account_state(aws)
    runs["carol"] = run_for(playbooks, vaults, "carol")
    # alice's file with bob's password given beside it on the command line.
    runs["alice with -e"] = run_for(
        playbooks, vaults, "alice", "-e", f"vault_notebook_password={first['bob']['vault_notebook_password']}"
    )
    # dave's file lacks a key: refused, not filled in from the team's file or the command line.
    vaults.write("dave", {key: value for key, value in random_values().items() if key != "vault_warehouse_password"})
    runs["dave"] = run_for(playbooks, vaults, "dave")
    runs["dave with -e"] = run_for(playbooks, vaults, "dave", "-e", "vault_warehouse_password=given-on-the-command-line")
    after_refusals = account_state(aws)

    rotated = dict(first["alice"], vault_notebook_password=ROTATED_PASSWORD)
    vaults.write("alice", rotated)
    runs["rotated"] = ok(run_for(playbooks, vaults, "alice", "-vvv"))
    task_definitions["rotated"] = service_task_definition(aws, "alice")
    versions["rotated"] = secrets_version(aws, "alice")
    stored_rotated = stored(aws, "alice")
    runs["again"] = ok(run_for(playbooks, vaults, "alice"))
    task_definitions["again"] = service_task_definition(aws, "alice")
    versions["again"] = secrets_version(aws, "alice")
    return {
        "values": first,
        "rotated": rotated,
        "runs": runs,
        "task_definitions": task_definitions,
        "versions": versions,
        "stored": stored_first,
        "stored_rotated": stored_rotated,
        "before": before,
        "after_refusals": after_refusals,
        "vaults": vaults,
    }


@pytest.mark.parametrize("prefix", ["alice", "bob"])
def test_each_person_gets_their_own_values(scenario: dict, prefix: str) -> None:
    assert scenario["stored"][prefix] == scenario["values"][prefix]
    other = "bob" if prefix == "alice" else "alice"
    assert not set(scenario["stored"][prefix].values()) & set(scenario["values"][other].values())


@pytest.mark.parametrize("prefix", ["alice", "bob"])
def test_each_task_definition_refers_only_to_its_owners_secrets(scenario: dict, aws: Clients, prefix: str) -> None:
    (container,) = scenario["task_definitions"][prefix]["containerDefinitions"]
    own = {
        aws.secretsmanager.describe_secret(SecretId=f"{APP}/{prefix}/{name}")["ARN"]: variable
        for name, variable in SECRET_VARIABLES.items()
    }
    assert {secret["valueFrom"]: secret["name"] for secret in container["secrets"]} == own
    assert all(f":secret:{APP}/{prefix}/" in arn for arn in own)


def test_a_prefix_without_its_own_file_is_refused_before_anything_changes(scenario: dict, aws: Clients) -> None:
    run = scenario["runs"]["carol"]
    assert run.returncode != 0
    folder = scenario["vaults"].folder
    assert f'{folder} holds the vault files of alice, bob but none for prefix "carol"' in run.text
    assert f"ansible-vault create --vault-id carol@prompt {folder}/carol.yml" in run.text
    assert scenario["after_refusals"] == scenario["before"]
    assert not any(name.startswith(f"{APP}/carol/") for name, _ in scenario["after_refusals"]["secrets"])


def test_a_vault_value_given_beside_the_persons_file_is_refused(scenario: dict) -> None:
    run = scenario["runs"]["alice with -e"]
    assert run.returncode != 0
    assert "vault_notebook_password also given with -e" in run.text
    assert scenario["values"]["bob"]["vault_notebook_password"] not in run.output


def test_a_key_missing_from_the_persons_file_is_refused_not_filled_in(scenario: dict) -> None:
    folder = scenario["vaults"].folder
    run = scenario["runs"]["dave"]
    assert run.returncode != 0
    assert f"Missing, empty or still the example value: vault_warehouse_password. Put real values in {folder}/dave.yml" in run.text
    given = scenario["runs"]["dave with -e"]
    assert given.returncode != 0
    assert "vault_warehouse_password also given with -e" in given.text


def test_a_changed_password_reaches_the_server(scenario: dict) -> None:
    before, after = scenario["task_definitions"]["alice"], scenario["task_definitions"]["rotated"]
    assert after["revision"] > before["revision"]
    assert after["family"] == before["family"]
    assert scenario["stored_rotated"] == scenario["rotated"]
    # The task carries the digest of the secrets' versions; a new value, a new digest.
    assert labels(before)["nbstack.secrets-version"] == scenario["versions"]["alice"]
    assert scenario["versions"]["rotated"] != scenario["versions"]["alice"]
    assert "Secrets changed: the server was restarted to use them" in scenario["runs"]["rotated"].text
    assert f"{APP}-alice updated" in scenario["runs"]["rotated"].text


def test_the_service_runs_the_stacks_task_definition() -> None:
    """What the emulator does not apply on update: the service follows the task definition's ARN."""
    template, matches = decode(str(ROOT / "files" / "cloudformation" / "instance.yml"))
    assert not matches, matches
    resources = template["Resources"]
    (service,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ECS::Service"]
    (name,) = [name for name, r in resources.items() if r["Type"] == "AWS::ECS::TaskDefinition"]
    assert service["TaskDefinition"] == {"Ref": name}
    (container,) = resources[name]["Properties"]["ContainerDefinitions"]
    assert container["DockerLabels"] == {"nbstack.secrets-version": {"Ref": "SecretsVersion"}}


def test_an_unchanged_rerun_keeps_the_task(scenario: dict) -> None:
    run = scenario["runs"]["again"]
    assert run.changed == 0, run.output[-4000:]
    assert scenario["task_definitions"]["again"]["revision"] == scenario["task_definitions"]["rotated"]["revision"]
    assert scenario["versions"]["again"] == scenario["versions"]["rotated"]
    assert "Secrets changed" not in run.text
    assert "Secrets changed" not in scenario["runs"]["bob"].text


def test_no_value_leaks_in_any_encoding(scenario: dict, aws: Clients) -> None:
    values = [
        value
        for person in (*scenario["values"].values(), scenario["rotated"])
        for value in person.values()
    ]
    stacks = aws.cloudformation.describe_stacks()["Stacks"]
    places = {
        "the rotation's up.yml -vvv output": scenario["runs"]["rotated"].output,
        "the other runs' output": "\n".join(
            run.output for name, run in scenario["runs"].items() if name not in ("rotated", "alice with -e", "dave with -e")
        ),
        "stack parameters and outputs": json.dumps(
            [{"p": s.get("Parameters"), "o": s.get("Outputs")} for s in stacks], default=str
        ),
        "task definitions": json.dumps(scenario["task_definitions"], default=str),
    }
    assert "<localhost> EXEC" in scenario["runs"]["rotated"].output
    for place, text in places.items():
        for value in values:
            for form in leak_forms(value):
                assert form not in text, f"a secret value appears in {place}"



# Runs last: it starts from an empty account, after the scenario's tests have read theirs.
def test_the_team_file_serves_one_person_only(
    emulator: Emulator, playbooks: Playbooks, aws: Clients, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Without per-person files the team's values serve whoever runs: a second person is refused, not given them."""
    emulator.reset()
    ok(playbooks.up("alice"))  # one person, the team's file: as simple as ever
    before = account_state(aws)
    run = playbooks.up("bob")
    assert run.returncode != 0
    assert "the servers of alice already exist" in run.text, run.tail()
    assert 'prefix "bob" would get the same Jupyter password and git token as they have' in run.text
    # The settings turn per-person files off (notebook_vault_dir: ""): the fix names the folder to set.
    assert "ansible-vault create --vault-id bob@prompt vault/bob.yml" in run.text
    assert 'set notebook_vault_dir to that folder; it is ""' in run.text
    assert "nothing in AWS was changed" in run.text
    assert account_state(aws) == before
    assert not any(name.startswith(f"{APP}/bob/") for name, _ in before["secrets"])
    # The fix the message gives: bob's own file.
    vaults = PersonVaults(tmp_path_factory.mktemp("team-then-person") / "vault")
    own = vaults.write("bob", random_values()).values
    ok(run_for(playbooks, vaults, "bob"))
    assert stored(aws, "bob") == own
    assert stored(aws, "alice") == {key: playbooks.vault.values[key] for key in SECRET_VAULT_KEYS.values()}
