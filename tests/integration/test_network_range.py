"""notebook_vpc_cidr reaches the network stack: the four subnets are planned inside any valid range."""

from __future__ import annotations

import ipaddress

from team import APP

from nbstack_devkit.emulator import Clients, Emulator
from nbstack_devkit.playbooks import Playbooks, ok

RANGE = "172.20.128.0/18"


def test_the_subnets_are_planned_inside_another_range(emulator: Emulator, playbooks: Playbooks, aws: Clients) -> None:
    emulator.reset()
    ok(playbooks.up("alice", "-e", f"notebook_vpc_cidr={RANGE}"))
    outputs = {
        item["OutputKey"]: item["OutputValue"]
        for item in aws.cloudformation.describe_stacks(StackName=f"{APP}-network")["Stacks"][0]["Outputs"]
    }
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
