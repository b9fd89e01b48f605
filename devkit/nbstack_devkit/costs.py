"""What a run on a real account cost, priced from the price file status.yml uses (files/prices/<region>.yml).

`make test-aws` creates a throwaway team and prints, at its end, each thing it
created with how long it existed and what that cost. The arithmetic lives
here, a pure function of the lifetimes and the price file, so that it is
tested without an account (tests/devkit/test_costs.py).

Billing units follow AWS's price pages: EC2 Linux instances and EBS volumes
by the second (at least 60 s); NAT gateways, Application Load Balancers and
public IPv4 addresses by the hour, a partial hour billed as a full one.
Not priced, as in status.yml: data transfer and NAT data processing (each
server start pulls the image through the NAT gateway), load balancer
capacity units, S3, ECR, Secrets Manager and CloudWatch Logs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from .paths import ROOT

HOURS_PER_MONTH = 730.0  # AWS's convention for monthly prices (EBS GB-month)
NOT_PRICED = "data transfer, NAT data processing (image pulls), load balancer capacity units, S3, ECR, Secrets Manager, CloudWatch Logs"


def price_file(region: str) -> Path:
    """files/prices/<region>.yml of this checkout."""
    return ROOT / "files" / "prices" / f"{region}.yml"


def load_prices(region: str) -> dict[str, Any]:
    """The region's price file, or {} when there is none (every cost is then unknown)."""
    path = price_file(region)
    return dict(yaml.safe_load(path.read_text())) if path.is_file() else {}


@dataclass(frozen=True)
class InstanceUse:
    """One EC2 instance: from its launch to its end (None: still running at `now`)."""

    instance_id: str
    instance_type: str
    launched: datetime
    ended: datetime | None
    owner: str = ""
    volume_gb: int = 0
    volume_type: str = "gp3"


@dataclass(frozen=True)
class StackUse:
    """One stack's life (one stack ID): created, and deleted (None: still there at `now`)."""

    name: str
    kind: str  # network, persistent or instance
    created: datetime
    deleted: datetime | None


@dataclass(frozen=True)
class Line:
    """One priced item: what it is, how many minutes it existed, its cost (None: no price for it)."""

    what: str
    minutes: float
    cost: float | None


def _minutes(start: datetime, end: datetime | None, now: datetime) -> float:
    return max(0.0, ((end or now) - start).total_seconds() / 60)


def _started_hours(minutes: float) -> int:
    """Hours billed for something priced by the hour: every partial hour counts as a whole one."""
    return max(1, math.ceil(minutes / 60)) if minutes > 0 else 0


def instance_line(use: InstanceUse, prices: dict[str, Any], now: datetime) -> Line:
    """The instance's on-demand rate and its root volume's, by the second, at least one minute."""
    minutes = _minutes(use.launched, use.ended, now)
    billed_hours = max(minutes, 1.0) / 60
    rate = (prices.get("instance_hourly") or {}).get(use.instance_type)
    volume_rate = prices.get(f"{use.volume_type}_gb_month")
    cost = None
    if rate is not None and volume_rate is not None:
        cost = billed_hours * (float(rate) + use.volume_gb * float(volume_rate) / HOURS_PER_MONTH)
    owner = f" ({use.owner})" if use.owner else ""
    volume = f" + {use.volume_gb} GB {use.volume_type}" if use.volume_gb else ""
    return Line(f"instance {use.instance_id} {use.instance_type}{volume}{owner}", minutes, cost)


def stack_line(use: StackUse, prices: dict[str, Any], now: datetime) -> Line:
    """A shared stack's standing parts by the started hour; an instance stack's own parts cost nothing while they exist."""
    minutes = _minutes(use.created, use.deleted, now)
    hours = _started_hours(minutes)
    ipv4 = float(prices.get("public_ipv4_hourly", 0))
    if use.kind == "network":
        hourly: float | None = float(prices["nat_gateway_hourly"]) + ipv4 if "nat_gateway_hourly" in prices else None
        parts = "NAT gateway + Elastic IP"
    elif use.kind == "persistent":
        # An internet-facing ALB holds one public IPv4 address per subnet (two).
        hourly = float(prices["load_balancer_hourly"]) + 2 * ipv4 if "load_balancer_hourly" in prices else None
        parts = "load balancer + 2 public IPv4"
    else:
        hourly = 0.0
        parts = "its instance is priced on its own line"
    return Line(f"stack {use.name} ({parts})", minutes, None if hourly is None else hours * hourly)


@dataclass(frozen=True)
class Estimate:
    lines: list[Line]

    @property
    def total(self) -> float:
        return sum(line.cost or 0.0 for line in self.lines)

    @property
    def unpriced(self) -> list[str]:
        return [line.what for line in self.lines if line.cost is None]


def estimate(instances: list[InstanceUse], stacks: list[StackUse], prices: dict[str, Any], now: datetime) -> Estimate:
    """Every stack's and instance's line, stacks first, each in the order it was created."""
    lines = [stack_line(use, prices, now) for use in sorted(stacks, key=lambda use: use.created)]
    lines += [instance_line(use, prices, now) for use in sorted(instances, key=lambda use: use.launched)]
    return Estimate(lines)


def money(value: float | None) -> str:
    return "?" if value is None else f"${value:.3f}" if value < 10 else f"${value:.2f}"


def report(estimate: Estimate, prices: dict[str, Any], region: str) -> list[str]:
    """The estimate as text lines: one per item, then the total, the price file's date and what is not priced."""
    width = max([len(line.what) for line in estimate.lines] + [10])
    lines = [f"  {line.what.ljust(width)}  {line.minutes:6.0f} min  {money(line.cost)}" for line in estimate.lines]
    if not estimate.lines:
        lines.append("  (nothing was created)")
    source = f"files/prices/{region}.yml, read on {prices.get('read_on', '?')}" if prices else f"no price file for {region}"
    lines.append(f"  Total about {money(estimate.total)} ({source})" + (f"; no price for: {', '.join(estimate.unpriced)}" if estimate.unpriced else ""))
    lines.append(f"  Not priced: {NOT_PRICED}.")
    return lines
