"""Check mode previews without changing anything; a broken stack is recovered."""

from __future__ import annotations

from typing import Any

import pytest
from moto.cloudformation.models import Event, cloudformation_backends
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
    assert (
        "nbtest-network would be created, nbtest-persistent would be created, nbtest-alice-work would be created,"
        " nbtest-alice would be created"
    ) in run.text
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


def test_a_protected_work_stack_whose_creation_failed_is_recreated(fresh: None, playbooks: Playbooks, aws: Clients) -> None:
    """A work stack is created with termination protection, which stays on after its creation failed."""
    ok(playbooks.down("alice"))
    backend = cloudformation_backends[ACCOUNT_ID][REGION]
    stack = next(s for s in backend.stacks.values() if s.name == f"{APP}-alice-work" and s.status != "DELETE_COMPLETE")
    stack.status = "ROLLBACK_COMPLETE"
    assert stacks(aws)[f"{APP}-alice-work"]["EnableTerminationProtection"] is True
    run = ok(playbooks.up("alice"))
    assert "The nbtest-alice-work stack is ROLLBACK_COMPLETE" in run.text
    recreated = stacks(aws)[f"{APP}-alice-work"]
    assert recreated["StackStatus"] == "CREATE_COMPLETE" and recreated["StackId"] != stack.stack_id
    assert recreated["EnableTerminationProtection"] is True


# Shared stacks: protected, never re-created, a failed rollback continued.


def backend_stack(name: str) -> Any:
    backend = cloudformation_backends[ACCOUNT_ID][REGION]
    return next(s for s in backend.stacks.values() if s.name == name and s.status != "DELETE_COMPLETE")


def leave_in(name: str, status: str, *events: tuple[str, str, str, str]) -> str:
    """Put the stack in `status` with the events (logical id, type, status, reason) CloudFormation would have written."""
    stack = backend_stack(name)
    for logical_id, resource_type, resource_status, reason in events:
        stack.events.append(Event(stack.stack_id, name, logical_id, "", resource_type, resource_status, reason, None))
    stack.status = status
    return str(stack.stack_id)


def test_shared_stacks_are_protected_and_every_stack_has_a_create_timeout(
    fresh: None, playbooks: Playbooks, aws: Clients
) -> None:
    found = stacks(aws)
    assert {name: (s["EnableTerminationProtection"], s.get("TimeoutInMinutes")) for name, s in found.items()} == {
        f"{APP}-network": (True, 20),
        f"{APP}-persistent": (True, 45),
        f"{APP}-alice-work": (True, 15),
        f"{APP}-alice": (False, 30),
    }


PROTECTED = (f"{APP}-network", f"{APP}-persistent", f"{APP}-alice-work")


