"""Run an ECS service's notebook task on this machine, the way the ECS agent would.

`make demo` has no EC2 instance and no Docker: the emulated ECS API holds the
service and the task definition that `up.yml` registered, but nothing runs
them. This module plays the ECS agent's part for that one task:

1. it reads the service (cluster and name from the instance stack's outputs),
   takes the task definition revision the service runs, and describes it;
2. it builds the container's environment as the agent does: the task
   definition's `environment`, plus every `secrets[]` entry resolved from
   Secrets Manager by the ARN in `valueFrom` (what the task execution role
   would do);
3. it starts the container's init and startup (`tini -s -g -- bash
   start.sh` with the image's before-notebook.d hook, see start.py: the secrets
   unset, `exec jupyter-lab`) in a session of its own, like a container
   (see container.py). As root, as the task definition's `user` 0 starts
   the image: the hook runs as root and Jupyter as the notebook user
   (`nobody` standing in for jovyan), which owns the task's HOME and volumes;
   not root, everything runs as the current user and the secrets stay
   readable in the init's environment;
4. when the service is gone or scaled to zero (`down.yml`), or the auto
   scaling group the task's instance belongs to is (the idle stop), it delivers
   SIGTERM to tini, which passes it to the start's process group (`tini -g`
   on `docker stop`), waits up to the container's `stopTimeout`, then
   SIGKILLs what is left, as ECS does;
5. when the instance is gone with its task (the idle stop sets the group
   to 0, `down.yml` deletes the stack), its disk goes too: the host path
   volumes' directories are deleted, as the instance's root volume is on
   AWS. An EFS volume (nbstack's work volume) is not on the instance: its
   folder stays through the idle stop, `down.yml` and a replaced task, and
   the next task mounts the same files, as the person's file system keeps
   them on AWS; the folder goes only once its file system no longer exists
   (`down.yml -e purge_work=true` deletes the person's work stack). When the
   service wants a task again (`up.yml`), it starts one; when the service's
   task definition changes (`up.yml` with a changed setting registers a new
   revision), it replaces the running task: SIGTERM first (the autosave),
   then a task of the new revision, as an ECS deployment does (`reconcile`);
6. while its task serves, it registers the group's instance with the
   container's port in the service's target group and reports one running
   task, as ECS does for a service behind a load balancer; it deregisters
   the target when the task stops (see "task state" below).

Every value comes from the task definition. What this machine cannot
reproduce is made explicit, in one place each:

- **volumes**: there is no mount namespace, so `/home/jovyan/work` cannot be
  made to exist. Each task definition volume gets a local directory,
  created when missing and owned by the notebook user (as root): a host
  path volume `<state>/volumes/<volume name>` (standing in for its
  `host.sourcePath` on the instance's disk); an EFS volume
  `<state>/efs/<fileSystemId>/<the access point's root directory>`
  (standing in for the person's file system; `<state>/efs/<fileSystemId>`
  is the whole file system). An EFS volume is refused, with the reason, as
  ECS would fail the task: an access point that does not exist or belongs
  to another file system, transit encryption or IAM authorization not
  ENABLED, a rootDirectory other than "/" with an access point. The access
  point's POSIX user (jovyan, 1000:100) is played by the notebook user.
  Every environment value that is a mount point's `containerPath`, or a
  path below it, is rewritten to that directory. That is how
  NBSTACK_WORK_DIR ends up local; nothing else is changed.
- **ports**: there is no network namespace either, so the container binds the
  host's ports directly. That is only the same thing as the task definition's
  `bridge` mapping when every `hostPort` equals its `containerPort` (static
  ports, as nbstack's template writes them); anything else is refused.
- **what the image provides**: HOME (a fresh directory per task: the
  container's own disk, standing in for /home/jovyan; a mount point below
  /home/jovyan appears there as a symlink, so `~/work` is the work volume as
  in the container), PATH (this virtualenv first, standing in for the
  image's conda; nbstack_runtime is installed in it from files/image, as the
  image installs it), and the image's `JUPYTER_ENV_VARS_TO_UNSET` (start's
  default mirrors the Dockerfile).
- **task state**: ECS counts the running tasks its agents report
  (`runningCount`); the emulator runs no task and counts none, so the agent
  reports its own to the emulator's ECS backend (`Emulator.report_running`),
  in this process. The task itself is recorded too (StartTask on the
  container instance, startedBy the service; StopTask once its container
  has exited), so ListTasks and DescribeTasks say what ECS would: the
  capacity module waits for that task's STOPPED before down.yml deletes
  the stack. The emulator's ListTasks ignores serviceName (every task of
  the cluster is listed): one person per demo. The target's health is the emulator's: a registered
  target of a running instance is healthy; the agent registers it only once
  the task's health port answers 200, as the load balancer's health check
  would pass only then.
- **task role credentials**: ECS hands the container credentials through the
  agent's credential endpoint; here the container gets this process's
  AWS_ENDPOINT_URL and (dummy) keys instead, so the model helper reaches the
  same emulated S3 bucket.
- **container instances**: on AWS each instance's ECS agent registers it in
  the cluster its user data names (ECS_CLUSTER), with the attributes of
  ECS_INSTANCE_ATTRIBUTES; the emulator's instances run no agent.
  `InstanceAgents` (started with every in-process `Emulator`, see
  emulator.py) plays that part for every auto scaling group: when a group's
  desired capacity is 1 or more, it registers the group's instance
  (RegisterContainerInstance, then the attributes with PutAttributes, as
  the emulator's RegisterContainerInstance drops them) in the cluster and
  with the attributes read from the launch template's user data; when the
  group goes to 0 or is deleted with its stack, it deregisters it. The
  local agent runs a task only when such an instance matches the task
  definition's memberOf constraints, as ECS places it only there.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from .container import notebook_user, start_container, stop_process_group
from .paths import BIN
from .start import IMAGE_CMD
from .waits import wait_until

if TYPE_CHECKING:
    from .emulator import Emulator

#: ECS's default when a container definition sets no stopTimeout.
ECS_DEFAULT_STOP_TIMEOUT = 30
#: HOME of the image's user (docker-stacks' jovyan); also its WORKDIR.
IMAGE_HOME = "/home/jovyan"
#: The variables the ECS agent passes for the task role's credentials; here
#: they point at the emulator (see the module docstring).
CREDENTIAL_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")

log = logging.getLogger("nbstack.ecs_agent")


class TaskDefinitionError(RuntimeError):
    """The task definition asks for something this machine cannot do faithfully."""


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}


def describe_service(ecs: Any, cluster: str, service: str) -> dict[str, Any] | None:
    """The service, or None once it is deleted (ECS keeps it a while as INACTIVE)."""
    found = ecs.describe_services(cluster=cluster, services=[service]).get("services", [])
    if not found or found[0].get("status") == "INACTIVE":
        return None
    return found[0]


def container_definition(task_definition: Mapping[str, Any], name: str | None = None) -> dict[str, Any]:
    """The named container, or the only essential one."""
    containers = task_definition["containerDefinitions"]
    matching = (
        [c for c in containers if c["name"] == name]
        if name is not None
        else [c for c in containers if c.get("essential", True)]
    )
    if len(matching) != 1:
        raise TaskDefinitionError(
            f"expected one container{f' named {name}' if name else ''} in {task_definition['taskDefinitionArn']}, "
            f"found {[c['name'] for c in containers]}"
        )
    return matching[0]


def resolve_secret(secretsmanager: Any, value_from: str) -> str:
    """What the ECS agent puts into the variable for one `valueFrom`.

    ECS accepts `<secret arn>` and `<secret arn>:<json-key>:<version-stage>:<version-id>`;
    a secret ARN itself has 7 colon-separated fields.
    """
    parts = value_from.split(":")
    arn, extra = ":".join(parts[:7]), parts[7:] + ["", "", ""]
    json_key, stage, version = extra[:3]
    request: dict[str, str] = {"SecretId": arn}
    if stage:
        request["VersionStage"] = stage
    if version:
        request["VersionId"] = version
    value = secretsmanager.get_secret_value(**request)["SecretString"]
    if json_key:
        return str(json.loads(value)[json_key])
    return value


@dataclass(frozen=True)
class LocalVolume:
    """The local directory standing in for one task definition volume."""

    name: str
    path: Path
    #: The EFS file system the directory is a folder of; None for a host path on the instance's disk.
    file_system_id: str | None = None
    access_point_id: str | None = None

    @property
    def outlives_the_instance(self) -> bool:
        """An EFS volume is the person's file system: kept when the instance goes, as on AWS."""
        return self.file_system_id is not None


