"""The local ECS agent's volumes: a host path goes with the instance, an EFS volume is the person's file system.

Task definitions are registered in the emulator's ECS as ECS returns them
(DescribeTaskDefinition), against an EFS file system and access point
made through the emulator's EFS API; what is asserted is the local folder,
its files, and the environment the container gets.
"""

from __future__ import annotations

import json
import os
import pwd
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbstack_devkit.ecs_agent import (
    LocalAgent,
    TaskDefinitionError,
    discard_deleted_file_systems,
    plan_task,
    start_task,
)
from nbstack_devkit.emulator import Emulator

WORK = "/home/jovyan/work"
#: A key left out of the volume.
UNSET = "(unset)"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    server = Emulator().start()
    yield server
    server.stop()


@pytest.fixture
def efs(emulator: Emulator) -> Any:
    return emulator.client("efs")


def file_system(efs: Any, root: str = "/home") -> tuple[str, str]:
    """A file system and an access point on it, as the work stack makes them: (file system id, access point id)."""
    fs = efs.create_file_system(CreationToken=os.urandom(8).hex(), Encrypted=True)["FileSystemId"]
    access_point = efs.create_access_point(
        FileSystemId=fs,
        PosixUser={"Uid": 1000, "Gid": 100},
        RootDirectory={"Path": root, "CreationInfo": {"OwnerUid": 1000, "OwnerGid": 100, "Permissions": "0750"}},
    )["AccessPointId"]
    return fs, access_point


def efs_volume(fs: str, access_point: str, **changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "fileSystemId": fs,
        "rootDirectory": "/",
        "transitEncryption": "ENABLED",
        "authorizationConfig": {"accessPointId": access_point, "iam": "ENABLED"},
    }
    config.update(changes)
    return {"name": "work", "efsVolumeConfiguration": config}


