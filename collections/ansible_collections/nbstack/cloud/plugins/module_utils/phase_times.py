# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How long each phase of bringing a server up took, from the timestamps AWS records.

Pure arithmetic on describe responses (as boto3 returns them, times as
aware datetimes), so that it is tested on recorded answers: the emulator's
timestamps are not AWS's. The phase_times_info module makes the calls.

A phase is listed only when it happened in this run: its end is at or
after the run's start (`since`), and it opens after `since` too, so events
of an earlier operation never count. Phases may overlap (a stack create
launches the instance and waits for the service): each is shown with its
own duration, and their sum counts overlapping time once.
"""

from __future__ import annotations

from datetime import datetime

from ansible_collections.nbstack.cloud.plugins.module_utils.wording import duration

STACK_TYPE = "AWS::CloudFormation::Stack"

#: The stack-level status that opens an operation, and what the operation did.
OPENING = {
    "CREATE_IN_PROGRESS": "created",
    "UPDATE_IN_PROGRESS": "updated",
    "IMPORT_IN_PROGRESS": "imported",
    # ContinueUpdateRollback opens with it (an update's own rollback comes after its UPDATE_IN_PROGRESS).
    "UPDATE_ROLLBACK_IN_PROGRESS": "rollback continued",
}

#: The auto scaling activity of a launch into the group (DescribeScalingActivities: "Launching a new EC2 instance: i-...").
LAUNCH = "Launching a new EC2 instance"

#: ECS's service event once the service runs its desired tasks and they are healthy
#: (SERVICE_STEADY_STATE; behind a load balancer, the agent waits for the target's health).
STEADY_STATE = "has reached a steady state"

#: Where the first healthy check's time comes from.
HEALTH_SOURCES = {"ecs": "ECS service event", "observed": "as seen by up.yml"}


def _at(value):
    """An aware datetime from a datetime or an ISO 8601 string (None stays None)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def phase(name, start, end, detail="", source=""):
    """A phase as the module returns it (times as ISO 8601); None when it has no start or no end."""
    if start is None or end is None:
        return None
    return {
        "name": name,
        "seconds": round(max(0.0, (end - start).total_seconds()), 1),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "detail": detail,
        "source": source,
    }


def stack_operation(stack_name, events, since):
    """The phase of the stack's operation of this run: its first to its last event; None when it had none.

    `events` as DescribeStackEvents returns them (newest first). The
    operation opens with a stack-level *_IN_PROGRESS event at or after
    `since`; events before it (an earlier operation's) are not counted.
    """
    since = _at(since)
    # Oldest first; events of the same time keep their order of occurrence.
    ordered = sorted(reversed(list(events)), key=lambda event: _at(event["Timestamp"]))
    recent = [event for event in ordered if _at(event["Timestamp"]) >= since]
    opening = next(
        (
            index
            for index, event in enumerate(recent)
            if event.get("ResourceType") == STACK_TYPE and event.get("LogicalResourceId") == stack_name and event.get("ResourceStatus") in OPENING
        ),
        None,
    )
    if opening is None:
        return None
    operation = recent[opening:]
    action = OPENING[operation[0]["ResourceStatus"]]
    stack_level = [event["ResourceStatus"] for event in operation if event.get("ResourceType") == STACK_TYPE and event.get("LogicalResourceId") == stack_name]
    if action != "rollback continued" and any("ROLLBACK" in status for status in stack_level):
        action += " then rolled back"
    return phase(f"stack {stack_name} {action}", _at(operation[0]["Timestamp"]), _at(operation[-1]["Timestamp"]))


def launch_span(activities, since):
    """(start, end) of this run's launches into the group: the first one's start to the last one's end.

    A refill of a warm pool is not on anyone's path and is left out. A
    launch still in progress has no end: (start, None).
    """
    since = _at(since)
    launches = [
        activity
        for activity in activities
        if str(activity.get("Description", "")).startswith(LAUNCH)
        and "warm pool" not in str(activity.get("Description", ""))
        and _at(activity.get("StartTime")) is not None
        and _at(activity["StartTime"]) >= since
    ]
    if not launches:
        return None, None
    start = min(_at(activity["StartTime"]) for activity in launches)
    ends = [_at(activity.get("EndTime")) for activity in launches]
    return start, (max(ends) if all(ends) else None)


def _first_after(times, since):
    found = sorted(time for time in (_at(value) for value in times) if time is not None and time >= since)
    return found[0] if found else None


def _task_of_run(tasks, since):
    """The first task created in this run, or None."""
    made = [task for task in tasks if _at(task.get("createdAt")) is not None and _at(task["createdAt"]) >= since]
    return min(made, key=lambda task: _at(task["createdAt"])) if made else None


