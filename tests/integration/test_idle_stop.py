"""The idle stop against the emulator: the task role's scope, the stop, and up.yml after it.

The stop is made by the sidecar's own code (nbstack_runtime.scaler.AwsScaler)
with the names the task definition gives it, as the sidecar would in the
container; up.yml must then notice the drift the stack cannot see and start
the server again, reporting a change only then.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from typing import Any

import pytest
from team import APP, PersonPlaybooks

from nbstack_devkit.emulator import ACCOUNT_ID, REGION, Clients, Emulator
from nbstack_devkit.playbooks import PlaybookRun, Playbooks, ok
from nbstack_runtime.scaler import AwsScaler

PREFIX = "carol"
OTHER = "dave"
# The wait for the health check, kept short: the emulator runs no instance,
# so no target ever turns healthy there.
START_TIMEOUT = "3"


def desired(aws: Clients, prefix: str) -> tuple[int, int]:
    outputs = stack_outputs(aws, prefix)
    service = aws.ecs.describe_services(cluster=outputs["ClusterName"], services=[outputs["ServiceName"]])["services"][0]
    group = aws.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[outputs["AutoScalingGroupName"]])
    return int(service["desiredCount"]), int(group["AutoScalingGroups"][0]["DesiredCapacity"])


def stack_outputs(aws: Clients, prefix: str) -> dict[str, str]:
    stack = aws.cloudformation.describe_stacks(StackName=f"{APP}-{prefix}")["Stacks"][0]
    return {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}


def container_env(aws: Clients, prefix: str) -> dict[str, str]:
    arn = stack_outputs(aws, prefix)["TaskDefinitionArn"]
    container = aws.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["containerDefinitions"][0]
    return {item["name"]: item["value"] for item in container["environment"]}


def sidecar_stop(aws: Clients, emulator: Emulator, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the sidecar does once idle, with the names from its task definition."""
    for name, value in emulator.environ({}).items():
        monkeypatch.setenv(name, value)
    env = container_env(aws, prefix)
    AwsScaler(env["NBSTACK_CLUSTER"], env["NBSTACK_SERVICE"], env["NBSTACK_AUTOSCALING_GROUP"], REGION).scale_to_zero()


#: The person's idle stop, given whole as a settings group is on the command line.
IDLE_SETTINGS = '{"notebook_idle": {"timeout_minutes": 45, "max_lifetime_hours": 12}}'


@pytest.fixture(scope="module")
def playbooks(playbooks: Playbooks, tmp_path_factory: pytest.TempPathFactory) -> Playbooks:
    """Each person's up.yml with their own vault file, as several people need."""
    return PersonPlaybooks(playbooks, tmp_path_factory.mktemp("people") / "vault")


@pytest.fixture(scope="module")
def two_people(emulator: Emulator, playbooks: Playbooks) -> dict[str, PlaybookRun]:
    emulator.reset()
    return {
        PREFIX: ok(playbooks.up(PREFIX, "-e", IDLE_SETTINGS)),
        OTHER: ok(playbooks.up(OTHER)),
    }


def role_policy(aws: Clients, prefix: str, name: str) -> dict[str, Any]:
    role = stack_outputs(aws, prefix)["TaskRoleArn"].rsplit("/", 1)[1]
    document = aws.iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    return document if isinstance(document, dict) else ast.literal_eval(document)


def allowed(policy: dict[str, Any], action: str, resource: str, tags: dict[str, str]) -> bool:
    """A small evaluator for the statement shapes this policy uses (Allow, wildcards, StringEquals)."""
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if statement["Effect"] != "Allow" or not any(fnmatch.fnmatchcase(action, a) for a in actions):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in resources):
            continue
        conditions = statement.get("Condition", {}).get("StringEquals", {})
        if all(tags.get(key.split("/", 1)[1]) == value for key, value in conditions.items()):
            return True
    return False


