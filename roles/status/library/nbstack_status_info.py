#!/usr/bin/python
"""Ansible module: what every person's notebook stack in the region is doing.

One pass of describe calls (CloudFormation, ECS, Auto Scaling, EC2); the
role's filter turns the facts into rows with states and costs. Instance
stacks are found by their nbstack:app and nbstack:prefix tags, so a stack
renamed or made by hand with the same template is found too; deleted ones
(CloudFormation remembers them for 90 days) are reported as absent.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nbstack_status_info
short_description: Read the state of every nbstack notebook stack
description:
  - Finds the instance stacks of one app by their tags, and for each the ECS
    service (desired and running tasks, the idle watcher's tags) and the auto
    scaling group (desired capacity, instances with launch times).
  - Also reads the persistent and network stacks, for the standing cost.
options:
  app_name:
    description: Value of the nbstack:app tag (notebook_app_name).
    type: str
    required: true
  prefixes:
    description: Prefixes to report even when no stack of theirs is found (reported absent).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Read every notebook stack
  nbstack_status_info:
    app_name: notebook-server
    prefixes: [alice]
  register: status__facts
"""

RETURN = r"""
now:
  description: Time of the reading (UTC, ISO 8601).
  type: str
  returned: success
instances:
  description: One entry per prefix; stack (or null when absent), service, group.
  type: list
  returned: success
persistent:
  description: The persistent stack's status and outputs (null when absent).
  type: dict
  returned: success
network:
  description: The network stack's status and outputs (null when absent).
  type: dict
  returned: success
"""

from datetime import datetime, timezone

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule


def when(value):
    return value.astimezone(timezone.utc).isoformat() if isinstance(value, datetime) else value


def stack_facts(stack):
    return {
        "name": stack["StackName"],
        "status": stack["StackStatus"],
        "reason": stack.get("StackStatusReason", ""),
        "created": when(stack.get("CreationTime")),
        "updated": when(stack.get("LastUpdatedTime")),
        "deleted": when(stack.get("DeletionTime")),
        "parameters": {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])},
        "outputs": {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        "tags": {t["Key"]: t["Value"] for t in stack.get("Tags", [])},
    }


def all_stacks(cloudformation):
    stacks = []
    for page in cloudformation.get_paginator("describe_stacks").paginate():
        stacks += page["Stacks"]
    return stacks


def deleted_stack_ids(cloudformation, app_name):
    """Latest deleted stack per name that could be an instance stack of this app."""
    latest = {}
    for page in cloudformation.get_paginator("list_stacks").paginate(StackStatusFilter=["DELETE_COMPLETE"]):
        for summary in page["StackSummaries"]:
            name = summary["StackName"]
            if not name.startswith(app_name + "-") or name in (f"{app_name}-persistent", f"{app_name}-network"):
                continue
            seen = latest.get(name)
            if seen is None or summary.get("DeletionTime") and summary["DeletionTime"] > seen["DeletionTime"]:
                latest[name] = summary
    return [summary["StackId"] for summary in latest.values()]


def service_facts(ecs, cluster, name):
    if not cluster or not name:
        return None
    found = ecs.describe_services(cluster=cluster, services=[name], include=["TAGS"])["services"]
    found = [s for s in found if s.get("status") != "INACTIVE"]
    if not found:
        return None
    service = found[0]
    tags = service.get("tags")
    if tags is None:
        tags = ecs.list_tags_for_resource(resourceArn=service["serviceArn"]).get("tags", [])
    deployments = service.get("deployments", [])
    return {
        "desired": int(service.get("desiredCount", 0)),
        "running": int(service.get("runningCount", 0)),
        "tags": {t["key"]: t["value"] for t in tags},
        "deployment_updated": when(max((d.get("updatedAt") for d in deployments if d.get("updatedAt")), default=None)),
    }


def group_facts(autoscaling, ec2, name):
    if not name:
        return None
    found = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    if not found:
        return None
    group = found[0]
    ids = [i["InstanceId"] for i in group.get("Instances", [])]
    instances = []
    if ids:
        for reservation in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
            for instance in reservation["Instances"]:
                instances.append(
                    {
                        "id": instance["InstanceId"],
                        "type": instance.get("InstanceType", ""),
                        "state": instance.get("State", {}).get("Name", ""),
                        "launched": when(instance.get("LaunchTime")),
                    }
                )
    return {"desired": int(group.get("DesiredCapacity", 0)), "instances": instances}


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec={
            "app_name": {"type": "str", "required": True},
            "prefixes": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    app = module.params["app_name"]
    cloudformation = module.client("cloudformation")
    ecs = module.client("ecs")
    autoscaling = module.client("autoscaling")
    ec2 = module.client("ec2")
    now = datetime.now(timezone.utc).isoformat()
    try:
        stacks = [stack_facts(s) for s in all_stacks(cloudformation)]
        by_name = {s["name"]: s for s in stacks}
        instances = {}
        for stack in stacks:
            if stack["tags"].get("nbstack:app") == app and stack["tags"].get("nbstack:prefix"):
                instances[stack["tags"]["nbstack:prefix"]] = {"prefix": stack["tags"]["nbstack:prefix"], "stack": stack}
        for stack_id in deleted_stack_ids(cloudformation, app):
            described = cloudformation.describe_stacks(StackName=stack_id)["Stacks"]
            for stack in map(stack_facts, described):
                prefix = stack["tags"].get("nbstack:prefix")
                if stack["tags"].get("nbstack:app") == app and prefix and prefix not in instances:
                    instances[prefix] = {"prefix": prefix, "stack": None, "deleted": stack["deleted"]}
        for prefix in module.params["prefixes"]:
            instances.setdefault(prefix, {"prefix": prefix, "stack": None})
        for entry in instances.values():
            stack = entry["stack"]
            outputs = stack["outputs"] if stack else {}
            entry["service"] = service_facts(ecs, outputs.get("ClusterName"), outputs.get("ServiceName")) if stack else None
            entry["group"] = group_facts(autoscaling, ec2, outputs.get("AutoScalingGroupName")) if stack else None
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        module.fail_json_aws(error, msg="Could not read the notebook stacks")
    module.exit_json(
        changed=False,
        now=now,
        instances=sorted(instances.values(), key=lambda entry: entry["prefix"]),
        persistent=by_name.get(f"{app}-persistent"),
        network=by_name.get(f"{app}-network"),
    )


if __name__ == "__main__":
    main()
