"""The phases stdout callback: which phase a task is in, how phases are timed and counted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from ansible_collections.nbstack.cloud.plugins.callback import phases


@dataclass
class Role:
    name: str

    def get_name(self) -> str:
        return self.name


@dataclass
class Node:
    """A task or block: its role (if any) and its parent."""

    _role: Role | None = None
    _parent: Any = None


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_task_belongs_to_its_outermost_role() -> None:
    # up.yml imports network, whose task includes the stack role.
    include = Node(Role("network"), Node(Role("network"), Node()))
    stack_task = Node(Role("stack"), Node(Role("stack"), include))
    assert phases.phase_of(stack_task) == "network"
    assert phases.phase_of(Node(Role("preflight"), Node())) == "preflight"
    assert phases.phase_of(Node(None, Node())) is None


@pytest.mark.parametrize(("duration", "text"), [(0.44, "0.4 s"), (9.94, "9.9 s"), (12.4, "12 s"), (59.4, "59 s"), (185, "3 min 05 s")])
def test_durations_read_as_seconds_or_minutes(duration: float, text: str) -> None:
    assert phases.seconds(duration) == text


def test_phases_are_timed_in_order_and_count_their_changes() -> None:
    clock = Clock()
    run = phases.Phases(clock)
    assert run.enter("preflight") is True
    clock.now += 2
    assert run.enter("preflight") is False
    clock.now += 1
    assert run.enter("network") is True
    run.count_change()
    clock.now += 4
    assert run.enter(None) is False  # the playbook's own tasks: no phase
    run.count_change()  # not counted in any phase
    clock.now += 1
    assert run.enter("network") is False  # a phase seen again adds up, and is not named again
    run.count_change()
    clock.now += 2
    assert run.finish() == "Phases: preflight 3.0 s, network 6.0 s (2 changes); total 10 s"


def test_no_phase_no_line() -> None:
    run = phases.Phases(Clock())
    run.enter(None)
    assert run.finish() is None


def test_one_change_is_singular() -> None:
    clock = Clock()
    run = phases.Phases(clock)
    run.enter("secrets")
    run.count_change()
    clock.now += 75
    assert run.finish() == "Phases: secrets 1 min 15 s (1 change); total 1 min 15 s"
