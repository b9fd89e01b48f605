"""The local AWS emulator (moto in server mode) that the tests, the benches and the demo talk to.

Playbooks reach it the way they would reach AWS: boto3 reads AWS_ENDPOINT_URL
and the dummy credentials from the environment (`Emulator.environ`). Nothing
in the playbooks knows it is there. Code in this process asks the emulator
for its boto3 clients (`Emulator.client`), so that the endpoint, the
credentials and the region are written down once.

Every emulator starts the instances' ECS agents (ecs_agent.InstanceAgents):
while an auto scaling group wants an instance, its instance is a container
instance of the cluster its user data names, with its attributes, as the
ECS agent registers it on AWS; up.yml waits for that before it asks for a
task.

Emulators started in one process share one state (moto keeps its backends
in module globals): a reset of one resets the others, and each one's
instance agents register every instance. Run one at a time in a process;
each starts as a fresh account (what an earlier one left is forgotten).

`Emulator(iam=True)` is the same emulator with IAM enforced on request
(`enforce_iam`), in a process of its own (see `iam_emulator`), for tests
that run the container's calls with a role's own credentials
(`role_session`).

Where the emulator's CloudFormation skips a template property that the
product relies on, `fill_template_gaps` makes it apply the property as AWS
does, in the process that runs the emulator; the playbooks and templates
stay as they are for AWS. The list, one entry per property:

- `AWS::S3::Bucket` `VersioningConfiguration` (create and update): the model
  bucket is versioned, and `save_model` refuses a bucket that is not.
- `AWS::S3::Bucket` update with `Tags` and a generated name (the model
  bucket's): the emulator's update fails looking for `BucketName`.
- `DeletionPolicy: Retain` on a resource that a stack update removes from
  the template (the emulator honours it only when the whole stack is
  deleted): the model bucket that a persistent stack stops managing, when
  `up.yml` passes it as an existing bucket, stays with its models.
- `AWS::ElasticLoadBalancingV2::TargetGroup` update (a person's group
  after a change of notebook_port or notebook_health_port): the emulator
  has no update for it and drops the group from the stack. As on AWS, a
  new port, protocol, VPC or target type makes a new group (the old one is
  left in the emulator: CloudFormation deletes it once the rule no longer
  forwards to it), and the health check is modified in place.
- `AWS::ECR::Repository` `EmptyOnDelete`: deleting the persistent stack
  deletes the repository with its images (image.yml has pushed some before
  the first up.yml); the emulator refuses a repository that holds images.
- `AWS::ECS::TaskDefinition` `Volumes[].EFSVolumeConfiguration`: the model
  camel-cases each key, so the API answered `eFSVolumeConfiguration`,
  `filesystemId` and `iAM`; it answers ECS's own names.
- `AWS::EFS::AccessPoint` `Ref` and `GetAtt`: the model has no physical ID,
  so `!Ref AccessPoint` gave the object's repr; it gives the access point ID.
- `Export` of an output after a stack update: the emulator keeps the value
  the export had at create, so a stack created later imports a stale value
  (the model bucket a persistent stack was given on a later run).
- `LastUpdatedTime` of a stack: the emulator never recorded one, so a stack
  changed by an update looked as it was at its create. An update (UpdateStack,
  or an executed UPDATE change set) now sets it, as AWS does; up.yml's short
  way compares it with its record.

CloudFormation calls the emulator lacks (termination protection, continuing
a failed rollback) are added by `emulator_api.fill_api_gaps`, called from
here; that module lists them.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import subprocess
import sys
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto.cloudformation.parsing import ResourceMap
from moto.ecr.models import Repository, ecr_backends
from moto.s3.models import FakeBucket
from moto.server import ThreadedMotoServer

from .emulator_api import fill_api_gaps
from .waits import free_port, wait_until

REGION = "eu-west-1"
# moto's fixed account; dummy credentials it accepts.
ACCOUNT_ID = "123456789012"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
#: Variables that would make boto3 prefer a real account's credentials.
REAL_ACCOUNT_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


@dataclass
class Emulator:
    """A running moto server on loopback."""

    port: int = field(default_factory=free_port)
    server: ThreadedMotoServer | None = None
    #: IAM enforced on request (`enforce_iam`), in a process of its own.
    iam: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _session: boto3.session.Session | None = field(default=None, init=False, repr=False)
    #: The instances' ECS agents (ecs_agent.InstanceAgents): container instances follow the groups.
    _agents: Any = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Emulator:
        fill_template_gaps()
        if self.iam:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nbstack_devkit.iam_emulator", str(self.port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_until(self._answers, timeout=60, what=f"the IAM-enforcing emulator on port {self.port}")
        else:
            self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
            self.server.start()
            self.reset()  # moto's state outlives an earlier emulator in this process
        from .ecs_agent import InstanceAgents  # ecs_agent imports this module

        self._agents = InstanceAgents(self).start()
        return self

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"the IAM-enforcing emulator exited with {self.process.returncode}")
        try:
            with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=5):
                return True
        except (urllib.error.URLError, ConnectionError):
            return False

    def stop(self) -> None:
        if self._agents is not None:
            self._agents.stop()
            self._agents = None
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None

    def enforce_iam(self, enforced: bool = True) -> None:
        """From the next request on, evaluate each request's identity policies (or stop doing so).

        Only for `Emulator(iam=True)`: the switch is global to the process
        that runs the emulator. While enforced, the dummy credentials are
        refused (they belong to no IAM user); use `role_session`'s.
        """
        if not self.iam:
            raise RuntimeError("IAM is enforced only by an Emulator(iam=True)")
        request = urllib.request.Request(
            f"{self.url}/moto-api/reset-auth",
            data=b"0" if enforced else b"inf",
            # Not a form: moto reads the count from the raw body.
            headers={"Content-Type": "text/plain"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30):
            pass

    @contextmanager
    def iam_enforced(self) -> Iterator[None]:
        """IAM enforced inside the block, off again after it."""
        self.enforce_iam()
        try:
            yield
        finally:
            self.enforce_iam(False)

    def store_policies_as_json(self, role_arn: str) -> None:
        """Store each inline policy of a role CloudFormation made again, as the JSON text AWS keeps.

        The emulator's CloudFormation stores a role's inline policies as
        Python text (single quotes), which its own IAM evaluation cannot
        parse. The documents are the template's, as the stack resolved
        them; only their encoding changes.
        """
        iam = self.client("iam")
        role = role_arn.rsplit("/", 1)[1]
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
            if isinstance(document, str):
                document = ast.literal_eval(document)
            iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))

    def role_session(self, role_arn: str, name: str = "nbstack-test") -> boto3.session.Session:
        """A boto3 session with `role_arn`'s own temporary credentials, as a task gets them from ECS.

        Assume the role while IAM is not enforced (the dummy credentials
        that assume it are no IAM principal); the credentials keep working
        after `enforce_iam`.
        """
        credentials = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=name)["Credentials"]
        return boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=REGION,
        )

    def report_running(self, cluster: str, service: str, count: int) -> None:
        """Set the service's running task count, as ECS counts the tasks its agents report.

        The emulator runs no task and reports none (`runningCount` stays at
        0 unless a desired count is updated); the local ECS agent reports
        the task it runs (see ecs_agent). Only for the emulator in this
        process (not `iam=True`); a service that does not exist is left alone.
        """
        if self.server is None:
            raise RuntimeError("running tasks are reported only to an emulator in this process")
        from moto.ecs.models import ecs_backends

        found = ecs_backends[ACCOUNT_ID][REGION].services.get(f"{cluster}:{service}")
        if found is None:
            return
        found.running_count = count
        found.pending_count = max(int(found.desired_count) - count, 0)
        for deployment in found.deployments:
            deployment.update(runningCount=count, pendingCount=found.pending_count)

    def reset(self) -> None:
        """Forget every resource, as a fresh account."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30):
            pass

    def environ(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment in which boto3 (and so Ansible) talks to this emulator."""
        env = dict(os.environ if base is None else base)
        for name in REAL_ACCOUNT_VARIABLES:
            env.pop(name, None)
        env.update(CREDENTIALS)
        env.update({"AWS_ENDPOINT_URL": self.url, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION})
        return env

    def client(self, service: str) -> Any:
        """A boto3 client of `service` bound to this emulator, whatever this process's environment says.

        One session per emulator: building a session loads botocore's data,
        clients are cheap after that.
        """
        if self._session is None:
            self._session = boto3.session.Session(
                aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                region_name=REGION,
            )
        return self._session.client(service, endpoint_url=self.url)


def fill_template_gaps() -> None:
    """Make this process's emulator apply the template properties its CloudFormation skips (the module's list).

    Each gap is a wrapper around the emulator's own handling of the
    resource, which still does everything it did; applying it twice changes
    nothing.
    """
    fill_api_gaps()
    if getattr(FakeBucket, "_nbstack_gaps_filled", False):
        return
    create = FakeBucket.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]
    update = FakeBucket.update_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    # moto passes the arguments by position or by name: keep its parameter names.
    def create_versioned(cls: type[FakeBucket], resource_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any) -> FakeBucket:
        bucket = create(cls, resource_name, cloudformation_json, *args, **kwargs)
        _apply_versioning(bucket, cloudformation_json)
        return bucket

    def update_versioned(
        cls: type[FakeBucket], original_resource: Any, new_resource_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any
    ) -> FakeBucket:
        properties = cloudformation_json.get("Properties") or {}
        if "BucketName" not in properties:
            # The emulator's update reads the name from the template to retag the bucket,
            # and fails on a generated one; the name is the bucket's own.
            cloudformation_json = {**cloudformation_json, "Properties": {**properties, "BucketName": original_resource.name}}
        bucket = update(cls, original_resource, new_resource_name, cloudformation_json, *args, **kwargs)
        _apply_versioning(bucket, cloudformation_json)
        return bucket

    _follow_target_group_updates()
    _follow_export_updates()
    _record_update_times()
    _fill_access_point_gaps()
    _fill_task_definition_volume_gaps()
    FakeBucket.create_from_cloudformation_json = classmethod(create_versioned)  # type: ignore[method-assign,assignment]
    FakeBucket.update_from_cloudformation_json = classmethod(update_versioned)  # type: ignore[method-assign,assignment]

    # An update that drops a resource from the template deletes it unless its DeletionPolicy is Retain.
    delete_resource = ResourceMap._delete_resource

    def delete_unless_retained(self: ResourceMap, parsed_resource: Any, resource_json: dict[str, Any]) -> None:
        if resource_json.get("DeletionPolicy") != "Retain":
            delete_resource(self, parsed_resource, resource_json)

    ResourceMap._delete_resource = delete_unless_retained  # type: ignore[method-assign]
    FakeBucket._nbstack_gaps_filled = True  # type: ignore[attr-defined]
    _fill_repository_gaps()


def _fill_repository_gaps() -> None:
    """`EmptyOnDelete: true` on a repository made from a template: its stack's deletion deletes its images too."""
    create = Repository.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create_noting_empty_on_delete(cls: type[Repository], resource_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any) -> Repository:
        repository = create(cls, resource_name, cloudformation_json, *args, **kwargs)
        properties = cloudformation_json.get("Properties") or {}
        repository._nbstack_empty_on_delete = str(properties.get("EmptyOnDelete", "")).lower() == "true"
        return repository

    def delete(self: Repository, account_id: str, region_name: str) -> None:
        force = bool(getattr(self, "_nbstack_empty_on_delete", False))
        ecr_backends[account_id][region_name].delete_repository(self.name, force=force)

    Repository.create_from_cloudformation_json = classmethod(create_noting_empty_on_delete)  # type: ignore[method-assign,assignment]
    Repository.delete = delete  # type: ignore[method-assign]


