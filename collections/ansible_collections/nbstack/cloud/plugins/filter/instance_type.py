# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether an instance type can run the notebook server (preflight role).

Documentation: instance_type_problems.yml beside this file.
"""

from __future__ import annotations

from ansible_collections.nbstack.cloud.plugins.filter.instance import memory_reservation
from ansible_collections.nbstack.cloud.plugins.module_utils.wording import counted
from ansible_collections.nbstack.cloud.plugins.plugin_utils.template import parameters

#: The one processor architecture of the notebook image (the image role
#: builds for linux/amd64 only) and of the ECS-optimized AMIs the instance
#: template resolves (the x86_64 ones).
ARCHITECTURE = "x86_64"
#: The only accelerators the GPU path can use: the ECS GPU-optimized AMI
#: carries NVIDIA's driver, and the GPU image is built on CUDA.
GPU_MAKER = "NVIDIA"
#: The instance template parameter the reservation becomes.
RESERVATION_PARAMETER = "ContainerMemoryReservation"

_KINDS = {"gpu": "GPU", "neuron": "Neuron device", "inference": "inference accelerator", "fpga": "FPGA", "media": "media accelerator"}


def _accelerator(item):
    """"1 AMD GPU (Radeon Pro V520)", "1 AWS Neuron device (Trainium)"."""
    maker = (item.get("manufacturer") or "").strip()
    noun = counted(int(item.get("count") or 0), f"{maker} {_KINDS.get(item.get('kind'), 'accelerator')}".strip())
    name = (item.get("name") or "").strip()
    return f"{noun} ({name})" if name else noun


def _architecture_problem(name, architectures):
    if ARCHITECTURE in architectures:
        return []
    return [
        f"instance_type: {name} has {' and '.join(architectures) or 'no listed'} processors (arm64 is AWS Graviton),"
        " while the notebook image is built for linux/amd64 only (the image role's image_platform) and the instance"
        " runs the x86_64 ECS-optimized AMI, so the container could not start. Choose an x86_64 type, like m6i.xlarge,"
        " or g5.xlarge for a GPU (arm64 would need a multi-arch image and the arm64 AMI, which nbstack does not build)"
    ]


def _accelerator_problem(name, accelerators):
    other = [a for a in accelerators if not (a.get("kind") == "gpu" and str(a.get("manufacturer", "")).upper() == GPU_MAKER)]
    if not other:
        return []
    return [
        f"instance_type: {name} has {', '.join(map(_accelerator, other))}, which nbstack cannot use: its GPU path runs"
        " the ECS GPU-optimized AMI (NVIDIA's driver) and the CUDA image, for NVIDIA GPUs only, so the accelerators would"
        " be paid for and sit idle or the container would not start. Choose a type with NVIDIA GPUs (g4dn, g5, g6, p4d,"
        " p5) or one without accelerators (m6i, r6i, c6i)"
    ]


def _quota_problem(name, vcpus, quota, region):
    value = (quota or {}).get("value")
    if value is None or float(value) >= vcpus:
        return []
    code = quota["code"]
    return [
        f"instance_type: {name} has {counted(vcpus, 'vCPU')}, and the account's quota \"{quota['name']}\" ({code})"
        f" in {region} is {float(value):g} vCPUs, so its instance would never start (the quota counts every running"
        " instance of these families; this check compares it with this type's vCPUs alone). Ask AWS for at least"
        f" {vcpus}: in the Service Quotas console (https://console.aws.amazon.com/servicequotas/home/services/ec2/quotas/{code}),"
        f" or with aws service-quotas request-service-quota-increase --service-code ec2 --quota-code {code}"
        f" --desired-value {vcpus} --region {region}; new accounts start at 0 for GPU families and AWS may take"
        " days to answer. Or choose a type of another family"
    ]


def _memory_problem(name, memory_mib, template_body):
    spec = parameters(template_body).get(RESERVATION_PARAMETER, {}) if template_body else {}
    reservation = memory_reservation(memory_mib)
    least, most = spec.get("MinValue"), spec.get("MaxValue")
    if least is not None and reservation < int(least):
        return [
            f"instance_type: {name} has {memory_mib} MiB of memory, which leaves the notebook container {reservation} MiB"
            f" once the kernel and the ECS agent have theirs, under the {int(least)} MiB it needs. Choose a type with"
            " 2 GiB of memory or more, like t3.small or m6i.large"
        ]
    if most is not None and reservation > int(most):
        return [
            f"instance_type: {name} has {memory_mib} MiB of memory, and the container's reservation ({reservation} MiB)"
            f" is above the {int(most)} MiB the instance template accepts. Choose a type with less memory"
        ]
    return []


def instance_type_problems(info, name, region, template_body=""):
    """Why the instance type cannot run the notebook server: processors, accelerators, vCPU quota, memory.

    ``info`` is what nbstack.cloud.instance_type_info returns (with
    vcpu_quota). A quota that could not be read is no problem here (the
    module warned). ``template_body`` is the instance template, whose
    ContainerMemoryReservation bounds the reservation.
    """
    return (
        _architecture_problem(name, list(info.get("architectures") or []))
        + _accelerator_problem(name, list(info.get("accelerators") or []))
        + _quota_problem(name, int(info.get("vcpus") or 0), info.get("quota"), region)
        + _memory_problem(name, int(info.get("memory_mib") or 0), template_body)
    )


class FilterModule:
    """Checks of the instance type."""

    def filters(self):
        return {"instance_type_problems": instance_type_problems}