def efs_root(state_dir: Path, file_system_id: str) -> Path:
    """The local folder standing in for a whole EFS file system."""
    return state_dir / "efs" / file_system_id


def efs_directory(name: str, config: Mapping[str, Any], efs: Any, state_dir: Path) -> LocalVolume:
    """The folder standing in for an EFS volume mounted through an access point, or a refusal saying why ECS would fail.

    ECS requires transit encryption with an access point or with IAM
    authorization, and a `rootDirectory` of "/" (or none) with an access
    point, whose own root directory is the one mounted. nbstack's template
    mounts the work volume with all three (its file system policy refuses
    any other client); the demo runs only that.
    """
    file_system_id = str(config.get("fileSystemId") or "")
    authorization = config.get("authorizationConfig") or {}
    access_point_id = str(authorization.get("accessPointId") or "")
    where = f"volume {name!r} (efsVolumeConfiguration of file system {file_system_id or '?'})"
    if not file_system_id:
        raise TaskDefinitionError(f"{where}: no fileSystemId")
    if config.get("transitEncryption") != "ENABLED":
        raise TaskDefinitionError(
            f"{where}: transitEncryption is {config.get('transitEncryption', 'DISABLED (unset)')}; ECS mounts an access "
            "point or an IAM-authorized volume only with transitEncryption ENABLED, and the work file system's policy "
            "refuses clients without TLS"
        )
    if authorization.get("iam") != "ENABLED":
        raise TaskDefinitionError(
            f"{where}: authorizationConfig.iam is {authorization.get('iam', 'DISABLED (unset)')}; the work volume is "
            "mounted with the task role's IAM authorization (set iam: ENABLED), which the work file system's policy requires"
        )
    if not access_point_id:
        raise TaskDefinitionError(f"{where}: no authorizationConfig.accessPointId; the work volume is mounted through the person's access point")
    if str(config.get("rootDirectory") or "/") != "/":
        raise TaskDefinitionError(
            f"{where}: rootDirectory is {config['rootDirectory']!r}; with an access point ECS requires \"/\" (or none): "
            "the access point's own root directory is mounted"
        )
    try:
        found = efs.describe_access_points(AccessPointId=access_point_id)["AccessPoints"]
    except efs.exceptions.AccessPointNotFound:
        found = []
    if not found:
        raise TaskDefinitionError(f"{where}: access point {access_point_id} does not exist; ECS would fail the task when it mounts the volume")
    access_point = found[0]
    if access_point.get("FileSystemId") != file_system_id:
        raise TaskDefinitionError(
            f"{where}: access point {access_point_id} belongs to file system {access_point.get('FileSystemId')}, "
            f"not {file_system_id}; ECS would fail the task when it mounts the volume"
        )
    root = PurePosixPath((access_point.get("RootDirectory") or {}).get("Path") or "/")
    if not root.is_absolute() or ".." in root.parts:
        raise TaskDefinitionError(f"{where}: access point {access_point_id} has root directory {str(root)!r}, not an absolute path")
    directory = efs_root(state_dir, file_system_id).joinpath(*root.parts[1:])
    if not directory.exists():
        # EFS makes a missing root directory on the first mount, with the access point's CreationInfo mode.
        directory.mkdir(parents=True)
        permissions = ((access_point.get("RootDirectory") or {}).get("CreationInfo") or {}).get("Permissions")
        if permissions:
            directory.chmod(int(str(permissions), 8))
    return LocalVolume(name, directory, file_system_id, access_point_id)


