#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Preview an update of a CloudFormation stack as a change set.

amazon.aws.cloudformation previews in check mode too, but sends no
ChangeSetType (so an API that defaults it to CREATE makes a second, empty
stack) and returns the raw change list. This module names the type, always
deletes the change set, and returns one line per resource change for --diff.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: change_set_preview
short_description: Preview a stack update as a change set, then delete it
version_added: 0.1.0
description:
  - Creates a change set of type UPDATE for an existing stack, waits for it,
    returns its resource changes and deletes it. Changes nothing, so it runs
    in check mode as well.
author:
  - nbstack (!UNKNOWN)
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

EXAMPLES = r"""
- name: Preview the update of the persistent stack
  nbstack.cloud.change_set_preview:
    stack_name: notebook-server-persistent
    template_body: "{{ lookup('ansible.builtin.file', 'files/cloudformation/persistent.yml') }}"
    parameters:
      AppName: notebook-server
    capabilities: [CAPABILITY_IAM]
  register: stack__preview
"""

RETURN = r"""
changes:
  description: One entry per resource change.
  type: list
  elements: dict
  returned: success
  contains:
    action:
      description: Add, Modify, Remove, Import or Dynamic.
      type: str
    logical_id:
      description: Logical ID of the resource in the template.
      type: str
    type:
      description: CloudFormation resource type.
      type: str
    replacement:
      description: True, False, Conditional, or n/a.
      type: str
  sample: [{"action": "Modify", "logical_id": "TaskDefinition", "type": "AWS::ECS::TaskDefinition", "replacement": "True"}]
"""

import time

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list

#: What CloudFormation says when the template and parameters change nothing.
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")


def resource_changes(description):
    return [
        {
            "action": change["ResourceChange"].get("Action"),
            "logical_id": change["ResourceChange"].get("LogicalResourceId"),
            "type": change["ResourceChange"].get("ResourceType"),
            "replacement": change["ResourceChange"].get("Replacement", "n/a"),
        }
        for change in description.get("Changes", [])
        if change.get("Type") == "Resource"
    ]


def preview(client, params):
    """Create the change set, wait until it settles, delete it; return its description."""
    created = client.create_change_set(
        StackName=params["stack_name"],
        ChangeSetName=f"nbstack-preview-{int(time.time())}",
        ChangeSetType="UPDATE",
        TemplateBody=params["template_body"],
        Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in params["parameters"].items()],
        Tags=ansible_dict_to_boto3_tag_list(params["tags"]),
        Capabilities=params["capabilities"],
        aws_retry=True,
    )
    try:
        # No waiter fits: change_set_create_complete raises on the FAILED
        # state that a change set without changes ends in.
        description = {}
        for _attempt in range(120):
            description = client.describe_change_set(ChangeSetName=created["Id"], aws_retry=True)
            if description["Status"] in ("CREATE_COMPLETE", "FAILED"):
                break
            time.sleep(2)
    finally:
        client.delete_change_set(ChangeSetName=created["Id"], aws_retry=True)
    return description


def main():
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
    client = module.client("cloudformation", retry_decorator=AWSRetry.jittered_backoff())
    try:
        description = preview(client, params)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        module.fail_json_aws(error, msg=f"Could not preview the update of {params['stack_name']}")

    reason = description.get("StatusReason") or ""
    if description.get("Status") == "FAILED" and not any(text in reason for text in NO_CHANGES):
        module.fail_json(msg=f"The change set for {params['stack_name']} failed: {reason}")
    changes = resource_changes(description)
    module.exit_json(changed=bool(changes), changes=changes)


if __name__ == "__main__":
    main()
