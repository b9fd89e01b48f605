"""The status table's state rules and cost arithmetic, on hand-made facts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.nbstack.cloud.plugins.filter import status

ROOT = Path(__file__).resolve().parents[2]
NOW = "2026-01-05T12:00:00+00:00"
PRICES = {
    "region": "eu-west-1",
    "read_on": "2026-01-01",
    "instance_hourly": {"m5.xlarge": 0.2, "g5.xlarge": 1.0},
    "gp3_gb_month": 0.073,  # 100 GB -> 0.01 per hour
    "load_balancer_hourly": 0.025,
    "nat_gateway_hourly": 0.05,
    "public_ipv4_hourly": 0.005,
}


def entry(prefix: str, stack_status: str = "CREATE_COMPLETE", service: int | None = 1, group: int | None = 1,
          instance_type: str = "m5.xlarge", tags: dict[str, str] | None = None, launched: str | None = "2026-01-05T10:00:00Z",
          reason: str = "") -> dict[str, Any]:
    return {
        "prefix": prefix,
        "stack": {
            "name": f"nb-{prefix}",
            "status": stack_status,
            "reason": reason,
            "created": "2026-01-01T08:00:00+00:00",
            "updated": None,
            "parameters": {"InstanceType": instance_type, "RootVolumeSize": "100"},
            "outputs": {"NotebookUrl": f"https://nb.example.com/{prefix}/"},
        },
        "service": None if service is None else {"desired": service, "running": service, "tags": tags or {}, "deployment_updated": None},
        "group": None if group is None else {
            "desired": group,
            "instances": [{"id": "i-1", "state": "running", "launched": launched}] if group and launched else [],
        },
    }


def facts(*entries: dict[str, Any], persistent: bool = True, network: bool = True) -> dict[str, Any]:
    return {
        "now": NOW,
        "instances": list(entries),
        "persistent": {"outputs": {"NotebookUrlBase": "https://shared.example.com"}} if persistent else None,
        "network": {"outputs": {}} if network else None,
    }


def row(found: dict[str, Any], prices: dict[str, Any] | None = PRICES) -> dict[str, Any]:
    rows = status.status_rows(found, prices)
    assert len(rows) == 1
    return rows[0]


def test_running_with_cost_since_launch_and_idle_time() -> None:
    r = row(facts(entry("alice", tags={"nbstack:last-activity": "2026-01-05T11:15:00Z"})))
    assert r["state"] == "running" and r["url"] == "https://nb.example.com/alice/"
    assert r["since"] == "2026-01-05 10:00" and r["idle_for"] == "45m"
    assert r["hourly"] == pytest.approx(0.21)  # instance + 100 GB gp3
    assert r["so_far_value"] == pytest.approx(0.42)  # two hours
    assert r["per_hour"] == "$0.210"


def test_idle_for_is_unknown_until_the_sidecar_publishes() -> None:
    assert row(facts(entry("alice")))["idle_for"] == "unknown"


def test_stopped_when_either_half_is_at_zero_and_costs_nothing() -> None:
    tags = {"nbstack:stopped-at": "2026-01-05T09:30:00Z", "nbstack:stop-reason": "idle for 60.2 min"}
    for service, group in ((0, 0), (0, 1), (1, 0)):
        r = row(facts(entry("bob", service=service, group=group, tags=tags, launched=None)))
        assert r["state"] == "stopped", (service, group)
        assert r["since"] == "2026-01-05 09:30" and r["idle_for"] == "-"
    r = row(facts(entry("bob", service=0, group=0, tags=tags, launched=None)))
    assert r["hourly"] == 0 and r["so_far"] == "$0.000" and r["detail"] == "idle for 60.2 min"


def test_absent_and_deleted() -> None:
    r = row(facts({"prefix": "zed", "stack": None, "deleted": "2026-01-04T17:00:00+00:00"}))
    assert (r["state"], r["url"], r["per_hour"], r["since"]) == ("absent", "-", "-", "2026-01-04 17:00")


def test_failed_carries_the_stack_reason() -> None:
    r = row(facts(entry("carol", stack_status="ROLLBACK_COMPLETE", reason="The following resource(s) failed to create: [Service]")))
    assert r["state"] == "failed" and "ROLLBACK_COMPLETE: The following resource(s) failed" in r["detail"]
    r = row(facts(entry("carol", service=None)))
    assert r["state"] == "failed" and "ECS service missing" in r["detail"]


def test_a_rolled_back_update_still_runs() -> None:
    assert row(facts(entry("dave", stack_status="UPDATE_ROLLBACK_COMPLETE")))["state"] == "running"
    assert row(facts(entry("dave", stack_status="UPDATE_ROLLBACK_FAILED")))["state"] == "failed"


def test_in_progress_is_changing() -> None:
    assert row(facts(entry("dan", stack_status="UPDATE_IN_PROGRESS")))["state"] == "changing"


def test_unknown_instance_type_or_no_price_file_says_so() -> None:
    assert row(facts(entry("erin", instance_type="x9.huge")))["per_hour"] == "?"
    assert row(facts(entry("erin")), prices={})["per_hour"] == "?"
    lines = status.status_table(status.status_rows(facts(entry("erin")), {}), facts(entry("erin")), {})
    assert any("no price file" in line for line in lines)


def test_standing_cost_of_the_shared_stacks() -> None:
    standing = status.standing_cost(facts(), PRICES)
    assert standing["hourly"] == pytest.approx(0.025 + 0.01 + 0.05 + 0.005)
    assert status.standing_cost(facts(network=False), PRICES)["hourly"] == pytest.approx(0.035)  # own VPC: no NAT of ours
    assert status.standing_cost(facts(persistent=False, network=False), PRICES)["hourly"] == 0


def test_table_lines_totals_and_price_source() -> None:
    found = facts(entry("alice"), entry("bob", service=0, group=0, launched=None))
    lines = status.status_table(status.status_rows(found, PRICES), found, PRICES)
    assert lines[0].split()[:3] == ["PREFIX", "STATE", "TYPE"]
    assert lines[1].startswith("alice") and " running " in lines[1] and lines[2].startswith("bob")
    assert "Total now: $0.300/hour" in lines  # 0.21 + 0.09 standing
    assert any("eu-west-1, read 2026-01-01" in line for line in lines)


def test_shipped_price_files_state_region_date_and_refresh() -> None:
    files = sorted((ROOT / "files" / "prices").glob("*.yml"))
    assert files
    for path in files:
        data = yaml.safe_load(path.read_text())
        assert data["region"] == path.stem and data["currency"] == "USD"
        assert str(data["read_on"]) and "refresh" in data
        assert data["instance_hourly"]["m5.xlarge"] > 0
        for key in ("gp3_gb_month", "load_balancer_hourly", "nat_gateway_hourly", "public_ipv4_hourly"):
            assert 0 < data[key] < 1, key


def test_the_root_volume_is_priced_by_its_type() -> None:
    gp2 = entry("alice")
    gp2["stack"]["parameters"]["RootVolumeType"] = "gp2"
    assert row(facts(gp2), {**PRICES, "gp2_gb_month": 0.146})["hourly"] == pytest.approx(0.22)  # 100 GB at 0.146/730
    assert row(facts(gp2), PRICES)["hourly"] is None  # no gp2 price: unknown, not the gp3 price


def test_a_stack_without_its_own_url_output_gets_the_shared_base_and_its_prefix() -> None:
    older = entry("alice")
    del older["stack"]["outputs"]["NotebookUrl"]
    assert row(facts(older))["url"] == "https://shared.example.com/alice/"


def no_task(prefix: str, launched: str, running: int = 0, desired_group: int = 1, state: str = "running") -> dict[str, Any]:
    found = entry(prefix, launched=launched)
    found["service"]["running"] = running
    found["group"]["desired"] = desired_group
    found["group"]["instances"][0]["state"] = state
    return found


def test_an_instance_up_longer_than_a_start_with_no_task_is_flagged() -> None:
    """An idle stop whose group call failed, or a task that never starts: the instance bills without a server."""
    r = row(facts(no_task("alice", launched="2026-01-05T11:30:00Z")))  # 30 min before NOW
    assert r["flag"] == "instance-without-task"
    assert "instance i-1 up 30m with no notebook task running" in r["detail"]
    assert "up.yml -e prefix=alice" in r["detail"]
    assert r["hourly"] == pytest.approx(0.21)  # it is billed
    lines = status.status_table([r], facts(), PRICES)
    assert any(line.startswith("alice: ") and "WARNING" in line for line in lines)
    # Also when the group is already at 0 (a stop in progress that never ended the instance).
    stopping = row(facts(no_task("bob", launched="2026-01-05T11:00:00Z", desired_group=0)))
    assert stopping["state"] == "stopped" and stopping["flag"] == "instance-without-task"


def test_a_start_in_progress_or_a_running_task_is_not_flagged() -> None:
    assert row(facts(no_task("alice", launched="2026-01-05T11:50:00Z")))["flag"] == ""  # 10 min: still starting
    assert row(facts(no_task("alice", launched="2026-01-05T10:00:00Z", running=1)))["flag"] == ""
    assert row(facts(no_task("alice", launched="2026-01-05T10:00:00Z", state="shutting-down")))["flag"] == ""
    assert row(facts(entry("alice", service=1, group=1)))["flag"] == ""


def test_a_warm_pools_stopped_volume_is_priced_while_running_and_while_stopped() -> None:
    """A stopped instance bills its root volume only; the pool keeps one whatever the server does."""
    volume = 100 * 0.073 / 730
    running = entry("alice")
    running["stack"]["outputs"]["WarmPoolSize"] = "1"
    assert row(facts(running))["hourly"] == pytest.approx(0.21 + volume)
    stopped = entry("bob", service=0, group=0, launched=None)
    stopped["stack"]["outputs"]["WarmPoolSize"] = "1"
    assert row(facts(stopped))["hourly"] == pytest.approx(volume)
    # Stacks made before the pool have none.
    assert row(facts(entry("carol", service=0, group=0, launched=None)))["hourly"] == 0


def test_the_instance_stack_reports_its_warm_pool_size() -> None:
    from cfnlint.decode import decode

    template, _matches = decode(str(ROOT / "files" / "cloudformation" / "instance.yml"))
    (pool,) = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::AutoScaling::WarmPool"]
    assert int(template["Outputs"]["WarmPoolSize"]["Value"]) == pool["MinSize"] == pool["MaxGroupPreparedCapacity"]


def test_a_work_volume_shows_its_bytes_and_costs_its_storage_classes_with_or_without_a_server() -> None:
    """EFS bills GB-months of each storage class; the volume stays billed after down.yml."""
    prices = {**PRICES, "efs_standard_gb_month": 0.30, "efs_ia_gb_month": 0.02}
    work = {"name": "nb-zed-work", "bytes": 3 * 1024**3, "bytes_standard": 2 * 1024**3, "bytes_ia": 1024**3}
    storage = (2 * 0.30 + 1 * 0.02) / 730
    only_files = row(facts({"prefix": "zed", "stack": None, "work": work}), prices)
    assert (only_files["state"], only_files["work"]) == ("absent", "3.0 GiB")
    assert only_files["hourly"] == pytest.approx(storage)
    assert only_files["per_hour"] != "-"
    running = entry("alice")
    running["work"] = work
    assert row(facts(running), prices)["hourly"] == pytest.approx(0.21 + storage)
    # No EFS prices in the file: the cost is unknown, not zero.
    assert row(facts({"prefix": "zed", "stack": None, "work": work}), PRICES)["hourly"] is None
    # Nobody's volume: nothing to show or price.
    assert row(facts(entry("bob")), prices)["work"] == "-"


def test_the_shipped_price_files_price_the_work_volumes() -> None:
    for path in (ROOT / "files" / "prices").glob("*.yml"):
        prices = yaml.safe_load(path.read_text())
        assert prices["efs_standard_gb_month"] > prices["efs_ia_gb_month"] > 0, path
