"""Instance types checked before anything in AWS changes, and a memory reservation ECS can always place.

The emulator knows only NVIDIA GPU types and no EC2 vCPU quota, so the AMD
and Habana GPUs and the quota cases are checked here on records shaped as
DescribeInstanceTypes and Service Quotas return them; the integration tests
(test_bad_input.py) run what the emulator does know through the playbook.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from ansible_collections.nbstack.cloud.plugins.filter import instance
from ansible_collections.nbstack.cloud.plugins.filter.instance_type import instance_type_problems
from ansible_collections.nbstack.cloud.plugins.modules import instance_type_info

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "files" / "cloudformation" / "instance.yml"


def reported_memory_floor(memory_mib: int) -> int:
    """The least memory the kernel of an ECS-optimized AMI reports (MemTotal), as the reservation assumes.

    95 % of the advertised memory less 256 MiB. What it is measured against:
    the ECS documentation's m4.large registers 7985 of 8192 MiB
    ("Reserving Amazon ECS Linux container instance memory", with
    ECS_RESERVED_MEMORY 0, so MemTotal); an inf1.xlarge's free -m total is
    7679 of 8192 (aws/amazon-ecs-agent#3331); a c4.2xlarge registers 15042
    of 15360 (aws/amazon-ecs-agent#399); the page tables alone take 1.6 %
    (64 bytes per 4 KiB page), which is what dominates on the largest types.
    """
    return int(memory_mib * 0.95) - 256


@pytest.mark.parametrize(
    ("advertised", "reported"),
    [(8192, 7985), (8192, 7679), (15360, 15042)],
    ids=["m4.large-ecs-docs", "inf1.xlarge-free", "c4.2xlarge-registered"],
)
def test_the_floor_is_below_what_instances_report(advertised: int, reported: int) -> None:
    assert reported_memory_floor(advertised) <= reported


# Advertised MiB (DescribeInstanceTypes MemoryInfo.SizeInMiB) of real types, small to largest.
TYPES = {
    "t3.small": 2048,
    "t3.medium": 4096,
    "m5.xlarge": 16384,
    "g5.xlarge": 16384,
    "r5.8xlarge": 262144,
    "r6i.16xlarge": 524288,
    "x1.16xlarge": 999424,
    "p4d.24xlarge": 1179648,
    "x2iedn.32xlarge": 4194304,
}


@pytest.mark.parametrize("name", TYPES)
def test_the_reservation_fits_what_ecs_registers_on_every_type(name: str) -> None:
    """ECS registers MemTotal less ECS_RESERVED_MEMORY; the container's reservation must fit in it."""
    memory = TYPES[name]
    reservation = instance.memory_reservation(memory)
    assert reservation + instance.AGENT_RESERVED_MIB <= reported_memory_floor(memory)
    assert reservation >= 512  # the template's MinValue, and room for Jupyter
    # Not wasteful either: the container reserves most of the instance.
    assert reservation >= memory * 0.9 - 512


def test_the_reservation_on_a_16_gib_type() -> None:
    # 16384 less 6 % (984, rounded up), 256 MiB for the kernel and 256 for the agent.
    assert instance.memory_reservation(16384) == 14888


def ecs_config() -> list[str]:
    template, matches = decode(str(TEMPLATE))
    assert not matches, matches
    (launch,) = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::EC2::LaunchTemplate"]
    user_data = launch["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"][0]
    return user_data.split("cat >> /etc/ecs/ecs.config <<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0].splitlines()


def test_the_agent_keeps_the_memory_the_reservation_leaves_it() -> None:
    """The user data's ECS_RESERVED_MEMORY is the one memory_reservation subtracts."""
    reserved = [line.split("=", 1)[1] for line in ecs_config() if line.startswith("ECS_RESERVED_MEMORY=")]
    assert reserved == [str(instance.AGENT_RESERVED_MIB)]


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("m5.xlarge", "L-1216C47A"),
        ("t3.medium", "L-1216C47A"),
        ("r6i.16xlarge", "L-1216C47A"),
        ("im4gn.large", "L-1216C47A"),
        ("is4gen.large", "L-1216C47A"),
        ("z1d.large", "L-1216C47A"),
        ("hpc7a.96xlarge", "L-F7808C92"),
        ("g5.xlarge", "L-DB2E81BA"),
        ("g4ad.xlarge", "L-DB2E81BA"),
        ("gr6.4xlarge", "L-DB2E81BA"),
        ("vt1.3xlarge", "L-DB2E81BA"),
        ("p4d.24xlarge", "L-417A185B"),
        ("p5.48xlarge", "L-417A185B"),
        ("inf2.xlarge", "L-1945791B"),
        ("trn1.2xlarge", "L-2C3B7624"),
        ("dl1.24xlarge", "L-6E869C2A"),
        ("f2.6xlarge", "L-74FC7D96"),
        ("x2iedn.32xlarge", "L-7295265B"),
        ("u7i-12tb.224xlarge", "L-43DA4232"),
        ("u-6tb1.metal", "L-43DA4232"),
        ("bogus", ""),
    ],
)
def test_each_family_has_its_on_demand_vcpu_quota(name: str, code: str) -> None:
    assert instance_type_info.vcpu_quota_code(name) == code


def described(name: str, **extra: Any) -> dict[str, Any]:
    """A DescribeInstanceTypes entry, as EC2 gives it."""
    return {"InstanceType": name, "MemoryInfo": {"SizeInMiB": 16384}, "VCpuInfo": {"DefaultVCpus": 4},
            "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]}, **extra}


def info(entry: dict[str, Any], quota: float | None = None, code: str = "L-DB2E81BA") -> dict[str, Any]:
    """What instance_type_info returns for an entry, with the quota as Service Quotas gives it (None: unreadable)."""
    return {
        "memory_mib": entry["MemoryInfo"]["SizeInMiB"],
        "vcpus": entry["VCpuInfo"]["DefaultVCpus"],
        "architectures": entry["ProcessorInfo"]["SupportedArchitectures"],
        "accelerators": instance_type_info.accelerators(entry),
        "quota": {"code": code, "name": instance_type_info.VCPU_QUOTAS[code][0], "value": quota, "reason": ""},
    }


def problems(entry: dict[str, Any], quota: float | None = 64.0, code: str = "L-DB2E81BA") -> list[str]:
    return instance_type_problems(info(entry, quota, code), entry["InstanceType"], "eu-west-1", TEMPLATE.read_text())


NVIDIA = {"Gpus": [{"Name": "A10G", "Manufacturer": "NVIDIA", "Count": 1, "MemoryInfo": {"SizeInMiB": 22888}}]}


def test_an_nvidia_type_within_its_quota_passes() -> None:
    assert problems(described("g5.xlarge", GpuInfo=NVIDIA), quota=8.0) == []
    assert problems(described("m5.xlarge"), quota=5.0, code="L-1216C47A") == []


def test_graviton_is_refused_naming_the_image_platform() -> None:
    (problem,) = problems(described("m6g.large", ProcessorInfo={"SupportedArchitectures": ["arm64"]}), code="L-1216C47A")
    assert problem.startswith("instance_type: m6g.large has arm64 processors")
    assert "linux/amd64" in problem and "image_platform" in problem and "multi-arch" in problem


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        (described("g4ad.xlarge", GpuInfo={"Gpus": [{"Name": "Radeon Pro V520", "Manufacturer": "AMD", "Count": 1}]}),
         "1 AMD GPU (Radeon Pro V520)"),
        (described("dl1.24xlarge", GpuInfo={"Gpus": [{"Name": "Gaudi HL-205", "Manufacturer": "Habana", "Count": 8}]}),
         "8 Habana GPUs (Gaudi HL-205)"),
        (described("inf2.xlarge", InferenceAcceleratorInfo={"Accelerators": [{"Name": "Inferentia2", "Manufacturer": "AWS", "Count": 1}]},
                   NeuronInfo={"NeuronDevices": [{"Name": "Inferentia2", "Count": 1}]}),
         "1 Neuron device (Inferentia2)"),
        (described("trn1.2xlarge", NeuronInfo={"NeuronDevices": [{"Name": "Trainium", "Count": 1}]}), "1 Neuron device (Trainium)"),
    ],
    ids=["amd", "habana", "inferentia", "trainium"],
)
def test_accelerators_other_than_nvidia_gpus_are_refused(entry: dict[str, Any], named: str) -> None:
    (problem,) = problems(entry, code=instance_type_info.vcpu_quota_code(entry["InstanceType"]))
    assert problem.startswith(f"instance_type: {entry['InstanceType']} has {named}, which nbstack cannot use")
    assert "NVIDIA GPUs only" in problem and "g5" in problem


