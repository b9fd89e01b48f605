"""Team-wide settings behind the persistent stack's exports change while people's stacks exist.

CloudFormation refuses to change an export while a stack imports it (the
emulator does not enforce this; tests/unit/test_templates.py asserts that
the instance stack imports no value a setting changes). Here: a port change
with alice's stack present reaches her stack through up.yml, as parameters;
then, with a stack made by an earlier nbstack that still imports the port
(bob's, written here as such a stack is: tagged as his, importing the
export), preflight refuses a port change and a VPC change before anything
changes, naming the stacks.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from team import APP, PersonPlaybooks

from nbstack_devkit.emulator import Clients, Emulator
from nbstack_devkit.playbooks import PlaybookRun, Playbooks, ok

PREFIX = "alice"
PERSISTENT = f"{APP}-persistent"
PORTS = {"notebook_port": 9000, "notebook_health_port": 9001}


def stack(aws: Clients, name: str) -> dict[str, Any]:
    (found,) = aws.cloudformation.describe_stacks(StackName=name)["Stacks"]
    return {
        "parameters": {p["ParameterKey"]: p["ParameterValue"] for p in found.get("Parameters", [])},
        "outputs": {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])},
        "updated": found.get("LastUpdatedTime"),
    }


@pytest.fixture(scope="module")
def ports_changed(emulator: Emulator, playbooks: Playbooks, aws: Clients) -> dict[str, Any]:
    emulator.reset()
    ok(playbooks.up(PREFIX))
    before = stack(aws, f"{APP}-{PREFIX}")
    run = ok(playbooks.up(PREFIX, "-e", json.dumps(PORTS), "-e", "team_update=true"))
    return {"run": run, "before": before, "after": stack(aws, f"{APP}-{PREFIX}"), "persistent": stack(aws, PERSISTENT)}


def test_a_port_change_reaches_an_existing_instance_stack_as_parameters(ports_changed: dict[str, Any]) -> None:
    assert ports_changed["before"]["parameters"]["NotebookPort"] == "8888"
    parameters = ports_changed["after"]["parameters"]
    assert (parameters["NotebookPort"], parameters["HealthPort"]) == ("9000", "9001")
    assert ports_changed["persistent"]["outputs"]["NotebookPort"] == "9000"
    subnets = ports_changed["persistent"]["outputs"]["PrivateSubnetIds"].split(",")
    assert parameters["PrivateSubnetIds"].strip("[]").replace("'", "").replace(" ", "").split(",") == subnets


def test_the_target_group_probes_the_new_ports(ports_changed: dict[str, Any], aws: Clients) -> None:
    arn = ports_changed["after"]["outputs"]["TargetGroupArn"]
    (group,) = aws.elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"]
    assert (group["Port"], group["HealthCheckPort"]) == (9000, "9001")


# ---------------------------------------------------------------- refusals

EARLIER_STACK = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Parameters": {"PersistentStackName": {"Type": "String"}},
    "Resources": {
        "Queue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"Tags": [{"Key": "port", "Value": {"Fn::ImportValue": {"Fn::Sub": "${PersistentStackName}-NotebookPort"}}}]},
        }
    },
}


@pytest.fixture(scope="module")
def refusals(ports_changed: dict[str, Any], playbooks: Playbooks, aws: Clients, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # Two people's stacks: each runs with a vault file of their own (the team vault serves one person only).
    people = PersonPlaybooks(playbooks, tmp_path_factory.mktemp("people") / "vault")
    # bob's stack as an earlier nbstack made it: it imports the port instead of taking it as a parameter.
    aws.cloudformation.create_stack(
        StackName=f"{APP}-bob",
        TemplateBody=json.dumps(EARLIER_STACK),
        Parameters=[{"ParameterKey": "PersistentStackName", "ParameterValue": PERSISTENT}],
        Tags=[{"Key": "nbstack:app", "Value": APP}, {"Key": "nbstack:kind", "Value": "instance"}, {"Key": "nbstack:prefix", "Value": "bob"}],
    )
    held = stack(aws, PERSISTENT)
    vpc = aws.ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    aws.ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # off in a new VPC
    subnets = [
        aws.ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{n}.0/24", AvailabilityZone=f"eu-west-1{zone}")["Subnet"]["SubnetId"] for n, zone in enumerate("aba")
    ]
    network = {"notebook_vpc_id": vpc, "notebook_public_subnet_ids": subnets[:2], "notebook_private_subnet_ids": subnets[2:]}
    return {
        "held": held,
        "vpc": vpc,
        # team_update: the team-wide change is meant; the export in use is what refuses it.
        "port": people.up(PREFIX, "-e", json.dumps({**PORTS, "notebook_port": 9100}), "-e", "team_update=true"),
        "network": people.up(PREFIX, "-e", json.dumps({**PORTS, **network}), "-e", "team_update=true"),
        "after": stack(aws, PERSISTENT),
    }


def refused(run: PlaybookRun) -> str:
    """The run's text, once it is known that preflight refused it for one problem only."""
    assert run.returncode != 0, run.tail()
    text = " ".join(run.text.split())
    assert "1 problem with the settings; nothing in AWS was changed" in text, run.tail()
    return text


def test_a_port_an_earlier_stack_imports_is_refused_naming_it(refusals: dict[str, Any]) -> None:
    text = refused(refusals["port"])
    assert "notebook_port: changing it from 9000 to 9100" in text
    assert f"{PERSISTENT}-NotebookPort" in text
    assert f"1 instance stack ({APP}-bob) made by an earlier nbstack still imports" in text
    assert "up.yml once with the current setting (9000)" in text
    assert f"{APP}-{PREFIX}" not in text.split("notebook_port:")[1]


def test_a_vpc_change_is_refused_while_instance_stacks_exist(refusals: dict[str, Any]) -> None:
    text = refused(refusals["network"])
    assert f"the network would move from {refusals['held']['parameters']['VpcId']} to {refusals['vpc']}" in text
    # alice's work volume imports the work volume's security group, which the VPC replaces too.
    assert f"2 instance stacks ({APP}-alice, {APP}-bob) and 1 work volume ({APP}-alice-work) import" in text
    assert "-e purge_work=true for each of them" in text and "down.yml -e persistent=absent" in text


def test_nothing_changed_on_a_refusal(refusals: dict[str, Any]) -> None:
    assert refusals["after"] == refusals["held"]