def volume_directories(task_definition: Mapping[str, Any], state_dir: Path, efs: Any = None) -> dict[str, LocalVolume]:
    """A local directory for each volume of the task definition, created when missing.

    A host path (or Docker) volume: `<state>/volumes/<volume name>`, on the
    instance's disk, deleted with the instance (`LocalAgent.discard_instance_storage`).
    An EFS volume: `<state>/efs/<fileSystemId>/<access point root path>`
    (`efs`, a boto3 EFS client, reads the access point), kept until the
    file system itself is gone (`discard_deleted_file_systems`).
    """
    directories = {}
    for volume in task_definition.get("volumes", []):
        if "efsVolumeConfiguration" in volume:
            if efs is None:
                raise TaskDefinitionError(f"volume {volume['name']!r} is an EFS volume: an EFS client is needed to read its access point")
            directories[volume["name"]] = efs_directory(volume["name"], volume["efsVolumeConfiguration"], efs, state_dir)
            continue
        directory = state_dir / "volumes" / volume["name"]
        directory.mkdir(parents=True, exist_ok=True)
        directories[volume["name"]] = LocalVolume(volume["name"], directory)
    return directories


def discard_deleted_file_systems(efs: Any, state_dir: Path, in_use: frozenset[Path] | set[Path] = frozenset()) -> list[tuple[str, Path]]:
    """Delete the folder of each EFS file system the emulator no longer has (`down.yml -e purge_work=true`).

    What went: (file system id, folder). A folder a running task mounts is
    left alone; other answers than FileSystemNotFound (the emulator busy,
    IAM) leave the folder too, for the next look.
    """
    root = state_dir / "efs"
    if not root.is_dir():
        return []
    gone = []
    for folder in sorted(root.iterdir()):
        if not folder.is_dir() or any(path == folder or folder in path.parents for path in in_use):
            continue
        try:
            efs.describe_file_systems(FileSystemId=folder.name)
        except efs.exceptions.FileSystemNotFound:
            shutil.rmtree(folder)
            gone.append((folder.name, folder))
            log.info("file system %s is gone: its folder %s deleted", folder.name, folder)
        except Exception as error:  # noqa: BLE001 - looked at again next time
            log.debug("file system %s: %s", folder.name, error)
    return gone