def task_definition(emulator: Emulator, volume: dict[str, Any]) -> dict[str, Any]:
    """A notebook task definition with one volume mounted at the work directory, as ECS describes it."""
    ecs = emulator.client("ecs")
    arn = ecs.register_task_definition(
        family="notebook",
        volumes=[volume],
        containerDefinitions=[
            {
                "name": "notebook",
                "image": "notebook:latest",
                "memoryReservation": 512,
                "environment": [{"name": "NBSTACK_WORK_DIR", "value": WORK}, {"name": "OTHER", "value": "/opt/x"}],
                "mountPoints": [{"sourceVolume": "work", "containerPath": WORK}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    return dict(ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"])


def test_an_efs_volume_is_a_folder_of_its_file_system_at_the_access_points_root(emulator: Emulator, efs: Any, tmp_path: Path) -> None:
    fs, access_point = file_system(efs, "/home")
    plan = plan_task(task_definition(emulator, efs_volume(fs, access_point)), emulator.client("secretsmanager"), tmp_path, efs=efs)

    folder = tmp_path / "efs" / fs / "home"
    assert folder.is_dir()
    assert folder.stat().st_mode & 0o777 == 0o750  # the access point's CreationInfo
    assert plan.mounts == {WORK: folder}
    assert plan.environ["NBSTACK_WORK_DIR"] == str(folder)
    assert plan.environ["OTHER"] == "/opt/x"
    volume = plan.volumes[WORK]
    assert (volume.file_system_id, volume.access_point_id, volume.outlives_the_instance) == (fs, access_point, True)


def test_a_host_path_volume_is_on_the_instances_disk_as_before(emulator: Emulator, efs: Any, tmp_path: Path) -> None:
    volume = {"name": "work", "host": {"sourcePath": "/var/lib/nbstack/work"}}
    plan = plan_task(task_definition(emulator, volume), emulator.client("secretsmanager"), tmp_path, efs=efs)
    assert plan.mounts == {WORK: tmp_path / "volumes" / "work"}
    assert (tmp_path / "volumes" / "work").is_dir()
    assert not plan.volumes[WORK].outlives_the_instance


def test_the_next_task_finds_the_files_on_the_volume(emulator: Emulator, efs: Any, tmp_path: Path) -> None:
    fs, access_point = file_system(efs, "/people/alice")
    definition = task_definition(emulator, efs_volume(fs, access_point))
    first = plan_task(definition, emulator.client("secretsmanager"), tmp_path, efs=efs)
    (first.mounts[WORK] / "data").mkdir()
    (first.mounts[WORK] / "data" / "big.csv").write_text("a,b\n1,2\n")

    again = plan_task(definition, emulator.client("secretsmanager"), tmp_path, efs=efs)
    assert again.mounts[WORK] == tmp_path / "efs" / fs / "people" / "alice"
    assert (again.mounts[WORK] / "data" / "big.csv").read_text() == "a,b\n1,2\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="the volume is given to the notebook user only when the agent runs as root")
def test_the_volume_is_the_notebook_users(emulator: Emulator, efs: Any, tmp_path: Path) -> None:
    fs, access_point = file_system(efs)
    plan = plan_task(task_definition(emulator, efs_volume(fs, access_point)), emulator.client("secretsmanager"), tmp_path, efs=efs)
    # The container's start is not needed for the ownership: stop it at once.
    task = start_task(plan, tmp_path, {"PATH": "/usr/bin:/bin"})
    try:
        nobody = pwd.getpwnam("nobody")
        assert plan.mounts[WORK].stat().st_uid == nobody.pw_uid
        assert (task.task_dir / "home" / "work").resolve() == plan.mounts[WORK]
    finally:
        task.stop()


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"transitEncryption": "DISABLED"}, "transitEncryption is DISABLED"),
        ({"transitEncryption": UNSET}, "transitEncryption is DISABLED (unset)"),
        ({"authorizationConfig": {"accessPointId": "ACCESS_POINT", "iam": "DISABLED"}}, "authorizationConfig.iam is DISABLED"),
        ({"authorizationConfig": {"accessPointId": "ACCESS_POINT"}}, "authorizationConfig.iam is DISABLED (unset)"),
        ({"authorizationConfig": {"accessPointId": "fsap-0123456789abcdef0", "iam": "ENABLED"}}, "access point fsap-0123456789abcdef0 does not exist"),
        ({"rootDirectory": "/other"}, "rootDirectory is '/other'"),
    ],
)
def test_a_volume_ecs_would_not_mount_is_refused_with_the_reason(
    emulator: Emulator, efs: Any, tmp_path: Path, changes: dict[str, Any], words: str
) -> None:
    fs, access_point = file_system(efs)
    changes = json.loads(json.dumps(changes).replace("ACCESS_POINT", access_point))
    volume = efs_volume(fs, access_point, **changes)
    volume["efsVolumeConfiguration"] = {k: v for k, v in volume["efsVolumeConfiguration"].items() if v != UNSET}
    with pytest.raises(TaskDefinitionError, match=r"volume 'work'.*") as refused:
        plan_task(task_definition(emulator, volume), emulator.client("secretsmanager"), tmp_path, efs=efs)
    assert words in str(refused.value)
    assert not (tmp_path / "efs").exists()


def test_an_access_point_of_another_file_system_is_refused(emulator: Emulator, efs: Any, tmp_path: Path) -> None:
    fs, _ = file_system(efs)
    other_fs, other_access_point = file_system(efs)
    with pytest.raises(TaskDefinitionError, match=f"belongs to file system {other_fs}, not {fs}"):
        plan_task(task_definition(emulator, efs_volume(fs, other_access_point)), emulator.client("secretsmanager"), tmp_path, efs=efs)


def test_a_folder_goes_only_when_its_file_system_is_gone(emulator: Emulator, efs: Any, tmp_path: Path) -> None:
    kept_fs, kept_access_point = file_system(efs)
    purged_fs, purged_access_point = file_system(efs)
    secretsmanager = emulator.client("secretsmanager")
    kept = plan_task(task_definition(emulator, efs_volume(kept_fs, kept_access_point)), secretsmanager, tmp_path, efs=efs)
    purged = plan_task(task_definition(emulator, efs_volume(purged_fs, purged_access_point)), secretsmanager, tmp_path, efs=efs)
    for plan in (kept, purged):
        (plan.mounts[WORK] / "notes.txt").write_text("mine\n")

    assert discard_deleted_file_systems(efs, tmp_path) == []
    efs.delete_access_point(AccessPointId=purged_access_point)
    efs.delete_file_system(FileSystemId=purged_fs)
    # A folder a running task mounts is left alone, even then.
    assert discard_deleted_file_systems(efs, tmp_path, {purged.mounts[WORK]}) == []
    assert (purged.mounts[WORK] / "notes.txt").exists()

    assert discard_deleted_file_systems(efs, tmp_path) == [(purged_fs, tmp_path / "efs" / purged_fs)]
    assert not (tmp_path / "efs" / purged_fs).exists()
    assert (kept.mounts[WORK] / "notes.txt").read_text() == "mine\n"


def agent_without_service(emulator: Emulator, state_dir: Path, name: str) -> LocalAgent:
    """A local agent for a stack whose service wants no task (the idle stop's view, with no group to ask)."""
    cloudformation = emulator.client("cloudformation")
    template = {
        "Resources": {"Cluster": {"Type": "AWS::ECS::Cluster"}},
        "Outputs": {"ClusterName": {"Value": {"Ref": "Cluster"}}, "ServiceName": {"Value": "notebook"}},
    }
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    return LocalAgent(emulator, name, state_dir)


def test_the_instance_going_deletes_host_volumes_and_keeps_the_work_volume(emulator: Emulator, efs: Any, tmp_path: Path) -> None:
    fs, access_point = file_system(efs)
    secretsmanager = emulator.client("secretsmanager")
    work = plan_task(task_definition(emulator, efs_volume(fs, access_point)), secretsmanager, tmp_path, efs=efs).mounts[WORK]
    disk = plan_task(task_definition(emulator, {"name": "work", "host": {"sourcePath": "/x"}}), secretsmanager, tmp_path, efs=efs).mounts[WORK]
    (work / "big.csv").write_text("kept\n")
    (disk / "big.csv").write_text("lost\n")

    agent = agent_without_service(emulator, tmp_path, "instance-goes")
    agent.discard_instance_storage()  # what the idle stop and down.yml do to the instance's disk
    assert not disk.exists()
    assert (work / "big.csv").read_text() == "kept\n"

    # The agent's next look, once the file system is deleted (down.yml -e purge_work=true).
    assert agent.reconcile() is None
    assert (work / "big.csv").exists() and agent.discarded_file_systems == []
    efs.delete_access_point(AccessPointId=access_point)
    efs.delete_file_system(FileSystemId=fs)
    assert agent.reconcile() is None
    assert agent.discarded_file_systems == [(fs, tmp_path / "efs" / fs)]
    assert not (tmp_path / "efs" / fs).exists()
