#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Memory, vCPUs, processors, accelerators and vCPU quota of an EC2 instance type.

amazon.aws has no module for DescribeInstanceTypes; asking EC2 keeps the
container's memory reservation and GPU count right for every instance type,
including ones newer than this project. The account's On-Demand vCPU quota
for the type's family comes from Service Quotas, so that a type the account
may not run is refused before anything is created.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: instance_type_info
short_description: Describe one EC2 instance type and the account's vCPU quota for it
version_added: 0.1.0
description:
  - Returns the memory, vCPU count, processor architectures, GPUs and other
    accelerators of an instance type offered in the region (EC2
    DescribeInstanceTypes), or fails with a message naming the setting to fix.
  - With I(vcpu_quota), also returns the account's Running On-Demand vCPU
    quota for the type's family (Service Quotas GetServiceQuota, or GetAWSDefaultServiceQuota when
    the account has no applied value). When the quota cannot be read
    (no permission, or an endpoint that does not implement it), the module
    warns and returns the quota with no value; it does not fail.
author:
  - nbstack (!UNKNOWN)
options:
  instance_type:
    description: Instance type name, like m5.xlarge.
    type: str
    required: true
  vcpu_quota:
    description:
      - Also read the account's On-Demand vCPU quota for the type's family
        (returned as C(quota)).
    type: bool
    default: false
notes:
  - Needs ec2:DescribeInstanceTypes, and servicequotas:GetServiceQuota and
    servicequotas:GetAWSDefaultServiceQuota for the quota.
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

- name: Describe the instance type and read the account's vCPU quota for its family
  nbstack.cloud.instance_type_info:
    instance_type: g5.xlarge
    vcpu_quota: true
  register: preflight__instance_type
"""

RETURN = r"""
memory_mib:
  description: Memory of the instance type in MiB, as EC2 advertises it.
  type: int
  returned: success
  sample: 16384
vcpus:
  description: Default vCPU count.
  type: int
  returned: success
  sample: 4
gpus:
  description: Number of GPUs of any maker (0 when none).
  type: int
  returned: success
  sample: 1
architectures:
  description: Processor architectures the type supports (ProcessorInfo.SupportedArchitectures).
  type: list
  elements: str
  returned: success
  sample: [x86_64]
accelerators:
  description: >-
    Every accelerator of the type, GPUs included: kind (gpu, neuron,
    inference, fpga or media), manufacturer, name and count.
  type: list
  elements: dict
  returned: success
  sample: [{kind: gpu, manufacturer: NVIDIA, name: A10G, count: 1}]
quota:
  description: >-
    The account's Running On-Demand vCPU quota for the type's family: code,
    name, value (null when it could not be read, or when no quota is known
    for the family) and reason (why there is no value).
  type: dict
  returned: when vcpu_quota is true
  sample: {code: L-DB2E81BA, name: Running On-Demand G and VT instances, value: 0, reason: ""}
