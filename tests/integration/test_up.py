"""up.yml for one person, then the same again: what AWS holds afterwards.

One scenario for the module: an empty account, `up.yml -e prefix=alice -vvv`,
then a second `up.yml` that must change nothing. The tests describe the
resources the run created. Properties the emulator does not keep (load
balancer attributes, S3 bucket settings, ECS deployment settings) are checked
on the template in tests/unit/test_templates.py instead.
"""

from __future__ import annotations

import ast
import json
from typing import Any

import pytest
from team import APP

from nbstack_devkit.emulator import Clients, Emulator
from nbstack_devkit.playbooks import PlaybookRun, Playbooks, ok
from nbstack_devkit.vault import leak_forms

PREFIX = "alice"
SETTINGS_CIDRS = {"198.51.100.0/24", "203.0.113.7/32", "192.0.2.0/25", "100.64.0.0/10"}
SETTINGS_CIDRS_V6 = {"2001:db8::/32"}
#: Where each vault value is stored, under <app>/<prefix>/ (what the task definition refers to).
SECRET_VAULT_KEYS = {
    "github-token": "vault_github_token",
    "notebook-password": "vault_notebook_password",
    "warehouse-password": "vault_warehouse_password",
}


@pytest.fixture(scope="module")
def runs(emulator: Emulator, playbooks: Playbooks) -> dict[str, PlaybookRun]:
    emulator.reset()
    first = ok(playbooks.up(PREFIX, "-vvv"))
    second = ok(playbooks.up(PREFIX))
    return {"first": first, "second": second}


@pytest.fixture(scope="module")
def stacks(runs: dict[str, PlaybookRun], aws: Clients) -> dict[str, dict[str, Any]]:
    return {stack["StackName"]: stack for stack in aws.cloudformation.describe_stacks()["Stacks"]}


def outputs(stack: dict[str, Any]) -> dict[str, str]:
    return {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}


def test_creates_the_shared_and_the_persons_stacks(stacks: dict[str, dict[str, Any]]) -> None:
    assert set(stacks) == {f"{APP}-network", f"{APP}-persistent", f"{APP}-{PREFIX}", f"{APP}-{PREFIX}-work"}
    assert {stack["StackStatus"] for stack in stacks.values()} == {"CREATE_COMPLETE"}
    instance_tags = {tag["Key"]: tag["Value"] for tag in stacks[f"{APP}-{PREFIX}"]["Tags"]}
    assert instance_tags == {"nbstack:app": APP, "nbstack:kind": "instance", "nbstack:prefix": PREFIX}


def test_a_second_run_changes_nothing(runs: dict[str, PlaybookRun]) -> None:
    assert runs["first"].changed > 0
    assert runs["second"].changed == 0, runs["second"].output[-4000:]
    assert "nbtest-alice unchanged" in runs["second"].text


def test_summary_names_url_egress_and_type(runs: dict[str, PlaybookRun], stacks: dict[str, dict[str, Any]]) -> None:
    persistent = outputs(stacks[f"{APP}-persistent"])
    network = outputs(stacks[f"{APP}-network"])
    text = runs["second"].text
    assert f"Notebook: {persistent['NotebookUrlBase']}/{PREFIX}/" in text
    assert f"Egress IP (allow-list it at the warehouse): {network['EgressIp']}" in text
    assert "Instance type: m5.xlarge (0 GPU" in text
    assert "WARNING: plain HTTP" in text


def test_load_balancer_admits_only_the_allowed_ranges(aws: Clients, stacks: dict[str, dict[str, Any]]) -> None:
    persistent = outputs(stacks[f"{APP}-persistent"])
    group = aws.ec2.describe_security_groups(GroupIds=[persistent["AlbSecurityGroupId"]])["SecurityGroups"][0]
    v4 = {r["CidrIp"] for p in group["IpPermissions"] for r in p.get("IpRanges", [])}
    v6 = {r["CidrIpv6"] for p in group["IpPermissions"] for r in p.get("Ipv6Ranges", [])}
    assert v4 == SETTINGS_CIDRS and v6 == SETTINGS_CIDRS_V6
    assert {(p["FromPort"], p["ToPort"]) for p in group["IpPermissions"]} == {(8888, 8888)}
    assert all(not p.get("UserIdGroupPairs") for p in group["IpPermissions"])


