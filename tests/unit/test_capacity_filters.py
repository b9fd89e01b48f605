"""What up.yml decides before touching a person's instance: whether an update replaces it, and what it says."""

from __future__ import annotations

from pathlib import Path

from ansible_collections.nbstack.cloud.plugins.filter import capacity, summary
from ansible_collections.nbstack.cloud.plugins.module_utils.contract import autosave_record

TEMPLATE = (Path(__file__).resolve().parents[2] / "files" / "cloudformation" / "instance.yml").read_text()
#: What the stack holds (cloudformation_info's shape), as the last run left it.
PARAMETERS = {
    "AppName": "app", "Prefix": "alice", "PersistentStackName": "app-persistent", "InstanceType": "m5.xlarge",
    "GpuCount": "0", "EcsAmiId": "ami-0aaaaaaaaaaaaaaa1", "RootVolumeSize": "100", "RootVolumeType": "gp3",
    "IdleTimeoutMinutes": "60", "PrivateSubnetIds": "subnet-01,subnet-02",
}
CURRENT = {"stack_template": TEMPLATE, "stack_parameters": PARAMETERS}


def test_nothing_replaces_the_instance_when_only_the_task_changes() -> None:
    assert capacity.launch_template_changes(CURRENT, TEMPLATE, dict(PARAMETERS, IdleTimeoutMinutes=30)) == []
    assert capacity.launch_template_changes({}, TEMPLATE, PARAMETERS) == []  # no stack, nothing to replace


def test_the_instance_type_the_ami_the_volume_and_the_gpus_replace_it() -> None:
    for name, value in {"InstanceType": "m5.2xlarge", "EcsAmiId": "ami-0bbbbbbbbbbbbbbb2", "RootVolumeSize": 200,
                        "GpuCount": 1}.items():
        assert capacity.launch_template_changes(CURRENT, TEMPLATE, dict(PARAMETERS, **{name: value})) == [name]


def test_a_changed_launch_template_definition_replaces_it() -> None:
    older = TEMPLATE.replace("HttpPutResponseHopLimit: 1", "HttpPutResponseHopLimit: 2")
    assert older != TEMPLATE
    found = capacity.launch_template_changes(dict(CURRENT, stack_template=older), TEMPLATE, PARAMETERS)
    assert found == ["LaunchTemplate"]


def test_other_subnets_replace_it() -> None:
    """The rolling update replaces the group's instances when its VPCZoneIdentifier changes, as for a launch template."""
    found = capacity.launch_template_changes(CURRENT, TEMPLATE, dict(PARAMETERS, PrivateSubnetIds=["subnet-03", "subnet-04"]))
    assert found == ["PrivateSubnetIds"]
    older = TEMPLATE.replace("VPCZoneIdentifier: !Ref PrivateSubnetIds", "VPCZoneIdentifier: !Split [',', !Ref PrivateSubnetIds]")
    assert older != TEMPLATE
    assert capacity.launch_template_changes(dict(CURRENT, stack_template=older), TEMPLATE, PARAMETERS) == [
        "AutoScalingGroup.VPCZoneIdentifier"
    ]
    assert capacity.launch_template_changes(CURRENT, TEMPLATE, dict(PARAMETERS, PrivateSubnetIds=["subnet-01", "subnet-02"])) == []


def test_the_summary_says_a_newer_ami_waits_for_the_next_stop() -> None:
    result = {"name": "app-alice", "action": "unchanged", "outputs": {}}
    assert not [line for line in summary.up_summary(result, {}, {}, "m5.xlarge", 60) if "AMI" in line]
    lines = summary.up_summary(dict(result, ami_waiting="ami-0bbbbbbbbbbbbbbb2"), {}, {}, "m5.xlarge", 60)
    assert "A newer ECS-optimized AMI (ami-0bbbbbbbbbbbbbbb2) waits for the next stop" in "\n".join(lines)


def test_the_summary_says_started_again_only_for_a_stack_that_was_there() -> None:
    def start_line(**instance) -> str:
        result = dict({"name": "app-alice", "outputs": {}}, **instance)
        return summary.up_summary(result, {}, {}, "m5.xlarge", 60)[3]

    assert start_line(action="created", started=True, healthy=True) == "Idle stop after 60 minutes without use (0: never)"
    assert start_line(action="unchanged", started=True, healthy=True) == "Started again after an idle stop"
    assert start_line(action="updated", started=True, healthy=False) == (
        "Started again after an idle stop (health check not passing yet)"
    )
    assert start_line(action="unchanged", started=True, healthy=None) == (
        "Started again after an idle stop (health check not waited for)"
    )
    assert start_line(action="unchanged", started=False, healthy=True).startswith("Idle stop after 60 minutes")
    assert start_line(action="unchanged", started=True, healthy=None, check_mode=True) == (
        "Would start the server again (it is stopped)"
    )
    assert start_line(action="updated", started=True, healthy=True, stopped_for_update=True) == (
        "Started again on a new instance (stopped for this update)"
    )


def test_the_summary_names_the_commit_the_stop_for_an_update_pushed() -> None:
    """The person's own record (the service's tag): how a server moved onto a fresh volume gets its work back.

    By its commit: anyone who may push to the repository can move the branch.
    """
    sha = "0123456789abcdef0123456789abcdef01234567"
    tag = f"saved 2026-11-27T09:12:03Z autosave/alice/20261127T091203Z {sha}"
    record = autosave_record(tag)
    assert record["commit"] == sha and record["branch"] == "autosave/alice/20261127T091203Z"
    result = {"name": "app-alice", "action": "updated", "outputs": {}, "stopped_for_update": True, "autosave": record}
    lines = summary.up_summary(result, {}, {}, "m5.xlarge", 60)
    assert (
        f"Unsaved work was pushed to autosave/alice/20261127T091203Z on the stop, commit {sha}; to continue from it"
        f" in a fresh clone (after git fetch origin autosave/alice/20261127T091203Z): git checkout -b restored {sha}"
    ) in lines
    # An older server's record names no commit: no command that would trust the branch.
    older = summary.up_summary(dict(result, autosave=autosave_record(tag.removesuffix(f" {sha}"))), {}, {}, "m5.xlarge", 60)
    assert [line for line in older if "pushed" in line] == [
        "Unsaved work was pushed to autosave/alice/20261127T091203Z on the stop (an older server's record names no"
        " commit: look at that branch before you use it)"
    ]
    for other in ({"stopped_for_update": False}, {"autosave": dict(record, status="nothing", branch=None)}):
        assert not [line for line in summary.up_summary(dict(result, **other), {}, {}, "m5.xlarge", 60) if "pushed" in line]