def remap_mounted_paths(environ: Mapping[str, str], mounts: Mapping[str, Path]) -> dict[str, str]:
    """Rewrite values that are a mount point's container path (or below it) to the local directory."""
    env = dict(environ)
    # Longest container path first, so nested mount points win.
    ordered = sorted(mounts.items(), key=lambda item: len(item[0]), reverse=True)
    for name, value in environ.items():
        for container_path, local in ordered:
            prefix = container_path.rstrip("/")
            if value == prefix or value.startswith(prefix + "/"):
                env[name] = str(local) + value[len(prefix):]
                break
    return env


def check_ports(container: Mapping[str, Any]) -> list[int]:
    """The ports the container binds on this machine; refuses mappings that would need a namespace."""
    ports = []
    for mapping in container.get("portMappings", []):
        host, inside = mapping.get("hostPort"), mapping["containerPort"]
        if host not in (None, inside):
            raise TaskDefinitionError(
                f"portMapping {inside}->{host}: without a network namespace the container binds host ports "
                "directly, so only static mappings (hostPort == containerPort) can run locally"
            )
        ports.append(int(inside))
    return ports


@dataclass
class TaskPlan:
    """Everything needed to start the container, derived from one task definition."""

    task_definition_arn: str
    container_name: str
    environ: dict[str, str] = field(repr=False)
    secret_names: list[str]
    mounts: dict[str, Path]
    ports: list[int]
    stop_timeout: int
    #: The volume behind each mount point, by container path.
    volumes: dict[str, LocalVolume] = field(default_factory=dict)


def plan_task(
    task_definition: Mapping[str, Any],
    secretsmanager: Any,
    state_dir: Path,
    container_name: str | None = None,
    efs: Any = None,
) -> TaskPlan:
    """The container's environment exactly as ECS builds it, plus the documented local stand-ins.

    `efs` (a boto3 EFS client) is needed when the task definition has an EFS volume.
    """
    container = container_definition(task_definition, container_name)
    volumes = volume_directories(task_definition, state_dir, efs)
    mounted: dict[str, LocalVolume] = {}
    for mount in container.get("mountPoints", []):
        if mount["sourceVolume"] not in volumes:
            raise TaskDefinitionError(f"mount point uses unknown volume {mount['sourceVolume']!r}")
        mounted[mount["containerPath"]] = volumes[mount["sourceVolume"]]
    mounts = {path: volume.path for path, volume in mounted.items()}

    task_env = {item["name"]: item["value"] for item in container.get("environment", [])}
    secrets = {item["name"]: resolve_secret(secretsmanager, item["valueFrom"]) for item in container.get("secrets", [])}
    overlap = set(task_env) & set(secrets)
    if overlap:
        raise TaskDefinitionError(f"set both as environment and as secret: {sorted(overlap)}")
    task_env = remap_mounted_paths(task_env, mounts)

    return TaskPlan(
        task_definition_arn=task_definition["taskDefinitionArn"],
        container_name=container["name"],
        environ={**task_env, **secrets},
        secret_names=sorted(secrets),
        mounts=mounts,
        ports=check_ports(container),
        stop_timeout=int(container.get("stopTimeout") or ECS_DEFAULT_STOP_TIMEOUT),
        volumes=mounted,
    )


