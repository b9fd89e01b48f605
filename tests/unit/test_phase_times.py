"""The AWS phases of up.yml's summary: the arithmetic on recorded describe answers.

The emulator's timestamps are not AWS's (no launch activity, no task, every
stack event within a second), so the figures are checked here on fixed
answers shaped as boto3 returns them, newest first where AWS lists so.
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.nbstack.cloud.plugins.filter.summary import aws_phases, up_summary
from ansible_collections.nbstack.cloud.plugins.module_utils.phase_times import covered_seconds, phase_times, stack_operation

SINCE = datetime(2026, 11, 27, 9, 0, 0, tzinfo=timezone.utc)
STACK = "notebook-server-alice"


def at(seconds: float) -> datetime:
    """A time `seconds` after the run began (negative: before it)."""
    return SINCE + timedelta(seconds=seconds)


def event(seconds: float, status: str, logical: str = STACK, kind: str = "AWS::CloudFormation::Stack") -> dict[str, Any]:
    return {"StackName": STACK, "LogicalResourceId": logical, "ResourceType": kind, "ResourceStatus": status, "Timestamp": at(seconds)}


def newest_first(*events: dict[str, Any]) -> list[dict[str, Any]]:
    return list(reversed(events))


#: A create of the person's stack: the group launches and waits for the agent's signal, then the service.
CREATE_EVENTS = newest_first(
    event(20, "CREATE_IN_PROGRESS"),
    event(22, "CREATE_IN_PROGRESS", "AutoScalingGroup", "AWS::AutoScaling::AutoScalingGroup"),
    event(95, "CREATE_COMPLETE", "AutoScalingGroup", "AWS::AutoScaling::AutoScalingGroup"),
    event(96, "CREATE_IN_PROGRESS", "Service", "AWS::ECS::Service"),
    event(200, "CREATE_COMPLETE", "Service", "AWS::ECS::Service"),
    event(201, "CREATE_COMPLETE"),
)
LAUNCH = {"Description": "Launching a new EC2 instance: i-0123456789abcdef0", "StartTime": at(24), "EndTime": at(60), "StatusCode": "Successful"}
INSTANCE = {"ec2InstanceId": "i-0123456789abcdef0", "registeredAt": at(90), "attributes": [{"name": "nbstack.prefix", "value": "alice"}]}
TASK = {"createdAt": at(97), "pullStartedAt": at(99), "pullStoppedAt": at(157), "startedAt": at(160), "lastStatus": "RUNNING"}
STEADY = {"createdAt": at(175), "message": f"(service {STACK}) has reached a steady state."}


def names(found: dict[str, Any]) -> list[str]:
    return [entry["name"] for entry in found["phases"]]


def seconds(found: dict[str, Any]) -> dict[str, float]:
    return {entry["name"]: entry["seconds"] for entry in found["phases"]}


def test_a_create_times_the_stack_and_the_server_phases_inside_it_counting_overlaps_once() -> None:
    found = phase_times(
        SINCE,
        stack_events={STACK: CREATE_EVENTS},
        activities=[LAUNCH],
        container_instances=[INSTANCE],
        tasks=[TASK],
        service_events=[STEADY],
        healthy_seen=at(203).isoformat(),
        measured_at=at(205),
    )

    assert names(found) == [f"stack {STACK} created", "instance launch", "agent registration", "task start", "first healthy check"]
    assert seconds(found) == {
        f"stack {STACK} created": 181.0,
        "instance launch": 36.0,
        "agent registration": 30.0,
        "task start": 63.0,
        "first healthy check": 15.0,
    }
    (task,) = [entry for entry in found["phases"] if entry["name"] == "task start"]
    assert task["detail"] == "image pull 58 s"
    # ECS's own event wins over the moment up.yml saw the check pass.
    (health,) = [entry for entry in found["phases"] if entry["name"] == "first healthy check"]
    assert health["source"] == "ECS service event" and health["end"] == at(175).isoformat()
    # Every server phase lies inside the stack's create: the sum is the create, not 181 + 36 + 30 + 63 + 15.
    assert found["covered_seconds"] == 181.0
    assert found["wall_seconds"] == 205.0


def test_a_restart_times_an_update_and_leaves_out_the_earlier_operations_events() -> None:
    events = newest_first(
        # Yesterday's create and an update an hour ago: not this run's.
        event(-86400, "CREATE_IN_PROGRESS"),
        event(-86200, "CREATE_COMPLETE"),
        event(-3600, "UPDATE_IN_PROGRESS"),
        event(-3500, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
        event(-3490, "UPDATE_COMPLETE"),
        # This run's update (a changed idle timeout).
        event(12, "UPDATE_IN_PROGRESS"),
        event(14, "UPDATE_IN_PROGRESS", "TaskDefinition", "AWS::ECS::TaskDefinition"),
        event(40, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
        event(47, "UPDATE_COMPLETE"),
    )
    found = phase_times(
        SINCE,
        stack_events={STACK: events},
        activities=[
            {"Description": "Terminating EC2 instance: i-0aaaaaaaaaaaaaaaa", "StartTime": at(-3000), "EndTime": at(-2900)},
            {"Description": "Launching a new EC2 instance: i-0aaaaaaaaaaaaaaaa", "StartTime": at(-86300), "EndTime": at(-86250)},
            {"Description": "Launching a new EC2 instance: i-0bbbbbbbbbbbbbbbb", "StartTime": at(49), "EndTime": at(80)},
        ],
        container_instances=[
            {"registeredAt": at(-86200), "attributes": []},
            {"registeredAt": at(110), "attributes": []},
        ],
        tasks=[
            {"createdAt": at(-86100), "startedAt": at(-86000), "lastStatus": "STOPPED"},
            {"createdAt": at(113), "pullStartedAt": at(114), "pullStoppedAt": at(170), "startedAt": at(172)},
        ],
        service_events=[
            # The service was set to 0 before the update and was steady at 0 tasks: not the health check.
            {"createdAt": at(30), "message": f"(service {STACK}) has reached a steady state."},
            {"createdAt": at(176), "message": f"(service {STACK}) registered 1 targets in (target-group tg)"},
            {"createdAt": at(190), "message": f"(service {STACK}) has reached a steady state."},
        ],
        measured_at=at(192),
    )

    assert names(found) == [f"stack {STACK} updated", "instance launch", "agent registration", "task start", "first healthy check"]
    assert seconds(found) == {
        f"stack {STACK} updated": 35.0,
        "instance launch": 31.0,
        "agent registration": 30.0,
        "task start": 59.0,
        "first healthy check": 18.0,
    }
    # The update ends before the launch begins: the phases follow each other,
    # with the capacity module's look at the registration (110 -> 113) between them.
    assert found["covered_seconds"] == 35 + 31 + 30 + 59 + 18


def test_a_missing_phase_is_left_out_and_the_next_one_says_where_it_starts() -> None:
    # The emulator: the stack and the agent's registration have timestamps; no launch activity, no task.
    found = phase_times(
        SINCE,
        stack_events={STACK: CREATE_EVENTS},
        container_instances=[{"registeredAt": at(30), "attributes": []}],
        healthy_seen=at(41.5).isoformat(),
        measured_at=at(210),
    )

    assert names(found) == [f"stack {STACK} created", "first healthy check"]
    (health,) = found["phases"][1:]
    assert health["seconds"] == 11.5
    assert health["detail"] == "from agent registration"
    assert health["source"] == "as seen by up.yml"
    # The health wait (30 -> 41.5) lies inside the create (20 -> 201).
    assert found["covered_seconds"] == 181.0


def test_without_a_launch_activity_the_registration_is_timed_from_the_instances_launch_time() -> None:
    found = phase_times(
        SINCE,
        container_instances=[{"ec2InstanceId": "i-0e", "registeredAt": at(30), "attributes": []}],
        ec2_instances=[{"InstanceId": "i-0f", "LaunchTime": at(5)}, {"InstanceId": "i-0e", "LaunchTime": at(26)}],
        healthy_seen=at(41).isoformat(),
        measured_at=at(45),
    )
    assert [(entry["name"], entry["seconds"], entry["detail"]) for entry in found["phases"]] == [
        ("agent registration", 4.0, "from the instance's launch time"),
        ("first healthy check", 11.0, "from agent registration"),
    ]
    assert found["covered_seconds"] == 15.0


def test_a_launch_not_yet_ended_and_a_health_check_not_seen_have_no_figure() -> None:
    found = phase_times(
        SINCE,
        activities=[{"Description": "Launching a new EC2 instance: i-0c", "StartTime": at(5), "StatusCode": "InProgress"}],
        measured_at=at(60),
    )
    assert found["phases"] == []
    assert found["covered_seconds"] == 0.0


def test_a_warm_pool_refill_is_not_on_the_persons_path() -> None:
    found = phase_times(
        SINCE,
        activities=[
            {"Description": "Launching a new EC2 instance into warm pool: i-0d", "StartTime": at(5), "EndTime": at(40)},
        ],
        measured_at=at(60),
    )
    assert found["phases"] == []


def test_nothing_after_the_start_is_no_phase() -> None:
    found = phase_times(
        SINCE,
        stack_events={STACK: newest_first(event(-600, "UPDATE_IN_PROGRESS"), event(-560, "UPDATE_COMPLETE"))},
        activities=[LAUNCH | {"StartTime": at(-900), "EndTime": at(-860)}],
        container_instances=[INSTANCE | {"registeredAt": at(-830)}],
        tasks=[TASK | {"createdAt": at(-820), "startedAt": at(-700)}],
        service_events=[STEADY | {"createdAt": at(-650)}],
        healthy_seen=at(8).isoformat(),
        measured_at=at(9),
    )
    assert found["phases"] == []
    assert up_summary({}, {}, {}, "m5.xlarge", 60, found)[-1].startswith("Stacks: ")


def test_an_update_that_rolled_back_says_so() -> None:
    events = newest_first(
        event(10, "UPDATE_IN_PROGRESS"),
        event(30, "UPDATE_ROLLBACK_IN_PROGRESS"),
        event(70, "UPDATE_ROLLBACK_COMPLETE"),
    )
    operation = stack_operation(STACK, events, SINCE)
    assert operation is not None
    assert (operation["name"], operation["seconds"]) == (f"stack {STACK} updated then rolled back", 60.0)


def test_events_of_the_same_second_keep_their_order() -> None:
    # AWS lists newest first; an operation that opens and closes within the same second is still one operation.
    events = newest_first(event(3, "UPDATE_IN_PROGRESS"), event(3, "UPDATE_COMPLETE"))
    operation = stack_operation(STACK, events, SINCE)
    assert operation is not None and operation["seconds"] == 0.0


@pytest.mark.parametrize(
    ("spans", "covered"),
    [
        ([], 0.0),
        ([(0, 10)], 10.0),
        ([(0, 10), (20, 25)], 15.0),  # a gap between phases is not counted
        ([(0, 10), (5, 15)], 15.0),  # overlapping
        ([(0, 30), (5, 10), (12, 20)], 30.0),  # nested
        ([(12, 20), (0, 10), (10, 12)], 20.0),  # touching, in any order
    ],
)
def test_the_sum_counts_time_under_several_phases_once(spans: list[tuple[int, int]], covered: float) -> None:
    phases = [{"start": at(start).isoformat(), "end": at(end).isoformat()} for start, end in spans]
    assert covered_seconds(phases) == covered


def test_the_summary_line_lists_the_phases_their_sum_and_the_wall_time() -> None:
    found = phase_times(
        SINCE,
        stack_events={STACK: CREATE_EVENTS},
        activities=[LAUNCH],
        container_instances=[INSTANCE],
        tasks=[TASK],
        service_events=[STEADY],
        measured_at=at(205),
    )
    (line,) = aws_phases(found)
    assert line == (
        f"AWS phases: stack {STACK} created 3 min 01 s, instance launch 36 s, agent registration 30 s,"
        " task start 1 min 03 s (image pull 58 s), first healthy check 15 s (ECS service event);"
        " together 3 min 01 s (overlaps counted once) of 3 min 25 s since up.yml began"
    )
    assert up_summary({}, {}, {}, "m5.xlarge", 60, found)[-1] == line


def test_a_skipped_or_failed_reading_prints_no_line() -> None:
    assert aws_phases(None) == []
    assert aws_phases({"skipped": True, "changed": False}) == []
    assert aws_phases({"failed": True, "msg": "AccessDenied"}) == []


def test_the_real_account_suite_reads_the_line_back_into_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    # make test-aws records each up.yml run's AWS phases in timings.json from this line (tests/aws/sandbox.py).
    path = Path(__file__).parents[1] / "aws" / "sandbox.py"
    spec = importlib.util.spec_from_file_location("aws_sandbox", path)
    assert spec is not None and spec.loader is not None
    sandbox = importlib.util.module_from_spec(spec)
    # Its dataclasses look their module up by name.
    monkeypatch.setitem(sys.modules, spec.name, sandbox)
    spec.loader.exec_module(sandbox)
    found = phase_times(
        SINCE,
        stack_events={STACK: CREATE_EVENTS},
        activities=[LAUNCH],
        container_instances=[{"registeredAt": at(90)}],
        healthy_seen=at(130).isoformat(),
        measured_at=at(205),
    )
    output = "\n".join(["Stacks: x created", *aws_phases(found), "Phases: preflight 9.1 s; total 3 min 30 s"])

    assert sandbox.parse_aws_phases(output) == {
        "phases": [
            {"name": f"stack {STACK} created", "seconds": 181.0, "notes": ""},
            {"name": "instance launch", "seconds": 36.0, "notes": ""},
            {"name": "agent registration", "seconds": 30.0, "notes": ""},
            {"name": "first healthy check", "seconds": 40.0, "notes": "from agent registration, as seen by up.yml"},
        ],
        "together_seconds": 181.0,
        "wall_seconds": 205.0,
    }
    assert sandbox.parse_aws_phases("Stacks: x unchanged") == {}
