"""notebook_vpc_cidr reaches the network stack: the four subnets are planned inside any valid range,
and an existing VPC keeps its range and subnets."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from team import APP

from nbstack_devkit.emulator import Clients, Emulator
from nbstack_devkit.paths import ROOT
from nbstack_devkit.playbooks import PlaybookRun, Playbooks, ok

RANGE = "172.20.128.0/18"


@pytest.fixture(scope="module")
def made(emulator: Emulator, playbooks: Playbooks) -> PlaybookRun:
    emulator.reset()
    return ok(playbooks.up("alice", "-e", f"notebook_vpc_cidr={RANGE}"))


def network(aws: Clients) -> dict[str, Any]:
    return aws.cloudformation.describe_stacks(StackName=f"{APP}-network")["Stacks"][0]


def test_the_subnets_are_planned_inside_another_range(made: PlaybookRun, aws: Clients) -> None:
    outputs = {item["OutputKey"]: item["OutputValue"] for item in network(aws)["Outputs"]}
    (vpc,) = aws.ec2.describe_vpcs(VpcIds=[outputs["VpcId"]])["Vpcs"]
    assert vpc["CidrBlock"] == RANGE
    subnets = {s["SubnetId"]: s["CidrBlock"] for s in aws.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]}
    public = sorted(subnets[s] for s in outputs["PublicSubnetIds"].split(","))
    private = sorted(subnets[s] for s in outputs["PrivateSubnetIds"].split(","))
    assert public == ["172.20.128.0/26", "172.20.128.64/26"]
    assert private == ["172.20.132.0/22", "172.20.136.0/22"]
    networks = [ipaddress.ip_network(cidr) for cidr in public + private]
    assert all(net.subnet_of(ipaddress.ip_network(RANGE)) for net in networks)
    assert not any(a.overlaps(b) for i, a in enumerate(networks) for b in networks[i + 1:])


def test_the_private_subnets_reach_s3_through_a_gateway_endpoint(made: PlaybookRun, aws: Clients) -> None:
    vpc = {item["OutputKey"]: item["OutputValue"] for item in network(aws)["Outputs"]}["VpcId"]
    (endpoint,) = aws.ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"]
    assert endpoint["ServiceName"] == "com.amazonaws.eu-west-1.s3"
    assert endpoint["VpcEndpointType"] == "Gateway"
    # The private subnets are the ones whose default route is the NAT gateway (the emulator does
    # not list a template's subnet associations): S3 takes the endpoint there, not the NAT.
    tables = aws.ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"]
    nat_routed = [t for t in tables if any("NatGatewayId" in r for r in t["Routes"])]
    assert nat_routed and set(endpoint["RouteTableIds"]) == {t["RouteTableId"] for t in nat_routed}
    for table in nat_routed:
        assert [r["GatewayId"] for r in table["Routes"] if "DestinationPrefixListId" in r] == [endpoint["VpcEndpointId"]]


def test_another_range_for_the_existing_vpc_is_refused(made: PlaybookRun, playbooks: Playbooks, aws: Clients) -> None:
    before = network(aws)
    run = playbooks.up("alice", "-e", "notebook_vpc_cidr=10.9.0.0/16")
    assert run.returncode != 0
    # A team-wide setting: named before anything is read for the change.
    assert f"notebook_vpc_cidr: the shared stacks hold {RANGE}, this checkout has 10.9.0.0/16" in run.text
    # Meant for the whole team, it is still refused: a VPC's range cannot change in place.
    run = playbooks.up("alice", "-e", "notebook_vpc_cidr=10.9.0.0/16", "-e", "team_update=true")
    assert run.returncode != 0
    assert f"the VPC of the {APP}-network stack was made with {RANGE}" in run.text
    after = network(aws)
    assert after["Parameters"] == before["Parameters"] and after.get("LastUpdatedTime") == before.get("LastUpdatedTime")


def test_an_existing_network_keeps_its_subnets(emulator: Emulator, playbooks: Playbooks, aws: Clients) -> None:
    """A network made with other subnets than today's plan (an earlier version's fixed ones in a /17) is left as it is."""
    emulator.reset()
    earlier = {
        "AppName": APP,
        "VpcCidr": "10.42.0.0/17",
        "PublicSubnet1Cidr": "10.42.0.0/24",
        "PublicSubnet2Cidr": "10.42.1.0/24",
        "PrivateSubnet1Cidr": "10.42.16.0/20",
        "PrivateSubnet2Cidr": "10.42.32.0/20",
    }
    aws.cloudformation.create_stack(
        StackName=f"{APP}-network",
        TemplateBody=(ROOT / "files" / "cloudformation" / "network.yml").read_text(),
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in earlier.items()],
        Tags=[{"Key": "nbstack:app", "Value": APP}],
    )
    ok(playbooks.up("alice", "-e", "notebook_vpc_cidr=10.42.0.0/17"))
    after = {p["ParameterKey"]: p["ParameterValue"] for p in network(aws)["Parameters"]}
    assert {key: after[key] for key in earlier} == earlier
