"""A team that brings its own VPC: no network stack, and a full teardown.

The network stack's own deletion is not exercised here: the emulator leaves
the NAT gateway and load balancer interfaces behind when it deletes stacks,
so deleting the VPC then fails there (it does not on AWS).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from team import APP

from nbstack_devkit.emulator import Clients, Emulator
from nbstack_devkit.playbooks import PlaybookRun, Playbooks, ok


@pytest.fixture(scope="module")
def given(emulator: Emulator, aws: Clients) -> dict[str, object]:
    emulator.reset()
    vpc = aws.ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    aws.ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # off in a new VPC
    subnets = [
        aws.ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{n}.0/24", AvailabilityZone=f"eu-west-1{zone}")["Subnet"][
            "SubnetId"
        ]
        # Public in a and b; private in a: a zone the load balancer has.
        for n, zone in enumerate("aba")
    ]
    address = aws.ec2.allocate_address(Domain="vpc")
    nat = aws.ec2.create_nat_gateway(SubnetId=subnets[0], AllocationId=address["AllocationId"])
    return {
        "vpc": vpc,
        "public": subnets[:2],
        "private": subnets[2:],
        "egress_ip": address["PublicIp"],
        "nat": nat["NatGateway"]["NatGatewayId"],
    }


def network_args(given: dict[str, object]) -> list[str]:
    return [
        "-e",
        json.dumps(
            {
                "notebook_vpc_id": given["vpc"],
                "notebook_public_subnet_ids": given["public"],
                "notebook_private_subnet_ids": given["private"],
            }
        ),
    ]


@pytest.fixture(scope="module")
def up(given: dict[str, object], playbooks: Playbooks) -> PlaybookRun:
    return ok(playbooks.up("alice", *network_args(given)))


def test_uses_the_given_network_without_a_network_stack(up: PlaybookRun, given: dict, aws: Clients) -> None:
    names = {s["StackName"] for s in aws.cloudformation.describe_stacks()["Stacks"]}
    assert names == {f"{APP}-persistent", f"{APP}-alice-work", f"{APP}-alice"}
    persistent = {
        p["ParameterKey"]: p["ParameterValue"]
        for p in aws.cloudformation.describe_stacks(StackName=f"{APP}-persistent")["Stacks"][0]["Parameters"]
    }
    assert persistent["VpcId"] == given["vpc"]
    alice = {
        o["OutputKey"]: o["OutputValue"]
        for o in aws.cloudformation.describe_stacks(StackName=f"{APP}-alice")["Stacks"][0]["Outputs"]
    }
    group = aws.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[alice["AutoScalingGroupName"]])
    assert group["AutoScalingGroups"][0]["VPCZoneIdentifier"] == given["private"][0]


def test_reports_the_nat_address_of_the_given_vpc(up: PlaybookRun, given: dict) -> None:
    assert f"Egress IP (allow-list it at the warehouse): {given['egress_ip']}" in up.text


def test_a_vpc_that_does_not_exist_is_refused(up: PlaybookRun, playbooks: Playbooks, aws: Clients, given: dict) -> None:
    wrong = dict(given, vpc="vpc-0123456789abcdef0")
    # Preflight looks the VPC up: said with the other problems, before anything changes,
    # with the team's stacks up or not.
    for app in (APP, "nbother"):
        run = playbooks.up("alice", *network_args(wrong), "-e", f"notebook_app_name={app}")
        assert run.returncode != 0
        assert "notebook_vpc_id vpc-0123456789abcdef0 does not exist in eu-west-1" in run.text, run.text[-3000:]
    assert not [s for s in aws.cloudformation.describe_stacks()["Stacks"] if s["StackName"].startswith("nbother-")]


@pytest.mark.parametrize("support", [True, False], ids=["hostnames-off", "resolution-off"])
def test_a_vpc_that_cannot_resolve_the_work_volume_is_refused(playbooks: Playbooks, aws: Clients, support: bool) -> None:
    """Tasks mount the work volume by its DNS name, which only a VPC with DNS resolution and hostnames resolves."""
    vpc = aws.ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]  # hostnames off, as AWS makes a VPC
    aws.ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": support})
    made = [
        aws.ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.7.{n}.0/24", AvailabilityZone=f"eu-west-1{zone}")["Subnet"]["SubnetId"]
        for n, zone in enumerate("aba")
    ]
    try:
        network = {"vpc": vpc, "public": made[:2], "private": made[2:]}
        run = playbooks.up("alice", *network_args(network), "-e", "notebook_app_name=nbother")
        assert run.returncode != 0
        off = "DNS hostnames" if support else "DNS resolution and DNS hostnames"
        assert f"notebook_vpc_id {vpc} has {off} off, so its notebook servers cannot mount their work volume" in run.text, (
            run.text[-3000:]
        )
        assert "nothing in AWS was changed" in run.text
        assert not [s for s in aws.cloudformation.describe_stacks()["Stacks"] if s["StackName"].startswith("nbother-")]
    finally:
        for subnet_id in made:
            aws.ec2.delete_subnet(SubnetId=subnet_id)
        aws.ec2.delete_vpc(VpcId=vpc)


def test_subnets_missing_elsewhere_or_sharing_a_zone_are_refused_before_anything_changes(
    up: PlaybookRun, playbooks: Playbooks, aws: Clients, given: dict
) -> None:
    """CloudFormation would fail the persistent stack (two load balancer subnets in one zone) or the work stack
    (two mount targets in one zone) half-way through the run, and a server in a zone the load balancer is not in
    would never answer: preflight says so first, every problem at once."""
    made = [
        aws.ec2.create_subnet(VpcId=given["vpc"], CidrBlock=f"10.9.{60 + n}.0/24", AvailabilityZone=f"eu-west-1{zone}")[
            "Subnet"
        ]["SubnetId"]
        for n, zone in enumerate("aac")
    ]
    public_a, private_a, private_c = made
    elsewhere_vpc = aws.ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    try:
        elsewhere = aws.ec2.create_subnet(VpcId=elsewhere_vpc, CidrBlock="10.8.1.0/24", AvailabilityZone="eu-west-1b")
        elsewhere_id = elsewhere["Subnet"]["SubnetId"]
        first_public = given["public"][0]
        (first_private,) = given["private"]
        wrong = dict(
            given,
            public=[first_public, public_a],
            private=[first_private, private_a, private_c, elsewhere_id, "subnet-0123456789abcdef0"],
        )
        run = playbooks.up("alice", *network_args(wrong), "-e", "notebook_app_name=nbother")
        assert run.returncode != 0
        for problem in (
            "notebook_private_subnet_ids: subnet-0123456789abcdef0 does not exist in eu-west-1",
            f"notebook_public_subnet_ids: {first_public} and {public_a} are in the same zone, eu-west-1a, and the load"
            " balancer takes one subnet per zone",
            f"notebook_private_subnet_ids: {elsewhere_id} is in {elsewhere_vpc}, not in notebook_vpc_id {given['vpc']}",
            f"notebook_private_subnet_ids: {first_private} and {private_a} are in the same zone, eu-west-1a, and the work"
            " volume has one mount target per zone",
            f"notebook_private_subnet_ids: {private_c} is in eu-west-1c, where the load balancer has no subnet",
        ):
            assert problem in run.text, run.text[-3000:]
        assert "nothing in AWS was changed" in run.text
        assert not [s for s in aws.cloudformation.describe_stacks()["Stacks"] if s["StackName"].startswith("nbother-")]
    finally:
        for subnet in aws.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [elsewhere_vpc]}])["Subnets"]:
            aws.ec2.delete_subnet(SubnetId=subnet["SubnetId"])
        aws.ec2.delete_vpc(VpcId=elsewhere_vpc)
        for subnet_id in made:
            aws.ec2.delete_subnet(SubnetId=subnet_id)


#: The subnets are a team-wide setting: a person's up.yml changes them only when told to.
TEAM_UPDATE = ("-e", "team_update=true")


def mount_targets(aws: Clients) -> dict[str, tuple[str, str]]:
    """alice's mount targets: {zone: (subnet, mount target id)}."""
    stack = aws.cloudformation.describe_stacks(StackName=f"{APP}-alice-work")["Stacks"][0]
    fs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["FileSystemId"]
    targets = aws.efs.describe_mount_targets(FileSystemId=fs)["MountTargets"]
    return {t["AvailabilityZoneName"]: (t["SubnetId"], t["MountTargetId"]) for t in targets}


