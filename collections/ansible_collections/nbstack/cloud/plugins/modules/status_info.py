#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every person's notebook stack in the region is doing.

One pass of describe calls (CloudFormation, ECS, Auto Scaling, EC2); the
status_rows filter turns the facts into rows with states and costs. Stacks
are known by their tags (contract.stack_kind), so a stack renamed or made by
hand with the same template is found too; deleted ones (CloudFormation
remembers them for 90 days) are reported as absent, read from ListStacks's
summaries (one call per page) by their name and template description.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: status_info
short_description: Read the state of every notebook stack of one app
version_added: 0.1.0
description:
  - Finds the person's (instance) stacks of one app by their tags, and for
    each the ECS service (desired and running tasks, the idle watcher's tags)
    and the auto scaling group (desired capacity, instances with launch
    times).
  - Also reads each person's work stack (their EFS work volume, kept after
    C(down.yml)) and, with I(details), the file system's stored bytes; a
    person with only a work volume is listed too.
  - Also reads the persistent and network stacks, for the standing cost.
  - With I(details=false), only lists the stacks that exist (no deleted
    stacks, no service or group), which is what C(down.yml) needs to know
    who is up.
author:
  - nbstack (!UNKNOWN)
options:
  app_name:
    description: The app whose stacks to read (the nbstack:app tag, notebook_app_name).
    type: str
    required: true
  prefixes:
    description: Prefixes to report even when no stack of theirs is found (reported absent).
    type: list
    elements: str
    default: []
  details:
    description: Also read deleted stacks and each stack's ECS service and auto scaling group.
    type: bool
    default: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Read every notebook stack
  nbstack.cloud.status_info:
    app_name: notebook-server
    prefixes: [alice]
  register: status__facts

- name: List who is up
  nbstack.cloud.status_info:
    app_name: notebook-server
    details: false
  register: down__status
"""

RETURN = r"""
now:
  description: Time of the reading (UTC, ISO 8601).
  type: str
  returned: success
  sample: "2026-11-26T09:00:00+00:00"
instances:
  description: >-
    One entry per prefix, sorted by prefix: C(prefix), C(stack) (null when
    absent), C(work) (the work stack, null when there is none; with
    I(details) its C(bytes), C(bytes_ia) and C(bytes_standard)), and with
    I(details) C(service), C(group) and for a deleted stack C(deleted).
  type: list
  elements: dict
  returned: success
  sample: [{"prefix": "alice", "stack": {"name": "notebook-server-alice", "status": "CREATE_COMPLETE"}}]
persistent:
  description: The persistent stack's name, status, parameters, outputs and tags (null when absent).
  type: dict
  returned: success
network:
  description: The network stack's name, status, parameters, outputs and tags (null when absent).
  type: dict
  returned: success
"""

import re
from datetime import datetime, timezone

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict

from ansible_collections.nbstack.cloud.plugins.module_utils.contract import (
    PREFIX_PATTERN,
    PREFIX_TAG,
    reserved_prefix,
    stack_kind,
    stack_name,
)


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
        "tags": boto3_tag_list_to_ansible_dict(stack.get("Tags", [])),
    }


# Paginators are not retried by the client wrapper: each whole listing is.
@AWSRetry.jittered_backoff()
def all_stacks(cloudformation):
    return cloudformation.get_paginator("describe_stacks").paginate().build_full_result()["Stacks"]


@AWSRetry.jittered_backoff()
def deleted_stacks(cloudformation):
    """Summaries of the region's deleted stacks: one ListStacks call per page, no describe per stack."""
    paginator = cloudformation.get_paginator("list_stacks")
    return paginator.paginate(StackStatusFilter=["DELETE_COMPLETE"]).build_full_result()["StackSummaries"]


#: How the instance template's Description starts (files/cloudformation/instance.yml):
#: a deleted stack's summary has no tags, but it has the description.
INSTANCE_DESCRIPTION_START = "nbstack notebook server for one person"


def deleted_instances(cloudformation, app, live_names):
    """{prefix: deletion time} of the app's deleted person stacks, latest per prefix, from the summaries alone.

    CloudFormation keeps deleted stacks for 90 days and ListStacks returns
    them a page at a time, but without tags: a summary is a person's stack
    of this app when its template is the instance template and its name is
    <app>-<prefix> with a valid prefix. A name that another app of the
    account explains (<app>-x-<prefix>, where <app>-x has a persistent or
    network stack, now or deleted) is that app's.
    """
    summaries = deleted_stacks(cloudformation)
    own = {stack_name(app, "persistent"), stack_name(app, "network")}
    other_apps = {
        name.rsplit("-", 1)[0]
        for name in [*live_names, *(s["StackName"] for s in summaries)]
        if name.startswith(app + "-") and name not in own and name.endswith(("-persistent", "-network"))
    }
    found: dict[str, str | None] = {}
    for summary in summaries:
        name = summary["StackName"]
        prefix = name[len(app) + 1 :]
        if (
            not name.startswith(app + "-")
            or not str(summary.get("TemplateDescription") or "").startswith(INSTANCE_DESCRIPTION_START)
            or not re.match(PREFIX_PATTERN, prefix)
            or reserved_prefix(prefix)
            or any(name.startswith(other + "-") for other in other_apps)
        ):
            continue
        deleted = when(summary.get("DeletionTime"))
        if prefix not in found or (deleted or "") > (found[prefix] or ""):
            found[prefix] = deleted
    return found