def image_environ(home: Path, outer: Mapping[str, str]) -> dict[str, str]:
    """What the image itself provides (see the module docstring)."""
    env = {
        "HOME": str(home),
        "PATH": os.pathsep.join([str(BIN), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]),
        "SHELL": "/bin/bash",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    env.update({name: outer[name] for name in CREDENTIAL_VARIABLES if outer.get(name)})
    if outer.get("PYTHONPATH"):  # a checkout's own packages over the virtualenv's, as the tests import them
        env["PYTHONPATH"] = outer["PYTHONPATH"]
    return env


@dataclass
class LocalTask:
    """One running task: the container's startup in its own process group."""

    plan: TaskPlan
    task_dir: Path
    process: subprocess.Popen[bytes]
    task_id: str

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.task_dir / "container.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int:
        """`docker stop` with the container's stopTimeout."""
        if self.running():
            log.info("Stopping task %s: SIGTERM, up to %s s", self.task_id, self.plan.stop_timeout)
        return stop_process_group(self.process, self.plan.stop_timeout)


def start_task(plan: TaskPlan, state_dir: Path, outer: Mapping[str, str] | None = None) -> LocalTask:
    """Start the container's startup with the planned environment; returns at once."""
    task_id = uuid.uuid4().hex[:12]
    task_dir = state_dir / "tasks" / task_id
    home = task_dir / "home"
    home.mkdir(parents=True)
    for container_path, local in plan.mounts.items():
        if container_path.startswith(IMAGE_HOME + "/"):
            link = home / container_path[len(IMAGE_HOME) + 1 :]
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(local, target_is_directory=True)
    env = image_environ(home, os.environ if outer is None else outer)
    env.update(plan.environ)
    user = notebook_user(env)
    if user is not None:
        # The volumes are the notebook user's, as the host's directory (made for it) and
        # the access point (every operation as its POSIX user) make them on AWS.
        for local in plan.mounts.values():
            if local.stat().st_uid != user.pw_uid:
                os.chown(local, user.pw_uid, user.pw_gid)
    # The image's WORKDIR is HOME; terminals open there.
    # The image's CMD, listening on this machine only (on AWS, the instance's address).
    process = start_container(env, task_dir / "container.log", cwd=home, command=[*IMAGE_CMD, "--ServerApp.ip=127.0.0.1"])
    (task_dir / "pid").write_text(f"{process.pid}\n")
    return LocalTask(plan, task_dir, process, task_id)


class LocalAgent:
    """Plays the ECS agent (and the service scheduler) for one service: run the task it wants, as it wants it."""

    def __init__(self, emulator: Emulator, stack_name: str, state_dir: Path) -> None:
        self.emulator = emulator
        self.ecs = emulator.client("ecs")
        self.secretsmanager = emulator.client("secretsmanager")
        self.cloudformation = emulator.client("cloudformation")
        self.autoscaling = emulator.client("autoscaling")
        self.elbv2 = emulator.client("elbv2")
        self.efs = emulator.client("efs")
        self.stack_name = stack_name
        self.outputs = stack_outputs(self.cloudformation, stack_name)
        self.state_dir = state_dir
        self.task: LocalTask | None = None
        #: Whether the agent itself stopped `task` (the service stopped wanting it), not a crash.
        self.stopped_by_agent = False
        #: The target this agent registered: (target group ARN, instance id, port).
        self.registered: tuple[str, str, int] | None = None
        #: The emulator's record of the running task (StartTask), until its container has exited.
        self.ecs_task_arn: str | None = None
        #: The EFS folders the last look deleted, their file system gone: (file system id, folder).
        self.discarded_file_systems: list[tuple[str, Path]] = []
        self._outer: Mapping[str, str] | None = None

    @property
    def cluster(self) -> str:
        return self.outputs["ClusterName"]

    @property
    def service(self) -> str:
        return self.outputs["ServiceName"]

    @property
    def group(self) -> str:
        return self.outputs.get("AutoScalingGroupName", "")

    def wanted_task_definition(self) -> dict[str, Any] | None:
        """The task definition the service runs, or None when it wants no task.

        A stack being deleted counts as the service being deleted: real ECS
        stops the task while CloudFormation deletes the service, and the
        emulator leaves the service ACTIVE after its stack is gone. The
        stack's outputs are read again each time: `down.yml` then `up.yml`
        makes a new stack.
        """
        if not self.stack_exists():
            return None
        self.outputs = stack_outputs(self.cloudformation, self.stack_name)
        service = describe_service(self.ecs, self.cluster, self.service)
        if service is None or service.get("desiredCount", 0) < 1 or service.get("status") == "DRAINING":
            return None
        # The idle stop sets only the group to 0: the task ends with its instance.
        if self.group and self.group_capacity() < 1:
            return None
        task_definition = self.ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
        # ECS places the task only on a registered instance its memberOf constraints allow.
        if not matching_instances(self.ecs, self.cluster, member_of(task_definition)):
            return None
        return dict(task_definition)

    def instance_gone(self) -> bool:
        """Whether the task's instance is gone: its stack deleted, or its group at 0 (the idle stop)."""
        return not self.stack_exists() or bool(self.group) and self.group_capacity() < 1

    def discard_instance_storage(self) -> None:
        """Delete the host path volumes' directories, as a terminated instance's root volume goes (DeleteOnTermination).

        EFS volumes are not on the instance: their folders stay (see
        `discard_deleted_file_systems`).
        """
        if (self.state_dir / "volumes").exists():
            shutil.rmtree(self.state_dir / "volumes", ignore_errors=True)
            log.info("instance gone: its host volumes (%s) deleted, as its root volume is on AWS", self.state_dir / "volumes")

    def group_capacity(self) -> int:
        groups = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.group])["AutoScalingGroups"]
        return min((int(g.get("DesiredCapacity", 0)) for g in groups), default=0)

    def stack_exists(self) -> bool:
        try:
            stacks = self.cloudformation.describe_stacks(StackName=self.stack_name)["Stacks"]
        except self.cloudformation.exceptions.ClientError as error:
            if "does not exist" in str(error):
                return False
            raise
        return bool(stacks) and not stacks[0]["StackStatus"].startswith("DELETE_")

    def start(self, outer: Mapping[str, str] | None = None) -> LocalTask:
        task_definition = self.wanted_task_definition()
        if task_definition is None:
            raise RuntimeError(f"service {self.service} in {self.cluster} wants no task")
        if outer is not None:
            self._outer = outer
        plan = plan_task(task_definition, self.secretsmanager, self.state_dir, efs=self.efs)
        self.task = start_task(plan, self.state_dir, self._outer)
        self.stopped_by_agent = False
        self._record_started(task_definition)
        log.info("Started task %s of %s (pid %s)", self.task.task_id, plan.task_definition_arn, self.task.pid)
        return self.task

    def stop_task(self) -> int | None:
        """Stop the current task as ECS does (deregister its target, then `docker stop`)."""
        if self.task is None:
            return None
        self.deregister()
        self.stopped_by_agent = True
        code = self.task.stop()
        self._record_stopped("Task stopped by the agent: the service wants no task")
        return code

    def _record_started(self, task_definition: Mapping[str, Any]) -> None:
        """Record the task in the emulator's ECS, on the instance it runs on, as ECS lists a service's task."""
        instances = matching_instances(self.ecs, self.cluster, member_of(task_definition))
        try:
            found = self.ecs.start_task(
                cluster=self.cluster,
                taskDefinition=task_definition["taskDefinitionArn"],
                containerInstances=instances[:1],
                startedBy=self.service,
            )["tasks"]
        except Exception as error:  # noqa: BLE001 - the demo runs without the record; said in the log
            log.warning("the emulator did not record the task (%s): down.yml will not wait for it", error)
            return
        self.ecs_task_arn = found[0]["taskArn"] if found else None

    def _record_stopped(self, reason: str) -> None:
        """Mark the task STOPPED in the emulator's ECS once its container has exited."""
        if self.ecs_task_arn is None:
            return
        arn, self.ecs_task_arn = self.ecs_task_arn, None
        with contextlib.suppress(Exception):  # the cluster may be gone with its stack
            self.ecs.stop_task(cluster=self.cluster, task=arn, reason=reason)

    def reconcile(self) -> str | None:
        """One look at the service, as the agent's loop; what it did: "stopped", "replaced", "started" or None.

        - the service wants no task (gone, scaled to zero, its group at zero)
          and one runs: "stopped";
        - it wants another task definition than the running task's (a new
          revision): the running task stopped first (SIGTERM, autosave),
          then one of the new revision started: "replaced";
        - it wants a task and the agent had stopped its last one: "started".

        A task that exited by itself is left as it is (the caller reports it).
        Each look also deletes the folder of an EFS file system that no
        longer exists (`discarded_file_systems` says which), unless the
        running task mounts it.
        """
        in_use = {path for path in self.task.plan.mounts.values()} if self.task is not None and self.task.running() else set()
        self.discarded_file_systems = discard_deleted_file_systems(self.efs, self.state_dir, in_use)
        wanted = self.wanted_task_definition()
        task = self.task
        if task is not None and task.running():
            if wanted is None:
                self.stop_task()
                if self.instance_gone():
                    self.discard_instance_storage()
                return "stopped"
            if wanted["taskDefinitionArn"] != task.plan.task_definition_arn:
                self.stop_task()
                self.start()
                return "replaced"
            return None
        if wanted is not None and (task is None or self.stopped_by_agent):
            self.start()
            return "started"
        return None

    def serving(self) -> bool:
        """Whether the task's health check passes: the target group's health port and path answer 200."""
        if self.task is None or not self.task.running():
            return False
        group = self._target_group()
        if group is None:
            return False
        url = f"http://127.0.0.1:{group['HealthCheckPort']}{group.get('HealthCheckPath', '/')}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return int(response.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    def _load_balancer(self) -> dict[str, Any] | None:
        """The service's `loadBalancers` entry: its target group and container port.

        The emulator keeps no `loadBalancers` on a service CloudFormation
        made; the stack's TargetGroupArn output names the same group, whose
        port is the container's (the template gives both the notebook port).
        """
        service = describe_service(self.ecs, self.cluster, self.service) or {}
        if service.get("loadBalancers"):
            return dict(service["loadBalancers"][0])
        arn = self.outputs.get("TargetGroupArn")
        if not arn:
            return None
        groups = self.elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"]
        return {"targetGroupArn": arn, "containerPort": groups[0]["Port"]} if groups else None

    def _target_group(self) -> dict[str, Any] | None:
        balancer = self._load_balancer()
        if balancer is None:
            return None
        groups = self.elbv2.describe_target_groups(TargetGroupArns=[balancer["targetGroupArn"]])["TargetGroups"]
        return groups[0] if groups else None

    def report(self) -> None:
        """Tell the emulator what runs, as ECS knows it: the target registered and one task running, or neither.

        The target is the group's instance with the container's port (the
        service's `loadBalancers` entry), as ECS registers a task of a
        bridge-mode service; registered once the health check passes.
        """
        if self.task is not None and self.task.running():
            if self.registered is None and self.stack_exists() and self.serving():
                balancer = self._load_balancer()
                groups = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.group])
                instances = [i["InstanceId"] for g in groups["AutoScalingGroups"] for i in g.get("Instances", [])]
                if balancer is not None and instances:
                    target = (balancer["targetGroupArn"], instances[0], int(balancer["containerPort"]))
                    self.elbv2.register_targets(TargetGroupArn=target[0], Targets=[{"Id": target[1], "Port": target[2]}])
                    self.registered = target
                self.emulator.report_running(self.cluster, self.service, 1)
        else:
            self.deregister()
            if self.task is not None and not self.task.running():
                self._record_stopped("Essential container in task exited")

    def deregister(self) -> None:
        """The task's target out of the target group and no task running, as ECS does when a task stops."""
        if self.registered is not None:
            arn, instance, port = self.registered
            self.registered = None
            with contextlib.suppress(self.elbv2.exceptions.ClientError):  # the stack (and group) may be gone
                self.elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": instance, "Port": port}])
            with contextlib.suppress(KeyError, LookupError):
                self.emulator.report_running(self.cluster, self.service, 0)

    def wait_until_unwanted(self, timeout: float = 30.0) -> bool:
        """Whether the service stops wanting its task within `timeout` seconds (down.yml has just run)."""
        try:
            wait_until(lambda: self.wanted_task_definition() is None, timeout, "the service to want no task", interval=0.5)
        except TimeoutError:
            return False
        return True


