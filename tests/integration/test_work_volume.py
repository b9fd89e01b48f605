"""The work volume: made by up.yml, kept by down.yml, deleted only by purge_work.

One scenario for the module, on the emulator: up.yml for a person; the EFS
file system, its mount targets and access point, and the task definition
that mounts it are described; down.yml keeps the volume (status.yml still
lists the person, with the volume), up.yml mounts the same file system
again, and down.yml -e purge_work=true deletes it. What EFS enforces on
AWS (TLS, IAM authorization, the access point's user) the emulator does not
evaluate: tests/unit/test_templates.py asserts it on the templates.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from team import APP

from nbstack_devkit.emulator import Clients, Emulator
from nbstack_devkit.playbooks import PlaybookRun, Playbooks, ok
from nbstack_runtime.autosave import Result, tag_value
from nbstack_runtime.contract import AUTOSAVE_TAG
from nbstack_runtime.scaler import AwsScaler

PREFIX = "wendy"
WORK_STACK = f"{APP}-{PREFIX}-work"
# What a failed first up.yml leaves of the person's stack after its rollback: a stack without outputs.
FAILED_CREATE = '{"Resources": {"Leftover": {"Type": "AWS::SNS::Topic"}}}'


def outputs(aws: Clients, name: str) -> dict[str, str]:
    (stack,) = aws.cloudformation.describe_stacks(StackName=name)["Stacks"]
    return {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}


def mounted_volume(aws: Clients) -> dict[str, Any]:
    """The EFS configuration of the work volume in the task definition the person's service runs."""
    instance = outputs(aws, f"{APP}-{PREFIX}")
    (service,) = aws.ecs.describe_services(cluster=instance["ClusterName"], services=[instance["ServiceName"]])["services"]
    task = aws.ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    (volume,) = [v for v in task["volumes"] if v["name"] == "work"]
    assert "host" not in volume or not volume["host"], volume
    return volume["efsVolumeConfiguration"]


@pytest.fixture(scope="module")
def first(emulator: Emulator, playbooks: Playbooks) -> PlaybookRun:
    emulator.reset()
    return ok(playbooks.up(PREFIX))


def test_up_makes_an_encrypted_volume_with_a_mount_target_per_notebook_subnet(first: PlaybookRun, aws: Clients) -> None:
    work = outputs(aws, WORK_STACK)
    (fs,) = aws.efs.describe_file_systems(FileSystemId=work["FileSystemId"])["FileSystems"]
    assert fs["Encrypted"] is True
    assert {t["Key"]: t["Value"] for t in fs["Tags"]}["nbstack:prefix"] == PREFIX
    lifecycle = aws.efs.describe_lifecycle_configuration(FileSystemId=fs["FileSystemId"])["LifecyclePolicies"]
    assert {"TransitionToIA": "AFTER_30_DAYS"} in lifecycle
    persistent = outputs(aws, f"{APP}-persistent")
    targets = aws.efs.describe_mount_targets(FileSystemId=fs["FileSystemId"])["MountTargets"]
    assert sorted(t["SubnetId"] for t in targets) == sorted(persistent["PrivateSubnetIds"].split(","))
    for target in targets:
        groups = aws.efs.describe_mount_target_security_groups(MountTargetId=target["MountTargetId"])["SecurityGroups"]
        assert groups == [persistent["WorkVolumeSecurityGroupId"]]
    (point,) = aws.efs.describe_access_points(AccessPointId=work["AccessPointId"])["AccessPoints"]
    assert point["FileSystemId"] == fs["FileSystemId"]
    assert point["PosixUser"] == {"Uid": 1000, "Gid": 100}
    assert point["RootDirectory"]["Path"] == "/home"


def test_the_task_mounts_that_volume_through_its_access_point_with_tls_and_iam(first: PlaybookRun, aws: Clients) -> None:
    work = outputs(aws, WORK_STACK)
    volume = mounted_volume(aws)
    assert volume["fileSystemId"] == work["FileSystemId"]
    assert volume["transitEncryption"] == "ENABLED"
    assert volume["authorizationConfig"] == {"accessPointId": work["AccessPointId"], "iam": "ENABLED"}