def service_facts(ecs, cluster, name):
    if not cluster or not name:
        return None
    found = ecs.describe_services(cluster=cluster, services=[name], include=["TAGS"], aws_retry=True)["services"]
    found = [s for s in found if s.get("status") != "INACTIVE"]
    if not found:
        return None
    service = found[0]
    tags = service.get("tags")
    if tags is None:
        tags = ecs.list_tags_for_resource(resourceArn=service["serviceArn"], aws_retry=True).get("tags", [])
    deployments = service.get("deployments", [])
    return {
        "desired": int(service.get("desiredCount", 0)),
        "running": int(service.get("runningCount", 0)),
        "tags": boto3_tag_list_to_ansible_dict(tags),
        "deployment_updated": when(max((d.get("updatedAt") for d in deployments if d.get("updatedAt")), default=None)),
    }


def group_facts(autoscaling, ec2, name):
    if not name:
        return None
    found = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name], aws_retry=True)["AutoScalingGroups"]
    if not found:
        return None
    group = found[0]
    ids = [i["InstanceId"] for i in group.get("Instances", [])]
    instances = []
    if ids:
        for reservation in ec2.describe_instances(InstanceIds=ids, aws_retry=True)["Reservations"]:
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


@AWSRetry.jittered_backoff()
def file_system_sizes(efs):
    """{file system id: SizeInBytes} of every EFS file system in the region (one call per page)."""
    pages = efs.get_paginator("describe_file_systems").paginate().build_full_result()["FileSystems"]
    return {fs["FileSystemId"]: fs.get("SizeInBytes", {}) for fs in pages}


def work_facts(stack, sizes):
    """A work stack's facts, with its file system's metered size when sizes were read."""
    facts = dict(stack)
    if sizes is not None:
        size = sizes.get(stack["outputs"].get("FileSystemId", ""), {})
        facts["bytes"] = int(size.get("Value", 0))
        facts["bytes_ia"] = int(size.get("ValueInIA", 0))
        facts["bytes_standard"] = int(size.get("ValueInStandard", size.get("Value", 0)))
    return facts


def read(module, app, details):
    retry = AWSRetry.jittered_backoff()
    cloudformation = module.client("cloudformation", retry_decorator=retry)
    stacks = [stack_facts(s) for s in all_stacks(cloudformation)]
    by_kind = {}
    instances = {}
    works = {}
    for stack in stacks:
        kind = stack_kind(stack["name"], stack["tags"], app)
        if kind == "instance":
            instances[stack["tags"][PREFIX_TAG]] = {"prefix": stack["tags"][PREFIX_TAG], "stack": stack}
        elif kind == "work" and stack["tags"].get(PREFIX_TAG):
            works[stack["tags"][PREFIX_TAG]] = stack
        elif kind:
            by_kind[kind] = stack
    for prefix in works:
        instances.setdefault(prefix, {"prefix": prefix, "stack": None})
    if details:
        for prefix, deleted in deleted_instances(cloudformation, app, [stack["name"] for stack in stacks]).items():
            instances.setdefault(prefix, {"prefix": prefix, "stack": None, "deleted": deleted})
    for prefix in module.params["prefixes"]:
        instances.setdefault(prefix, {"prefix": prefix, "stack": None})
    sizes = file_system_sizes(module.client("efs", retry_decorator=retry)) if details and works else None
    for prefix, entry in instances.items():
        entry["work"] = work_facts(works[prefix], sizes) if prefix in works else None
    if details:
        ecs = module.client("ecs", retry_decorator=retry)
        autoscaling = module.client("autoscaling", retry_decorator=retry)
        ec2 = module.client("ec2", retry_decorator=retry)
        for entry in instances.values():
            outputs = entry["stack"]["outputs"] if entry["stack"] else {}
            entry["service"] = service_facts(ecs, outputs.get("ClusterName"), outputs.get("ServiceName"))
            entry["group"] = group_facts(autoscaling, ec2, outputs.get("AutoScalingGroupName"))
    return {
        "instances": sorted(instances.values(), key=lambda entry: entry["prefix"]),
        "persistent": by_kind.get("persistent"),
        "network": by_kind.get("network"),
    }


def main():
    module = AnsibleAWSModule(
        argument_spec={
            "app_name": {"type": "str", "required": True},
            "prefixes": {"type": "list", "elements": "str", "default": []},
            "details": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    now = datetime.now(timezone.utc).isoformat()
    try:
        facts = read(module, module.params["app_name"], module.params["details"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        module.fail_json_aws(error, msg="Could not read the notebook stacks")
    module.exit_json(changed=False, now=now, **facts)


if __name__ == "__main__":
    main()