#: ecs.config lines in a launch template's user data: NAME=value.
_ECS_CONFIG_LINE = re.compile(r"^\s*(ECS_[A-Z_]+)=(.*)$", re.MULTILINE)
#: A memberOf expression on one attribute: attribute:<name> == <value>.
_MEMBER_OF = re.compile(r"^\s*attribute:([A-Za-z0-9_./-]+)\s*==\s*(\S+)\s*$")


def agent_config(user_data: str) -> dict[str, str]:
    """The ECS agent's settings a user data script writes to /etc/ecs/ecs.config (the last value of each wins)."""
    return {name: value.strip() for name, value in _ECS_CONFIG_LINE.findall(user_data)}


def instance_attributes(config: Mapping[str, str]) -> dict[str, str]:
    """The custom attributes the agent registers (ECS_INSTANCE_ATTRIBUTES, a JSON object)."""
    raw = config.get("ECS_INSTANCE_ATTRIBUTES")
    return {str(k): str(v) for k, v in json.loads(raw).items()} if raw else {}


def member_of(task_definition: Mapping[str, Any]) -> dict[str, str]:
    """The attributes the task definition's memberOf constraints require (the one-attribute form nbstack writes)."""
    required = {}
    for constraint in task_definition.get("placementConstraints", []):
        if constraint.get("type") != "memberOf":
            continue
        found = _MEMBER_OF.match(constraint.get("expression", ""))
        if found is None:
            raise TaskDefinitionError(f"memberOf expression not understood here: {constraint.get('expression')!r}")
        required[found.group(1)] = found.group(2)
    return required


