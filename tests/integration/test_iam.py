"""The per-person roles, evaluated: the container's own calls with its task role's own credentials.

`up.yml` runs for two people against an emulator that enforces IAM on
request (`Emulator(iam=True)`); the roles are the ones the instance stack
created from the template. Each test then assumes a role, as ECS hands it
to a task, turns enforcement on and runs the code the container runs
(`nbstack_runtime.models`, `nbstack_runtime.scaler.AwsScaler`) with those
credentials: what a notebook may do works, anything else is refused by
IAM, not by the helper. Conditions the emulator does not evaluate (tag
keys) and the task's placement are asserted on the template in
tests/unit/test_templates.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from team import APP, SETTINGS, PersonPlaybooks

from nbstack_devkit.emulator import REAL_ACCOUNT_VARIABLES, Emulator
from nbstack_devkit.playbooks import Playbooks, ok
from nbstack_devkit.vault import Vault
from nbstack_runtime import models
from nbstack_runtime.scaler import AwsScaler

ME = "erin"
OTHER = "frank"


@pytest.fixture(scope="module")
def iam_emulator() -> Iterator[Emulator]:
    server = Emulator(iam=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def outputs(
    iam_emulator: Emulator, vault: Vault, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, str]]:
    """Both people's servers, up, each with their own vault file; each one's instance stack outputs."""
    playbooks = PersonPlaybooks(Playbooks(iam_emulator, SETTINGS, vault), tmp_path_factory.mktemp("people") / "vault")
    found = {}
    for prefix in (ME, OTHER):
        ok(playbooks.up(prefix, "-e", "instance_start_timeout=1"))
        stack = iam_emulator.client("cloudformation").describe_stacks(StackName=f"{APP}-{prefix}")["Stacks"][0]
        found[prefix] = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        for key in ("TaskRoleArn", "TaskExecutionRoleArn"):
            if key in found[prefix]:  # each test names the role it needs
                iam_emulator.store_policies_as_json(found[prefix][key])
    return found


def container_env(emulator: Emulator, outputs: dict[str, str]) -> dict[str, str]:
    definition = emulator.client("ecs").describe_task_definition(taskDefinition=outputs["TaskDefinitionArn"])
    return {e["name"]: e["value"] for e in definition["taskDefinition"]["containerDefinitions"][0]["environment"]}


def desired(emulator: Emulator, outputs: dict[str, str]) -> tuple[int, int]:
    service = emulator.client("ecs").describe_services(
        cluster=outputs["ClusterName"], services=[outputs["ServiceName"]]
    )["services"][0]
    group = emulator.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[outputs["AutoScalingGroupName"]]
    )["AutoScalingGroups"][0]
    return int(service["desiredCount"]), int(group["DesiredCapacity"])


def as_task(emulator: Emulator, role_arn: str, monkeypatch: pytest.MonkeyPatch) -> boto3.session.Session:
    """The role's own credentials, in this process's environment too, as a container has them."""
    session = emulator.role_session(role_arn)
    credentials = session.get_credentials().get_frozen_credentials()
    for name in REAL_ACCOUNT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in emulator.environ({}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials.secret_key)
    monkeypatch.setenv("AWS_SESSION_TOKEN", credentials.token)
    # boto3's default session keeps the credentials it first found; a
    # container's process starts without one, so the code finds the role's.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    return session


def denied(call: Any, *args: Any, **kwargs: Any) -> bool:
    """Whether IAM refused the call (any other outcome, success included, is not a refusal).

    The emulator answers a refused JSON-protocol call (ECS) with an XML
    body, which botocore reports under the HTTP status; the message is IAM's.
    """
    try:
        call(*args, **kwargs)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        return code in ("AccessDenied", "AccessDeniedException") or (
            code == "403" and "<Code>AccessDenied</Code>" in str(error)
        )
    return False


def test_models_are_written_under_ones_own_prefix_and_read_team_wide(
    iam_emulator: Emulator, outputs: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = container_env(iam_emulator, outputs[ME])
    bucket = env["NBSTACK_MODEL_BUCKET"]
    # Versioned by the template (the emulator applies the property as AWS does: nbstack_devkit.emulator).
    assert iam_emulator.client("s3").get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    frank = iam_emulator.role_session(outputs[OTHER]["TaskRoleArn"]).client("s3", endpoint_url=iam_emulator.url)
    with iam_emulator.iam_enforced():
        models.save_model({"by": OTHER}, "churn", bucket=bucket, client=frank, prefix=OTHER)
    erin = as_task(iam_emulator, outputs[ME]["TaskRoleArn"], monkeypatch).client("s3", endpoint_url=iam_emulator.url)
    monkeypatch.setenv("NBSTACK_PREFIX", env["NBSTACK_PREFIX"])

    with iam_emulator.iam_enforced():
        version = models.save_model({"by": ME}, "churn", bucket=bucket, client=erin)
        assert models.load_model("churn", bucket=bucket, client=erin) == {"by": ME}
        assert models.load_model("churn", version=version, bucket=bucket, client=erin) == {"by": ME}
        assert [m.ref for m in models.list_models(bucket=bucket, client=erin)] == [f"{ME}/churn", f"{OTHER}/churn"]
        assert [v.version for v in models.list_versions("churn", bucket=bucket, client=erin)] == [version]
        assert models.load_model(f"{OTHER}/churn", bucket=bucket, client=erin, allow_from=OTHER) == {"by": OTHER}

        # Under another person's prefix: refused by IAM, whatever the helper is told.
        assert denied(models.save_model, {"by": ME}, "churn", bucket=bucket, client=erin, prefix=OTHER)
        assert denied(erin.put_object, Bucket=bucket, Key=f"models/{OTHER}/churn", Body=b"poison")
        assert denied(erin.put_object, Bucket=bucket, Key="models/churn", Body=b"outside every prefix")
        assert denied(erin.delete_object, Bucket=bucket, Key=f"models/{ME}/churn")
    latest = iam_emulator.client("s3").get_object(Bucket=bucket, Key=f"models/{OTHER}/churn")
    assert latest["Metadata"]["nbstack-writer"] == OTHER


def test_a_large_model_goes_up_in_parts_under_ones_own_prefix_only(
    iam_emulator: Emulator, outputs: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from boto3.s3.transfer import TransferConfig

    env = container_env(iam_emulator, outputs[ME])
    bucket = env["NBSTACK_MODEL_BUCKET"]
    erin = as_task(iam_emulator, outputs[ME]["TaskRoleArn"], monkeypatch).client("s3", endpoint_url=iam_emulator.url)
    monkeypatch.setenv("NBSTACK_PREFIX", env["NBSTACK_PREFIX"])
    # S3's smallest part is 5 MiB: 11 MiB above a 5 MiB threshold is a three-part upload.
    in_parts = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    weights = bytes(11 * 1024 * 1024)

    with iam_emulator.iam_enforced():
        version = models.save_model({"weights": weights}, "large", bucket=bucket, client=erin, transfer_config=in_parts)
        assert models.load_model("large", version=version, bucket=bucket, client=erin) == {"weights": weights}
        # A failed transfer aborts its own parts; nobody else's.
        own = erin.create_multipart_upload(Bucket=bucket, Key=f"models/{ME}/interrupted")["UploadId"]
        erin.abort_multipart_upload(Bucket=bucket, Key=f"models/{ME}/interrupted", UploadId=own)
        assert denied(erin.create_multipart_upload, Bucket=bucket, Key=f"models/{OTHER}/large")
    head = iam_emulator.client("s3").head_object(Bucket=bucket, Key=f"models/{ME}/large", VersionId=version)
    assert head["ETag"].strip('"').endswith("-3")
    assert "Uploads" not in iam_emulator.client("s3").list_multipart_uploads(Bucket=bucket)


def test_the_idle_stop_stops_its_own_server_and_no_one_elses(
    iam_emulator: Emulator, outputs: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    mine, theirs = outputs[ME], outputs[OTHER]
    assert desired(iam_emulator, mine) == desired(iam_emulator, theirs) == (1, 1)
    env = container_env(iam_emulator, mine)
    session = as_task(iam_emulator, mine["TaskRoleArn"], monkeypatch)
    own = AwsScaler(env["NBSTACK_CLUSTER"], env["NBSTACK_SERVICE"], env["NBSTACK_AUTOSCALING_GROUP"])
    other = AwsScaler(theirs["ClusterName"], theirs["ServiceName"], theirs["AutoScalingGroupName"])
    autoscaling = session.client("autoscaling", endpoint_url=iam_emulator.url)
    ecs = session.client("ecs", endpoint_url=iam_emulator.url)

    their_service = iam_emulator.client("ecs").describe_services(
        cluster=theirs["ClusterName"], services=[theirs["ServiceName"]]
    )["services"][0]["serviceArn"]

    with iam_emulator.iam_enforced():
        assert denied(other.publish, {"nbstack:stop-reason": "not mine"})
        # Not only the read before it: the tagging itself.
        assert denied(ecs.tag_resource, resourceArn=their_service, tags=[{"key": "nbstack:stop-reason", "value": "x"}])
        assert denied(other.scale_to_zero)
        # Its own group's sizes are not its to change: only the desired capacity, within MaxSize 1.
        assert denied(autoscaling.update_auto_scaling_group, AutoScalingGroupName=mine["AutoScalingGroupName"], MaxSize=5)
        assert denied(autoscaling.set_desired_capacity, AutoScalingGroupName=theirs["AutoScalingGroupName"],
                      DesiredCapacity=0)
        assert denied(ecs.delete_service, cluster=mine["ClusterName"], service=mine["ServiceName"], force=True)
        assert denied(ecs.register_task_definition, family=f"{APP}-{ME}",
                      containerDefinitions=[{"name": "x", "image": "x", "memory": 512}])
        # Not even its own service: no IAM condition pins a service's load
        # balancers or placement, so UpdateService is not granted at all.
        assert denied(ecs.update_service, cluster=mine["ClusterName"], service=mine["ServiceName"], loadBalancers=[{
            "targetGroupArn": theirs["TargetGroupArn"], "containerName": "notebook", "containerPort": 8888}])

        own.publish({"nbstack:autosave": "saved 2026-11-26T11:00:00Z autosave/erin/20261126T110000Z"})
        own.publish({"nbstack:stopped-at": "2026-11-26T11:00:00Z", "nbstack:stop-reason": "idle"})
        own.scale_to_zero()
        assert denied(other.publish, {"nbstack:autosave": "saved 2026-11-26T11:00:00Z"})

    # The group at 0; the service keeps its one task, held to erin's own instances.
    assert desired(iam_emulator, mine) == (1, 0)
    assert desired(iam_emulator, theirs) == (1, 1)
    ecs_admin = iam_emulator.client("ecs")
    arn = ecs_admin.describe_services(cluster=mine["ClusterName"], services=[mine["ServiceName"]])["services"][0]
    tags = {t["key"]: t["value"] for t in ecs_admin.list_tags_for_resource(resourceArn=arn["serviceArn"])["tags"]}
    assert tags["nbstack:stop-reason"] == "idle"
    assert tags["nbstack:autosave"] == "saved 2026-11-26T11:00:00Z autosave/erin/20261126T110000Z"


def test_secrets_are_read_only_by_their_owners_execution_role(
    iam_emulator: Emulator, outputs: dict[str, dict[str, str]]
) -> None:
    names = {
        prefix: [s["Name"] for s in iam_emulator.client("secretsmanager").list_secrets()["SecretList"]
                 if s["Name"].startswith(f"{APP}/{prefix}/")]
        for prefix in (ME, OTHER)
    }
    assert names[ME] and names[OTHER]
    task = iam_emulator.role_session(outputs[ME]["TaskRoleArn"]).client("secretsmanager", endpoint_url=iam_emulator.url)
    execution = iam_emulator.role_session(outputs[ME]["TaskExecutionRoleArn"]).client(
        "secretsmanager", endpoint_url=iam_emulator.url
    )
    with iam_emulator.iam_enforced():
        for name in names[ME]:
            assert execution.get_secret_value(SecretId=name)["SecretString"]
            # The notebook's own role never holds a secret: the agent resolves them at start.
            assert denied(task.get_secret_value, SecretId=name)
        for name in names[OTHER]:
            assert denied(execution.get_secret_value, SecretId=name)
            assert denied(task.get_secret_value, SecretId=name)
