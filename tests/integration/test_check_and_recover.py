"""Check mode previews without changing anything; a broken stack is recovered."""

from __future__ import annotations

from typing import Any

import pytest
from moto.cloudformation.models import cloudformation_backends
from team import APP

from nbstack_devkit.emulator import ACCOUNT_ID, REGION, Clients, Emulator
from nbstack_devkit.playbooks import Playbooks, ok


def stacks(aws: Clients) -> dict[str, dict[str, Any]]:
    return {s["StackName"]: s for s in aws.cloudformation.describe_stacks()["Stacks"]}


def parameters(stack: dict[str, Any]) -> dict[str, str]:
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}


@pytest.fixture(scope="module")
def fresh(emulator: Emulator) -> None:
    emulator.reset()


def test_check_mode_on_an_empty_account_creates_nothing(fresh: None, playbooks: Playbooks, aws: Clients) -> None:
    run = ok(playbooks.up("alice", "--check", "--diff"))
    assert "nbtest-network would be created, nbtest-persistent would be created, nbtest-alice would be created" in (
        run.text
    )
    assert "Notebook: not known until the stacks exist" in run.text
    assert aws.cloudformation.describe_stacks()["Stacks"] == []
    assert aws.secretsmanager.list_secrets()["SecretList"] == []


def test_check_mode_shows_a_parameter_change_and_changes_nothing(
    fresh: None, playbooks: Playbooks, aws: Clients
) -> None:
    ok(playbooks.up("alice"))
    before = stacks(aws)
    run = ok(playbooks.up("alice", "--check", "--diff", "-e", '{"notebook_root_volume": {"size": 200, "type": "gp3"}}'))
    assert "nbtest-alice would be updated" in run.text
    assert '-        "RootVolumeSize": "100",' in run.output
    assert '+        "RootVolumeSize": "200",' in run.output
    # CloudFormation's own preview ran as a change set (of type UPDATE: no
    # second stack appears, checked below). The emulator lists only template
    # differences in change sets, so this parameter change shows none there.
    assert "TASK [stack : Show the resource changes of nbtest-alice]" in run.output
    after = stacks(aws)
    assert len(aws.cloudformation.describe_stacks()["Stacks"]) == len(before)
    assert parameters(after[f"{APP}-alice"]) == parameters(before[f"{APP}-alice"])
    assert {name: s.get("LastUpdatedTime") for name, s in after.items()} == {
        name: s.get("LastUpdatedTime") for name, s in before.items()
    }


def test_a_real_run_then_applies_the_change(fresh: None, playbooks: Playbooks, aws: Clients) -> None:
    run = ok(playbooks.up("alice", "-e", '{"notebook_root_volume": {"size": 200, "type": "gp2"}}'))
    assert "nbtest-alice updated" in run.text
    assert parameters(stacks(aws)[f"{APP}-alice"])["RootVolumeSize"] == "200"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks(aws)[f"{APP}-alice"]["Outputs"]}
    versions = aws.ec2.describe_launch_template_versions(LaunchTemplateId=outputs["LaunchTemplateId"])
    latest = max(versions["LaunchTemplateVersions"], key=lambda version: version["VersionNumber"])
    (mapping,) = latest["LaunchTemplateData"]["BlockDeviceMappings"]
    assert (mapping["Ebs"]["VolumeSize"], mapping["Ebs"]["VolumeType"]) == (200, "gp2")


def break_stack(aws: Clients, name: str) -> str:
    """Leave the stack as a failed creation does: resources rolled back, ROLLBACK_COMPLETE."""
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks(aws)[name]["Outputs"]}
    aws.elbv2.delete_rule(RuleArn=outputs["ListenerRuleArn"])
    backend = cloudformation_backends[ACCOUNT_ID][REGION]
    stack = next(s for s in backend.stacks.values() if s.name == name and s.status != "DELETE_COMPLETE")
    stack.status = "ROLLBACK_COMPLETE"
    return str(stack.stack_id)


def test_a_stack_left_in_rollback_complete_is_recreated(fresh: None, playbooks: Playbooks, aws: Clients) -> None:
    broken_id = break_stack(aws, f"{APP}-alice")
    assert stacks(aws)[f"{APP}-alice"]["StackStatus"] == "ROLLBACK_COMPLETE"
    run = ok(playbooks.up("alice", "-e", '{"notebook_root_volume": {"size": 200, "type": "gp3"}}'))
    assert "The nbtest-alice stack is ROLLBACK_COMPLETE" in run.text
    assert "deleted and created again" in run.text
    recreated = stacks(aws)[f"{APP}-alice"]
    assert recreated["StackStatus"] == "CREATE_COMPLETE"
    assert recreated["StackId"] != broken_id
    listener = {o["OutputKey"]: o["OutputValue"] for o in stacks(aws)[f"{APP}-persistent"]["Outputs"]}["ListenerArn"]
    paths = [
        r["Conditions"][0]["PathPatternConfig"]["Values"]
        for r in aws.elbv2.describe_rules(ListenerArn=listener)["Rules"]
        if not r["IsDefault"]
    ]
    assert paths == [["/alice", "/alice/*"]]
