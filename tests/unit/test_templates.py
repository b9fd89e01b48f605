"""What the templates promise, read from the templates themselves.

The emulator keeps only part of what a template sets (it drops load balancer
attributes, S3 bucket settings, bucket policies and ECS deployment settings),
so those promises are checked here on the static templates; cfn-lint checks
that AWS accepts them. The integration tests check what the emulator keeps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "files" / "cloudformation"


def load(name: str) -> dict[str, Any]:
    template, matches = decode(str(TEMPLATES / f"{name}.yml"))
    assert not matches, matches
    return dict(template)


def resources(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r.get("Properties", {}) for r in template["Resources"].values() if r["Type"] == kind]


@pytest.mark.parametrize("name", ["network", "persistent", "instance"])
def test_every_parameter_is_described_and_constrained(name: str) -> None:
    template = load(name)
    constraints = {"AllowedPattern", "AllowedValues", "MinValue", "MaxValue", "MinLength", "MaxLength"}
    for key, parameter in template["Parameters"].items():
        assert parameter.get("Description"), f"{name}: {key} has no Description"
        typed = parameter["Type"].startswith(("AWS::", "List<AWS::"))
        assert typed or constraints & set(parameter), f"{name}: {key} has no constraint"
    grouped = {
        key
        for group in template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
        for key in group["Parameters"]
    }
    assert grouped == set(template["Parameters"]), f"{name}: parameters missing from the Interface groups"


def test_load_balancer_keeps_websockets_open_for_an_hour() -> None:
    (balancer,) = resources(load("persistent"), "AWS::ElasticLoadBalancingV2::LoadBalancer")
    attributes = {a["Key"]: a["Value"] for a in balancer["LoadBalancerAttributes"]}
    assert int(attributes["idle_timeout.timeout_seconds"]) >= 3600
    assert balancer["Scheme"] == "internet-facing"


def test_https_with_a_certificate_and_http_redirects_to_it() -> None:
    template = load("persistent")
    listeners = {
        logical: r for logical, r in template["Resources"].items() if r["Type"] == "AWS::ElasticLoadBalancingV2::Listener"
    }
    https = [r for r in listeners.values() if r["Properties"].get("Protocol") == "HTTPS"]
    assert len(https) == 1 and https[0]["Properties"]["Port"] == 443
    assert https[0]["Condition"] == "HasCertificate"
    assert https[0]["Properties"]["DefaultActions"][0]["Type"] == "fixed-response"
    redirect = [
        r for r in listeners.values() if r["Properties"]["DefaultActions"][0]["Type"] == "redirect"
    ]
    assert len(redirect) == 1 and redirect[0]["Properties"]["Port"] == 80
    assert redirect[0]["Properties"]["DefaultActions"][0]["RedirectConfig"]["Protocol"] == "HTTPS"


def test_model_bucket_is_versioned_encrypted_private_and_kept() -> None:
    template = load("persistent")
    (logical, bucket) = next(
        (k, r) for k, r in template["Resources"].items() if r["Type"] == "AWS::S3::Bucket"
    )
    properties = bucket["Properties"]
    assert properties["VersioningConfiguration"]["Status"] == "Enabled"
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(properties["PublicAccessBlockConfiguration"].values())
    assert len(properties["PublicAccessBlockConfiguration"]) == 4
    assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"
    (policy,) = resources(template, "AWS::S3::BucketPolicy")
    deny = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert json.dumps(policy["Bucket"]) == json.dumps({"Ref": logical})


def statements(role: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A role's inline policy statements by Sid."""
    return {
        statement["Sid"]: statement
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    }


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def sub(value: Any) -> str:
    """The pattern of a !Sub, whether written alone or with its variables."""
    pattern = value["Fn::Sub"]
    return str(pattern[0] if isinstance(pattern, list) else pattern)


