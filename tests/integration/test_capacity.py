"""Capacity before placement, against the emulator: the order up.yml starts things in, and the AMI it keeps.

The emulator places no task and runs no ECS agent. The devkit's instance
agents (ecs_agent.InstanceAgents, started with the emulator) register a
group's instance in the cluster, with the attributes of its user data, while
the group wants one, as the ECS agent does, a boot's few seconds after the
group first wants it. Two stand-ins in this module:

- a sampler that records, every few milliseconds while up.yml runs, what
  anyone could read from AWS: the group's desired capacity, whether the
  person's container instance is ACTIVE, the service's desired count and
  revision. The order is asserted on those samples;
- ECS's placement, reduced to what the module waits for: while the service
  wants a task and the person's instance is registered, the instance is a
  healthy target and the service counts one running task, which ListTasks
  lists; when the service stops wanting it, the task records its autosave
  on the service (as the container does) and stops (the local agent,
  ecs_agent.LocalAgent, does the same for the demo with a real container).
  The emulator's UpdateService sets the running count to the desired count
  at once; while the stand-in runs, the count is only what it reports, as on
  ECS, where a task stops some time after the service stops wanting it.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest
from moto.ecs.models import EC2ContainerServiceBackend as ECSBackend
from team import APP

from ansible_collections.nbstack.cloud.plugins.module_utils.contract import AUTOSAVE_TAG
from nbstack_devkit.ecs_agent import matching_instances
from nbstack_devkit.emulator import ACCOUNT_ID, REGION, Clients, Emulator
from nbstack_devkit.playbooks import Playbooks, ok
from nbstack_devkit.waits import wait_until

PREFIX = "gina"
AMI_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
ATTRIBUTE = {"nbstack.prefix": PREFIX}
#: The changed setting of the restart (the default idle timeout is 60); every later run keeps it.
IDLE = json.dumps({"notebook_idle": {"timeout_minutes": 30, "max_lifetime_hours": 0}})


def outputs(aws: Clients) -> dict[str, str]:
    stack = aws.cloudformation.describe_stacks(StackName=f"{APP}-{PREFIX}")["Stacks"][0]
    return {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}


def stack_parameters(aws: Clients) -> dict[str, str]:
    stack = aws.cloudformation.describe_stacks(StackName=f"{APP}-{PREFIX}")["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}


_UPDATE_SERVICE = ECSBackend.update_service


def update_keeping_running_count(backend: ECSBackend, properties: dict[str, Any]) -> Any:
    """The emulator's UpdateService, leaving the running count to what the stand-in reports."""
    cluster = str(properties.get("cluster", "default")).split("/")[-1]
    before = backend.services.get(f"{cluster}:{str(properties['service']).split('/')[-1]}")
    running = before.running_count if before is not None else 0
    service = _UPDATE_SERVICE(backend, properties)
    service.running_count = running
    service.pending_count = max(int(service.desired_count) - running, 0)
    return service


@dataclass(frozen=True)
class Sample:
    group: int
    instance: bool
    service: int
    revision: str


