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


def test_execution_role_reads_only_the_apps_secrets() -> None:
    template = load("persistent")
    statements = [
        statement
        for role in resources(template, "AWS::IAM::Role")
        for policy in role.get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        if "secretsmanager:GetSecretValue" in json.dumps(statement["Action"])
    ]
    assert len(statements) == 1
    assert "secret:${AppName}/*" in json.dumps(statements[0]["Resource"])


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
