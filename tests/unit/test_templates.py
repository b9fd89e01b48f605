"""What the templates promise, read from the templates themselves.

The emulator keeps only part of what a template sets (it drops load balancer
attributes, S3 bucket settings, bucket policies and ECS deployment settings),
so those promises are checked here on the static templates; cfn-lint checks
that AWS accepts them. The integration tests check what the emulator keeps.
"""

from __future__ import annotations

import json
import subprocess
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


@pytest.mark.parametrize("name", ["network", "persistent", "instance", "work"])
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


def _condition(template: dict[str, Any], values: dict[str, str], expression: Any) -> bool:
    """Evaluates a condition expression (Equals, Not, And, Or, Condition) for parameter values."""
    if isinstance(expression, dict):
        ((function, argument),) = expression.items()
        if function == "Condition":
            return _condition(template, values, template["Conditions"][argument])
        if function == "Fn::Equals":
            left, right = (_value(template, values, item) for item in argument)
            return bool(left == right)
        if function == "Fn::Not":
            return not _condition(template, values, argument[0])
        if function == "Fn::And":
            return all(_condition(template, values, item) for item in argument)
        if function == "Fn::Or":
            return any(_condition(template, values, item) for item in argument)
    raise AssertionError(f"not a condition: {expression!r}")


def _value(template: dict[str, Any], values: dict[str, str], node: Any) -> Any:
    """A property with every Fn::If decided and AWS::NoValue removed; other functions stay as they are."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, if_true, if_false = node["Fn::If"]
            chosen = if_true if _condition(template, values, template["Conditions"][name]) else if_false
            return _value(template, values, chosen)
        if node == {"Ref": "AWS::NoValue"}:
            return None
        if set(node) == {"Ref"} and node["Ref"] in template["Parameters"]:
            return values.get(node["Ref"], template["Parameters"][node["Ref"]].get("Default"))
        return {k: v for k, v in ((k, _value(template, values, v)) for k, v in node.items()) if v is not None}
    if isinstance(node, list):
        return [item for item in (_value(template, values, item) for item in node) if item is not None]
    return node


def deployed(name: str, **values: str) -> dict[str, Any]:
    """The resources and outputs CloudFormation would create from the template for these parameter values."""
    template = load(name)

    def kept(entry: dict[str, Any]) -> bool:
        return "Condition" not in entry or _condition(template, values, template["Conditions"][entry["Condition"]])

    return {
        "Resources": {
            logical: {"Type": r["Type"], "Properties": _value(template, values, r.get("Properties", {}))}
            for logical, r in template["Resources"].items()
            if kept(r)
        },
        "Outputs": {key: _value(template, values, o["Value"]) for key, o in template["Outputs"].items() if kept(o)},
    }


def of_type(stack: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {logical: r["Properties"] for logical, r in stack["Resources"].items() if r["Type"] == kind}


DOMAIN = {"DomainName": "notebooks.example.com", "HostedZoneId": "Z0123456789ABCDEFGHIJ"}
GIVEN_CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-0000-4000-8000-123456789abc"


def test_plain_http_without_a_domain_is_one_listener_on_the_notebook_port() -> None:
    stack = deployed("persistent")
    listeners = of_type(stack, "AWS::ElasticLoadBalancingV2::Listener")
    assert len(listeners) == 1
    ((logical, listener),) = listeners.items()
    assert (listener["Protocol"], listener["Port"]) == ("HTTP", 8888)  # NotebookPort's default
    assert "Certificates" not in listener and "SslPolicy" not in listener
    assert not of_type(stack, "AWS::CertificateManager::Certificate")
    assert not of_type(stack, "AWS::Route53::RecordSet")
    assert stack["Outputs"]["ListenerArn"] == {"Ref": logical}
    assert stack["Outputs"]["NotebookUrlBase"] == {"Fn::Sub": "http://${LoadBalancer.DNSName}:${NotebookPort}"}


@pytest.mark.parametrize("certificate", ["", GIVEN_CERTIFICATE], ids=["created", "given"])
def test_a_domain_gets_https_with_tls_1_2_or_later_and_http_only_redirects(certificate: str) -> None:
    stack = deployed("persistent", **DOMAIN, CertificateArn=certificate)
    listeners = of_type(stack, "AWS::ElasticLoadBalancingV2::Listener")
    (https,) = [listener for listener in listeners.values() if listener["Protocol"] == "HTTPS"]
    assert https["Port"] == 443
    assert https["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    wanted = certificate or {"Ref": "Certificate"}
    assert https["Certificates"] == [{"CertificateArn": wanted}]
    assert https["DefaultActions"][0]["Type"] == "fixed-response"
    (redirect,) = [listener for listener in listeners.values() if listener["Protocol"] == "HTTP"]
    assert redirect["Port"] == 80
    (action,) = redirect["DefaultActions"]
    assert action["Type"] == "redirect"
    assert action["RedirectConfig"]["Protocol"] == "HTTPS" and action["RedirectConfig"]["Port"] == "443"
    assert action["RedirectConfig"]["StatusCode"] == "HTTP_301"
    assert stack["Outputs"]["NotebookUrlBase"] == {"Fn::Sub": "https://${DomainName}"}


@pytest.mark.parametrize("certificate", ["", GIVEN_CERTIFICATE], ids=["created", "given"])
def test_the_listener_arn_does_not_change_with_the_domain_setting(certificate: str) -> None:
    """One listener resource in every case: instance stacks import its ARN, and an export in use cannot change."""
    plain = deployed("persistent")
    https = deployed("persistent", **DOMAIN, CertificateArn=certificate)
    assert plain["Outputs"]["ListenerArn"] == https["Outputs"]["ListenerArn"]
    (logical,) = [key for key, r in of_type(plain, "AWS::ElasticLoadBalancingV2::Listener").items()]
    assert plain["Outputs"]["ListenerArn"] == {"Ref": logical}
    assert logical in of_type(https, "AWS::ElasticLoadBalancingV2::Listener")
    # Only the load balancer is a property whose change replaces a listener.
    assert plain["Resources"][logical]["Properties"]["LoadBalancerArn"] == https["Resources"][logical]["Properties"][
        "LoadBalancerArn"
    ]


def test_the_certificate_is_validated_by_dns_in_the_hosted_zone() -> None:
    (certificate,) = of_type(deployed("persistent", **DOMAIN), "AWS::CertificateManager::Certificate").values()
    assert certificate["DomainName"] == "notebooks.example.com"
    assert certificate["ValidationMethod"] == "DNS"
    assert certificate["DomainValidationOptions"] == [
        {"DomainName": "notebooks.example.com", "HostedZoneId": "Z0123456789ABCDEFGHIJ"}
    ]
    given = deployed("persistent", **DOMAIN, CertificateArn=GIVEN_CERTIFICATE)
    assert not of_type(given, "AWS::CertificateManager::Certificate")


def test_the_domain_is_an_alias_of_the_load_balancer() -> None:
    (record,) = of_type(deployed("persistent", **DOMAIN), "AWS::Route53::RecordSet").values()
    assert record["HostedZoneId"] == "Z0123456789ABCDEFGHIJ"
    assert (record["Name"], record["Type"]) == ("notebooks.example.com", "A")
    assert record["AliasTarget"]["DNSName"] == {"Fn::GetAtt": ["LoadBalancer", "DNSName"]}
    assert record["AliasTarget"]["HostedZoneId"] == {"Fn::GetAtt": ["LoadBalancer", "CanonicalHostedZoneID"]}
    (balancer,) = of_type(deployed("persistent", **DOMAIN), "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    assert balancer["IpAddressType"] == "ipv4", "an IPv6 load balancer would need an AAAA alias too"
    # Without a zone, the name is pointed elsewhere and no record is written.
    no_zone = deployed("persistent", DomainName="notebooks.example.com", CertificateArn=GIVEN_CERTIFICATE)
    assert not of_type(no_zone, "AWS::Route53::RecordSet")


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
    (policy,) = of_type(deployed("persistent"), "AWS::S3::BucketPolicy").values()
    deny = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert json.dumps(policy["Bucket"]) == json.dumps({"Ref": logical})


def test_model_bucket_has_the_teams_own_name_so_a_new_stack_finds_it() -> None:
    created = deployed("persistent")
    (logical,) = of_type(created, "AWS::S3::Bucket")
    bucket = created["Resources"][logical]["Properties"]
    assert bucket["BucketName"] == {"Fn::Sub": "${AppName}-models-${AWS::AccountId}-${AWS::Region}"}
    assert created["Outputs"]["ModelBucketName"] == {"Ref": logical}
    # The policy goes with the stack: the next stack, finding the kept bucket, creates it again, and
    # CloudFormation's create of a bucket policy fails (AlreadyExists) on a bucket that still has one.
    (policy_logical,) = of_type(created, "AWS::S3::BucketPolicy")
    policy = load("persistent")["Resources"][policy_logical]
    assert policy.get("DeletionPolicy", "Delete") == "Delete"


def test_an_existing_model_bucket_is_used_as_it_is() -> None:
    adopted = deployed("persistent", ExistingModelBucket="team-models")
    assert not of_type(adopted, "AWS::S3::Bucket")
    assert not of_type(adopted, "AWS::S3::BucketPolicy"), "a given bucket's policy is its owner's"
    assert adopted["Outputs"]["ModelBucketName"] == "team-models"
    # The team's own bucket, kept from an earlier stack, keeps its TLS-only policy.
    kept = deployed("persistent", ExistingModelBucket="nb-models-123456789012-eu-west-1", KeptModelBucket="true")
    assert not of_type(kept, "AWS::S3::Bucket")
    (policy,) = of_type(kept, "AWS::S3::BucketPolicy").values()
    assert policy["Bucket"] == "nb-models-123456789012-eu-west-1"
    (deny,) = policy["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert [r["Fn::Sub"][1]["Name"] for r in deny["Resource"]] == ["nb-models-123456789012-eu-west-1"] * 2


def test_model_bucket_expires_replaced_versions_and_abandoned_uploads() -> None:
    template = load("persistent")
    (bucket,) = resources(template, "AWS::S3::Bucket")
    rules = [r for r in bucket["LifecycleConfiguration"]["Rules"] if r["Status"] == "Enabled"]
    assert all("Prefix" not in r and "TagFilters" not in r for r in rules), "every rule covers the whole bucket"
    (noncurrent,) = [r["NoncurrentVersionExpiration"] for r in rules if "NoncurrentVersionExpiration" in r]
    assert noncurrent == {"NoncurrentDays": {"Ref": "ModelVersionRetentionDays"}}
    assert template["Parameters"]["ModelVersionRetentionDays"]["Default"] == 30
    (abort,) = [r["AbortIncompleteMultipartUpload"] for r in rules if "AbortIncompleteMultipartUpload" in r]
    assert abort == {"DaysAfterInitiation": 7}
    # The latest version of a model is never expired.
    assert not [r for r in rules if "ExpirationInDays" in r or "ExpirationDate" in r]


def test_private_subnets_reach_s3_through_a_gateway_endpoint() -> None:
    template = load("network")
    nat_tables = {
        json.dumps(r["Properties"]["RouteTableId"])
        for r in template["Resources"].values()
        if r["Type"] == "AWS::EC2::Route" and "NatGatewayId" in r["Properties"]
    }
    private_tables = {
        json.dumps(r["Properties"]["RouteTableId"])
        for logical, r in template["Resources"].items()
        if r["Type"] == "AWS::EC2::SubnetRouteTableAssociation" and "Private" in logical
    }
    assert nat_tables and private_tables == nat_tables
    (endpoint,) = resources(template, "AWS::EC2::VPCEndpoint")
    assert endpoint["VpcEndpointType"] == "Gateway"
    assert endpoint["ServiceName"] == {"Fn::Sub": "com.amazonaws.${AWS::Region}.s3"}
    assert {json.dumps(t) for t in endpoint["RouteTableIds"]} == private_tables


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
    """What the emulator cannot evaluate: the conditions, and that nothing else is granted.

    No ecs:UpdateService at all: its load balancers and placement have no
    IAM condition key, so with it a notebook could register its task in
    another person's target group or lift its placement.
    """
    role = load("instance")["Resources"]["TaskRole"]
    assert "ManagedPolicyArns" not in role["Properties"]
    found = statements(role)
    assert all(s["Effect"] == "Allow" for s in found.values())
    granted = sorted(a for s in found.values() for a in actions(s))
    assert granted == sorted([
        "autoscaling:SetDesiredCapacity",
        "ecs:DescribeServices", "ecs:TagResource",
        "elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite",
        "s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:GetBucketVersioning", "s3:GetObject", "s3:GetObjectVersion",
        "s3:ListBucket", "s3:ListBucketVersions", "s3:PutObject",
    ])
    assert all(s["Resource"] != "*" for s in found.values())
    assert "UpdateService" not in json.dumps(load("instance")["Resources"])
    # Policies attached from outside the role: only the warehouse's, and it grants only that role.
    attached = {
        name: resource["Properties"]
        for template in ("instance", "persistent", "network")
        for name, resource in load(template)["Resources"].items()
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
    }
    assert {name for name, policy in attached.items() if {"Ref": "TaskRole"} in policy.get("Roles", [])} == {
        "WarehouseAccessPolicy"
    }
    assert attached["WarehouseAccessPolicy"]["PolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": {"Ref": "WarehouseRoleArn"}}
    ]
    assert sub(found["ReadOwnService"]["Resource"]).endswith(":service/${ClusterName}/${AppName}-${Prefix}")

    tagging = found["TagOwnService"]["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]
    assert sorted(tagging) == ["nbstack:autosave", "nbstack:last-activity", "nbstack:stop-reason", "nbstack:stopped-at"]

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
    # PutObject covers a multipart upload's create, parts and completion; a failed one aborts its own parts.
    assert actions(found["WriteOwnModels"]) == ["s3:PutObject", "s3:AbortMultipartUpload"]
    assert sub(found["ReadTeamModels"]["Resource"]).endswith(":s3:::${Bucket}/models/*")
    assert found["ListTeamModels"]["Condition"] == {"StringLike": {"s3:prefix": "models/*"}}
    assert "s3:GetBucketVersioning" in actions(found["ModelBucket"])
    assert "ModelBucketAccessPolicy" not in load("persistent")["Resources"]


def test_containers_cannot_reach_instance_metadata() -> None:
    (template,) = resources(load("instance"), "AWS::EC2::LaunchTemplate")
    options = template["LaunchTemplateData"]["MetadataOptions"]
    # Instance tags in the metadata: the warm-up reads the image from them (the containers cannot reach it).
    assert options == {"HttpEndpoint": "enabled", "HttpTokens": "required", "HttpPutResponseHopLimit": 1, "InstanceMetadataTags": "enabled"}
    user_data = sub(template["LaunchTemplateData"]["UserData"]["Fn::Base64"])
    rule = "--in-interface docker+ --destination 169.254.169.254/32 --jump DROP"
    assert f"iptables --insert DOCKER-USER 1 {rule}" in user_data
    assert "ExecStartPost=/usr/local/sbin/nbstack-block-imds" in user_data  # again at every docker start
    assert "169.254.170.2" not in user_data  # no rule touches the task credentials endpoint
    # The agent's cluster comes last (set -e): a host whose fence failed cannot register.
    assert user_data.index("cat >> /etc/ecs/ecs.config") > user_data.index("\n/usr/local/sbin/nbstack-block-imds\n")


def test_the_task_runs_only_on_its_own_persons_instances() -> None:
    """The task definition's constraint (which UpdateService cannot remove) matches the attribute the user data registers."""
    template = load("instance")
    (task,) = resources(template, "AWS::ECS::TaskDefinition")
    assert task["PlacementConstraints"] == [
        {"Type": "memberOf", "Expression": {"Fn::Sub": "attribute:nbstack.prefix == ${Prefix}"}}
    ]
    (service,) = resources(template, "AWS::ECS::Service")
    assert "PlacementConstraints" not in service  # the one constraint is the task definition's
    (launch,) = resources(template, "AWS::EC2::LaunchTemplate")
    user_data = sub(launch["LaunchTemplateData"]["UserData"]["Fn::Base64"])
    config = user_data.split("cat >> /etc/ecs/ecs.config <<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0].splitlines()
    attributes = [line.split("=", 1)[1] for line in config if line.startswith("ECS_INSTANCE_ATTRIBUTES=")]
    assert [json.loads(value) for value in attributes] == [{"nbstack.prefix": "${Prefix}"}]


def test_the_instance_role_holds_only_what_the_ecs_agent_needs() -> None:
    role = load("persistent")["Resources"]["InstanceRole"]
    assert "ManagedPolicyArns" not in role["Properties"]
    found = statements(role)
    granted = {a for s in found.values() for a in actions(s)}
    assert granted == {
        "ecs:RegisterContainerInstance", "ecs:DeregisterContainerInstance", "ecs:SubmitTaskStateChange",
        "ecs:SubmitContainerStateChange", "ecs:SubmitAttachmentStateChanges", "ecs:Poll",
        "ecs:StartTelemetrySession", "ecs:DiscoverPollEndpoint",
        # The agent pulls the team's image with this role on the EC2 launch type.
        "ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer",
        "ecr:BatchGetImage",
        # The warm-up ends its instance's launch lifecycle action.
        "autoscaling:CompleteLifecycleAction",
    }
    finish = found["CompleteTeamLaunch"]
    assert actions(finish) == ["autoscaling:CompleteLifecycleAction"]
    assert sub(finish["Resource"]).endswith(":autoScalingGroup:*:autoScalingGroupName/${AppName}-*")
    assert finish["Condition"] == {"StringEquals": {"autoscaling:ResourceTag/nbstack:app": {"Ref": "AppName"}}}
    assert found["JoinTeamCluster"]["Resource"] == {"Fn::GetAtt": ["EcsCluster", "Arn"]}
    assert sub(found["ActAsTeamContainerInstance"]["Resource"]).endswith(":container-instance/${EcsCluster}/*")
    assert [s["Sid"] for s in found.values() if s["Resource"] == "*"] == ["FindAgentEndpoint", "RegistryLogin"]
    assert actions(found["FindAgentEndpoint"]) == ["ecs:DiscoverPollEndpoint"]
    assert actions(found["RegistryLogin"]) == ["ecr:GetAuthorizationToken"]
    assert sub(found["PullTeamImage"]["Resource"]).endswith(":repository/${AppName}/notebook")


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
    for name in ("network", "persistent", "instance", "work"):
        for key in load(name)["Parameters"]:
            assert not any(word in key.lower() for word in ("password", "token")) or key.endswith("SecretArn"), key


# ------------------------------------------- exports and the settings behind them
# CloudFormation refuses to change (or remove) an export while a stack imports
# it. Every up.yml applies the persistent stack first, so an instance stack
# importing a value that a team-wide setting changes would stop everyone's
# up.yml once that setting changed. The emulator does not enforce the rule.

# Imported values that follow a setting on purpose, which preflight refuses
# to change while instance stacks exist (roles/preflight/tasks/exports.yml):
# the VPC cannot change under an existing load balancer, and a server's
# model bucket does not move under it.
IMPORTED_REFUSED_BY_PREFLIGHT = {"VpcId", "InstanceSecurityGroupId", "ModelBucketName"}


def imported_exports(template: dict[str, Any]) -> set[str]:
    """Output keys of the persistent stack that a template imports (`${PersistentStackName}-<Key>`)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if set(node) == {"Fn::ImportValue"}:
                name = node["Fn::ImportValue"]
                # The person's own work stack exports only its file system's
                # and access point's IDs and ARNs, which no setting changes.
                if set(name) == {"Fn::Sub"} and name["Fn::Sub"].startswith("${WorkStackName}-"):
                    return
                assert set(name) == {"Fn::Sub"} and name["Fn::Sub"].startswith("${PersistentStackName}-"), name
                found.add(name["Fn::Sub"].removeprefix("${PersistentStackName}-"))
                return
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(template["Resources"])
    walk(template["Outputs"])
    return found


def parameters_in(node: Any, parameters: set[str]) -> set[str]:
    """The parameters a value refers to: Ref, and ${Name} in a Sub."""
    text = json.dumps(node)
    return {p for p in parameters if json.dumps({"Ref": p}) in text or "${" + p + "}" in text}


def test_the_instance_stack_imports_no_value_a_setting_changes() -> None:
    persistent = load("persistent")
    imported = imported_exports(load("instance"))
    assert imported, "the instance stack imports nothing: the test reads the wrong form"
    for key in imported - IMPORTED_REFUSED_BY_PREFLIGHT:
        output = persistent["Outputs"][key]
        assert "Export" in output, key
        settings = parameters_in(output["Value"], set(persistent["Parameters"]) - {"AppName"})
        assert not settings, f"the instance stack imports {key}, which follows the parameters {settings}"
    assert not imported & {"NotebookPort", "HealthPort", "PrivateSubnetIds", "NotebookUrlBase"}


def test_ports_and_subnets_reach_the_instance_stack_as_parameters() -> None:
    template = load("instance")
    (group,) = resources(template, "AWS::AutoScaling::AutoScalingGroup")
    assert group["VPCZoneIdentifier"] == {"Ref": "PrivateSubnetIds"}
    (target,) = resources(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert (target["Port"], target["HealthCheckPort"]) == ({"Ref": "NotebookPort"}, {"Ref": "HealthPort"})
    (task,) = resources(template, "AWS::ECS::TaskDefinition")
    (container,) = task["ContainerDefinitions"]
    assert [(m["ContainerPort"], m["HostPort"]) for m in container["PortMappings"]] == [
        ({"Ref": "NotebookPort"}, {"Ref": "NotebookPort"}),
        ({"Ref": "HealthPort"}, {"Ref": "HealthPort"}),
    ]
    environment = {item["Name"]: item["Value"] for item in container["Environment"]}
    assert environment["NBSTACK_NOTEBOOK_PORT"] == {"Ref": "NotebookPort"}
    assert environment["NBSTACK_HEALTH_PORT"] == {"Ref": "HealthPort"}
    (service,) = resources(template, "AWS::ECS::Service")
    assert [b["ContainerPort"] for b in service["LoadBalancers"]] == [{"Ref": "NotebookPort"}]


def test_the_instance_role_passes_the_persistent_stacks_outputs_as_those_parameters() -> None:
    """The values come from the persistent stack (what the team's settings made), not from the caller's checkout."""
    import yaml

    tasks = yaml.safe_load((ROOT / "roles" / "instance" / "tasks" / "present.yml").read_text())
    (worked_out,) = [task for task in tasks if task["name"] == "Work out the parameters of the instance stack"]
    fixed = worked_out["vars"]["instance__fixed"]
    persistent = load("persistent")
    instance = load("instance")
    for key in ("NotebookPort", "HealthPort", "PrivateSubnetIds", "NotebookUrlBase"):
        assert key in persistent["Outputs"] and key in instance["Parameters"], key
        assert f"instance_persistent_outputs.{key} " in fixed[key], (key, fixed[key])
# --- Capacity before placement: what the emulator ignores (update and creation
# policies, deployment settings, how CloudFormation treats a count it is not given).


def test_a_stack_update_never_sets_the_services_count() -> None:
    """Without DesiredCount CloudFormation creates the service with 1 and leaves the count alone on update."""
    template = load("instance")
    (service,) = resources(template, "AWS::ECS::Service")
    assert "DesiredCount" not in service
    assert "DesiredCount" not in template["Parameters"]


def test_a_deployment_that_cannot_start_fails_and_rolls_back() -> None:
    (service,) = resources(load("instance"), "AWS::ECS::Service")
    assert service["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}


def test_a_stack_update_never_changes_the_groups_size() -> None:
    """The idle stop's 0 survives an update: CloudFormation ignores group sizes the template did not change."""
    group = load("instance")["Resources"]["AutoScalingGroup"]
    assert group["UpdatePolicy"]["AutoScalingScheduledAction"] == {"IgnoreUnmodifiedGroupSizeProperties": True}
    # A literal: a parameter that up.yml set would change with it and count as modified.
    assert group["Properties"]["DesiredCapacity"] == "1"
    assert (group["Properties"]["MinSize"], group["Properties"]["MaxSize"]) == ("0", "1")


def test_the_service_is_created_only_once_the_instance_has_registered() -> None:
    template = load("instance")
    group = template["Resources"]["AutoScalingGroup"]
    signal = group["CreationPolicy"]["ResourceSignal"]
    assert signal["Count"] == 1
    # Minutes, not hours: a create that can never get capacity fails.
    assert signal["Timeout"].startswith("PT") and signal["Timeout"].endswith("M")
    assert 5 <= int(signal["Timeout"][2:-1]) <= 30
    assert "AutoScalingGroup" in template["Resources"]["Service"]["DependsOn"]
    (launch,) = resources(template, "AWS::EC2::LaunchTemplate")
    user_data = sub(launch["LaunchTemplateData"]["UserData"]["Fn::Base64"])
    # Signals the group by its logical id once the agent reports its container instance...
    assert "--resource AutoScalingGroup" in user_data and "--stack ${AWS::StackName}" in user_data
    assert "http://127.0.0.1:51678/v1/metadata" in user_data and "ContainerInstanceArn" in user_data
    # ...from a unit started without waiting: the agent starts after the user data.
    assert "systemctl start --no-block nbstack-signal-registered.service" in user_data
    # Still the agent's configuration last.
    assert user_data.index("systemctl start --no-block") < user_data.index("cat >> /etc/ecs/ecs.config")


def test_the_ami_is_a_plain_id_that_the_playbook_chooses() -> None:
    """An SSM-typed AMI parameter is resolved again on every update, replacing a running server."""
    template = load("instance")
    amis = {key: p for key, p in template["Parameters"].items() if "Image::Id" in p["Type"]}
    assert amis == {"EcsAmiId": amis["EcsAmiId"]}
    assert amis["EcsAmiId"]["Type"] == "AWS::EC2::Image::Id" and "Default" not in amis["EcsAmiId"]
    assert not [p for p in template["Parameters"].values() if p["Type"].startswith("AWS::SSM::")]
    (launch,) = resources(template, "AWS::EC2::LaunchTemplate")
    assert launch["LaunchTemplateData"]["ImageId"] == {"Ref": "EcsAmiId"}


def test_the_health_check_runs_every_five_seconds_within_aws_limits() -> None:
    """ELB's ranges (interval 5-300 s, timeout 2-120 s and below the interval, thresholds 2-10), asserted
    here: the emulator accepts any value."""
    (group,) = resources(load("instance"), "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert group["HealthCheckPort"] == {"Ref": "HealthPort"} and group["HealthCheckPath"] == "/health"
    assert group["HealthCheckIntervalSeconds"] == 5
    assert 2 <= group["HealthCheckTimeoutSeconds"] < group["HealthCheckIntervalSeconds"]
    assert group["HealthyThresholdCount"] == 2
    # A busy server is not replaced before the sidecar has missed the most checks AWS allows.
    assert group["UnhealthyThresholdCount"] == 10
    template = load("instance")
    grace = template["Parameters"]["HealthCheckGracePeriod"]
    assert grace["Default"] >= 120 and grace["MaxValue"] <= 2147483647


def launch_script(name: str) -> str:
    """A file the instance's user data writes (cat > PATH <<'EOF' ... EOF), as the !Sub leaves it."""
    (launch,) = resources(load("instance"), "AWS::EC2::LaunchTemplate")
    user_data = sub(launch["LaunchTemplateData"]["UserData"]["Fn::Base64"])
    return user_data.split(f"cat > {name} <<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]


def test_one_stopped_instance_waits_in_a_warm_pool_and_leaves_with_the_group() -> None:
    """The emulator skips AWS::AutoScaling::WarmPool and LifecycleHook: their settings are checked here."""
    template = load("instance")
    found = template["Resources"]
    (pool_name,) = [key for key, r in found.items() if r["Type"] == "AWS::AutoScaling::WarmPool"]
    pool = found[pool_name]["Properties"]
    # Named by the group: created after it, deleted before it (down.yml), with its instances.
    assert pool["AutoScalingGroupName"] == {"Ref": "AutoScalingGroup"}
    assert pool["PoolState"] == "Stopped"
    # Equal: the pool's size is absolute (one), whatever the group's desired capacity.
    assert pool["MinSize"] == pool["MaxGroupPreparedCapacity"] == 1
    # ECS does not support reuse on scale-in: the idle stop terminates the instance.
    assert pool.get("InstanceReusePolicy", {}).get("ReuseOnScaleIn", False) is False
    (hook_name,) = [key for key, r in found.items() if r["Type"] == "AWS::AutoScaling::LifecycleHook"]
    # The hook exists before the pool's first instance launches, or that instance is stopped mid-pull.
    assert hook_name in found[pool_name]["DependsOn"]
    hook = found[hook_name]["Properties"]
    assert hook["AutoScalingGroupName"] == {"Ref": "AutoScalingGroup"}
    assert hook["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_LAUNCHING"
    # A warm-up that cannot finish continues the launch (never an instance lost) within minutes.
    assert hook["DefaultResult"] == "CONTINUE" and 300 <= hook["HeartbeatTimeout"] <= 900
    # The group's first instance (the creation signal) is not held by the hook: a resource of its own.
    assert "LifecycleHookSpecificationList" not in found["AutoScalingGroup"]["Properties"]
    warm_up = launch_script("/usr/local/sbin/nbstack-warm-up")
    assert f"--lifecycle-hook-name {hook['LifecycleHookName']}" in warm_up
    assert f"--auto-scaling-group-name {found['AutoScalingGroup']['Properties']['AutoScalingGroupName']['Fn::Sub']}" in warm_up


def test_the_agent_waits_for_service_and_starts_the_pulled_image() -> None:
    (launch,) = resources(load("instance"), "AWS::EC2::LaunchTemplate")
    user_data = sub(launch["LaunchTemplateData"]["UserData"]["Fn::Base64"])
    config = user_data.split("cat >> /etc/ecs/ecs.config <<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0].splitlines()
    assert "ECS_WARM_POOLS_CHECK=true" in config
    assert "ECS_IMAGE_PULL_BEHAVIOR=prefer-cached" in config
    # prefer-cached never runs a stale image: the team's tags cannot be moved.
    (repository,) = resources(load("persistent"), "AWS::ECR::Repository")
    assert repository["ImageTagMutability"] == "IMMUTABLE"
    # The image comes from a tag (a new image never changes the launch template, which would replace the instance).
    group = load("instance")["Resources"]["AutoScalingGroup"]["Properties"]
    assert {"Key": "nbstack:image", "Value": {"Ref": "ContainerImage"}, "PropagateAtLaunch": True} in group["Tags"]
    assert "ContainerImage" not in json.dumps(launch["LaunchTemplateData"])
    # The warm-up unit runs at every boot (a start from the pool does not run the user data again).
    unit = launch_script("/etc/systemd/system/nbstack-warm-up.service")
    assert "WantedBy=multi-user.target" in unit and "After=network-online.target docker.service" in unit
    assert "systemctl enable nbstack-warm-up.service" in user_data


def test_a_warming_instance_never_signals_the_stack_create() -> None:
    (launch,) = resources(load("instance"), "AWS::EC2::LaunchTemplate")
    user_data = sub(launch["LaunchTemplateData"]["UserData"]["Fn::Base64"])
    gate, rest = user_data.split('if [[ "$target" != Warmed:* ]]; then\n', 1)
    assert "autoscaling/target-lifecycle-state" in gate.rsplit("EOF\n", 1)[-1]
    body = rest.split("fi\n", 1)[0]
    assert body.strip() == "systemctl start --no-block nbstack-signal-registered.service"
    assert user_data.count("systemctl start --no-block nbstack-signal-registered.service") == 1  # only the gated start


def run_warm_up(
    tmp_path: Path, state: str, image: str, *args: str, cached: bool = False, pull_fails: bool = False
) -> tuple[int, list[str]]:
    """Runs the user data's warm-up script in bash with curl, docker, aws, dnf and systemd-run recording their calls.

    curl answers as the instance metadata would for the given target lifecycle state and image tag;
    `docker image inspect` finds the image when `cached`.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    log = tmp_path / "calls"
    stubs = {
        "curl": f"""for arg; do case "$arg" in http*) url="$arg" ;; esac; done; echo "curl $url" >> {log}
case "$url" in
  */api/token) echo token ;;
  */autoscaling/target-lifecycle-state) echo -n '{state}' ;;
  */tags/instance/nbstack:image) echo -n '{image}' ;;
  */instance-id) echo -n i-0123456789abcdef0 ;;
  *) exit 22 ;;
