"""The emulator applies the template properties its CloudFormation would skip (nbstack_devkit.emulator's list)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from nbstack_devkit.emulator import Emulator


def bucket_template(status: str, team: str = "a") -> str:
    return json.dumps(
        {
            "Resources": {
                "ModelBucket": {
                    "Type": "AWS::S3::Bucket",
                    "Properties": {"VersioningConfiguration": {"Status": status}, "Tags": [{"Key": "team", "Value": team}]},
                }
            },
            "Outputs": {"Bucket": {"Value": {"Ref": "ModelBucket"}}},
        }
    )


@pytest.fixture(params=[False, True], ids=["in-process", "iam-enforcing"])
def emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    server = Emulator(iam=request.param).start()
    yield server
    server.stop()


def test_a_stacks_bucket_is_versioned_as_its_template_says_on_create_and_update(emulator: Emulator) -> None:
    cloudformation, s3 = emulator.client("cloudformation"), emulator.client("s3")
    cloudformation.create_stack(StackName="versioned", TemplateBody=bucket_template("Enabled"))
    (output,) = cloudformation.describe_stacks(StackName="versioned")["Stacks"][0]["Outputs"]
    bucket = output["OutputValue"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    # Objects get versions, as save_model expects.
    first = s3.put_object(Bucket=bucket, Key="m", Body=b"1")["VersionId"]
    second = s3.put_object(Bucket=bucket, Key="m", Body=b"2")["VersionId"]
    assert first != second and "null" not in (first, second)

    # A generated name, tags, and an update (the model bucket's case): the same bucket, as the template says.
    cloudformation.update_stack(StackName="versioned", TemplateBody=bucket_template("Suspended", team="b"))
    assert cloudformation.describe_stacks(StackName="versioned")["Stacks"][0]["Outputs"][0]["OutputValue"] == bucket
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "b"}]


def test_a_bucket_an_update_drops_from_the_template_is_kept_when_retained(emulator: Emulator) -> None:
    cloudformation, s3 = emulator.client("cloudformation"), emulator.client("s3")
    kept = json.loads(bucket_template("Enabled"))
    kept["Resources"]["ModelBucket"]["DeletionPolicy"] = "Retain"
    kept["Resources"]["Other"] = {"Type": "AWS::S3::Bucket"}
    cloudformation.create_stack(StackName="kept", TemplateBody=json.dumps(kept))
    names = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in cloudformation.describe_stack_resources(StackName="kept")["StackResources"]}
    # Empty: the emulator refuses to delete a bucket with objects in it, whatever its policy.

    # The next template no longer has either bucket (the persistent stack given an existing bucket).
    cloudformation.update_stack(
        StackName="kept", TemplateBody=json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    )
    assert cloudformation.describe_stacks(StackName="kept")["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert names["ModelBucket"] in buckets and names["Other"] not in buckets


def test_a_task_definitions_efs_volume_is_described_as_ecs_describes_it(emulator: Emulator) -> None:
    """The template's EFSVolumeConfiguration (FilesystemId, IAM) under the API's names, as ECS returns it."""
    template = {
        "Resources": {
            "FileSystem": {"Type": "AWS::EFS::FileSystem", "Properties": {"Encrypted": True}},
            "AccessPoint": {
                "Type": "AWS::EFS::AccessPoint",
                "Properties": {
                    "FileSystemId": {"Ref": "FileSystem"},
                    "PosixUser": {"Uid": "1000", "Gid": "100"},
                    "RootDirectory": {"Path": "/home"},
                },
            },
            "TaskDefinition": {
                "Type": "AWS::ECS::TaskDefinition",
                "Properties": {
                    "Family": "notebook",
                    "Volumes": [
                        {
                            "Name": "work",
                            "EFSVolumeConfiguration": {
                                "FilesystemId": {"Ref": "FileSystem"},
                                "TransitEncryption": "ENABLED",
                                "AuthorizationConfig": {"AccessPointId": {"Ref": "AccessPoint"}, "IAM": "ENABLED"},
                            },
                        },
                        {"Name": "disk", "Host": {"SourcePath": "/var/lib/x"}},
                    ],
                    "ContainerDefinitions": [
                        {"Name": "notebook", "Image": "notebook:latest", "MemoryReservation": 512,
                         "MountPoints": [{"SourceVolume": "work", "ContainerPath": "/home/jovyan/work"}]},
                    ],
                },
            },
        },
        "Outputs": {
            "TaskDefinitionArn": {"Value": {"Ref": "TaskDefinition"}},
            "FileSystemId": {"Value": {"Ref": "FileSystem"}},
            "AccessPointId": {"Value": {"Ref": "AccessPoint"}},
        },
    }
    cloudformation = emulator.client("cloudformation")
    cloudformation.create_stack(StackName="work", TemplateBody=json.dumps(template))
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cloudformation.describe_stacks(StackName="work")["Stacks"][0]["Outputs"]}
    described = emulator.client("ecs").describe_task_definition(taskDefinition=outputs["TaskDefinitionArn"])["taskDefinition"]
    assert described["volumes"] == [
        {
            "name": "work",
            "efsVolumeConfiguration": {
                "fileSystemId": outputs["FileSystemId"],
                "rootDirectory": "/",
                "transitEncryption": "ENABLED",
                "authorizationConfig": {"accessPointId": outputs["AccessPointId"], "iam": "ENABLED"},
            },
        },
        {"name": "disk", "host": {"sourcePath": "/var/lib/x"}},
    ]
    # Ref of the file system and of the access point: their ids, as EFS knows them.
    efs = emulator.client("efs")
    (access_point,) = efs.describe_access_points(AccessPointId=outputs["AccessPointId"])["AccessPoints"]
    assert outputs["AccessPointId"].startswith("fsap-") and access_point["FileSystemId"] == outputs["FileSystemId"]
    assert efs.describe_file_systems(FileSystemId=outputs["FileSystemId"])["FileSystems"]


def test_a_stacks_update_sets_its_last_updated_time_as_aws_does(emulator: Emulator) -> None:
    cloudformation = emulator.client("cloudformation")

    def last_updated() -> object:
        return cloudformation.describe_stacks(StackName="updated")["Stacks"][0].get("LastUpdatedTime")

    cloudformation.create_stack(StackName="updated", TemplateBody=bucket_template("Enabled"))
    assert last_updated() is None  # AWS gives none to a stack never updated
    cloudformation.update_stack(StackName="updated", TemplateBody=bucket_template("Enabled", team="b"))
    by_update = last_updated()
    assert by_update is not None
    cloudformation.create_change_set(
        StackName="updated", ChangeSetName="next", TemplateBody=bucket_template("Enabled", team="c"), ChangeSetType="UPDATE"
    )
    cloudformation.execute_change_set(StackName="updated", ChangeSetName="next")
    assert last_updated() > by_update  # type: ignore[operator]