def test_instances_admit_only_the_load_balancer(aws: Clients, stacks: dict[str, dict[str, Any]]) -> None:
    persistent = outputs(stacks[f"{APP}-persistent"])
    group = aws.ec2.describe_security_groups(GroupIds=[persistent["InstanceSecurityGroupId"]])["SecurityGroups"][0]
    assert {(p["FromPort"], p["ToPort"]) for p in group["IpPermissions"]} == {(8888, 8888), (8889, 8889)}
    for permission in group["IpPermissions"]:
        assert not permission.get("IpRanges") and not permission.get("Ipv6Ranges")
        assert [pair["GroupId"] for pair in permission["UserIdGroupPairs"]] == [persistent["AlbSecurityGroupId"]]


def test_listener_is_http_8888_with_a_404_default(aws: Clients, stacks: dict[str, dict[str, Any]]) -> None:
    persistent = outputs(stacks[f"{APP}-persistent"])
    listener = aws.elbv2.describe_listeners(ListenerArns=[persistent["ListenerArn"]])["Listeners"][0]
    assert (listener["Protocol"], listener["Port"]) == ("HTTP", 8888)
    action = listener["DefaultActions"][0]
    assert action["Type"] == "fixed-response" and action["FixedResponseConfig"]["StatusCode"] == "404"


def test_path_rule_routes_the_prefix_to_its_target_group(aws: Clients, stacks: dict[str, dict[str, Any]]) -> None:
    persistent = outputs(stacks[f"{APP}-persistent"])
    instance = outputs(stacks[f"{APP}-{PREFIX}"])
    rules = [r for r in aws.elbv2.describe_rules(ListenerArn=persistent["ListenerArn"])["Rules"] if not r["IsDefault"]]
    assert len(rules) == 1
    rule = rules[0]
    assert rule["Priority"] == instance["ListenerRulePriority"]
    assert 1000 <= int(rule["Priority"]) <= 50000
    assert rule["Conditions"][0]["PathPatternConfig"]["Values"] == [f"/{PREFIX}", f"/{PREFIX}/*"]
    assert rule["Actions"][0]["TargetGroupArn"] == instance["TargetGroupArn"]


def test_health_check_goes_to_the_sidecar_port(aws: Clients, stacks: dict[str, dict[str, Any]]) -> None:
    instance = outputs(stacks[f"{APP}-{PREFIX}"])
    group = aws.elbv2.describe_target_groups(TargetGroupArns=[instance["TargetGroupArn"]])["TargetGroups"][0]
    assert group["Port"] == 8888
    assert group["HealthCheckPort"] == "8889" and group["HealthCheckPath"] == "/health"
    # Every 5 s, healthy after two passes; a busy server is replaced only after ten misses.
    assert (group["HealthCheckIntervalSeconds"], group["HealthyThresholdCount"], group["UnhealthyThresholdCount"]) == (5, 2, 10)
    assert group["HealthCheckTimeoutSeconds"] < group["HealthCheckIntervalSeconds"]


def test_launch_template_uses_the_ecs_ami_and_requires_imdsv2(aws: Clients, stacks: dict[str, dict[str, Any]]) -> None:
    instance = outputs(stacks[f"{APP}-{PREFIX}"])
    data = aws.ec2.describe_launch_template_versions(LaunchTemplateId=instance["LaunchTemplateId"])[
        "LaunchTemplateVersions"
    ][0]["LaunchTemplateData"]
    ami = aws.ssm.get_parameter(Name="/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id")
    assert data["ImageId"] == ami["Parameter"]["Value"]
    assert data["InstanceType"] == "m5.xlarge"
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    volume = data["BlockDeviceMappings"][0]["Ebs"]
    assert volume == {"Encrypted": True, "DeleteOnTermination": True, "VolumeSize": 100, "VolumeType": "gp3"}


def test_capacity_is_one_instance_in_a_private_subnet(aws: Clients, stacks: dict[str, dict[str, Any]]) -> None:
    instance = outputs(stacks[f"{APP}-{PREFIX}"])
    network = outputs(stacks[f"{APP}-network"])
    group = aws.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[instance["AutoScalingGroupName"]])[
        "AutoScalingGroups"
    ][0]
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (0, 1, 1)
    assert set(group["VPCZoneIdentifier"].split(",")) == set(network["PrivateSubnetIds"].split(","))


def test_cluster_has_no_capacity_of_its_own(aws: Clients, stacks: dict[str, dict[str, Any]]) -> None:
    persistent = outputs(stacks[f"{APP}-persistent"])
    cluster = aws.ecs.describe_clusters(clusters=[persistent["ClusterName"]])["clusters"][0]
    assert cluster.get("capacityProviders", []) == []
    persistent_types = {
        item["ResourceType"]
        for item in aws.cloudformation.list_stack_resources(StackName=f"{APP}-persistent")["StackResourceSummaries"]
    }
    assert "AWS::ECS::Cluster" in persistent_types
    assert persistent_types.isdisjoint({"AWS::AutoScaling::AutoScalingGroup", "AWS::EC2::LaunchTemplate", "AWS::ECS::CapacityProvider"})