"""

import re

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

# Running On-Demand instance quotas (service code ec2), each a number of
# vCPUs for the families it names, from the EC2 User Guide's "On-Demand
# Instance quotas". A type's family is the letters before its generation
# (g5 -> g, inf2 -> inf, u7i-12tb -> u).
VCPU_QUOTAS = {
    "L-1216C47A": ("Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances", ("a", "c", "d", "h", "i", "m", "r", "t", "z")),
    "L-6E869C2A": ("Running On-Demand DL instances", ("dl",)),
    "L-74FC7D96": ("Running On-Demand F instances", ("f",)),
    "L-DB2E81BA": ("Running On-Demand G and VT instances", ("g", "vt")),
    "L-F7808C92": ("Running On-Demand HPC instances", ("hpc",)),
    "L-43DA4232": ("Running On-Demand High Memory instances", ("u",)),
    "L-1945791B": ("Running On-Demand Inf instances", ("inf",)),
    "L-417A185B": ("Running On-Demand P instances", ("p",)),
    "L-2C3B7624": ("Running On-Demand Trn instances", ("trn",)),
    "L-7295265B": ("Running On-Demand X instances", ("x",)),
}
_FAMILY_QUOTA = {family: code for code, (_label, families) in VCPU_QUOTAS.items() for family in families}

# Where DescribeInstanceTypes lists each kind of accelerator.
_ACCELERATORS = (
    ("gpu", "GpuInfo", "Gpus"),
    ("neuron", "NeuronInfo", "NeuronDevices"),
    ("inference", "InferenceAcceleratorInfo", "Accelerators"),
    ("fpga", "FpgaInfo", "Fpgas"),
    ("media", "MediaAcceleratorInfo", "Accelerators"),
)


def vcpu_quota_code(instance_type):
    """The quota code of a type's family, or "" when no On-Demand vCPU quota is known for it.

    Families of several letters (dl, hpc, inf, trn, vt) are matched whole
    first; otherwise the first letter decides (im4gn and is4gen are I,
    gr6 is G).
    """
    letters = re.match(r"[a-z]+", str(instance_type).lower())
    if not letters:
        return ""
    family = letters.group(0)
    return _FAMILY_QUOTA.get(family) or _FAMILY_QUOTA.get(family[0], "")


def accelerators(info):
    """Every accelerator of a DescribeInstanceTypes entry, as kind, manufacturer, name and count.

    A device listed under two sections (Inferentia as a Neuron device and as
    an inference accelerator) is listed once, under the first.
    """
    found: list[dict] = []
    for kind, section, key in _ACCELERATORS:
        for device in (info.get(section) or {}).get(key) or []:
            if device.get("Name") and any(device["Name"] == seen["name"] for seen in found):
                continue
            found.append(
                {
                    "kind": kind,
                    "manufacturer": str(device.get("Manufacturer", "")),
                    "name": str(device.get("Name", "")),
                    "count": int(device.get("Count", 0)),
                }
            )
    return found


def read_quota(module, code):
    """The quota's value, or None and why not (never a failure: the check then only warns)."""
    name = VCPU_QUOTAS[code][0]
    quota = {"code": code, "name": name, "value": None, "reason": ""}
    client = module.client("service-quotas", retry_decorator=AWSRetry.jittered_backoff())
    try:
        try:
            found = client.get_service_quota(ServiceCode="ec2", QuotaCode=code, aws_retry=True)
        except is_boto3_error_code("NoSuchResourceException"):
            # No applied value in this account: the default applies.
            found = client.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode=code, aws_retry=True)
        quota["value"] = float(found["Quota"]["Value"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:  # pylint: disable=duplicate-except
        if isinstance(error, botocore.exceptions.ClientError):
            quota["reason"] = error.response.get("Error", {}).get("Code", "") or str(error)
        else:
            quota["reason"] = str(error)
    except (KeyError, TypeError, ValueError):
        quota["reason"] = "no value in the answer"
    return quota


def quota_of(module, name):
    """The type family's vCPU quota; a warning when it cannot be read."""
    code = vcpu_quota_code(name)
    if code:
        quota = read_quota(module, code)
        if quota["value"] is None:
            module.warn(
                f"The account's vCPU quota for {name} ({quota['name']}, {code}) could not be read"
                f" ({quota['reason']}), so it was not checked; if the instance never starts, look at"
                " the quota in the Service Quotas console."
            )
        return quota
    return {"code": "", "name": "", "value": None, "reason": "no On-Demand vCPU quota is known for this family"}


def main():
    module = AnsibleAWSModule(
        argument_spec={
            "instance_type": {"type": "str", "required": True},
            "vcpu_quota": {"type": "bool", "default": False},
        },
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
    result = {
        "memory_mib": int(info["MemoryInfo"]["SizeInMiB"]),
        "vcpus": int(info["VCpuInfo"]["DefaultVCpus"]),
        "gpus": int(gpus),
        "architectures": list(info.get("ProcessorInfo", {}).get("SupportedArchitectures", [])),
        "accelerators": accelerators(info),
    }
    if module.params["vcpu_quota"]:
        result["quota"] = quota_of(module, name)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