esac""",
        "docker": f"""echo "docker $*" >> {log}; [ "$1" != login ] || cat > /dev/null
[ "$1 $2" != "image inspect" ] || {'exit 0' if cached else 'exit 1'}
[ "$1" != pull ] || {'exit 1' if pull_fails else 'exit 0'}""",
        "aws": f'echo "aws $*" >> {log}; [ "$2" != get-login-password ] || echo password',
        "dnf": f'echo "dnf $*" >> {log}',
        "systemd-run": f'echo "systemd-run $*" >> {log}',
    }
    for name, body in stubs.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    script = tmp_path / "nbstack-warm-up"
    text = launch_script("/usr/local/sbin/nbstack-warm-up")
    text = text.replace("${!", "${").replace("${AWS::Region}", "eu-west-1").replace("${AppName}-${Prefix}", "nbs-alice")
    script.write_text(text)
    done = subprocess.run(["bash", str(script), *args], env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, capture_output=True, text=True, timeout=30)
    return done.returncode, log.read_text().splitlines() if log.exists() else []


ECR_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/nbs/notebook:2026-11-27-cpu"
COMPLETE = (
    "aws autoscaling complete-lifecycle-action --region eu-west-1 --auto-scaling-group-name nbs-alice"
    " --lifecycle-hook-name nbstack-warm-up --instance-id i-0123456789abcdef0 --lifecycle-action-result CONTINUE"
)


def test_a_warming_instance_pulls_the_image_then_lets_the_pool_stop_it(tmp_path: Path) -> None:
    code, calls = run_warm_up(tmp_path, "Warmed:Stopped", ECR_IMAGE)
    assert code == 0
    assert in_pipe_order([c for c in calls if not c.startswith("curl")]) == PULL + [COMPLETE]


def pull_commands(image: str, login: bool) -> list[str]:
    """What pulling `image` onto an instance that lacks it runs, with the registry login for ECR."""
    registry = image.split("/", 1)[0]
    return [
        f"docker image inspect {image}",
        # The login's two ends run in one pipe: sorted, as the test sorts what it saw.
        *(sorted([
            "aws ecr get-login-password --region eu-west-1",
            f"docker login --username AWS --password-stdin {registry}",
        ]) if login else []),
        f"docker pull --quiet {image}",
        f"docker logout {registry}",
    ]


PULL = pull_commands(ECR_IMAGE, login=True)


def in_pipe_order(commands: list[str]) -> list[str]:
    """The commands with the login pipe's two ends sorted (they run side by side)."""
    ends = [c for c in commands if c.startswith(("aws ecr get-login-password", "docker login"))]
    if len(ends) == 2:
        first = commands.index(ends[0])
        commands = commands[:first] + sorted(ends) + [c for c in commands[first:] if c not in ends]
    return commands