def said_to_run_down_first(refused: PlaybookRun, first: str) -> None:
    """The run failed, saying that dropping `first` would take alice's mount target from under her server."""
    assert refused.returncode != 0
    assert (
        f"notebook_private_subnet_ids: no longer includes {first}, where alice's work volume has a mount target, "
        f"and alice's server stack ({APP}-alice) exists"
    ) in refused.text, refused.text[-3000:]
    assert "Run down.yml -e prefix=alice first" in refused.text


@pytest.fixture
def replacing(aws: Clients, given: dict) -> Iterator[str]:
    """Another private subnet in the zone of alice's server."""
    subnet = aws.ec2.create_subnet(VpcId=given["vpc"], CidrBlock="10.9.50.0/24", AvailabilityZone="eu-west-1a")
    yield subnet["Subnet"]["SubnetId"]
    aws.ec2.delete_subnet(SubnetId=subnet["Subnet"]["SubnetId"])


def test_a_subnet_change_that_would_take_a_mount_target_from_under_the_server_waits_for_down(
    up: PlaybookRun, playbooks: Playbooks, aws: Clients, given: dict, replacing: str
) -> None:
    """The server mounts its files through its zone's mount target: dropping that subnet is refused while its stack
    exists, before anything changes, and the refusal says to run down.yml first."""
    (first,) = given["private"]
    before = mount_targets(aws)
    assert {zone: subnet for zone, (subnet, _) in before.items()} == {"eu-west-1a": first}
    stacks = {s["StackName"]: s.get("LastUpdatedTime") for s in aws.cloudformation.describe_stacks()["Stacks"]}
    refused = playbooks.up("alice", *network_args(dict(given, private=[replacing])), *TEAM_UPDATE)
    said_to_run_down_first(refused, first)
    assert "nothing in AWS was changed" in refused.text
    assert {s["StackName"]: s.get("LastUpdatedTime") for s in aws.cloudformation.describe_stacks()["Stacks"]} == stacks
    assert mount_targets(aws) == before


