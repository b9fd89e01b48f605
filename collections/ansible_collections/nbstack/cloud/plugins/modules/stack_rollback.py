#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Continue the rollback of a stack left in UPDATE_ROLLBACK_FAILED.

A stack whose update failed and whose rollback failed too can be neither
updated nor (safely) deleted: CloudFormation's way out is
ContinueUpdateRollback, once the cause is gone. amazon.aws has no module for
that call, so this one makes it, waits with boto3's own waiter, and names
the resources whose update or rollback failed (from the stack's events), so
that a person knows what to look at when the rollback fails again.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stack_rollback
short_description: Continue a failed update rollback and wait for it
version_added: 0.1.0
description:
  - Reads the stack's events since its last update began and returns the
    resources that failed in it.
  - When the stack is UPDATE_ROLLBACK_FAILED and I(continue_rollback) is
    true, calls ContinueUpdateRollback and waits until the stack is
    UPDATE_ROLLBACK_COMPLETE. In check mode it only reads.
  - Fails, naming the failed resources again, when the rollback fails again.
author:
  - nbstack (!UNKNOWN)
options:
  stack_name:
    description: Name of the stack.
    type: str
    required: true
  continue_rollback:
    description: Continue the rollback of a stack in UPDATE_ROLLBACK_FAILED; false only reads what failed.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for the rollback to complete.
    type: int
    default: 1800
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Continue the rollback of the persistent stack
  nbstack.cloud.stack_rollback:
    stack_name: notebook-server-persistent
  register: rollback
"""

RETURN = r"""
failed_resources:
  description: >-
    The resources that failed since the stack's last operation (create,
    update, delete or import) began, newest first.
  type: list
  elements: dict
  returned: always
  contains:
    logical_id:
      description: Logical ID of the resource in the template.
      type: str
    type:
      description: CloudFormation resource type.
      type: str
    status:
      description: The failed status (UPDATE_FAILED, DELETE_FAILED, CREATE_FAILED).
      type: str
    reason:
      description: What CloudFormation said.
      type: str
  sample: [{"logical_id": "Listener", "type": "AWS::ElasticLoadBalancingV2::Listener",
            "status": "UPDATE_FAILED", "reason": "Resource handler returned message: ..."}]
failed_summary:
  description: The failed resources in one line, or "" when none is named.
  type: str
  returned: always
  sample: "Listener (AWS::ElasticLoadBalancingV2::Listener) UPDATE_FAILED: Resource handler returned message: ..."
status:
  description: The stack's status at the end.
  type: str
  returned: always
  sample: UPDATE_ROLLBACK_COMPLETE
"""

import time

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

#: The stack's own events that start an operation whose failures are looked for
#: (a rollback, its continuation and a cleanup belong to the operation before them).
STARTED = frozenset({"CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS", "IMPORT_IN_PROGRESS"})


def is_start(event, stack_name):
    return (
        event.get("LogicalResourceId") == stack_name
        and event.get("ResourceType") == "AWS::CloudFormation::Stack"
        and event.get("ResourceStatus") in STARTED
    )


def failed_resources(events, stack_name):
    """The resources that failed since the last operation began (events newest first)."""
    failed = []
    for event in events:
        if is_start(event, stack_name):
            break
        if event.get("ResourceType") == "AWS::CloudFormation::Stack" and event.get("LogicalResourceId") == stack_name:
            continue
        if str(event.get("ResourceStatus", "")).endswith("_FAILED"):
            failed.append(
                {
                    "logical_id": event.get("LogicalResourceId", ""),
                    "type": event.get("ResourceType", ""),
                    "status": event["ResourceStatus"],
                    "reason": event.get("ResourceStatusReason") or "no reason given",
                }
            )
    return failed


def describe(module, client, name):
    try:
        stack = client.describe_stacks(StackName=name, aws_retry=True)["Stacks"][0]
        paginator = client.get_paginator("describe_stack_events")
        events = []
        for page in paginator.paginate(StackName=name):
            events.extend(page["StackEvents"])
            if any(is_start(event, name) for event in page["StackEvents"]):
                break
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        module.fail_json_aws(error, msg=f"Could not read the stack {name} and its events")
    return stack["StackStatus"], failed_resources(events, name)


def summary(failed):
    return "; ".join(f"{r['logical_id']} ({r['type']}) {r['status']}: {r['reason']}" for r in failed)


def main():
    module = AnsibleAWSModule(
        argument_spec={
            "stack_name": {"type": "str", "required": True},
            "continue_rollback": {"type": "bool", "default": True},
            "wait_timeout": {"type": "int", "default": 1800},
        },
        supports_check_mode=True,
    )
    name = module.params["stack_name"]
    client = module.client("cloudformation", retry_decorator=AWSRetry.jittered_backoff())
    status, failed = describe(module, client, name)
    if status != "UPDATE_ROLLBACK_FAILED" or module.check_mode or not module.params["continue_rollback"]:
        wanted = status == "UPDATE_ROLLBACK_FAILED" and module.params["continue_rollback"]
        module.exit_json(changed=wanted, status=status, failed_resources=failed, failed_summary=summary(failed))
    try:
        client.continue_update_rollback(StackName=name, aws_retry=True)
        delay = 10
        # The waiter fails at once on UPDATE_ROLLBACK_FAILED: look until the stack has left it (the call
        # is asynchronous), or for at most a minute, in which case the waiter reports what it is.
        for _attempt in range(12):
            if describe(module, client, name)[0] != "UPDATE_ROLLBACK_FAILED":
                break
            time.sleep(5)
        client.get_waiter("stack_rollback_complete").wait(
            StackName=name,
            WaiterConfig={"Delay": delay, "MaxAttempts": max(1, module.params["wait_timeout"] // delay)},
        )
    except botocore.exceptions.WaiterError:
        status, again = describe(module, client, name)
        module.fail_json(
            msg=f"The rollback of {name} did not complete (it is {status}). Failed: {summary(again or failed) or 'no resource named in its events'}. "
            "Fix what these say in the AWS console (for example, a resource deleted or changed by hand), "
            "then run again; a resource that cannot be fixed can be skipped with "
            f"aws cloudformation continue-update-rollback --stack-name {name} --resources-to-skip ID.",
            status=status,
            failed_resources=again or failed,
            failed_summary=summary(again or failed),
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        module.fail_json_aws(error, msg=f"Could not continue the rollback of {name}")
    status = describe(module, client, name)[0]
    module.exit_json(changed=True, status=status, failed_resources=failed, failed_summary=summary(failed))


if __name__ == "__main__":
    main()