def test_only_each_persons_execution_role_reads_secrets_and_only_that_persons() -> None:
    for name in ("persistent", "network"):
        assert "secretsmanager" not in json.dumps(load(name)["Resources"]), name
    role = load("instance")["Resources"]["TaskExecutionRole"]
    assert "ManagedPolicyArns" not in role["Properties"]
    found = statements(role)
    reading = [s for s in found.values() if any(a.startswith("secretsmanager:") for a in actions(s))]
    assert reading == [found["OwnSecrets"]]
    assert actions(found["OwnSecrets"]) == ["secretsmanager:GetSecretValue"]
    # Secrets Manager appends a random suffix: the person's folder, then anything.
    assert sub(found["OwnSecrets"]["Resource"]).endswith(":secret:${AppName}/${Prefix}/*")
    assert sub(found["PullTeamImage"]["Resource"]).endswith(":repository/${AppName}/notebook")
    assert sub(found["OwnLogStreams"]["Resource"]).endswith(":log-stream:${Prefix}/*")
    # Only the registry login has no resource-level permission.
    assert [s["Sid"] for s in found.values() if s["Resource"] == "*"] == ["RegistryLogin"]
    assert actions(found["RegistryLogin"]) == ["ecr:GetAuthorizationToken"]
    (task,) = resources(load("instance"), "AWS::ECS::TaskDefinition")
    assert task["ExecutionRoleArn"] == {"Fn::GetAtt": ["TaskExecutionRole", "Arn"]}