def test_an_instance_going_into_service_starts_the_pull_in_a_unit_of_its_own_and_goes_on_at_once(
    tmp_path: Path,
) -> None:
    # A cold launch: the pull runs while the agent registers and the task is placed, and outlives this unit.
    code, calls = run_warm_up(tmp_path, "InService", ECR_IMAGE)
    assert code == 0
    assert [c for c in calls if not c.startswith("curl")] == [
        "systemd-run --no-block --unit nbstack-pull-image /usr/local/sbin/nbstack-warm-up pull",
        COMPLETE,
    ]
    assert not any("tags/instance" in c for c in calls)


def test_the_pull_unit_pulls_a_missing_image_and_nothing_more(tmp_path: Path) -> None:
    code, calls = run_warm_up(tmp_path, "InService", ECR_IMAGE, "pull")
    assert code == 0
    assert in_pipe_order([c for c in calls if not c.startswith("curl")]) == PULL
    # A start from the pool: the image is on the disk already.
    code, calls = run_warm_up(tmp_path / "again", "InService", ECR_IMAGE, "pull", cached=True)
    assert code == 0
    assert [c for c in calls if not c.startswith("curl")] == [f"docker image inspect {ECR_IMAGE}"]


def test_a_failed_pull_logs_out_and_fails_its_unit(tmp_path: Path) -> None:
    code, calls = run_warm_up(tmp_path, "InService", ECR_IMAGE, "pull", pull_fails=True)
    assert code != 0
    assert in_pipe_order([c for c in calls if not c.startswith("curl")]) == PULL


