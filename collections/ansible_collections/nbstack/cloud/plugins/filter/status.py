# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn nbstack.cloud.status_info's facts into the status table.

Pure functions of the facts, the price file and the time of the reading, so
the state rules and the cost arithmetic are unit-tested without AWS
(tests/unit/test_status_report.py). Documentation: status_rows.yml and
status_table.yml beside this file.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ansible_collections.nbstack.cloud.plugins.module_utils.contract import (
    LAST_ACTIVITY_TAG,
    STOP_REASON_TAG,
    STOPPED_AT_TAG,
)
from ansible_collections.nbstack.cloud.plugins.module_utils.wording import counted

HOURS_PER_MONTH = 730.0  # AWS's convention for monthly prices (EBS GB-month)
# How long an instance may be up before its notebook task runs, and longer
# than a start takes on AWS: boot and agent registration (a minute or two),
# the image pull (several GB; the GPU image takes longest, up to about ten
# minutes), the container's start and the health check grace period (five
# minutes by default). An instance up longer with no task running bills
# without a server: an idle stop whose group call failed, a task that keeps
# failing to start, or a task placed elsewhere.
NO_TASK_GRACE_MINUTES = 20
#: The row flag of such an instance.
NO_TASK_FLAG = "instance-without-task"
# A stack in one of these, or in any *_FAILED state, holds no working server.
# UPDATE_ROLLBACK_COMPLETE is not one: the stack runs its previous version.
FAILED_STATES = {"ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"}
COLUMNS = (
    ("prefix", "PREFIX"),
    ("state", "STATE"),
    ("instance_type", "TYPE"),
    ("since", "SINCE (UTC)"),
    ("idle_for", "IDLE FOR"),
    ("work", "WORK"),
    ("per_hour", "$/HOUR"),
    ("so_far", "$ SINCE START"),
    ("url", "URL"),
)


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _duration(seconds: float) -> str:
    minutes = int(max(0, seconds) // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def _money(value: float | None) -> str:
    if value is None:
        return "?"
    return f"${value:.3f}" if value < 10 else f"${value:.2f}"


def _state(entry: dict[str, Any]) -> tuple[str, str]:
    """(state, detail) of one prefix."""
    stack = entry.get("stack")
    if not stack:
        return "absent", "deleted " + entry["deleted"][:16].replace("T", " ") if entry.get("deleted") else ""
    status = stack.get("status", "")
    if status in FAILED_STATES or status.endswith("_FAILED"):
        return "failed", f"{status}: {stack.get('reason') or 'no reason given'}"
    if status.endswith("_IN_PROGRESS"):
        return "changing", status
    service, group = entry.get("service"), entry.get("group")
    if service is None or group is None:
        missing = " and ".join(name for name, found in (("ECS service", service), ("auto scaling group", group)) if not found)
        return "failed", f"{missing} missing from a {status} stack; run up.yml"
    if service["desired"] < 1 or group["desired"] < 1:
        reason = service.get("tags", {}).get(STOP_REASON_TAG, "")
        return "stopped", reason or f"service {counted(service['desired'], 'task')}, group {counted(group['desired'], 'instance')}"
    return "running", ""


def _billed(entry: dict[str, Any]) -> bool:
    """Is an instance paid for right now (desired, or still shutting down)?"""
    group = entry.get("group") or {}
    live = [i for i in group.get("instances", []) if i.get("state") not in ("terminated", "shutting-down")]
    return bool(group.get("desired", 0) >= 1 or live)


def _warm_pool_size(entry: dict[str, Any]) -> int:
    """Stopped instances the stack keeps in its warm pool (its WarmPoolSize output; 0 for stacks made before it)."""
    outputs = (entry.get("stack") or {}).get("outputs") or {}
    try:
        return max(0, int(outputs.get("WarmPoolSize") or 0))
    except ValueError:
        return 0


def _hourly(entry: dict[str, Any], prices: dict[str, Any]) -> float | None:
    """The running instance and its root volume while billed, plus the warm pool's stopped volumes always.

    A stopped instance bills its EBS volume only; the warm pool keeps its
    instances while the server runs and while it is stopped.
    """
    parameters = (entry.get("stack") or {}).get("parameters", {})
    # Stacks made before the volume type was a setting have gp3 volumes.
    volume_rate = prices.get(f"{parameters.get('RootVolumeType') or 'gp3'}_gb_month")
    pool = _warm_pool_size(entry)
    billed = _billed(entry)
    if not billed and not pool:
        return 0.0
    if volume_rate is None:
        return None
    volume = float(parameters.get("RootVolumeSize") or 0) * float(volume_rate) / HOURS_PER_MONTH
    if not billed:
        return pool * volume
    rate = (prices.get("instance_hourly") or {}).get(parameters.get("InstanceType", ""))
    if rate is None:
        return None
    return float(rate) + volume + pool * volume


GIB = 1024**3


def _bytes(value: int) -> str:
    """Stored bytes for a person: 0 B, 512 KiB, 3.2 GiB."""
    if value < 1024:
        return f"{value} B"
    size = value / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _work_hourly(entry: dict[str, Any], prices: dict[str, Any]) -> float | None:
    """The work volume's storage per hour (EFS bills GB-months of each storage class); None when unpriced."""
    work = entry.get("work") or {}
    if "bytes" not in work:
        return 0.0
    standard, ia = prices.get("efs_standard_gb_month"), prices.get("efs_ia_gb_month")
    if standard is None or ia is None:
        return None
    return (work.get("bytes_standard", 0) * float(standard) + work.get("bytes_ia", 0) * float(ia)) / GIB / HOURS_PER_MONTH


def _since(entry: dict[str, Any], state: str) -> datetime | None:
    stack = entry.get("stack") or {}
    service = entry.get("service") or {}
    if state == "running":
        moments = (
            _time(i.get("launched"))
            for i in (entry.get("group") or {}).get("instances", [])
            if i.get("state") in ("pending", "running")
        )
        launched = [moment for moment in moments if moment]
        if launched:
            return min(launched)
        return _time(service.get("deployment_updated")) or _time(stack.get("updated")) or _time(stack.get("created"))
    if state == "stopped":
        return _time(service.get("tags", {}).get(STOPPED_AT_TAG))
    if state == "absent":
        return _time(entry.get("deleted"))
    return _time(stack.get("updated")) or _time(stack.get("created"))


def _no_task(entry: dict[str, Any], moment: datetime) -> str:
    """Why the row is flagged: an instance up past the start allowance while the service runs no task; else ""."""
    service = entry.get("service")
    if not entry.get("stack") or service is None or service.get("running", 0) > 0:
        return ""
    for instance in (entry.get("group") or {}).get("instances", []):
        launched = _time(instance.get("launched"))
        if instance.get("state") not in ("pending", "running") or launched is None:
            continue
        up = (moment - launched).total_seconds()
        if up > NO_TASK_GRACE_MINUTES * 60:
            return (
                f"WARNING: instance {instance.get('id', '?')} up {_duration(up)} with no notebook task running"
                f" (more than a start takes, {NO_TASK_GRACE_MINUTES}m): it bills without a server."
                f" Run up.yml -e prefix={entry['prefix']} to start the server on it, or down.yml to remove it"
            )
    return ""


def _url(entry: dict[str, Any], facts: dict[str, Any]) -> str:
    """The stack's NotebookUrl output; a stack made before that output existed: the shared base and the prefix."""
    url = ((entry.get("stack") or {}).get("outputs") or {}).get("NotebookUrl")
    base = ((facts.get("persistent") or {}).get("outputs") or {}).get("NotebookUrlBase")
    return str(url or (f"{base}/{entry['prefix']}/" if base else "-"))


def status_rows(facts: dict[str, Any], prices: dict[str, Any] | None = None, now: Any = None) -> list[dict[str, Any]]:
    """One row per prefix: state, detail, flag, url, type, since, idle for, costs."""
    prices = prices or {}
    moment = _time(now) or _time(facts.get("now")) or datetime.now(timezone.utc)
    rows = []
    for entry in facts.get("instances", []):
        state, detail = _state(entry)
        warning = _no_task(entry, moment)
        stack = entry.get("stack") or {}
        since = _since(entry, state)
        hourly = _hourly(entry, prices) if stack else 0.0
        work_hourly = _work_hourly(entry, prices)
        hourly = None if hourly is None or work_hourly is None else hourly + work_hourly
        work = entry.get("work") or {}
        running_hours = (moment - since).total_seconds() / 3600 if since and state == "running" else 0.0
        last = _time(((entry.get("service") or {}).get("tags") or {}).get(LAST_ACTIVITY_TAG))
        if state != "running":
            idle_for = "-"
        elif last:
            idle_for = _duration((moment - last).total_seconds())
        else:
            idle_for = "unknown"
        rows.append(
            {
                "prefix": entry["prefix"],
                "state": state,
                "detail": "; ".join(part for part in (detail, warning) if part),
                "flag": NO_TASK_FLAG if warning else "",
                "url": _url(entry, facts) if stack else "-",
                "instance_type": stack.get("parameters", {}).get("InstanceType", "-") if stack else "-",
                "since": since.strftime("%Y-%m-%d %H:%M") if since else "-",
                "idle_for": idle_for,
                "work": _bytes(work["bytes"]) if "bytes" in work else ("kept" if work else "-"),
                "hourly": hourly,
                "per_hour": _money(hourly) if stack or work else "-",
                "so_far_value": None if hourly is None else hourly * running_hours,
                "so_far": (_money(None if hourly is None else hourly * running_hours)) if stack else "-",
            }
        )
    return rows


def standing_cost(facts: dict[str, Any], prices: dict[str, Any] | None = None) -> dict[str, Any]:
    """Hourly cost of the shared parts that stay up: load balancer, NAT gateway, public addresses."""
    prices = prices or {}
    items: list[tuple[str, float]] = []
    ipv4 = float(prices.get("public_ipv4_hourly", 0))
    if facts.get("persistent"):
        items.append(("load balancer", float(prices.get("load_balancer_hourly", 0))))
        # An internet-facing ALB holds one public IPv4 address per subnet (two).
        items.append(("load balancer public IPv4 x2", 2 * ipv4))
    if facts.get("network"):
        items.append(("NAT gateway", float(prices.get("nat_gateway_hourly", 0))))
        items.append(("Elastic IP (egress)", ipv4))
    return {"items": [{"name": name, "hourly": hourly} for name, hourly in items], "hourly": sum(hourly for _name, hourly in items)}


def status_table(rows: list[dict[str, Any]], facts: dict[str, Any] | None = None, prices: dict[str, Any] | None = None) -> list[str]:
    """The rows as aligned text lines, then the details, the totals and the price source."""
    prices = prices or {}
    widths = {key: max([len(title)] + [len(str(row[key])) for row in rows]) for key, title in COLUMNS}
    lines = ["  ".join(title.ljust(widths[key]) for key, title in COLUMNS).rstrip()]
    lines += ["  ".join(str(row[key]).ljust(widths[key]) for key, _title in COLUMNS).rstrip() for row in rows]
    if not rows:
        lines.append("(no notebook stacks found)")
    lines += [f"{row['prefix']}: {row['detail']}" for row in rows if row["detail"]]
    standing = standing_cost(facts or {}, prices)
    people = sum(row["hourly"] or 0 for row in rows)
    unknown = [row["prefix"] for row in rows if row["hourly"] is None]
    lines.append(
        "Standing (shared, always up): "
        + (", ".join(f"{item['name']} {_money(item['hourly'])}" for item in standing["items"]) or "nothing found")
        + f" = {_money(standing['hourly'])}/hour"
    )
    lines.append(
        f"Total now: {_money(people + standing['hourly'])}/hour"
        + (f" (without {', '.join(unknown)}: no price for their instance type)" if unknown else "")
    )
    if prices.get("region"):
        lines.append(
            f"Prices: on-demand, {prices['region']}, read {prices.get('read_on', '?')}; instance and root "
            "volume per person, the root volume of each stopped instance in a warm pool, and each work"
            " volume's stored GB (EFS Standard and Infrequent Access); data transfer, EFS reads and writes"
            " and LCU/NAT processing not included (files/prices/README.md)."
        )
    else:
        lines.append("Prices: no price file for this region, costs unknown (files/prices/README.md says how to add one).")
    return lines


class FilterModule:
    """The status table."""

    def filters(self) -> dict[str, Any]:
        return {"status_rows": status_rows, "status_table": status_table}