def test_the_task_role_can_stop_only_its_own_server() -> None:
    """What the emulator cannot evaluate: the conditions, and that nothing else is granted."""
    role = load("instance")["Resources"]["TaskRole"]
    assert "ManagedPolicyArns" not in role["Properties"]
    found = statements(role)
    assert all(s["Effect"] == "Allow" for s in found.values())
    granted = sorted(a for s in found.values() for a in actions(s))
    assert granted == sorted([
        "autoscaling:SetDesiredCapacity",
        "ecs:DescribeServices", "ecs:TagResource", "ecs:UpdateService",
        "s3:GetBucketLocation", "s3:GetBucketVersioning", "s3:GetObject", "s3:GetObjectVersion",
        "s3:ListBucket", "s3:ListBucketVersions", "s3:PutObject",
    ])
    assert all(s["Resource"] != "*" for s in found.values())

    update = found["ScaleOwnService"]
    assert sub(update["Resource"]).endswith(":service/${ClusterName}/${AppName}-${Prefix}")
    assert set(update["Condition"]) == {"ArnLikeIfExists", "StringEqualsIfExists"}
    family = sub(update["Condition"]["ArnLikeIfExists"]["ecs:task-definition"])
    assert family.endswith(":task-definition/${AppName}-${Prefix}:*")
    assert update["Condition"]["StringEqualsIfExists"] == {"ecs:enable-execute-command": "false"}

    tagging = found["TagOwnService"]["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]
    assert sorted(tagging) == ["nbstack:last-activity", "nbstack:stop-reason", "nbstack:stopped-at"]

    group = found["StopOwnGroup"]
    assert actions(group) == ["autoscaling:SetDesiredCapacity"]
    assert sub(group["Resource"]).endswith(":autoScalingGroupName/${AppName}-${Prefix}")
    assert group["Condition"]["StringEquals"] == {
        "autoscaling:ResourceTag/nbstack:app": {"Ref": "AppName"},
        "autoscaling:ResourceTag/nbstack:prefix": {"Ref": "Prefix"},
    }
    (asg,) = resources(load("instance"), "AWS::AutoScaling::AutoScalingGroup")
    assert asg["MaxSize"] == "1" and asg["MinSize"] == "0"


def test_the_task_role_writes_models_only_under_its_prefix_and_lists_only_models() -> None:
    found = statements(load("instance")["Resources"]["TaskRole"])
    assert sub(found["WriteOwnModels"]["Resource"]).endswith(":s3:::${Bucket}/models/${Prefix}/*")
    assert actions(found["WriteOwnModels"]) == ["s3:PutObject"]
    assert sub(found["ReadTeamModels"]["Resource"]).endswith(":s3:::${Bucket}/models/*")
    assert found["ListTeamModels"]["Condition"] == {"StringLike": {"s3:prefix": "models/*"}}
    assert "s3:GetBucketVersioning" in actions(found["ModelBucket"])
    assert "ModelBucketAccessPolicy" not in load("persistent")["Resources"]


def test_containers_cannot_reach_instance_metadata() -> None:
    (template,) = resources(load("instance"), "AWS::EC2::LaunchTemplate")
    options = template["LaunchTemplateData"]["MetadataOptions"]
    assert options == {"HttpEndpoint": "enabled", "HttpTokens": "required", "HttpPutResponseHopLimit": 1}
    user_data = sub(template["LaunchTemplateData"]["UserData"]["Fn::Base64"])
    rule = "--in-interface docker+ --destination 169.254.169.254/32 --jump DROP"
    assert f"iptables --insert DOCKER-USER 1 {rule}" in user_data
    assert "ExecStartPost=/usr/local/sbin/nbstack-block-imds" in user_data  # again at every docker start
    assert "169.254.170.2" not in user_data  # no rule touches the task credentials endpoint


def test_the_instance_role_holds_only_what_the_ecs_agent_needs() -> None:
    role = load("persistent")["Resources"]["InstanceRole"]
    assert "ManagedPolicyArns" not in role["Properties"]
    found = statements(role)
    granted = {a for s in found.values() for a in actions(s)}
    assert granted == {
        "ecs:RegisterContainerInstance", "ecs:DeregisterContainerInstance", "ecs:SubmitTaskStateChange",
        "ecs:SubmitContainerStateChange", "ecs:SubmitAttachmentStateChanges", "ecs:Poll",
        "ecs:StartTelemetrySession", "ecs:UpdateContainerInstancesState", "ecs:DiscoverPollEndpoint",
    }
    assert found["JoinTeamCluster"]["Resource"] == {"Fn::GetAtt": ["EcsCluster", "Arn"]}
    assert sub(found["ActAsTeamContainerInstance"]["Resource"]).endswith(":container-instance/${EcsCluster}/*")
    assert [s["Sid"] for s in found.values() if s["Resource"] == "*"] == ["FindAgentEndpoint"]
    assert actions(found["FindAgentEndpoint"]) == ["ecs:DiscoverPollEndpoint"]


def test_service_replaces_its_single_task_in_place() -> None:
    (service,) = resources(load("instance"), "AWS::ECS::Service")
    assert service["DeploymentConfiguration"]["MinimumHealthyPercent"] == 0
    assert service["DeploymentConfiguration"]["MaximumPercent"] == 100
    assert service["HealthCheckGracePeriodSeconds"] == {"Ref": "HealthCheckGracePeriod"}
    assert service["LaunchType"] == "EC2"


def test_task_definition_takes_secrets_only_by_arn() -> None:
    template = load("instance")
    (task,) = resources(template, "AWS::ECS::TaskDefinition")
    (container,) = task["ContainerDefinitions"]
    secret_parameters = {key for key in template["Parameters"] if key.endswith("SecretArn")}
    assert {json.dumps(s["ValueFrom"]) for s in container["Secrets"]} == {
        json.dumps({"Ref": key}) for key in secret_parameters
    }
    environment = json.dumps(container["Environment"])
    assert not any(key in environment for key in secret_parameters)
    assert container["StopTimeout"] == 120


def test_the_container_starts_as_root_so_its_init_keeps_the_secrets_from_the_notebook_user() -> None:
    """The image's start.sh drops to the notebook user; started as jovyan, PID 1's environ would be readable."""
    (task,) = resources(load("instance"), "AWS::ECS::TaskDefinition")
    (container,) = task["ContainerDefinitions"]
    assert container["User"] == "0"
    names = {item["Name"] for item in container["Environment"]}
    assert not names & {"GRANT_SUDO", "CHOWN_HOME", "CHOWN_EXTRA", "NB_USER", "NB_UID", "NB_GID"}


def test_no_template_has_a_secret_parameter() -> None:
    for name in ("network", "persistent", "instance"):
        for key in load(name)["Parameters"]:
            assert not any(word in key.lower() for word in ("password", "token")) or key.endswith("SecretArn"), key