def ecs_volumes(properties: dict[str, Any]) -> list[dict[str, Any]]:
    """A template's task definition `Volumes` as ECS's API spells them (`efsVolumeConfiguration.fileSystemId`...).

    The emulator camel-cases the template's keys one by one, which gives
    `eFSVolumeConfiguration`, `filesystemId` and `iAM`.
    """
    from moto.core.utils import pascal_to_camelcase, remap_nested_keys

    volumes = remap_nested_keys(properties.get("Volumes", []), pascal_to_camelcase)
    for volume in volumes:
        efs = volume.pop("eFSVolumeConfiguration", None)
        if efs is None:
            continue
        if "filesystemId" in efs:
            efs["fileSystemId"] = efs.pop("filesystemId")
        efs.setdefault("rootDirectory", "/")
        authorization = efs.get("authorizationConfig") or {}
        if "iAM" in authorization:
            authorization["iam"] = authorization.pop("iAM")
        volume["efsVolumeConfiguration"] = efs
    return volumes


def _fill_task_definition_volume_gaps() -> None:
    """A task definition made from a template has its EFS volume under ECS's API names (see ecs_volumes)."""
    from moto.ecs.models import TaskDefinition

    create = TaskDefinition.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create_with_api_volumes(
        cls: type[TaskDefinition], resource_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any
    ) -> TaskDefinition:
        task_definition = create(cls, resource_name, cloudformation_json, *args, **kwargs)
        task_definition.volumes = ecs_volumes(cloudformation_json.get("Properties") or {})
        return task_definition

    TaskDefinition.create_from_cloudformation_json = classmethod(create_with_api_volumes)  # type: ignore[method-assign,assignment]


