#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn a CloudFormation stack's termination protection on or off.

amazon.aws.cloudformation sets termination protection only when it creates
or updates the stack, with its template: a stack created without it, or
one that must be deleted, needs the flag alone changed, which is one
UpdateTerminationProtection call.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stack_protection
short_description: Turn a stack's termination protection on or off
version_added: 0.1.0
description:
  - Reads the stack and calls UpdateTerminationProtection when its flag is
    not the wanted one. A stack that does not exist is left alone. In check
    mode it only reports whether the flag would change.
author:
  - nbstack (!UNKNOWN)
options:
  stack_name:
    description: Name of the stack.
    type: str
    required: true
  enabled:
    description: Whether CloudFormation should refuse to delete the stack.
    type: bool
    required: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Turn termination protection off before deleting the persistent stack
  nbstack.cloud.stack_protection:
    stack_name: notebook-server-persistent
    enabled: false
"""

RETURN = r"""
found:
  description: Whether the stack exists.
  type: bool
  returned: success
  sample: true
enabled:
  description: The flag before this run.
  type: bool
  returned: when found
  sample: true
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry


def main():
    module = AnsibleAWSModule(
        argument_spec={
            "stack_name": {"type": "str", "required": True},
            "enabled": {"type": "bool", "required": True},
        },
        supports_check_mode=True,
    )
    name, wanted = module.params["stack_name"], module.params["enabled"]
    client = module.client("cloudformation", retry_decorator=AWSRetry.jittered_backoff())
    try:
        stacks = client.describe_stacks(StackName=name, aws_retry=True)["Stacks"]
    except botocore.exceptions.ClientError as error:
        if "does not exist" in str(error):
            module.exit_json(changed=False, found=False)
        module.fail_json_aws(error, msg=f"Could not read the stack {name}")
    except botocore.exceptions.BotoCoreError as error:
        module.fail_json_aws(error, msg=f"Could not read the stack {name}")
    enabled = bool(stacks[0].get("EnableTerminationProtection", False))
    if enabled == wanted:
        module.exit_json(changed=False, found=True, enabled=enabled)
    if not module.check_mode:
        try:
            client.update_termination_protection(StackName=name, EnableTerminationProtection=wanted, aws_retry=True)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            module.fail_json_aws(error, msg=f"Could not change the termination protection of {name}")
    module.exit_json(changed=True, found=True, enabled=enabled)


if __name__ == "__main__":
    main()