def test_the_work_role_itself_refuses_to_take_a_mount_target_from_under_the_server(
    up: PlaybookRun, playbooks: Playbooks, aws: Clients, given: dict, replacing: str
) -> None:
    """Preflight's read of the stacks may fail without stopping the run: the work role checks again before it
    deletes a mount target, and changes nothing while the person's server stack exists."""
    (first,) = given["private"]
    before = mount_targets(aws)
    updated = aws.cloudformation.describe_stacks(StackName=f"{APP}-alice-work")["Stacks"][0].get("LastUpdatedTime")
    refused = playbooks.run(
        "tests/integration/playbooks/work_role.yml",
        "-e",
        json.dumps({"prefix": "alice", "subnets": [replacing]}),
        with_vault=False,
    )
    said_to_run_down_first(refused, first)
    assert aws.cloudformation.describe_stacks(StackName=f"{APP}-alice-work")["Stacks"][0].get("LastUpdatedTime") == updated
    assert mount_targets(aws) == before


def test_persistent_absent_removes_everything_but_the_given_vpc(
    up: PlaybookRun, playbooks: Playbooks, aws: Clients, given: dict
) -> None:
    # Bob was up once and went down: his secrets stay until the team removes everything.
    aws.secretsmanager.create_secret(Name=f"{APP}/bob/github-token", SecretString="bobs-token-value")
    # Another app's secret, whose name starts with this app's, is not this app's.
    aws.secretsmanager.create_secret(Name=f"{APP}x/carol/github-token", SecretString="carols-token-value")
    assert {s["Name"] for s in aws.secretsmanager.list_secrets()["SecretList"]} >= {
        f"{APP}/alice/github-token", f"{APP}/bob/github-token"
    }

    # force: the emulator runs no task, so no autosave of alice's is recorded (the purge refuses that otherwise).
    run = ok(playbooks.down("alice", "-e", "persistent=absent", "-e", "purge_work=true", "-e", "force=true"))
    assert "persistent and network stacks and the secrets are removed" in run.text
    assert aws.cloudformation.describe_stacks()["Stacks"] == []
    assert [s["Name"] for s in aws.secretsmanager.list_secrets()["SecretList"]] == [f"{APP}x/carol/github-token"]
    for value in ("bobs-token-value", "carols-token-value"):
        assert value not in run.output
    # The names were free at once: the next up stores the secrets again.
    ok(playbooks.up("alice", *network_args(given)))
    assert f"{APP}/alice/github-token" in {s["Name"] for s in aws.secretsmanager.list_secrets()["SecretList"]}
    assert aws.ec2.describe_vpcs(VpcIds=[given["vpc"]])["Vpcs"][0]["VpcId"] == given["vpc"]
