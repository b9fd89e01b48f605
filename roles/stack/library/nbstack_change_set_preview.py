#!/usr/bin/python
"""Ansible module: preview an update of a CloudFormation stack as a change set.

amazon.aws.cloudformation previews in check mode too, but sends no
ChangeSetType (so an API that defaults it to CREATE makes a second, empty stack)
and returns the raw change list. This module names the type, always deletes
the change set, and returns one line per resource change for --diff.
"""

from __future__ import annotations

import time

DOCUMENTATION = r"""
---
module: nbstack_change_set_preview
short_description: Preview a stack update as a change set, then delete it
description:
  - Creates a change set of type UPDATE for an existing stack, waits for it,
    returns its resource changes and deletes it. Changes nothing, so it runs
    in check mode as well.
options:
  stack_name:
    description: Name of the existing stack.
    type: str
    required: true
  template_body:
    description: The template to preview.
    type: str
    required: true
  parameters:
    description: Template parameters (string values).
    type: dict
    default: {}
  tags:
    description: Stack tags.
    type: dict
    default: {}
  capabilities:
    description: Capabilities the template needs.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

RETURN = r"""
changes:
  description: One entry per resource change (action, logical_id, type, replacement).
  type: list
  elements: dict
  returned: success
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

NO_CHANGES = ("didn't contain changes", "No updates are to be performed")


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec={
            "stack_name": {"type": "str", "required": True},
            "template_body": {"type": "str", "required": True},
            "parameters": {"type": "dict", "default": {}},
            "tags": {"type": "dict", "default": {}},
            "capabilities": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    client = module.client("cloudformation")
    name = f"nbstack-preview-{int(time.time())}"
    try:
        created = client.create_change_set(
            StackName=params["stack_name"],
            ChangeSetName=name,
            ChangeSetType="UPDATE",
            TemplateBody=params["template_body"],
            Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in params["parameters"].items()],
            Tags=[{"Key": k, "Value": str(v)} for k, v in params["tags"].items()],
            Capabilities=params["capabilities"],
        )
        description = {}
        for _attempt in range(120):
            description = client.describe_change_set(ChangeSetName=created["Id"])
            if description["Status"] in ("CREATE_COMPLETE", "FAILED"):
                break
            time.sleep(2)
        client.delete_change_set(ChangeSetName=created["Id"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        module.fail_json_aws(error, msg=f"Could not preview the update of {params['stack_name']}")

    reason = description.get("StatusReason") or ""
    if description.get("Status") == "FAILED" and not any(text in reason for text in NO_CHANGES):
        module.fail_json(msg=f"The change set for {params['stack_name']} failed: {reason}")
    changes = [
        {
            "action": change["ResourceChange"].get("Action"),
            "logical_id": change["ResourceChange"].get("LogicalResourceId"),
            "type": change["ResourceChange"].get("ResourceType"),
            "replacement": change["ResourceChange"].get("Replacement", "n/a"),
        }
        for change in description.get("Changes", [])
        if change.get("Type") == "Resource"
    ]
    module.exit_json(changed=bool(changes), changes=changes)


if __name__ == "__main__":
    main()
