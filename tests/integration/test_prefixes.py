"""Several people at once: independent stacks, unique rule priorities, one down.

Scenario: alice (m5.xlarge) and bob (g5.xlarge) come up; a rule added by hand
sits on carol's preferred priority before she comes up; alice goes down; the
shared stacks can only go once nobody is up.
"""

from __future__ import annotations

from typing import Any

import pytest
from team import APP, PersonPlaybooks

from ansible_collections.nbstack.cloud.plugins.filter import instance
from nbstack_devkit.emulator import Clients, Emulator
from nbstack_devkit.playbooks import PlaybookRun, Playbooks, ok


def rule_priority(prefix: str, taken: list[int]) -> int:
    return int(instance.rule_priority(prefix, taken))


def stack_names(aws: Clients) -> set[str]:
    return {s["StackName"] for s in aws.cloudformation.describe_stacks()["Stacks"]}


def outputs(aws: Clients, name: str) -> dict[str, str]:
    stack = aws.cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def rules(aws: Clients) -> dict[str, dict[str, Any]]:
    """Non-default rules on the shared listener, by the first path they match."""
    listener = outputs(aws, f"{APP}-persistent")["ListenerArn"]
    found = aws.elbv2.describe_rules(ListenerArn=listener)["Rules"]
    return {r["Conditions"][0]["PathPatternConfig"]["Values"][0]: r for r in found if not r["IsDefault"]}


@pytest.fixture(scope="module")
def playbooks(playbooks: Playbooks, tmp_path_factory: pytest.TempPathFactory) -> Playbooks:
    """Each person's up.yml with their own vault file, as several people need."""
    return PersonPlaybooks(playbooks, tmp_path_factory.mktemp("people") / "vault")


@pytest.fixture(scope="module")
def team(emulator: Emulator, playbooks: Playbooks, aws: Clients) -> dict[str, PlaybookRun]:
    emulator.reset()
    runs = {"alice": ok(playbooks.up("alice")), "bob": ok(playbooks.up("bob", "-e", "instance_type=g5.xlarge"))}
    # Someone adds a rule by hand exactly where carol's priority would be.
    listener = outputs(aws, f"{APP}-persistent")["ListenerArn"]
    taken = [int(r["Priority"]) for r in rules(aws).values()]
    aws.elbv2.create_rule(
        ListenerArn=listener,
        Priority=rule_priority("carol", taken),
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/maintenance/*"]}}],
        Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503"}}],
    )
    runs["carol"] = ok(playbooks.up("carol"))
    runs["alice again"] = ok(playbooks.up("alice"))
    return runs


def test_each_person_has_an_independent_stack(team: dict, aws: Clients) -> None:
    assert {f"{APP}-alice", f"{APP}-bob", f"{APP}-carol", f"{APP}-persistent"} <= stack_names(aws)
    services = {outputs(aws, f"{APP}-{p}")["ServiceName"] for p in ("alice", "bob", "carol")}
    assert len(services) == 3


def test_priorities_are_unique_and_stable(team: dict, aws: Clients) -> None:
    found = rules(aws)
    priorities = [int(r["Priority"]) for r in found.values()]
    assert len(priorities) == len(set(priorities)) == 4
    for prefix in ("alice", "bob", "carol"):
        assert found[f"/{prefix}"]["Priority"] == outputs(aws, f"{APP}-{prefix}")["ListenerRulePriority"]
    # carol's preferred number was taken by hand, so she got another one.
    assert int(found["/carol"]["Priority"]) != int(found["/maintenance/*"]["Priority"])
    assert team["alice again"].changed == 0


def test_gpu_type_gets_the_gpu_ami_and_a_gpu(team: dict, aws: Clients) -> None:
    bob = outputs(aws, f"{APP}-bob")
    data = aws.ec2.describe_launch_template_versions(LaunchTemplateId=bob["LaunchTemplateId"])[
        "LaunchTemplateVersions"
    ][0]["LaunchTemplateData"]
    gpu_ami = aws.ssm.get_parameter(Name="/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id")
    cpu_ami = aws.ssm.get_parameter(Name="/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id")
    assert data["ImageId"] == gpu_ami["Parameter"]["Value"] != cpu_ami["Parameter"]["Value"]
    assert data["InstanceType"] == "g5.xlarge"
    container = aws.ecs.describe_task_definition(taskDefinition=bob["TaskDefinitionArn"])["taskDefinition"][
        "containerDefinitions"
    ][0]
    assert container["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
    assert ":gpu-c-" in container["image"]
    # g5.xlarge has 16 GiB, like m5.xlarge; the reservation follows it.
    assert container["memoryReservation"] == 14888
    assert "Instance type: g5.xlarge (1 GPU" in team["bob"].text


def test_refuses_to_remove_shared_stacks_while_people_are_up(team: dict, playbooks: Playbooks, aws: Clients) -> None:
    before = stack_names(aws)
    run = playbooks.down("alice", "-e", "persistent=absent")
    assert run.returncode != 0
    assert f"{APP}-bob" in run.text and f"{APP}-carol" in run.text
    assert "Nothing was changed" in run.text
    assert stack_names(aws) == before


def test_one_down_leaves_the_others(team: dict, playbooks: Playbooks, aws: Clients) -> None:
    bob_before = outputs(aws, f"{APP}-bob")
    run = ok(playbooks.down("alice"))
    assert f"{APP}-alice is deleted" in run.text
    names = stack_names(aws)
    assert f"{APP}-alice" not in names
    assert {f"{APP}-bob", f"{APP}-carol", f"{APP}-persistent", f"{APP}-network"} <= names
    assert outputs(aws, f"{APP}-bob") == bob_before
    service = aws.ecs.describe_services(cluster=bob_before["ClusterName"], services=[bob_before["ServiceName"]])
    assert service["services"][0]["desiredCount"] == 1
    assert rules(aws)["/bob"]["Priority"] == bob_before["ListenerRulePriority"]


def test_down_when_nothing_is_up_says_so(team: dict, playbooks: Playbooks) -> None:
    run = ok(playbooks.down("dave"))
    assert "Nothing was up for dave" in run.text
    assert run.changed == 0


def test_everyone_down_leaves_the_shared_stacks_and_the_work_volumes_up(team: dict, playbooks: Playbooks, aws: Clients) -> None:
    ok(playbooks.down("bob"))
    ok(playbooks.down("carol"))
    volumes = {f"{APP}-{person}-work" for person in ("alice", "bob", "carol")}
    assert stack_names(aws) == {f"{APP}-persistent", f"{APP}-network", *volumes}
