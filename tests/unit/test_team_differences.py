"""Team-wide settings and shared stacks: the comparison preflight makes, and the roles' choices the emulator cannot show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ansible_collections.nbstack.cloud.plugins.filter import team
from ansible_collections.nbstack.cloud.plugins.modules import stack_rollback

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n"
TEMPLATES = {name: {"path": f"files/cloudformation/{name}.yml", "body": TEMPLATE} for name in ("network", "persistent")}


def stack(parameters: dict[str, str], template: str = TEMPLATE) -> dict[str, Any]:
    return {"stack_parameters": parameters, "stack_template": template}


def wanted(**values: Any) -> list[dict[str, Any]]:
    return [{"setting": setting, "stack": "persistent", "parameter": parameter, "value": values[setting]}
            for setting, parameter in (("notebook_port", "NotebookPort"), ("notebook_certificate_arn", "CertificateArn"))
            if setting in values]


def test_absent_stacks_and_equal_values_are_no_difference() -> None:
    assert team.team_differences({"network": {}, "persistent": {}}, wanted(notebook_port=8888), TEMPLATES, ["10.0.0.0/8"]) == []
    shared = {"network": {}, "persistent": stack({"NotebookPort": "8888", "CertificateArn": ""})}
    assert team.team_differences(shared, wanted(notebook_port=8888, notebook_certificate_arn=""), TEMPLATES,
                                 ["10.0.0.0/8", "192.0.2.0/24"], ["192.0.2.0/24", "10.0.0.0/8"]) == []


def test_each_difference_is_named_with_both_values() -> None:
    shared = {"network": stack({"VpcCidr": "10.42.0.0/16"}), "persistent": stack({"NotebookPort": "8888", "CertificateArn": ""})}
    found = team.team_differences(shared, wanted(notebook_port=9999, notebook_certificate_arn="arn:x"), TEMPLATES,
                                  ["10.0.0.0/8"], ["10.0.0.0/8", "192.0.2.0/24"])
    assert [team.team_difference_line(d) for d in found] == [
        "notebook_port: the shared stacks hold 8888, this checkout has 9999",
        'notebook_certificate_arn: the shared stacks hold "", this checkout has arn:x',
        "notebook_allowed_cidrs: the shared stacks hold 10.0.0.0/8, 192.0.2.0/24, this checkout has 10.0.0.0/8",
    ]


def test_a_security_group_without_ranges_yet_is_no_difference() -> None:
    shared = {"network": {}, "persistent": stack({})}
    assert team.team_differences(shared, [], TEMPLATES, ["10.0.0.0/8"], []) == []


def test_another_template_is_a_difference() -> None:
    shared = {"network": stack({}, TEMPLATE + "  Other:\n    Type: AWS::SNS::Topic\n"), "persistent": stack({})}
    (found,) = team.team_differences(shared, [], TEMPLATES, [], None)
    assert found["setting"] == "files/cloudformation/network.yml"
    assert "2 lines changed" in found["checkout"]


def test_every_parameter_a_setting_gives_the_shared_stacks_is_compared() -> None:
    """A parameter added to the persistent or network role must be added to preflight's team-wide list."""
    compared = {
        (item["stack"], item["parameter"])
        for task in yaml.safe_load((ROOT / "roles/preflight/tasks/team.yml").read_text())
        for item in (task.get("vars") or {}).get("preflight__team_wanted", [])
    }
    sent = set()
    for role in ("persistent", "network"):
        for task in yaml.safe_load((ROOT / f"roles/{role}/tasks/main.yml").read_text()):
            for inner in [task, *task.get("block", [])]:
                parameters = (inner.get("vars") or {}).get("stack_parameters") or {}
                sent |= {(role, name) for name in parameters}
    # The app's name is the stacks' names; the subnet ranges follow VpcCidr.
    derived = {("persistent", "AppName"), ("network", "AppName")} | {
        ("network", name) for name in ("PublicSubnet1Cidr", "PublicSubnet2Cidr", "PrivateSubnet1Cidr", "PrivateSubnet2Cidr")
    }
    assert sent - derived <= compared, sent - derived - compared


def test_shared_stacks_are_protected_and_never_re_created() -> None:
    for role in ("persistent", "network"):
        text = (ROOT / f"roles/{role}/tasks/main.yml").read_text()
        assert "stack_termination_protection: true" in text
        assert "stack_recreate_failed" not in text
        assert "stack_create_timeout:" in text


def test_every_state_cloudformation_updates_from_is_in_the_one_list() -> None:
    states = yaml.safe_load((ROOT / "roles/stack/vars/main.yml").read_text())["stack__updatable_states"]
    assert sorted(states) == sorted(
        ["CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"]
    )


def test_the_failed_resources_are_those_since_the_last_operation_began() -> None:
    name = "app-persistent"
    events = [  # newest first, as DescribeStackEvents returns them
        {"LogicalResourceId": name, "ResourceType": "AWS::CloudFormation::Stack", "ResourceStatus": "UPDATE_ROLLBACK_FAILED"},
        {"LogicalResourceId": "Route", "ResourceType": "AWS::EC2::Route", "ResourceStatus": "UPDATE_FAILED",
         "ResourceStatusReason": "deleted by hand"},
        {"LogicalResourceId": name, "ResourceType": "AWS::CloudFormation::Stack", "ResourceStatus": "UPDATE_ROLLBACK_IN_PROGRESS"},
        {"LogicalResourceId": "Listener", "ResourceType": "AWS::ElasticLoadBalancingV2::Listener",
         "ResourceStatus": "UPDATE_FAILED", "ResourceStatusReason": "certificate not found"},
        {"LogicalResourceId": name, "ResourceType": "AWS::CloudFormation::Stack", "ResourceStatus": "UPDATE_IN_PROGRESS"},
        {"LogicalResourceId": "Old", "ResourceType": "AWS::SNS::Topic", "ResourceStatus": "CREATE_FAILED"},
    ]
    failed = stack_rollback.failed_resources(events, name)
    assert [r["logical_id"] for r in failed] == ["Route", "Listener"]
    assert stack_rollback.summary(failed) == (
        "Route (AWS::EC2::Route) UPDATE_FAILED: deleted by hand; "
        "Listener (AWS::ElasticLoadBalancingV2::Listener) UPDATE_FAILED: certificate not found"
    )