def test_service_runs_one_task_of_the_task_definition(aws: Clients, stacks: dict[str, dict[str, Any]]) -> None:
    instance = outputs(stacks[f"{APP}-{PREFIX}"])
    service = aws.ecs.describe_services(cluster=instance["ClusterName"], services=[instance["ServiceName"]])[
        "services"
    ][0]
    assert service["desiredCount"] == 1 and service["launchType"] == "EC2"
    assert service["taskDefinition"] == instance["TaskDefinitionArn"]


@pytest.fixture(scope="module")
def container(aws: Clients, stacks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    instance = outputs(stacks[f"{APP}-{PREFIX}"])
    task = aws.ecs.describe_task_definition(taskDefinition=instance["TaskDefinitionArn"])["taskDefinition"]
    assert [c["name"] for c in task["containerDefinitions"]] == ["notebook"]
    return task["containerDefinitions"][0]


def test_task_takes_secrets_by_arn(aws: Clients, container: dict[str, Any]) -> None:
    arns = {
        s["Name"].rsplit("/", 1)[1]: s["ARN"]
        for s in aws.secretsmanager.list_secrets()["SecretList"]
        if s["Name"].startswith(f"{APP}/{PREFIX}/")
    }
    assert container["secrets"] == [
        {"name": "NBSTACK_GIT_TOKEN", "valueFrom": arns["github-token"]},
        {"name": "NBSTACK_NOTEBOOK_PASSWORD", "valueFrom": arns["notebook-password"]},
        {"name": "NBSTACK_WAREHOUSE_PASSWORD", "valueFrom": arns["warehouse-password"]},
        {"name": "NBSTACK_API_TOKEN", "valueFrom": arns["api-token"]},
    ]


def test_task_environment_carries_the_settings(container: dict[str, Any], stacks: dict[str, dict[str, Any]]) -> None:
    env = {item["name"]: item["value"] for item in container["environment"]}
    persistent = outputs(stacks[f"{APP}-persistent"])
    assert env["NBSTACK_PREFIX"] == PREFIX and env["NBSTACK_BASE_URL"] == f"/{PREFIX}/"
    assert env["NBSTACK_REPO_URL"] == "https://git.example.com/team/notebooks.git"
    assert env["NBSTACK_MODEL_BUCKET"] == persistent["ModelBucketName"]
    assert (env["NBSTACK_WAREHOUSE_HOST"], env["NBSTACK_WAREHOUSE_DATABASE"], env["NBSTACK_WAREHOUSE_USER"]) == (
        "warehouse.example.com",
        "analytics",
        "analyst",
    )
    assert env["NBSTACK_WAREHOUSE_ROLE_ARN"] == "arn:aws:iam::210987654321:role/warehouse-reader"
    assert env["AWS_REGION"] == "eu-west-1"
    assert not any("PASSWORD" in name or "TOKEN" in name for name in env)


def test_task_logs_to_the_persistent_log_group(container: dict[str, Any], stacks: dict[str, dict[str, Any]]) -> None:
    persistent = outputs(stacks[f"{APP}-persistent"])
    logs = container["logConfiguration"]
    assert logs["logDriver"] == "awslogs"
    assert logs["options"]["awslogs-group"] == persistent["LogGroupName"]
    assert logs["options"]["awslogs-stream-prefix"] == PREFIX


def test_task_gets_time_to_save_work_and_memory_of_the_type(container: dict[str, Any]) -> None:
    assert container["stopTimeout"] == 120
    # m5.xlarge has 16 GiB; the kernel and the ECS agent keep 6 % and 512 MiB (tests/unit/test_instance_type.py).
    assert container["memoryReservation"] == 14888
    assert "resourceRequirements" not in container or container["resourceRequirements"] == []
    assert container["mountPoints"] == [
        {"sourceVolume": "work", "containerPath": "/home/jovyan/work", "readOnly": False}
    ]


def test_secrets_manager_holds_the_vault_values(aws: Clients, playbooks: Playbooks, runs: dict) -> None:
    values = playbooks.vault.values
    for name, key in SECRET_VAULT_KEYS.items():
        stored = aws.secretsmanager.get_secret_value(SecretId=f"{APP}/{PREFIX}/{name}")["SecretString"]
        assert stored == values[key]


def api_token(aws: Clients) -> dict[str, Any]:
    return aws.secretsmanager.get_secret_value(SecretId=f"{APP}/{PREFIX}/api-token")


def test_up_generates_an_api_token_once_and_says_how_to_read_it(aws: Clients, runs: dict[str, PlaybookRun]) -> None:
    token = api_token(aws)
    assert len(token["SecretString"]) == 48 and token["SecretString"].isalnum()
    # The second run kept it: one version, the first run's.
    versions = aws.secretsmanager.list_secret_version_ids(SecretId=f"{APP}/{PREFIX}/api-token")["Versions"]
    assert [version["VersionId"] for version in versions] == [token["VersionId"]]
    command = (
        f"aws secretsmanager get-secret-value --region eu-west-1 --secret-id {APP}/{PREFIX}/api-token"
        " --query SecretString --output text"
    )
    assert command in runs["first"].text and command in runs["second"].text


def test_task_role_may_assume_only_the_warehouse_role(aws: Clients, stacks: dict[str, dict[str, Any]]) -> None:
    instance = outputs(stacks[f"{APP}-{PREFIX}"])
    role_name = instance["TaskRoleArn"].rsplit("/", 1)[1]
    statements = []
    for policy in aws.iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        document = aws.iam.get_role_policy(RoleName=role_name, PolicyName=policy)["PolicyDocument"]
        if isinstance(document, str):
            # The emulator returns the document as Python literal text.
            document = ast.literal_eval(document)
        statements += document["Statement"]
    assume = [s for s in statements if "sts:AssumeRole" in json.dumps(s["Action"])]
    assert [s["Resource"] for s in assume] == ["arn:aws:iam::210987654321:role/warehouse-reader"]


def test_no_secret_value_appears_anywhere(
    runs: dict[str, PlaybookRun], playbooks: Playbooks, aws: Clients, stacks: dict[str, dict[str, Any]], container: dict
) -> None:
    values = [*playbooks.vault.values.values(), api_token(aws)["SecretString"]]
    places = {
        "up.yml -vvv output": runs["first"].output,
        "second run output": runs["second"].output,
        "stack parameters and outputs": json.dumps(
            [{"p": s.get("Parameters"), "o": s.get("Outputs")} for s in stacks.values()], default=str
        ),
        "templates": json.dumps(
            [aws.cloudformation.get_template(StackName=name)["TemplateBody"] for name in stacks], default=str
        ),
        "task definition": json.dumps(container, default=str),
    }
    assert "-vvv" in " ".join(runs["first"].args) and "<localhost> EXEC" in runs["first"].output
    for place, text in places.items():
        for value in values:
            # As it is, JSON-escaped, URL-quoted and base64 (each alignment).
            for form in leak_forms(value):
                assert form not in text, f"a secret value appears in the {place}"


def test_aws_region_setting_wins_over_the_environment(
    runs: dict[str, PlaybookRun], playbooks: Playbooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aws_region reaches every module, the project's own ones included."""
    elsewhere = {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
    monkeypatch.setattr(playbooks.emulator, "environ", lambda: Emulator.environ(playbooks.emulator) | elsewhere)
    run = ok(playbooks.up(PREFIX))
    assert run.changed == 0, run.output[-4000:]
    assert "nbtest-alice unchanged" in run.text


def test_rotate_api_token_replaces_the_token_and_the_task(aws: Clients, playbooks: Playbooks, runs: dict) -> None:
    """Last in this module: it changes what the tests above read."""
    before = api_token(aws)
    revision = service_revision(aws)
    run = ok(playbooks.up(PREFIX, "-e", "rotate_api_token=true"))
    after = api_token(aws)
    assert after["VersionId"] != before["VersionId"] and after["SecretString"] != before["SecretString"]
    assert service_revision(aws) > revision, run.output[-4000:]
    assert after["SecretString"] not in run.output and before["SecretString"] not in run.output
    # Without the setting again, the new token stays.
    assert ok(playbooks.up(PREFIX)).changed == 0
    assert api_token(aws)["VersionId"] == after["VersionId"]


def service_revision(aws: Clients) -> int:
    """The revision of the task definition the person's stack registered (see test_person_secrets)."""
    (stack,) = aws.cloudformation.describe_stacks(StackName=f"{APP}-{PREFIX}")["Stacks"]
    arn = next(item["OutputValue"] for item in stack["Outputs"] if item["OutputKey"] == "TaskDefinitionArn")
    return int(arn.rsplit(":", 1)[1])
