#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Memory, vCPUs and GPUs of an EC2 instance type.

amazon.aws has no module for DescribeInstanceTypes; asking EC2 keeps the
container's memory reservation and GPU count right for every instance type,
including ones newer than this project.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: instance_type_info
short_description: Describe one EC2 instance type
version_added: 0.1.0
description:
  - Returns the memory, vCPU count and GPU count of an instance type offered
    in the region, or fails with a message naming the setting to fix.
author:
  - nbstack (!UNKNOWN)
options:
  instance_type:
    description: Instance type name, like m5.xlarge.
    type: str
    required: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Describe the instance type
  nbstack.cloud.instance_type_info:
    instance_type: g5.xlarge
  register: instance__type
"""

RETURN = r"""
memory_mib:
  description: Memory of the instance type in MiB.
  type: int
  returned: success
  sample: 16384
vcpus:
  description: Default vCPU count.
  type: int
  returned: success
  sample: 4
gpus:
  description: Number of GPUs (0 when none).
  type: int
  returned: success
  sample: 1
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry


def main():
    module = AnsibleAWSModule(
        argument_spec={"instance_type": {"type": "str", "required": True}},
        supports_check_mode=True,
    )
    name = module.params["instance_type"]
    client = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff())
    try:
        found = client.describe_instance_types(InstanceTypes=[name], aws_retry=True)["InstanceTypes"]
    except is_boto3_error_code("InvalidInstanceType"):
        found = []
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:  # pylint: disable=duplicate-except
        module.fail_json_aws(error, msg=f"Could not describe instance type {name}")
    if not found:
        module.fail_json(
            msg=(
                f"instance_type {name} is not offered in this region. Pick one that"
                " is (aws ec2 describe-instance-types) and pass -e instance_type=TYPE."
            )
        )
    info = found[0]
    gpus = sum(gpu.get("Count", 0) for gpu in info.get("GpuInfo", {}).get("Gpus", []))
    module.exit_json(
        changed=False,
        memory_mib=int(info["MemoryInfo"]["SizeInMiB"]),
        vcpus=int(info["VCpuInfo"]["DefaultVCpus"]),
        gpus=int(gpus),
    )


if __name__ == "__main__":
    main()