class Watch:
    """The sampler and the placement stand-in (see the module docstring), in one thread."""

    def __init__(self, emulator: Emulator, out: dict[str, str]) -> None:
        self.emulator = emulator
        self.out = out
        self.ecs = emulator.client("ecs")
        self.autoscaling = emulator.client("autoscaling")
        self.elbv2 = emulator.client("elbv2")
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._placed: str | None = None
        self._task: str | None = None
        self._running_count = mock.patch.object(ECSBackend, "update_service", update_keeping_running_count)

    def __enter__(self) -> Watch:
        self._running_count.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._running_count.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            group = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.out["AutoScalingGroupName"]])[
                "AutoScalingGroups"
            ][0]
            registered = bool(matching_instances(self.ecs, self.out["ClusterName"], ATTRIBUTE))
            service = self.ecs.describe_services(cluster=self.out["ClusterName"], services=[self.out["ServiceName"]])[
                "services"
            ][0]
            self.samples.append(
                Sample(int(group["DesiredCapacity"]), registered, int(service["desiredCount"]), service["taskDefinition"])
            )
            self._place(group, registered, int(service["desiredCount"]))
            time.sleep(0.05)

    def _place(self, group: dict[str, Any], registered: bool, wanted: int) -> None:
        instances = [i["InstanceId"] for i in group.get("Instances", [])]
        target = self.out["TargetGroupArn"]
        cluster, name = self.out["ClusterName"], self.out["ServiceName"]
        if wanted >= 1 and registered and instances and self._placed is None:
            self._placed = instances[0]
            self.elbv2.register_targets(TargetGroupArn=target, Targets=[{"Id": self._placed}])
            service = self.ecs.describe_services(cluster=cluster, services=[name])["services"][0]
            self._task = self.ecs.start_task(
                cluster=cluster,
                taskDefinition=service["taskDefinition"],
                containerInstances=matching_instances(self.ecs, cluster, ATTRIBUTE)[:1],
                startedBy=name,
            )["tasks"][0]["taskArn"]
            self.emulator.report_running(cluster, name, 1)
        elif self._placed is not None and (wanted < 1 or not registered):
            self.elbv2.deregister_targets(TargetGroupArn=target, Targets=[{"Id": self._placed}])
            service = self.ecs.describe_services(cluster=cluster, services=[name])["services"][0]
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            self.ecs.tag_resource(resourceArn=service["serviceArn"], tags=[{"key": AUTOSAVE_TAG, "value": f"nothing {stamp}"}])
            if self._task is not None:
                self.ecs.stop_task(cluster=cluster, task=self._task, reason="the service wants no task")
                self._task = None
            self.emulator.report_running(cluster, name, 0)
            self._placed = None


@pytest.fixture(scope="module")
def running(emulator: Emulator, playbooks: Playbooks, aws: Clients) -> Iterator[dict[str, str]]:
    emulator.reset()
    ok(playbooks.up(PREFIX))
    out = outputs(aws)
    wait_until(lambda: bool(matching_instances(aws.ecs, out["ClusterName"], ATTRIBUTE)), 30, "the instance to register")
    yield out


def idle_stop(aws: Clients, out: dict[str, str]) -> None:
    """What the sidecar's idle stop leaves: the group at 0 (the service keeps 1), the instance gone."""
    aws.autoscaling.set_desired_capacity(AutoScalingGroupName=out["AutoScalingGroupName"], DesiredCapacity=0)
    wait_until(lambda: not matching_instances(aws.ecs, out["ClusterName"], ATTRIBUTE), 30, "the instance to deregister")


def test_the_first_up_waits_for_the_instance_and_never_asks_for_a_task_before_it(
    running: dict[str, str], aws: Clients
) -> None:
    service = aws.ecs.describe_services(cluster=running["ClusterName"], services=[running["ServiceName"]])["services"][0]
    assert service["desiredCount"] == 1
    instances = matching_instances(aws.ecs, running["ClusterName"], ATTRIBUTE)
    assert len(instances) == 1  # this person's instance, with this person's attribute


def test_restart_after_an_idle_stop_with_a_changed_setting_starts_the_instance_first(
    running: dict[str, str], aws: Clients, emulator: Emulator, playbooks: Playbooks
) -> None:
    idle_stop(aws, running)
    assert stack_parameters(aws)["IdleTimeoutMinutes"] == "60"
    with Watch(emulator, running) as watch:
        run = ok(playbooks.up(PREFIX, "-e", IDLE, "-e", "instance_start_timeout=60"))
    samples = watch.samples
    # The group started while the instance had not registered yet: the window the order matters in.
    waiting = [s for s in samples if s.group >= 1 and not s.instance]
    assert waiting, samples[:20]
    # Never a task asked for in that window (on AWS: placement failures and ECS's back-off).
    assert {s.service for s in waiting} == {0}, [s for s in waiting if s.service][:5]
    first_instance = next(i for i, s in enumerate(samples) if s.group >= 1 and s.instance)
    first_task = next(i for i, s in enumerate(samples) if s.group >= 1 and s.service >= 1)
    assert first_instance <= first_task
    # Started, with the new setting, and healthy: the URL printed answers.
    assert "health check has not passed" not in run.text, run.output[-3000:]
    out = outputs(aws)
    # The update with a new task definition went through while the server was stopped (the emulator's
    # update keeps no environment in the new revision: the stack's parameter says what it holds).
    assert stack_parameters(aws)["IdleTimeoutMinutes"] == "30"
    assert out["TaskDefinitionArn"] != running["TaskDefinitionArn"]
    health = aws.elbv2.describe_target_health(TargetGroupArn=out["TargetGroupArn"])["TargetHealthDescriptions"]
    assert [t["TargetHealth"]["State"] for t in health] == ["healthy"]
    assert samples[-1] == Sample(1, True, 1, samples[-1].revision)