def _fill_access_point_gaps() -> None:
    """`Ref` of an `AWS::EFS::AccessPoint` is its ID, and `GetAtt` gives `AccessPointId` and `Arn`, as on AWS."""
    from moto.efs.models import AccessPoint

    def get_cfn_attribute(self: AccessPoint, attribute_name: str) -> str:
        if attribute_name == "AccessPointId":
            return self.access_point_id
        if attribute_name == "Arn":
            return self.access_point_arn
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        raise UnformattedGetAttTemplateException()

    AccessPoint.physical_resource_id = property(lambda self: self.access_point_id)  # type: ignore[attr-defined]
    AccessPoint.get_cfn_attribute = get_cfn_attribute  # type: ignore[attr-defined]


def _follow_target_group_updates() -> None:
    """Give the emulator's target group the CloudFormation update it lacks (the module's list)."""
    from moto.elbv2.models import FakeTargetGroup, elbv2_backends

    #: Properties whose change replaces a target group, with the emulator's attribute for each.
    replacing = {"Port": "port", "Protocol": "protocol", "VpcId": "vpc_id", "TargetType": "target_type"}

    def update_target_group(
        cls: type[FakeTargetGroup],
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        properties = cloudformation_json.get("Properties") or {}
        if any(key in properties and str(properties[key]) != str(getattr(original_resource, attribute, "")) for key, attribute in replacing.items()):
            return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)
        return elbv2_backends[account_id][region_name].modify_target_group(
            original_resource.arn,
            health_check_proto=properties.get("HealthCheckProtocol"),
            health_check_port=properties.get("HealthCheckPort"),
            health_check_path=properties.get("HealthCheckPath"),
            health_check_interval=properties.get("HealthCheckIntervalSeconds"),
            health_check_timeout=properties.get("HealthCheckTimeoutSeconds"),
            healthy_threshold_count=properties.get("HealthyThresholdCount"),
            unhealthy_threshold_count=properties.get("UnhealthyThresholdCount"),
        )

    FakeTargetGroup.update_from_cloudformation_json = classmethod(update_target_group)  # type: ignore[method-assign,assignment]


