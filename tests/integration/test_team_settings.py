"""Team-wide settings belong to the team: a checkout that differs stops before any change, unless it says team_update."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.cloudformation.models import cloudformation_backends
from moto.core.utils import utcnow
from team import APP

from nbstack_devkit.emulator import ACCOUNT_ID, REGION, Clients, Emulator
from nbstack_devkit.playbooks import PlaybookRun, Playbooks, ok

#: The first checkout's ranges (tests/integration/settings.yml).
TEAM_RANGES = ["100.64.0.0/10", "192.0.2.0/25", "198.51.100.0/24", "2001:db8::/32", "203.0.113.7/32"]
#: A second checkout (the same person's, as the team vault serves one person), with another list of ranges and
#: another log retention.
OTHER = {"notebook_allowed_cidrs": ["198.51.100.0/24"], "notebook_log_retention_days": 90}


def shared_state(aws: Clients) -> dict[str, Any]:
    """What a run could change: the load balancer's inbound rules, and each stack's parameters and last update."""
    stacks = {s["StackName"]: s for s in aws.cloudformation.describe_stacks()["Stacks"]}
    group_id = {o["OutputKey"]: o["OutputValue"] for o in stacks[f"{APP}-persistent"]["Outputs"]}["AlbSecurityGroupId"]
    (group,) = aws.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    return {
        "ranges": ranges(group),
        "stacks": {name: (s.get("LastUpdatedTime"), s["Parameters"]) for name, s in stacks.items()},
    }


def ranges(group: dict[str, Any]) -> list[str]:
    return sorted(
        {r["CidrIp"] for p in group["IpPermissions"] for r in p.get("IpRanges", [])}
        | {r["CidrIpv6"] for p in group["IpPermissions"] for r in p.get("Ipv6Ranges", [])}
    )


@pytest.fixture(scope="module")
def first(emulator: Emulator, playbooks: Playbooks) -> PlaybookRun:
    emulator.reset()
    return ok(playbooks.up("alice"))


def test_a_new_team_needs_no_flag(first: PlaybookRun, aws: Clients) -> None:
    assert "team_update" not in first.text
    assert shared_state(aws)["ranges"] == TEAM_RANGES


def test_another_checkout_stops_naming_each_difference_and_changes_nothing(
    first: PlaybookRun, playbooks: Playbooks, aws: Clients
) -> None:
    before = shared_state(aws)
    run = playbooks.up("alice", "-e", json.dumps(OTHER))
    assert run.returncode != 0
    assert (
        f"notebook_allowed_cidrs: the shared stacks hold {', '.join(TEAM_RANGES)}, this checkout has 198.51.100.0/24"
        in run.text
    )
    assert "notebook_log_retention_days: the shared stacks hold 30, this checkout has 90" in run.text
    assert "-e team_update=true" in run.text
    assert "nothing in AWS was changed" in run.text
    assert shared_state(aws) == before


def test_another_template_is_a_difference_too(first: PlaybookRun, playbooks: Playbooks, aws: Clients) -> None:
    # As if another checkout, with an edited persistent template, had applied it last.
    stack = next(
        s
        for s in cloudformation_backends[ACCOUNT_ID][REGION].stacks.values()
        if s.name == f"{APP}-persistent" and s.status != "DELETE_COMPLETE"
    )
    stack.template = str(stack.template).rstrip() + "\n# another checkout's edit\n"
    stack.last_updated_time = utcnow()  # as that checkout's update left it (the emulator's updates set it too)
    before = shared_state(aws)
    # The stack changed since this checkout's last whole run: up.yml's short way sees it and goes the whole way.
    run = playbooks.up("alice")
    assert run.returncode != 0
    assert f"Checking everything: the stack {APP}-persistent changed since" in run.text
    assert "files/cloudformation/persistent.yml: the shared stacks hold a template with sha256" in run.text
    assert "in the persistent stack, this checkout has one with sha256" in run.text
    assert "(1 line changed)" in run.text
    assert shared_state(aws) == before


def test_check_diff_with_team_update_shows_the_team_wide_change_first_and_changes_nothing(
    first: PlaybookRun, playbooks: Playbooks, aws: Clients
) -> None:
    before = shared_state(aws)
    run = ok(playbooks.up("alice", "-e", json.dumps(OTHER), "-e", "team_update=true", "--check", "--diff"))
    announced = run.output.index("team_update=true: this run would change the team-wide settings for everyone")
    assert announced < run.output.index("TASK [stack : Show the changes to")
    assert "notebook_allowed_cidrs: the shared stacks hold" in run.text
    assert shared_state(aws) == before


def test_team_update_applies_the_change(first: PlaybookRun, playbooks: Playbooks, aws: Clients) -> None:
    run = ok(playbooks.up("alice", "-e", json.dumps(OTHER), "-e", "team_update=true"))
    assert "team_update=true: this run changes the team-wide settings for everyone" in run.text
    after = shared_state(aws)
    assert after["ranges"] == ["198.51.100.0/24"]
    persistent = {p["ParameterKey"]: p["ParameterValue"] for p in after["stacks"][f"{APP}-persistent"][1]}
    assert persistent["LogRetentionDays"] == "90"


def test_team_update_must_be_a_boolean(first: PlaybookRun, playbooks: Playbooks) -> None:
    run = playbooks.up("alice", "-e", json.dumps(OTHER), "-e", "team_update=maybe")
    assert run.returncode != 0
    assert "team_update: it must be true or false" in run.text
