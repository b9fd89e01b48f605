#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How long each phase of this run took on AWS, read after the fact from AWS's own timestamps.

The arithmetic is in module_utils/phase_times.py (tested on recorded
answers); this module only reads: the stacks' events, the group's scaling
activities, the cluster's container instances, the service's tasks and
events.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: phase_times_info
short_description: Read how long each phase of bringing a notebook server up took, from AWS's timestamps
version_added: 0.1.0
description:
  - Reads, after the fact, the timestamps AWS recorded for what happened since O(since), and returns one phase
    per step that happened in that time, with its duration.
  - Each stack of O(stacks) with an operation that opened at or after O(since) - from its first to its last
    event (DescribeStackEvents); an earlier operation's events are not counted.
  - The instance launch - the auto scaling group's launch activities that started at or after O(since), their
    C(StartTime) to C(EndTime) (DescribeScalingActivities).
  - The agent registration - from the launch's end (without a launch activity, the instance's C(LaunchTime)) to the
    container instance's C(registeredAt).
  - The task start - the service's task created at or after O(since), C(createdAt) to C(startedAt), with its image
    pull (C(pullStartedAt) to C(pullStoppedAt)).
  - The first healthy check - from the task's start to the ECS service event that the service reached a steady
    state (ECS waits for the load balancer's health check first); without such an event, to O(healthy_seen), the
    time up.yml saw the health check pass. Each phase says where its end comes from.
  - Phases can overlap (a stack create launches the instance); C(covered_seconds) counts overlapping time once.
  - Only reads; runs in check mode too.
author:
  - nbstack (!UNKNOWN)
options:
  since:
    description: When the run began (ISO 8601 with a time zone); only what happened at or after it counts.
    type: str
    required: true
  stacks:
    description: Stacks whose operation of this run to time (names).
    type: list
    elements: str
    default: []
  autoscaling_group:
    description: The person's auto scaling group; empty to leave the server's phases out.
    type: str
    default: ""
  cluster:
    description: The ECS cluster of the person's service.
    type: str
    default: ""
  service:
    description: The person's ECS service.
    type: str
    default: ""
  prefix:
    description: The person's prefix, the value of the container instance attribute C(nbstack.prefix).
    type: str
    default: ""
  healthy_seen:
    description: When up.yml saw the first healthy check (ISO 8601); empty when it did not.
    type: str
    default: ""
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Read how long each phase took, from AWS's timestamps
  nbstack.cloud.phase_times_info:
    since: "2026-11-27T09:00:00+00:00"
    stacks: [notebook-server-alice]
    autoscaling_group: notebook-server-alice
    cluster: notebook-server-cluster
    service: notebook-server-alice
    prefix: alice
    healthy_seen: "2026-11-27T09:03:02+00:00"
  register: up__phase_times
"""

RETURN = r"""
phases:
  description: >-
    The phases of this run ordered by start, each with C(name), C(seconds), C(start) and C(end) (ISO 8601),
    C(detail) (such as the image pull within the task start) and C(source) (where the end of the first healthy
    check comes from, C(ECS service event) or C(as seen by up.yml)).
  type: list
  elements: dict
  returned: success
  sample: [{"name": "instance launch", "seconds": 38.2, "start": "2026-11-27T09:00:41+00:00",
            "end": "2026-11-27T09:01:19+00:00", "detail": "", "source": ""}]
covered_seconds:
  description: Seconds during which at least one phase ran (overlapping phases counted once).
  type: float
  returned: success
  sample: 151.3
wall_seconds:
  description: Seconds from O(since) to the reading (this machine's clock).
  type: float
  returned: success
  sample: 170.4
since:
  description: O(since), as read.
  type: str
  returned: success
  sample: "2026-11-27T09:00:00+00:00"
"""

from datetime import datetime, timezone

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.nbstack.cloud.plugins.module_utils.contract import PREFIX_ATTRIBUTE
from ansible_collections.nbstack.cloud.plugins.module_utils.phase_times import phase_times


@AWSRetry.jittered_backoff()
def newest_since(client, operation, key, time_key, since, **params):
    """Items of a newest-first listing, down to the first page that reaches before `since` (later pages are not read).

    The paginator is made here, so that a retry reads from the first page again.
    """
    found = []
    for page in client.get_paginator(operation).paginate(**params):
        found.extend(page[key])
        if any(item[time_key] < since for item in page[key]):
            break
    return found


def container_instances(ecs, cluster, prefix):
    """The person's container instances in the (shared) cluster.

    Filtered by the attribute, and the attribute read back, as the capacity
    module does: another person's instance that registers during this run
    is not this run's.
    """
    arns = ecs.list_container_instances(cluster=cluster, filter=f"attribute:{PREFIX_ATTRIBUTE} == {prefix}", aws_retry=True)["containerInstanceArns"]
    if not arns:
        return []
    found = ecs.describe_container_instances(cluster=cluster, containerInstances=arns[:100], aws_retry=True)["containerInstances"]
    return [i for i in found if any(a.get("name") == PREFIX_ATTRIBUTE and a.get("value") == prefix for a in i.get("attributes", []))]


def service_tasks(ecs, cluster, service):
    """The service's tasks, running and stopped (ECS keeps a stopped task for a while)."""
    arns = []
    for status in ("RUNNING", "STOPPED"):
        arns += ecs.list_tasks(cluster=cluster, serviceName=service, desiredStatus=status, aws_retry=True)["taskArns"]
    if not arns:
        return []
    return ecs.describe_tasks(cluster=cluster, tasks=arns[:100], aws_retry=True)["tasks"]


def service_events(ecs, cluster, service):
    found = ecs.describe_services(cluster=cluster, services=[service], aws_retry=True)["services"]
    return found[0].get("events", []) if found else []


def ec2_instances(ec2, ids):
    """The instances (their LaunchTime) of the container instances registered in this run."""
    try:
        reservations = ec2.describe_instances(InstanceIds=ids, aws_retry=True)["Reservations"]
    except is_boto3_error_code("InvalidInstanceID.NotFound"):
        return []
    return [instance for reservation in reservations for instance in reservation["Instances"]]


def read(module, since):
    """The describe answers phase_times() takes, as keyword arguments; only those the parameters ask for."""
    params = module.params
    retry = AWSRetry.jittered_backoff()
    events = {}
    if params["stacks"]:
        cloudformation = module.client("cloudformation", retry_decorator=retry)
        for name in params["stacks"]:
            try:
                events[name] = newest_since(cloudformation, "describe_stack_events", "StackEvents", "Timestamp", since, StackName=name)
            except is_boto3_error_code("ValidationError"):
                # The stack does not exist (a stack deleted since): no operation to time.
                events[name] = []
    facts = {"stack_events": events, "healthy_seen": params["healthy_seen"] or None}
    if params["autoscaling_group"]:
        autoscaling = module.client("autoscaling", retry_decorator=retry)
        facts["activities"] = newest_since(
            autoscaling, "describe_scaling_activities", "Activities", "StartTime", since, AutoScalingGroupName=params["autoscaling_group"]
        )
    if params["cluster"] and params["service"] and params["prefix"]:
        ecs = module.client("ecs", retry_decorator=retry)
        instances = container_instances(ecs, params["cluster"], params["prefix"])
        facts["container_instances"] = instances
        facts["tasks"] = service_tasks(ecs, params["cluster"], params["service"])
        facts["service_events"] = service_events(ecs, params["cluster"], params["service"])
        registered = [
            instance["ec2InstanceId"]
            for instance in instances
            if instance.get("ec2InstanceId") and instance.get("registeredAt") and instance["registeredAt"] >= since
        ]
        if registered:
            ec2 = module.client("ec2", retry_decorator=retry)
            facts["ec2_instances"] = ec2_instances(ec2, registered)
    return facts


def main():
    module = AnsibleAWSModule(
        argument_spec={
            "since": {"type": "str", "required": True},
            "stacks": {"type": "list", "elements": "str", "default": []},
            "autoscaling_group": {"type": "str", "default": ""},
            "cluster": {"type": "str", "default": ""},
            "service": {"type": "str", "default": ""},
            "prefix": {"type": "str", "default": ""},
            "healthy_seen": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    try:
        since = datetime.fromisoformat(module.params["since"].replace("Z", "+00:00"))
    except ValueError:
        module.fail_json(msg=f"since is {module.params['since']!r}: give a time in ISO 8601 with a time zone, such as 2026-11-27T09:00:00+00:00.")
    if since.tzinfo is None:
        module.fail_json(msg=f"since is {module.params['since']!r} without a time zone: add one, such as +00:00.")
    try:
        facts = read(module, since)
    except (ClientError, BotoCoreError) as error:
        module.fail_json_aws(error, msg="Could not read the timestamps of this run")
    module.exit_json(changed=False, **phase_times(since, measured_at=datetime.now(timezone.utc), **facts))


if __name__ == "__main__":
    main()