def _follow_export_updates() -> None:
    """A stack update's exports as the emulator's list of exports (the module's list)."""
    from moto.cloudformation.models import CloudFormationBackend

    update_stack = CloudFormationBackend.update_stack

    def update_stack_and_exports(self: CloudFormationBackend, *args: Any, **kwargs: Any) -> Any:
        stack = update_stack(self, *args, **kwargs)
        for name in [name for name, export in self.exports.items() if export.exporting_stack_id == stack.stack_id]:
            del self.exports[name]
        for export in stack.exports:
            self.exports[export.name] = export
        return stack

    CloudFormationBackend.update_stack = update_stack_and_exports  # type: ignore[method-assign]


def _record_update_times() -> None:
    """An update's time as the stack's LastUpdatedTime (the module's list): moto's serializer reads `last_updated_time`."""
    from moto.cloudformation.models import ChangeSet, Stack
    from moto.core.utils import utcnow

    update = Stack.update
    apply = ChangeSet.apply

    def update_noting_time(self: Stack, *args: Any, **kwargs: Any) -> None:
        update(self, *args, **kwargs)
        self.last_updated_time = utcnow()  # type: ignore[attr-defined]

    # An executed change set applies itself to its stack (CREATE or UPDATE); only an update is one.
    def apply_noting_time(self: ChangeSet) -> None:
        apply(self)
        if self.change_set_type == "UPDATE":
            self.stack.last_updated_time = utcnow()  # type: ignore[attr-defined]

    Stack.update = update_noting_time  # type: ignore[method-assign]
    ChangeSet.apply = apply_noting_time  # type: ignore[method-assign]


