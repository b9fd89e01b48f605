"""The cost estimate `make test-aws` prints, against the shipped price file."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from nbstack_devkit.costs import InstanceUse, StackUse, estimate, load_prices, report

START = datetime(2026, 11, 26, 18, 0, tzinfo=timezone.utc)


def test_instances_by_the_second_with_their_volume_and_shared_stacks_by_the_started_hour() -> None:
    prices = load_prices("eu-west-1")
    instances = [InstanceUse("i-1", "m5.large", START, START + timedelta(minutes=30), "nbt-x-alice", volume_gb=100)]
    stacks = [
        StackUse("nbt-x-network", "network", START, START + timedelta(minutes=61)),
        StackUse("nbt-x-persistent", "persistent", START, START + timedelta(minutes=10)),
        StackUse("nbt-x-alice", "instance", START, START + timedelta(minutes=40)),
    ]
    found = estimate(instances, stacks, prices, now=START + timedelta(hours=3))
    costs = {line.what.split()[1]: line.cost for line in found.lines}
    # 61 minutes of NAT gateway and its address are two billed hours.
    assert costs["nbt-x-network"] == pytest.approx(2 * (0.048 + 0.005))
    assert costs["nbt-x-persistent"] == pytest.approx(0.0252 + 2 * 0.005)
    assert costs["nbt-x-alice"] == 0
    assert costs["i-1"] == pytest.approx(0.5 * (0.107 + 100 * 0.088 / 730))
    assert found.total == pytest.approx(sum(costs.values()))
    text = "\n".join(report(found, prices, "eu-west-1"))
    assert "read on 2026-11-25" in text and "Not priced" in text


def test_a_running_instance_counts_until_now_and_an_unknown_type_is_named_not_guessed() -> None:
    prices = load_prices("eu-west-1")
    now = START + timedelta(minutes=90)
    found = estimate([InstanceUse("i-2", "x9.huge", START, None), InstanceUse("i-3", "m5.xlarge", START, None)], [], prices, now=now)
    unknown, known = found.lines
    assert unknown.cost is None and unknown.minutes == 90
    assert known.cost == pytest.approx(1.5 * 0.214)
    assert found.unpriced == ["instance i-2 x9.huge"]
    assert "no price for: instance i-2 x9.huge" in report(found, prices, "eu-west-1")[-2]


def test_a_region_without_a_price_file_prices_nothing() -> None:
    found = estimate([], [StackUse("nbt-x-network", "network", START, None)], load_prices("xx-nowhere-1"), now=START + timedelta(minutes=5))
    assert found.lines[0].cost is None
    assert "no price file for xx-nowhere-1" in report(found, {}, "xx-nowhere-1")[-2]