def test_an_image_outside_ecr_is_pulled_without_a_registry_login(tmp_path: Path) -> None:
    image = "quay.io/jupyter/scipy-notebook:2026-11-02"
    code, calls = run_warm_up(tmp_path, "Warmed:Stopped", image)
    assert code == 0
    commands = [c for c in calls if not c.startswith("curl")]
    assert commands == pull_commands(image, login=False) + [COMPLETE]


# ------------------------------------------------------------ the work volume
# The emulator creates the file system, mount targets and access point but
# evaluates none of EFS's authorization: the policies are asserted here.


def test_the_work_volume_is_encrypted_tiered_and_mountable_only_over_tls_through_an_access_point() -> None:
    work = load("work")
    fs = work["Resources"]["FileSystem"]
    assert fs["UpdateReplacePolicy"] == "Retain"
    props = fs["Properties"]
    assert props["Encrypted"] is True
    assert {"TransitionToIA": "AFTER_30_DAYS"} in props["LifecyclePolicies"]
    assert {"TransitionToPrimaryStorageClass": "AFTER_1_ACCESS"} in props["LifecyclePolicies"]
    policy = {statement["Sid"]: statement for statement in props["FileSystemPolicy"]["Statement"]}
    # Only denials: EFS's default policy (anyone reaching a mount target
    # mounts without IAM) ends, and no principal is named, so a role made
    # again is not locked out; the task role's own policy grants the mount.
    assert all(statement["Effect"] == "Deny" for statement in policy.values())
    assert "Allow" not in json.dumps(props["FileSystemPolicy"])
    assert policy["TlsOnly"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert policy["TlsOnly"]["Action"] == "*"
    assert policy["AccessPointOnly"]["Condition"] == {"Null": {"elasticfilesystem:AccessPointArn": "true"}}
    assert set(policy["AccessPointOnly"]["Action"]) == {
        "elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite", "elasticfilesystem:ClientRootAccess"
    }
    point = work["Resources"]["AccessPoint"]["Properties"]
    # docker-stacks' jovyan: every operation through the access point is that user's, root's included.
    assert point["PosixUser"] == {"Uid": "1000", "Gid": "100"}
    assert point["RootDirectory"]["CreationInfo"] == {"OwnerUid": "1000", "OwnerGid": "100", "Permissions": "0750"}
    targets = [r for r in work["Resources"].values() if r["Type"] == "AWS::EFS::MountTarget"]
    assert len(targets) == 3
    assert all(
        t["Properties"]["SecurityGroups"] == [{"Fn::ImportValue": {"Fn::Sub": "${PersistentStackName}-WorkVolumeSecurityGroupId"}}]
        for t in targets
    )


def test_only_the_notebook_instances_reach_the_mount_targets_and_only_on_nfs() -> None:
    group = load("persistent")["Resources"]["WorkVolumeSecurityGroup"]["Properties"]
    assert group["SecurityGroupIngress"] == [
        {"Description": "NFS from the notebook instances", "IpProtocol": "tcp", "FromPort": 2049, "ToPort": 2049,
         "SourceSecurityGroupId": {"Fn::GetAtt": ["InstanceSecurityGroup", "GroupId"]}}
    ]
    assert [rule["CidrIp"] for rule in group["SecurityGroupEgress"]] == ["127.0.0.1/32"]


def test_the_task_mounts_its_owners_volume_with_tls_and_its_own_role_and_may_mount_nothing_else() -> None:
    instance = load("instance")
    task = instance["Resources"]["TaskDefinition"]["Properties"]
    (volume,) = task["Volumes"]
    assert "Host" not in volume
    efs = volume["EFSVolumeConfiguration"]
    assert efs["FilesystemId"] == {"Fn::ImportValue": {"Fn::Sub": "${WorkStackName}-FileSystemId"}}
    assert efs["TransitEncryption"] == "ENABLED"
    assert efs["AuthorizationConfig"] == {
        "AccessPointId": {"Fn::ImportValue": {"Fn::Sub": "${WorkStackName}-AccessPointId"}},
        "IAM": "ENABLED",
    }
    # The access point pins the directory: no root directory of the task's own.
    assert efs.get("RootDirectory", "/") == "/"
    mount = statements(instance["Resources"]["TaskRole"])["MountOwnWorkVolume"]
    assert sorted(actions(mount)) == ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    assert mount["Resource"] == {"Fn::ImportValue": {"Fn::Sub": "${WorkStackName}-FileSystemArn"}}
    assert mount["Condition"] == {
        "StringEquals": {"elasticfilesystem:AccessPointArn": {"Fn::ImportValue": {"Fn::Sub": "${WorkStackName}-AccessPointArn"}}}
    }
    # The work stack exports what the instance stack imports, under the names it imports.
    outputs = load("work")["Outputs"]
    for key in ("FileSystemId", "FileSystemArn", "AccessPointId", "AccessPointArn"):
        assert outputs[key]["Export"]["Name"] == {"Fn::Sub": "${AWS::StackName}-" + key}