def _apply_versioning(bucket: FakeBucket, cloudformation_json: Any) -> None:
    """`VersioningConfiguration.Status` (Enabled or Suspended) as the bucket's versioning, as S3's PutBucketVersioning sets it.

    A template without the property leaves the bucket's versioning as it
    is: once enabled, S3 versioning can be suspended but never removed.
    """
    configuration = (cloudformation_json.get("Properties") or {}).get("VersioningConfiguration")
    if isinstance(configuration, dict) and configuration.get("Status"):
        bucket.versioning_status = str(configuration["Status"])


class Clients:
    """The emulator's clients as attributes (`aws.cloudformation`, `aws.service_quotas`), each made once.

    What the tests' assertions read: short to write, one client per service.
    """

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self._clients: dict[str, Any] = {}

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        if service not in self._clients:
            self._clients[service] = self._emulator.client(service.replace("_", "-"))
        return self._clients[service]


def follow_task_definition_updates() -> Callable[[], None]:
    """Make the in-process emulator's CloudFormation update an ECS task definition as AWS does.

    On a stack update that changes a task definition, CloudFormation
    registers a new revision with the new properties, and a service that
    refers to it moves to that revision (an ECS deployment replaces the
    task). The emulator (moto 5.2) registers the new revision from the
    template's keys as written (ContainerDefinitions, Name, Image: it
    keeps the camel-case keys ECS uses only on create), so the revision lacks
    its name, image and secrets, and leaves the service on the old revision.
    This registers it as the emulator's own create does, and points the
    service at the new revision. For the demo's emulator (`make demo`),
    where the local agent runs the revision the service wants; process-wide
    until the returned function is called (the demo calls it when it stops,
    so later emulators in the same process, the tests', are moto's own).
    """
    from moto.core.utils import pascal_to_camelcase, remap_nested_keys
    from moto.ecs.models import TaskDefinition, ecs_backends

    if getattr(TaskDefinition, "_nbstack_follows_updates", False):
        return lambda: None
    moto_own = TaskDefinition.__dict__.get("update_from_cloudformation_json")
    defaults = {"cpu": 0, "portMappings": [], "essential": True, "environment": [], "mountPoints": [], "volumesFrom": []}

    def update_task_definition(
        cls: type[TaskDefinition],
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        original, template = original_resource, cloudformation_json
        properties = template["Properties"]
        containers = remap_nested_keys(properties.get("ContainerDefinitions", []), pascal_to_camelcase)
        volumes = ecs_volumes(properties)
        if (
            properties.get("Family", original.family) == original.family
            and [{**defaults, **container} for container in containers] == original.container_definitions
            and volumes == original.volumes
        ):
            return original
        new = cls.create_from_cloudformation_json(new_resource_name, template, account_id, region_name)
        backend = ecs_backends[account_id][region_name]
        for service in backend.services.values():
            if service.task_definition == original.arn:
                service.task_definition = new.arn
                for deployment in service.deployments:
                    deployment["taskDefinition"] = new.arn
        backend.deregister_task_definition(original.arn)
        return new

    TaskDefinition.update_from_cloudformation_json = classmethod(update_task_definition)  # type: ignore[method-assign,assignment]
    TaskDefinition._nbstack_follows_updates = True  # type: ignore[attr-defined]

    def undo() -> None:
        if moto_own is None:
            del TaskDefinition.update_from_cloudformation_json
        else:
            TaskDefinition.update_from_cloudformation_json = moto_own  # type: ignore[method-assign]
        TaskDefinition._nbstack_follows_updates = False  # type: ignore[attr-defined]

    return undo


def quiet() -> None:
    """Keep the emulator's request log and its warnings about skipped template resources out of a report.

    A person running the demo or a bench needs neither; the tests keep them
    (pytest captures them and shows them on a failure).
    """
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="moto")
    warnings.filterwarnings("ignore", message="Tried to parse")
