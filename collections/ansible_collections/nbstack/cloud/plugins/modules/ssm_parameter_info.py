#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The current values of SSM parameters, such as the ECS-optimized AMI's.

amazon.aws reads SSM parameters only through a lookup, and lookups do not
take module_defaults: a module in the action group gets the play's region
like every other AWS task.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ssm_parameter_info
short_description: Read the current values of SSM parameters
version_added: 0.1.0
description:
  - Reads the values of the named SSM parameters (public ones such as
    C(/aws/service/ecs/optimized-ami/...) included). A parameter that does
    not exist is reported in C(missing), not as a failure.
author:
  - nbstack (!UNKNOWN)
options:
  names:
    description: Names (paths) of the parameters.
    type: list
    elements: str
    required: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Read the AMI the ECS-optimized parameter names today
  nbstack.cloud.ssm_parameter_info:
    names:
      - /aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id
  register: stack__ssm
"""

RETURN = r"""
found:
  description: Value of each parameter found, by name.
  type: dict
  returned: success
  sample: {"/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id": "ami-0123456789abcdef0"}
missing:
  description: The names that are not parameters.
  type: list
  elements: str
  returned: success
  sample: []
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

#: GetParameters takes at most this many names per call.
BATCH = 10


def read(client, names):
    values, missing = {}, []
    for start in range(0, len(names), BATCH):
        answer = client.get_parameters(Names=names[start:start + BATCH], aws_retry=True)
        values.update({parameter["Name"]: parameter["Value"] for parameter in answer["Parameters"]})
        missing += answer.get("InvalidParameters", [])
    return values, missing


def main():
    module = AnsibleAWSModule(
        argument_spec={"names": {"type": "list", "elements": "str", "required": True}},
        supports_check_mode=True,
    )
    client = module.client("ssm", retry_decorator=AWSRetry.jittered_backoff())
    names = list(dict.fromkeys(module.params["names"]))
    try:
        values, missing = read(client, names)
    except is_boto3_error_code("AccessDeniedException") as error:
        # CloudFormation resolves these with the caller's rights when it
        # updates the stack; a caller who may not read them only loses the
        # check for a newer value.
        module.warn(f"Not allowed to read the SSM parameters {', '.join(names)}: {error}")
        values, missing = {}, []
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:  # pylint: disable=duplicate-except
        module.fail_json_aws(error, msg=f"Could not read the SSM parameters {', '.join(names)}")
    if missing:
        module.warn(f"No such SSM parameter: {', '.join(missing)}")
    module.exit_json(changed=False, found=values, missing=missing)


if __name__ == "__main__":
    main()
