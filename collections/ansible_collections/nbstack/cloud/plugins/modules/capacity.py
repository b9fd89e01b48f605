#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start a person's notebook capacity again after an idle stop.

The sidecar's idle stop sets the auto scaling group to zero outside
CloudFormation (the ECS service keeps its desired count 1: the task role
cannot update the service), so the stack still says DesiredCount 1 and a
stack update would not notice. This module looks at the real resources,
scales whichever of the two is at zero back to one, and waits for the target
group's health check (the sidecar) to pass. It reports changed only when it
had to start something.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: capacity
short_description: Scale a stopped notebook server back to one
version_added: 0.1.0
description:
  - Reads the desired counts of the ECS service and the auto scaling group.
    When either is 0 (the idle stop leaves the group at 0 and the service at
    1), sets the one at 0 back to 1 (the group to 1 instance, the service to 1 task),
    removes the stop tags the sidecar left on the service, and waits until the
    target group has a healthy target and the service a running task.
  - When the wait times out the module does not fail (the capacity is
    started, a later run reports no change); it warns and returns
    C(healthy=false).
author:
  - nbstack (!UNKNOWN)
options:
  cluster:
    description: ECS cluster name.
    type: str
    required: true
  service:
    description: ECS service name.
    type: str
    required: true
  autoscaling_group:
    description: Auto scaling group name.
    type: str
    required: true
  target_group_arn:
    description: Target group whose health check must pass.
    type: str
    required: true
  wait_timeout:
    description: Seconds to wait for the health check after starting; 0 does not wait.
    type: int
    default: 600
  wait_interval:
    description: Seconds between two looks while waiting.
    type: int
    default: 10
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Start the notebook server if an idle stop scaled it to zero
  nbstack.cloud.capacity:
    cluster: notebook-server-cluster
    service: notebook-server-alice
    autoscaling_group: notebook-server-alice
    target_group_arn: arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/x/0123456789abcdef
  register: instance__capacity
"""

RETURN = r"""
started:
  description: Whether the service or the group had to be scaled back to one.
  type: bool
  returned: success
  sample: true
was:
  description: Desired counts found, C(service) and C(autoscaling_group).
  type: dict
  returned: success
  sample: {"service": 0, "autoscaling_group": 0}
healthy:
  description: Whether the target group reported a healthy target (null when nothing was started).
  type: bool
  returned: success
  sample: true
waited:
  description: Seconds spent waiting for the health check.
  type: float
  returned: success
  sample: 42.5
"""

import time

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict

from ansible_collections.nbstack.cloud.plugins.module_utils.contract import STOP_TAGS


def describe_service(ecs, cluster, name):
    """The service, or None once it is deleted (ECS keeps it a while as INACTIVE)."""
    found = ecs.describe_services(cluster=cluster, services=[name], aws_retry=True)["services"]
    found = [service for service in found if service.get("status") != "INACTIVE"]
    return found[0] if found else None


def describe_group(autoscaling, name):
    found = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name], aws_retry=True)
    return found["AutoScalingGroups"][0] if found["AutoScalingGroups"] else None


def is_healthy(ecs, elbv2, params):
    service = describe_service(ecs, params["cluster"], params["service"]) or {}
    targets = elbv2.describe_target_health(TargetGroupArn=params["target_group_arn"], aws_retry=True)
    healthy = any(t.get("TargetHealth", {}).get("State") == "healthy" for t in targets["TargetHealthDescriptions"])
    return healthy and int(service.get("runningCount", 0)) >= 1


def start(ecs, autoscaling, params, service, was):
    # The instance first: it takes longest, and the task has nowhere to run before it.
    if was["autoscaling_group"] < 1:
        autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=params["autoscaling_group"], DesiredCapacity=1, aws_retry=True
        )
    if was["service"] < 1:
        ecs.update_service(cluster=params["cluster"], service=params["service"], desiredCount=1, aws_retry=True)
    tags = ecs.list_tags_for_resource(resourceArn=service["serviceArn"], aws_retry=True).get("tags", [])
    left = sorted(set(boto3_tag_list_to_ansible_dict(tags)) & set(STOP_TAGS))
    if left:
        ecs.untag_resource(resourceArn=service["serviceArn"], tagKeys=left, aws_retry=True)


def wait_until_healthy(module, ecs, elbv2):
    params = module.params
    began = time.monotonic()
    while True:
        try:
            healthy = is_healthy(ecs, elbv2, params)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            module.fail_json_aws(error, msg="Could not read the notebook's health")
        waited = time.monotonic() - began
        if healthy or waited >= params["wait_timeout"]:
            return healthy, waited
        time.sleep(min(params["wait_interval"], max(0.0, params["wait_timeout"] - waited)))


def main():
    module = AnsibleAWSModule(
        argument_spec={
            "cluster": {"type": "str", "required": True},
            "service": {"type": "str", "required": True},
            "autoscaling_group": {"type": "str", "required": True},
            "target_group_arn": {"type": "str", "required": True},
            "wait_timeout": {"type": "int", "default": 600},
            "wait_interval": {"type": "int", "default": 10},
        },
        supports_check_mode=True,
    )
    params = module.params
    retry = AWSRetry.jittered_backoff()
    ecs = module.client("ecs", retry_decorator=retry)
    autoscaling = module.client("autoscaling", retry_decorator=retry)
    elbv2 = module.client("elbv2", retry_decorator=retry)
    try:
        service = describe_service(ecs, params["cluster"], params["service"])
        group = describe_group(autoscaling, params["autoscaling_group"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        module.fail_json_aws(error, msg="Could not read the notebook's ECS service and auto scaling group")
    if service is None or group is None:
        module.fail_json(
            msg=(
                f"The ECS service {params['service']} or the auto scaling group {params['autoscaling_group']}"
                " is missing although its stack exists. Run down.yml for this prefix, then up.yml."
            )
        )
    was = {"service": int(service["desiredCount"]), "autoscaling_group": int(group["DesiredCapacity"])}
    if was["service"] >= 1 and was["autoscaling_group"] >= 1:
        module.exit_json(changed=False, started=False, was=was, healthy=None, waited=0.0)
    if module.check_mode:
        module.exit_json(changed=True, started=True, was=was, healthy=None, waited=0.0)

    try:
        start(ecs, autoscaling, params, service, was)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        module.fail_json_aws(error, msg="Could not scale the notebook server back to one")
    healthy, waited = wait_until_healthy(module, ecs, elbv2)
    if not healthy:
        module.warn(
            f"Started the notebook server again, but its health check has not passed after {waited:.0f} s"
            " (the instance boots and pulls the image first). Look at the ECS service's events and the"
            " task's logs if it does not come up in a few minutes; running up.yml again does not restart it."
        )
    module.exit_json(changed=True, started=True, was=was, healthy=healthy, waited=round(waited, 1))


if __name__ == "__main__":
    main()
