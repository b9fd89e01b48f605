#!/usr/bin/python
"""Ansible module: memory, vCPUs and GPUs of an EC2 instance type.

amazon.aws has no module for DescribeInstanceTypes; asking EC2 keeps the
container's memory reservation and GPU count right for every instance type,
including ones newer than this project.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nbstack_instance_type_info
short_description: Describe one EC2 instance type
description:
  - Returns the memory, vCPU count and GPU count of an instance type offered
    in the region, or fails with a message naming the setting to fix.
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
  nbstack_instance_type_info:
    instance_type: g5.xlarge
  register: instance__type
"""

RETURN = r"""
memory_mib:
  description: Memory of the instance type in MiB.
  type: int
  returned: success
vcpus:
  description: Default vCPU count.
  type: int
  returned: success
gpus:
  description: Number of GPUs (0 when none).
  type: int
  returned: success
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec={"instance_type": {"type": "str", "required": True}},
        supports_check_mode=True,
    )
    name = module.params["instance_type"]
    client = module.client("ec2")
    try:
        found = client.describe_instance_types(InstanceTypes=[name])["InstanceTypes"]
    except botocore.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") == "InvalidInstanceType":
            found = []
        else:
            module.fail_json_aws(error, msg=f"Could not describe instance type {name}")
    except botocore.exceptions.BotoCoreError as error:
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