def up_showing_tasks(playbooks: Playbooks, *extra: str) -> str:
    """up.yml for alice with Ansible's default output, which names every task and how it ended."""
    return ok(playbooks.run("up.yml", "-e", "prefix=alice", *extra, env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"})).output


def protection_task(run_output: str, stack: str) -> str:
    """How the stack role's "Turn termination protection on" task ended for the stack: ok, changed, skipping."""
    block = run_output.split(f"TASK [stack : Turn termination protection on for {stack}]", 1)[1]
    return block.split("\n\n", 1)[0].split("]", 1)[0].rsplit("\n", 1)[-1].split(":", 1)[0].strip()


def test_a_protected_stack_found_unprotected_is_protected_again(fresh: None, playbooks: Playbooks, aws: Clients) -> None:
    """Protection turned off by hand (or a stack made before it was protected): a whole run turns it back on,
    whether or not the stack itself changes, and asks nothing of a stack that has it."""
    unprotected = [f"{APP}-network", f"{APP}-alice-work"]
    for name in unprotected:
        aws.cloudformation.update_termination_protection(StackName=name, EnableTerminationProtection=False)
    output = up_showing_tasks(playbooks, "-e", "recheck=true")
    assert {name: protection_task(output, name) for name in PROTECTED} == {
        f"{APP}-network": "changed", f"{APP}-persistent": "skipping", f"{APP}-alice-work": "changed"
    }
    assert {name: stacks(aws)[name]["EnableTerminationProtection"] for name in PROTECTED} == dict.fromkeys(PROTECTED, True)

    again = up_showing_tasks(playbooks, "-e", "recheck=true")
    assert {name: protection_task(again, name) for name in PROTECTED} == dict.fromkeys(PROTECTED, "skipping")

    # A stack this run updates gets it back from the update itself (amazon.aws.cloudformation matches it).
    persistent = f"{APP}-persistent"
    aws.cloudformation.update_termination_protection(StackName=persistent, EnableTerminationProtection=False)
    try:
        changed = up_showing_tasks(playbooks, "-e", "notebook_log_retention_days=60", "-e", "team_update=true")
        assert parameters(stacks(aws)[persistent])["LogRetentionDays"] == "60"
        assert protection_task(changed, persistent) == "skipping"
        assert stacks(aws)[persistent]["EnableTerminationProtection"] is True
    finally:
        ok(playbooks.up("alice", "-e", "team_update=true"))


def test_a_shared_stack_that_cannot_be_updated_stops_the_run_and_is_kept(
    fresh: None, playbooks: Playbooks, aws: Clients
) -> None:
    name = f"{APP}-persistent"
    kept_id = leave_in(
        name,
        "ROLLBACK_COMPLETE",
        (name, "AWS::CloudFormation::Stack", "CREATE_IN_PROGRESS", "User Initiated"),
        ("LoadBalancer", "AWS::ElasticLoadBalancingV2::LoadBalancer", "CREATE_FAILED", "subnet quota reached"),
    )
    try:
        run = playbooks.up("alice")
        assert run.returncode != 0
        assert f"The {name} stack is ROLLBACK_COMPLETE" in run.text
        assert "LoadBalancer (AWS::ElasticLoadBalancingV2::LoadBalancer) CREATE_FAILED: subnet quota reached" in run.text
        assert "update-termination-protection" in run.text
        assert "Nothing was changed." in run.text
        assert stacks(aws)[name]["StackId"] == kept_id
        assert stacks(aws)[name]["StackStatus"] == "ROLLBACK_COMPLETE"
    finally:
        backend_stack(name).status = "CREATE_COMPLETE"


def test_a_failed_update_rollback_is_continued_and_names_what_failed(
    fresh: None, playbooks: Playbooks, aws: Clients
) -> None:
    name = f"{APP}-network"
    kept_id = leave_in(
        name,
        "UPDATE_ROLLBACK_FAILED",
        (name, "AWS::CloudFormation::Stack", "UPDATE_IN_PROGRESS", "User Initiated"),
        ("NatGateway", "AWS::EC2::NatGateway", "UPDATE_FAILED", "The allocation ID is in use"),
        (name, "AWS::CloudFormation::Stack", "UPDATE_ROLLBACK_IN_PROGRESS", "The following resource(s) failed"),
        ("PublicRoute", "AWS::EC2::Route", "UPDATE_FAILED", "Route was deleted by hand"),
        (name, "AWS::CloudFormation::Stack", "UPDATE_ROLLBACK_FAILED", "The following resource(s) failed"),
    )
    run = ok(playbooks.up("alice"))
    assert f"The {name} stack is UPDATE_ROLLBACK_FAILED" in run.text
    assert "PublicRoute (AWS::EC2::Route) UPDATE_FAILED: Route was deleted by hand" in run.text
    assert "NatGateway (AWS::EC2::NatGateway) UPDATE_FAILED: The allocation ID is in use" in run.text
    assert "ContinueUpdateRollback" in run.text
    network = stacks(aws)[name]
    assert network["StackId"] == kept_id
    assert network["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert network["EnableTerminationProtection"] is True


def test_every_updatable_state_is_updated_in_place(fresh: None, playbooks: Playbooks, aws: Clients) -> None:
    name = f"{APP}-alice"
    kept_id = leave_in(name, "IMPORT_ROLLBACK_COMPLETE")
    run = ok(playbooks.up("alice", "-e", '{"notebook_root_volume": {"size": 120, "type": "gp3"}}'))
    assert "deleted and created again" not in run.text
    instance = stacks(aws)[name]
    assert instance["StackId"] == kept_id
    assert parameters(instance)["RootVolumeSize"] == "120"


def test_an_instance_stack_whose_delete_failed_says_what_to_do(
    fresh: None, playbooks: Playbooks, aws: Clients
) -> None:
    name = f"{APP}-alice"
    kept_id = leave_in(
        name,
        "DELETE_FAILED",
        (name, "AWS::CloudFormation::Stack", "DELETE_IN_PROGRESS", "User Initiated"),
        ("TaskRole", "AWS::IAM::Role", "DELETE_FAILED", "Cannot delete entity, must detach all policies first"),
        (name, "AWS::CloudFormation::Stack", "DELETE_FAILED", "The following resource(s) failed to delete: [TaskRole]"),
    )
    try:
        run = playbooks.up("alice")
        assert run.returncode != 0
        assert f"The {name} stack is DELETE_FAILED" in run.text
        assert "TaskRole (AWS::IAM::Role) DELETE_FAILED: Cannot delete entity" in run.text
        assert "down.yml" in run.text
        assert stacks(aws)[name]["StackId"] == kept_id
    finally:
        backend_stack(name).status = "UPDATE_COMPLETE"


def test_removing_the_shared_stacks_turns_their_protection_off_first(
    fresh: None, playbooks: Playbooks, aws: Clients
) -> None:
    # force: the emulator runs no task, so no autosave of alice's is recorded (the purge refuses that otherwise).
    run = playbooks.down("alice", "-e", "persistent=absent", "-e", "purge_work=true", "-e", "force=true")
    for shared in (f"{APP}-persistent", f"{APP}-network"):
        assert f"The {shared} stack has termination protection; it is turned off so that the stack can be deleted" in (
            run.text
        )
    # The emulator's EC2 then answers the network stack's delete with a
    # DependencyViolation for its VPC, after removing the stack (as it does
    # for any network stack); CloudFormation deletes in dependency order.
    assert "TerminationProtection" not in run.output
    assert aws.cloudformation.describe_stacks()["Stacks"] == []