def matching_instances(ecs: Any, cluster: str, required: Mapping[str, str]) -> list[str]:
    """ARNs of the ACTIVE container instances of the cluster that carry every required attribute."""
    arns = ecs.list_container_instances(cluster=cluster, status="ACTIVE").get("containerInstanceArns", [])
    if not arns:
        return []
    found = ecs.describe_container_instances(cluster=cluster, containerInstances=arns)["containerInstances"]
    return [
        instance["containerInstanceArn"]
        for instance in found
        if instance.get("status") == "ACTIVE"
        and all(
            {"name": k, "value": v} in [{"name": a.get("name"), "value": a.get("value")} for a in instance.get("attributes", [])] for k, v in required.items()
        )
    ]


class InstanceAgents:
    """The ECS agents of the emulator's instances: each group's instance registered while the group wants one.

    One thread per emulator, looking every `interval` seconds at every auto
    scaling group (see the module docstring, "container instances"). What it
    registered it deregisters when the group no longer wants the instance
    (desired capacity 0, group deleted), as the instance's termination does
    on AWS. Errors (IAM enforced on the emulator, a cluster deleted under
    it) are logged and tried again at the next look.

    An instance registers `boot_seconds` after its group first wants it, as
    an instance boots and starts its agent first on AWS (a minute or more):
    up.yml's order between the group and the service has a window to show
    in, whatever the load on the machine.
    """

    def __init__(self, emulator: Emulator, interval: float = 0.5, boot_seconds: float = 2.0) -> None:
        self.emulator = emulator
        self.interval = interval
        self.boot_seconds = boot_seconds
        #: EC2 instance id -> when a look first found its group wanting it (time.monotonic()).
        self._booting: dict[str, float] = {}
        self.ecs = emulator.client("ecs")
        self.ec2 = emulator.client("ec2")
        self.autoscaling = emulator.client("autoscaling")
        #: EC2 instance id -> (cluster, container instance ARN), for what this registered.
        self.registered: dict[str, tuple[str, str]] = {}
        self._user_data: dict[tuple[str, str], str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> InstanceAgents:
        self._thread = threading.Thread(target=self._run, name="nbstack-instance-agents", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.look()
            except Exception as error:  # noqa: BLE001 - a look that fails is tried again; the emulator may be resetting
                log.debug("instance agents: %s", error)

    def look(self) -> None:
        """Register the instance of each group that wants one; deregister the others this registered."""
        wanted: dict[str, tuple[str, dict[str, str]]] = {}
        paginator = self.autoscaling.get_paginator("describe_auto_scaling_groups")
        for page in paginator.paginate():
            for group in page["AutoScalingGroups"]:
                if int(group.get("DesiredCapacity", 0)) < 1 or not group.get("LaunchTemplate"):
                    continue
                config = agent_config(self._launch_user_data(group["LaunchTemplate"]))
                if not config.get("ECS_CLUSTER"):
                    continue
                for instance in group.get("Instances", [])[: int(group["DesiredCapacity"])]:
                    wanted[instance["InstanceId"]] = (config["ECS_CLUSTER"], instance_attributes(config))
        for instance_id, (cluster, arn) in list(self.registered.items()):
            if instance_id not in wanted:
                with contextlib.suppress(Exception):  # the cluster may be gone with its stack
                    self.ecs.deregister_container_instance(cluster=cluster, containerInstance=arn, force=True)
                del self.registered[instance_id]
                log.info("instance agents: deregistered %s (%s)", instance_id, arn)
        now = time.monotonic()
        self._booting = {i: self._booting.get(i, now) for i in wanted if i not in self.registered}
        for instance_id, (cluster, attributes) in wanted.items():
            if instance_id in self.registered or now - self._booting[instance_id] < self.boot_seconds:
                continue
            del self._booting[instance_id]
            document = json.dumps({"instanceId": instance_id, "region": self.emulator.environ({})["AWS_REGION"]})
            arn = self.ecs.register_container_instance(cluster=cluster, instanceIdentityDocument=document)["containerInstance"]["containerInstanceArn"]
            if attributes:
                self.ecs.put_attributes(
                    cluster=cluster,
                    attributes=[{"name": k, "value": v, "targetId": arn} for k, v in attributes.items()],
                )
            self.registered[instance_id] = (cluster, arn)
            log.info("instance agents: registered %s in %s as %s with %s", instance_id, cluster, arn, attributes)

    def _launch_user_data(self, spec: Mapping[str, str]) -> str:
        template, version = spec.get("LaunchTemplateId") or spec.get("LaunchTemplateName", ""), str(spec.get("Version", "$Default"))
        key = (template, version)
        if key not in self._user_data or version.startswith("$"):
            selector = {"LaunchTemplateId": template} if spec.get("LaunchTemplateId") else {"LaunchTemplateName": template}
            versions = self.ec2.describe_launch_template_versions(**selector, Versions=[version])["LaunchTemplateVersions"]
            encoded = versions[0]["LaunchTemplateData"].get("UserData", "") if versions else ""
            self._user_data[key] = base64.b64decode(encoded).decode(errors="replace") if encoded else ""
        return self._user_data[key]


def main(argv: list[str] | None = None) -> None:
    """`python -m nbstack_devkit.ecs_agent PORT`: the instances' ECS agents for an emulator run elsewhere (molecule's).

    Runs until SIGTERM or SIGINT.
    """
    import signal
    import sys

    from .emulator import Emulator

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        raise SystemExit("usage: python -m nbstack_devkit.ecs_agent PORT (the emulator's port on 127.0.0.1)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    agents = InstanceAgents(Emulator(port=int(args[0]))).start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    agents.stop()


if __name__ == "__main__":
    main()
