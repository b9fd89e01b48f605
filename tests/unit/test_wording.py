"""Counts in what nbstack prints read as English: "1 minute", "2 minutes", never "1 minutes" or "task(s)"."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.nbstack.cloud.plugins.filter import status, summary
from ansible_collections.nbstack.cloud.plugins.module_utils.wording import counted
from nbstack_runtime import policy

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("count", "expected"),
    [(1, "1 minute"), (1.0, "1 minute"), (0, "0 minutes"), (2, "2 minutes"), (1.5, "1.5 minutes"), (60, "60 minutes")],
)
def test_counted(count: float, expected: str) -> None:
    assert counted(count, "minute") == expected


def test_up_summary_says_1_minute() -> None:
    lines = summary.up_summary({"outputs": {}}, {}, {}, "m5.xlarge", 1)
    assert "Idle stop after 1 minute without use (0: never)" in lines
    assert "Idle stop after 2 minutes without use (0: never)" in summary.up_summary({}, {}, {}, "m5.xlarge", 2)


def test_status_counts_tasks_and_instances() -> None:
    entry = {
        "prefix": "alice",
        "stack": {"status": "UPDATE_COMPLETE"},
        "service": {"desired": 1, "tags": {}},
        "group": {"desired": 0, "instances": []},
    }
    assert status._state(entry) == ("stopped", "service 1 task, group 0 instances")


def test_the_idle_policy_counts_kernels_terminals_and_connections() -> None:
    busy = policy.Activity(started=T0 - timedelta(hours=1), last_activity=T0, busy_kernels=1, kernels=1, busy_terminals=0, terminals=1)
    assert policy.decide(busy, T0, 60, 0).reason == "busy: 1 of 1 kernel, 0 of 1 terminal"
    idle = policy.Activity(started=T0 - timedelta(hours=1), last_activity=T0 - timedelta(minutes=2), connections=1)
    assert "1 open connection)" in policy.decide(idle, T0, 1, 0).reason