def test_the_task_role_may_scale_only_its_own_service_and_group(two_people: dict[str, PlaybookRun], aws: Clients) -> None:
    policy = role_policy(aws, PREFIX, "stop-own-server")
    cluster = stack_outputs(aws, PREFIX)["ClusterName"]
    service = f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:service/{cluster}/{{}}"
    group = f"arn:aws:autoscaling:{REGION}:{ACCOUNT_ID}:autoScalingGroup:0f3e-uuid:autoScalingGroupName/{{}}"
    own_tags = {"nbstack:app": APP, "nbstack:prefix": PREFIX}
    other_tags = {"nbstack:app": APP, "nbstack:prefix": OTHER}

    for action in ("ecs:DescribeServices", "ecs:TagResource"):
        assert allowed(policy, action, service.format(f"{APP}-{PREFIX}"), own_tags), action
        assert not allowed(policy, action, service.format(f"{APP}-{OTHER}"), other_tags), action
        assert not allowed(policy, action, service.format("*"), own_tags), action
    # Not even its own service's settings (load balancers, placement): the stop needs only the group.
    assert not allowed(policy, "ecs:UpdateService", service.format(f"{APP}-{PREFIX}"), own_tags)
    action = "autoscaling:SetDesiredCapacity"
    assert allowed(policy, action, group.format(f"{APP}-{PREFIX}"), own_tags), action
    assert not allowed(policy, action, group.format(f"{APP}-{OTHER}"), other_tags), action
    # A group renamed like ours but tagged as someone else's is not ours either.
    assert not allowed(policy, action, group.format(f"{APP}-{PREFIX}"), other_tags), action
    # Not the group's sizes: only its desired capacity, within MaxSize 1.
    assert not allowed(policy, "autoscaling:UpdateAutoScalingGroup", group.format(f"{APP}-{PREFIX}"), own_tags)
    # Nothing else: no deletes, no other services, no tag changes on groups, no wildcard actions.
    for action in ("ecs:DeleteService", "ecs:CreateService", "autoscaling:DeleteAutoScalingGroup",
                   "autoscaling:CreateOrUpdateTags", "ec2:TerminateInstances", "iam:PassRole"):
        assert not allowed(policy, action, "*", own_tags), action
    actions = {a for s in policy["Statement"] for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert all("*" not in action for action in actions)
    assert all(statement["Resource"] != "*" for statement in policy["Statement"])


def test_the_task_definition_tells_the_sidecar_what_to_scale(two_people: dict[str, PlaybookRun], aws: Clients) -> None:
    env = container_env(aws, PREFIX)
    outputs = stack_outputs(aws, PREFIX)
    assert env["NBSTACK_IDLE_TIMEOUT_MINUTES"] == "45" and env["NBSTACK_MAX_LIFETIME_HOURS"] == "12"
    assert env["NBSTACK_CLUSTER"] == outputs["ClusterName"]
    assert env["NBSTACK_SERVICE"] == outputs["ServiceName"] == f"{APP}-{PREFIX}"
    assert env["NBSTACK_AUTOSCALING_GROUP"] == outputs["AutoScalingGroupName"] == f"{APP}-{PREFIX}"
    defaults = container_env(aws, OTHER)
    assert defaults["NBSTACK_IDLE_TIMEOUT_MINUTES"] == "60" and defaults["NBSTACK_MAX_LIFETIME_HOURS"] == "0"


def test_the_stop_sets_the_group_to_zero_and_up_starts_it_again(
    two_people: dict[str, PlaybookRun],
    aws: Clients,
    emulator: Emulator,
    playbooks: Playbooks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert desired(aws, PREFIX) == (1, 1)
    sidecar_stop(aws, emulator, PREFIX, monkeypatch)
    # The group at 0; the service keeps wanting its task, which only carol's next instance may take.
    assert desired(aws, PREFIX) == (1, 0)
    assert desired(aws, OTHER) == (1, 1)  # nobody else's server
    # The stack holds no count: nothing in it says the server runs or not.
    stack = aws.cloudformation.describe_stacks(StackName=f"{APP}-{PREFIX}")["Stacks"][0]
    assert "DesiredCount" not in {p["ParameterKey"] for p in stack["Parameters"]}

    # -v: the tasks that would stop the service for the update and start the server, by name
    # (the default output shows phases only), on the whole way (the short way does both in one task).
    preview = ok(playbooks.up(PREFIX, "-e", IDLE_SETTINGS, "--check", "-v", "-e", "recheck=true"))
    assert re.search(r"Stop what the stack update must not find running\][^\n]*\nchanged:",
                     preview.output), preview.output[-4000:]
    assert re.search(r"Start the notebook server, instance first, and wait for its health check\][^\n]*\nchanged:",
                     preview.output), preview.output[-4000:]
    assert desired(aws, PREFIX) == (1, 0)  # check mode starts nothing

    started = ok(playbooks.up(PREFIX, "-e", IDLE_SETTINGS,
                              "-e", f"instance_start_timeout={START_TIMEOUT}", "-v"))
    assert desired(aws, PREFIX) == (1, 1)
    # Two changes: the service to 0 before the (empty) update, then group, instance, service.
    assert started.changed == 2, started.output[-4000:]
    assert "Start the notebook server, instance first, and wait for its health check" in started.output
    assert "health check has not passed after" in started.text  # the emulator runs no instance

    again = ok(playbooks.up(PREFIX, "-e", IDLE_SETTINGS))
    assert again.changed == 0, again.output[-4000:]
    assert desired(aws, PREFIX) == (1, 1)


def test_only_one_half_stopped_is_started_too(
    two_people: dict[str, PlaybookRun], aws: Clients, playbooks: Playbooks
) -> None:
    """A stop interrupted between its two calls (service at 0, group still 1)."""
    outputs = stack_outputs(aws, OTHER)
    aws.ecs.update_service(cluster=outputs["ClusterName"], service=outputs["ServiceName"], desiredCount=0)
    assert desired(aws, OTHER) == (0, 1)
    run = ok(playbooks.up(OTHER, "-e", f"instance_start_timeout={START_TIMEOUT}"))
    assert run.changed == 1 and desired(aws, OTHER) == (1, 1)