def publish_newer_ami(aws: Clients) -> str:
    """A newer ECS-optimized AMI behind the public parameter, as AWS publishes one (a new version of it)."""
    from moto.ssm.models import ssm_backends

    current = aws.ssm.get_parameter(Name=AMI_PARAMETER)["Parameter"]["Value"]
    newer = next(
        image["ImageId"] for image in aws.ec2.describe_images(Owners=["amazon"])["Images"] if image["ImageId"] != current
    )
    versions = ssm_backends[ACCOUNT_ID][REGION]._parameters[AMI_PARAMETER]
    latest = copy.copy(versions[-1])
    latest.value, latest.version = newer, latest.version + 1
    versions.append(latest)
    assert aws.ssm.get_parameter(Name=AMI_PARAMETER)["Parameter"]["Value"] == newer
    return newer


def launch_template(aws: Clients, out: dict[str, str]) -> tuple[int, dict[str, Any]]:
    template = aws.ec2.describe_launch_templates(LaunchTemplateIds=[out["LaunchTemplateId"]])["LaunchTemplates"][0]
    latest = aws.ec2.describe_launch_template_versions(
        LaunchTemplateId=out["LaunchTemplateId"], Versions=[str(template["LatestVersionNumber"])]
    )["LaunchTemplateVersions"][0]
    return int(template["LatestVersionNumber"]), latest["LaunchTemplateData"]


def test_a_newer_ami_waits_for_the_next_stop(
    running: dict[str, str], aws: Clients, emulator: Emulator, playbooks: Playbooks
) -> None:
    out = outputs(aws)
    version, data = launch_template(aws, out)
    ami = stack_parameters(aws)["EcsAmiId"]
    assert data["ImageId"] == ami
    newer = publish_newer_ami(aws)
    assert newer != ami

    # A running server: up.yml changes nothing, its instance keeps its AMI.
    again = ok(playbooks.up(PREFIX, "-e", IDLE))
    assert again.changed == 0, again.output[-4000:]
    assert f"A newer ECS-optimized AMI ({newer}) waits for the next stop" in again.text
    assert launch_template(aws, outputs(aws)) == (version, data)
    assert stack_parameters(aws)["EcsAmiId"] == ami

    # Stopped: the next up.yml takes the newer AMI, and starts the server on it.
    idle_stop(aws, out)
    with Watch(emulator, out):
        ok(playbooks.up(PREFIX, "-e", IDLE, "-e", "instance_start_timeout=60"))
    assert stack_parameters(aws)["EcsAmiId"] == newer
    assert launch_template(aws, outputs(aws))[1]["ImageId"] == newer
    group = aws.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[out["AutoScalingGroupName"]])
    assert group["AutoScalingGroups"][0]["DesiredCapacity"] == 1


def test_another_instance_type_stops_the_task_before_its_instance_goes(
    running: dict[str, str], aws: Clients, emulator: Emulator, playbooks: Playbooks
) -> None:
    out = outputs(aws)
    with Watch(emulator, out) as watch:
        ok(playbooks.up(PREFIX, "-e", IDLE, "-e", "instance_type=m5.2xlarge", "-e", "instance_start_timeout=60"))
    samples = watch.samples
    assert launch_template(aws, outputs(aws))[1]["InstanceType"] == "m5.2xlarge"
    # The service went to 0 while the group still had its instance (the task's autosave), the group after it.
    first_stop = next(i for i, s in enumerate(samples) if s.service == 0)
    first_group_stop = next(i for i, s in enumerate(samples) if s.group == 0)
    assert first_stop < first_group_stop and samples[first_stop].group == 1
    # And back, instance first.
    assert {s.service for s in samples[first_group_stop:] if s.group >= 1 and not s.instance} <= {0}
    assert samples[-1].group == 1 and samples[-1].service == 1 and samples[-1].instance