def test_down_keeps_the_volume_up_mounts_it_again_and_purge_deletes_it(
    first: PlaybookRun, aws: Clients, playbooks: Playbooks
) -> None:
    file_system = outputs(aws, WORK_STACK)["FileSystemId"]

    down = ok(playbooks.down(PREFIX))
    assert "Your files stay on your work volume" in down.text
    assert aws.efs.describe_file_systems(FileSystemId=file_system)["FileSystems"]
    (stack,) = aws.cloudformation.describe_stacks(StackName=WORK_STACK)["Stacks"]
    assert stack["EnableTerminationProtection"] is True

    status = ok(playbooks.run("status.yml", "-e", f"prefix={PREFIX}", with_vault=False))
    # The person has no server but a volume: a row with its bytes (the
    # emulator meters every file system at 0) and their price.
    assert f"- {PREFIX} absent - - - 0 B $0.000 " in status.text, status.text[-3000:]

    # The server's stack, and the record of its last autosave, are gone: a
    # purge now could not tell whether everything was pushed.
    refused = playbooks.down(PREFIX, "-e", "purge_work=true")
    assert refused.returncode != 0 and "nothing says everything was pushed" in refused.text
    assert "your server's stack is already gone" in refused.text and "The volume was not touched" in refused.text
    assert aws.efs.describe_file_systems(FileSystemId=file_system)["FileSystems"]

    # Nor can it when the server's stack is one whose creation failed (no
    # outputs, so no server to stop and no record): its deletion checks nothing.
    aws.cloudformation.create_stack(StackName=f"{APP}-{PREFIX}", TemplateBody=FAILED_CREATE)
    refused = playbooks.down(PREFIX, "-e", "purge_work=true")
    assert refused.returncode != 0 and "nothing says everything was pushed" in refused.text
    assert "your server's stack (deleted now) had no server to read" in refused.text
    assert aws.efs.describe_file_systems(FileSystemId=file_system)["FileSystems"]

    ok(playbooks.up(PREFIX))
    assert mounted_volume(aws)["fileSystemId"] == file_system

    # Nor when no save is recorded since the server started (the emulator
    # runs no task): the stack is kept, the server stopped.
    refused = playbooks.down(PREFIX, "-e", "purge_work=true")
    assert refused.returncode != 0 and "no autosave is recorded since the server last started" in refused.text
    assert "So the deletion of its stack did not happen: its work volume is kept" in refused.text
    assert f"{APP}-{PREFIX}" in [s["StackName"] for s in aws.cloudformation.describe_stacks()["Stacks"]]
    assert aws.efs.describe_file_systems(FileSystemId=file_system)["FileSystems"]

    # What the idle stop leaves after a save that pushed everything: the
    # container's record on the service, then the group at 0.
    instance = outputs(aws, f"{APP}-{PREFIX}")
    idle_stop = AwsScaler(
        instance["ClusterName"], instance["ServiceName"], instance["AutoScalingGroupName"],
        _clients={"ecs": aws.ecs, "autoscaling": aws.autoscaling},
    )
    saved = Result("pushed", f"refs/heads/autosave/{PREFIX}/20261129T120000Z", "ab" * 20)

    def stopped_idle_after_a_save() -> None:
        idle_stop.publish({AUTOSAVE_TAG: tag_value(saved, datetime.now(timezone.utc))})
        idle_stop.scale_to_zero()

    # A start clears that record: the work on the volume can be newer from then on.
    stopped_idle_after_a_save()
    ok(playbooks.up(PREFIX))
    refused = playbooks.down(PREFIX, "-e", "purge_work=true")
    assert refused.returncode != 0 and "no autosave is recorded since the server last started" in refused.text

    stopped_idle_after_a_save()
    purged = ok(playbooks.down(PREFIX, "-e", "purge_work=true"))
    assert f"Your work volume {WORK_STACK} is deleted, with every file on it." in purged.text
    assert WORK_STACK not in [s["StackName"] for s in aws.cloudformation.describe_stacks()["Stacks"]]
    assert file_system not in [fs["FileSystemId"] for fs in aws.efs.describe_file_systems()["FileSystems"]]


def test_purge_work_must_be_a_boolean(first: PlaybookRun, playbooks: Playbooks) -> None:
    refused = playbooks.down(PREFIX, "-e", "purge_work=yes-please")
    assert refused.returncode != 0
    assert 'purge_work is "yes-please"' in refused.text