def test_a_quota_below_the_types_vcpus_is_refused_with_how_to_raise_it() -> None:
    (problem,) = problems(described("g5.xlarge", GpuInfo=NVIDIA), quota=0.0)
    assert 'the account\'s quota "Running On-Demand G and VT instances" (L-DB2E81BA) in eu-west-1 is 0 vCPUs' in problem
    assert "--service-code ec2 --quota-code L-DB2E81BA --desired-value 4 --region eu-west-1" in problem
    assert "servicequotas/home/services/ec2/quotas/L-DB2E81BA" in problem
    (short,) = problems(described("g5.xlarge", GpuInfo=NVIDIA), quota=2.0)
    assert "is 2 vCPUs" in short


def test_an_unreadable_quota_is_no_problem() -> None:
    """The module warns instead (AccessDenied, or an endpoint without Service Quotas)."""
    assert problems(described("g5.xlarge", GpuInfo=NVIDIA), quota=None) == []


@pytest.mark.parametrize(("name", "memory", "said"), [("t3.micro", 1024, "under the 512 MiB"), ("u-12tb1.112xlarge", 12582912, "above the")])
def test_a_reservation_outside_the_templates_bounds_is_refused(name: str, memory: int, said: str) -> None:
    (problem,) = problems(described(name, MemoryInfo={"SizeInMiB": memory}), code="L-1216C47A")
    assert problem.startswith(f"instance_type: {name} has {memory} MiB of memory") and said in problem


def test_every_problem_of_a_type_is_reported() -> None:
    entry = described("g5g.xlarge", ProcessorInfo={"SupportedArchitectures": ["arm64"]},
                      GpuInfo={"Gpus": [{"Name": "T4g", "Manufacturer": "NVIDIA", "Count": 1}]})
    found = problems(entry, quota=0.0)
    assert [p.split(" has ", 1)[1].split(" ", 1)[0] for p in found] == ["arm64", "4"]
