"""The model bucket outlives the persistent stack: a new stack finds the same bucket, models included.

The team brings its own VPC here, as in test_given_network.py: the
emulator cannot delete a network stack's VPC (it leaves interfaces
behind), and `down.yml -e persistent=absent` deletes every stack.
"""

from __future__ import annotations

import json

import pytest
from team import APP

from nbstack_devkit.emulator import Clients, Emulator
from nbstack_devkit.playbooks import Playbooks, ok
from nbstack_runtime import models


@pytest.fixture(scope="module")
def network(emulator: Emulator, aws: Clients) -> list[str]:
    """A VPC of the team's own, given to up.yml."""
    emulator.reset()
    vpc = aws.ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    aws.ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # off in a new VPC
    subnets = [
        aws.ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.8.{n}.0/24", AvailabilityZone=f"eu-west-1{zone}")["Subnet"][
            "SubnetId"
        ]
        for n, zone in enumerate("aba")
    ]
    address = aws.ec2.allocate_address(Domain="vpc")
    aws.ec2.create_nat_gateway(SubnetId=subnets[0], AllocationId=address["AllocationId"])
    given = {"notebook_vpc_id": vpc, "notebook_public_subnet_ids": subnets[:2], "notebook_private_subnet_ids": subnets[2:]}
    return ["-e", json.dumps(given)]


def persistent(aws: Clients) -> dict[str, dict[str, str]]:
    stack = aws.cloudformation.describe_stacks(StackName=f"{APP}-persistent")["Stacks"][0]
    return {
        "parameters": {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack["Parameters"]},
        "outputs": {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]},
    }


def model_bucket_of_the_server(aws: Clients, prefix: str) -> str:
    stack = aws.cloudformation.describe_stacks(StackName=f"{APP}-{prefix}")["Stacks"][0]
    definition = next(o["OutputValue"] for o in stack["Outputs"] if o["OutputKey"] == "TaskDefinitionArn")
    container = aws.ecs.describe_task_definition(taskDefinition=definition)["taskDefinition"]["containerDefinitions"][0]
    return next(e["value"] for e in container["environment"] if e["name"] == "NBSTACK_MODEL_BUCKET")


def test_removing_the_persistent_stack_keeps_the_bucket_and_the_next_up_uses_it(
    network: list[str], playbooks: Playbooks, aws: Clients
) -> None:
    ok(playbooks.up("alice", *network))
    account = aws.sts.get_caller_identity()["Account"]
    bucket = f"{APP}-models-{account}-eu-west-1"
    first = persistent(aws)
    assert first["outputs"]["ModelBucketName"] == bucket
    assert first["parameters"]["ExistingModelBucket"] == ""
    assert first["parameters"]["KeptModelBucket"] == "false"
    assert model_bucket_of_the_server(aws, "alice") == bucket
    version = models.save_model({"weights": [1, 2, 3]}, "churn", bucket=bucket, client=aws.s3, prefix="alice")

    # force: the emulator runs no task, so no autosave of alice's is recorded (the purge refuses that otherwise).
    ok(playbooks.down("alice", "-e", "persistent=absent", "-e", "purge_work=true", "-e", "force=true"))
    assert aws.cloudformation.describe_stacks()["Stacks"] == []
    assert bucket in {b["Name"] for b in aws.s3.list_buckets()["Buckets"]}

    run = ok(playbooks.up("alice", *network))
    assert f"The model bucket {bucket} exists outside the persistent stack" in run.text
    again = persistent(aws)
    assert again["outputs"]["ModelBucketName"] == bucket
    assert again["parameters"]["ExistingModelBucket"] == bucket
    assert again["parameters"]["KeptModelBucket"] == "true"  # its TLS-only policy stays under the stack
    assert model_bucket_of_the_server(aws, "alice") == bucket
    assert models.load_model("churn", version=version, bucket=bucket, client=aws.s3, prefix="alice") == {
        "weights": [1, 2, 3]
    }
    assert [b["Name"] for b in aws.s3.list_buckets()["Buckets"] if "-models-" in b["Name"]] == [bucket]

    # Every later run finds it the same way and leaves the stack as it is.
    ok(playbooks.up("alice", *network))
    assert persistent(aws) == again


def test_a_kept_bucket_of_another_name_stays_the_teams_on_every_later_run(
    network: list[str], playbooks: Playbooks, aws: Clients
) -> None:
    """As a team upgraded from a template that named its bucket itself: the stack was given that bucket as kept.

    That happens when the persistent stack is made again, so with no server up
    (CloudFormation refuses to change an export an instance stack imports).
    """
    ok(playbooks.down("alice"))
    legacy = f"{APP}-persistent-modelbucket-1a2b3c4d"
    aws.s3.create_bucket(Bucket=legacy, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    held = persistent(aws)["parameters"]
    given = {"ExistingModelBucket": legacy, "KeptModelBucket": "true"}
    # The others as they are (the emulator reads a list parameter back as a Python list's text).
    kept = [{"ParameterKey": key, "UsePreviousValue": True} for key in held if key not in given]
    aws.cloudformation.update_stack(
        StackName=f"{APP}-persistent",
        UsePreviousTemplate=True,
        Parameters=kept + [{"ParameterKey": key, "ParameterValue": value} for key, value in given.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    assert persistent(aws)["outputs"]["ModelBucketName"] == legacy

    # The team's own name exists too (the earlier test made it): the kept bucket still wins.
    ok(playbooks.up("alice", *network))
    after = persistent(aws)
    assert after["parameters"]["ExistingModelBucket"] == legacy
    assert after["parameters"]["KeptModelBucket"] == "true"
    assert after["outputs"]["ModelBucketName"] == legacy
    assert model_bucket_of_the_server(aws, "alice") == legacy