def _healthy(task_started, service_events, observed, since):
    """(time, source) of the first healthy check after the task started: ECS's event first, else up.yml's observation."""
    after = task_started or since
    steady = _first_after((event.get("createdAt") for event in service_events if STEADY_STATE in str(event.get("message", ""))), after)
    if steady is not None:
        return steady, HEALTH_SOURCES["ecs"]
    observed = _at(observed)
    if observed is not None and observed >= after:
        return observed, HEALTH_SOURCES["observed"]
    return None, ""


def _registration(container_instances, ec2_instances, since):
    """(registeredAt, the EC2 LaunchTime of its instance) of the first container instance registered in this run."""
    registered = [instance for instance in container_instances if _at(instance.get("registeredAt")) is not None and _at(instance["registeredAt"]) >= since]
    if not registered:
        return None, None
    first = min(registered, key=lambda instance: _at(instance["registeredAt"]))
    launch_times = {instance.get("InstanceId"): _at(instance.get("LaunchTime")) for instance in ec2_instances}
    launched = launch_times.get(first.get("ec2InstanceId"))
    return _at(first["registeredAt"]), (launched if launched is not None and launched >= since else None)


def server_phases(since, activities=(), container_instances=(), tasks=(), service_events=(), healthy_seen=None, ec2_instances=()):
    """The server's start in this run: instance launch, agent registration, task start, first healthy check.

    Each phase runs from the end of the one before it when its own start
    has no timestamp (the emulator launches no instance and starts no
    task): it says so. None of them when no launch, registration or task
    of this run is found (a run that changed only a stack).
    """
    since = _at(since)
    launched_at, launch_end = launch_span(activities, since)
    registered, instance_launched = _registration(container_instances, ec2_instances, since)
    task = _task_of_run(tasks, since)
    if launched_at is None and registered is None and task is None:
        return []
    found = [phase("instance launch", launched_at, launch_end)]
    # Boot, the agent's start and its registration in the cluster: from the
    # launch activity's end, else from the instance's own launch time (EC2
    # sets it again when a stopped instance starts).
    if launch_end is not None or instance_launched is None:
        found.append(phase("agent registration", launch_end, registered))
    else:
        found.append(phase("agent registration", instance_launched, registered, detail="from the instance's launch time"))
    created = _at(task.get("createdAt")) if task else None
    started = _at(task.get("startedAt")) if task else None
    pull = ""
    if task and task.get("pullStartedAt") and task.get("pullStoppedAt"):
        pull_seconds = max(0.0, (_at(task["pullStoppedAt"]) - _at(task["pullStartedAt"])).total_seconds())
        pull = f"image pull {duration(pull_seconds)}"
    found.append(phase("task start", created, started, detail=pull))
    healthy_at, source = _healthy(started, service_events, healthy_seen, since)
    # The milestone the health wait starts from: the task's start, else the latest one known before it.
    before = [(started, ""), (created, "task created"), (registered, "agent registration"), (launch_end or instance_launched, "instance launch")]
    start, after = next(((time, name) for time, name in before if time is not None), (None, ""))
    found.append(phase("first healthy check", start, healthy_at, detail=f"from {after}" if after else "", source=source))
    return [entry for entry in found if entry is not None]


def covered_seconds(phases):
    """Seconds during which at least one phase ran: overlapping phases counted once."""
    spans = sorted((_at(entry["start"]), _at(entry["end"])) for entry in phases)
    total = 0.0
    current_start = current_end = None
    for start, end in spans:
        if current_end is None or start > current_end:
            if current_end is not None:
                total += (current_end - current_start).total_seconds()
            current_start, current_end = start, end
        elif end > current_end:
            current_end = end
    if current_end is not None:
        total += (current_end - current_start).total_seconds()
    return round(total, 1)


def phase_times(
    since, stack_events=None, activities=(), container_instances=(), tasks=(), service_events=(), healthy_seen=None, ec2_instances=(), measured_at=None
):
    """Every phase of this run, ordered by start, with their sum (overlaps once) and the wall time since `since`.

    `stack_events`: {stack name: DescribeStackEvents events}. `ec2_instances`:
    DescribeInstances's instances of the container instances. `healthy_seen`:
    when up.yml saw the first healthy check (ISO 8601), used when ECS
    recorded no event for it. `measured_at`: when the reading was made
    (the wall time is from `since` to it).
    """
    since = _at(since)
    found = [stack_operation(name, events, since) for name, events in (stack_events or {}).items()]
    found += server_phases(since, activities, container_instances, tasks, service_events, healthy_seen, ec2_instances)
    found = sorted((entry for entry in found if entry is not None), key=lambda entry: (_at(entry["start"]), _at(entry["end"])))
    measured_at = _at(measured_at)
    return {
        "phases": found,
        "covered_seconds": covered_seconds(found),
        "wall_seconds": round((measured_at - since).total_seconds(), 1) if measured_at is not None else None,
        "since": since.isoformat(),
    }
