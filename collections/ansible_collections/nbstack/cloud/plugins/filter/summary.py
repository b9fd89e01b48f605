# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lines up.yml ends with (where the notebook is and what is running), and what down.yml says of the work.

Documentation: up_summary.yml and autosave_said.yml beside this file.
"""

from __future__ import annotations

from ansible_collections.nbstack.cloud.plugins.module_utils.wording import counted, duration

_HEALTH = {True: "", False: " (health check not passing yet)", None: " (health check not waited for)"}


def _started(instance, idle_timeout_minutes):
    # A new stack's server starts too; "again" is for a stack that was there, stopped.
    if instance.get("started") and instance.get("action") != "created":
        if instance.get("check_mode"):
            return "Would start the server again (it is stopped)"
        why = "on a new instance (stopped for this update)" if instance.get("stopped_for_update") else "after an idle stop"
        return f"Started again {why}" + _HEALTH.get(instance.get("healthy"), "")
    return f"Idle stop after {counted(idle_timeout_minutes, 'minute')} without use (0: never)"


def _secrets_rotated(instance):
    """Whether the task was replaced because a secret changed: ECS reads secrets only when a task starts."""
    if not instance.get("secrets_rotated"):
        return []
    if instance.get("started"):
        return ["Secrets changed: the server started with the new values"]
    return ["Secrets changed: the server was restarted to use them (its work was autosaved first)"]


def _autosaved_for_update(instance):
    """Where the stop before this update pushed the server's unsaved work (its own record, the service's tag)."""
    record = instance.get("autosave") or {}
    if not (instance.get("stopped_for_update") and record.get("status") == "saved" and record.get("branch")):
        return []
    line = f"Unsaved work was pushed to {record['branch']} on the stop{_left_out(record)}"
    if not record.get("commit"):
        return [line + " (an older server's record names no commit: look at that branch before you use it)"]
    # The commit, not the branch: anyone who may push to the repository can move a branch.
    return [
        line + f", commit {record['commit']}; to continue from it in a fresh clone (after git fetch origin"
        f" {record['branch']}): git checkout -b restored {record['commit']}"
    ]


def _ami_waiting(instance):
    """A newer ECS-optimized AMI that a running server does not take (it would replace the server mid-work)."""
    newer = instance.get("ami_waiting")
    if not newer:
        return []
    return [f"A newer ECS-optimized AMI ({newer}) waits for the next stop: up.yml takes it once the server is stopped"]


def _phase(entry):
    notes = [note for note in (entry.get("detail"), entry.get("source")) if note]
    return f"{entry['name']} {duration(entry['seconds'])}" + (f" ({', '.join(notes)})" if notes else "")


def aws_phases(phase_times):
    """One line: each phase of this run from AWS's timestamps, their sum (overlaps once) beside the wall time.

    No line when nothing happened on AWS (a run with nothing to do does not read the timestamps).
    """
    phases = (phase_times or {}).get("phases") or []
    if not phases:
        return []
    line = "AWS phases: " + ", ".join(_phase(entry) for entry in phases) + f"; together {duration(phase_times['covered_seconds'])}"
    if len(phases) > 1:
        line += " (overlaps counted once)"
    if phase_times.get("wall_seconds") is not None:
        line += f" of {duration(phase_times['wall_seconds'])} since up.yml began"
    return [line]


def up_summary(instance, network, persistent, instance_type, idle_timeout_minutes, phase_times=None, work=None):
    """Notebook URL, egress address, instance type, idle stop, a secrets change, each stack's action, AWS's phases."""
    stacks = [stack for stack in (network.get("stack") or {}, persistent, work or {}, instance) if stack.get("name")]
    return [
        "Notebook: " + ((instance.get("outputs") or {}).get("NotebookUrl") or "not known until the stacks exist"),
        "Egress IP (allow-list it at the warehouse): " + (network.get("egress_ip") or "none found"),
        f"Instance type: {instance_type} ({instance.get('gpus')} GPU, {instance.get('memory_mib')} MiB)",
        _started(instance, idle_timeout_minutes),
        *_secrets_rotated(instance),
        *_autosaved_for_update(instance),
        *_ami_waiting(instance),
        "Stacks: " + ", ".join(f"{stack['name']} {stack['action']}" for stack in stacks),
        *_short_way(instance),
        *aws_phases(phase_times),
    ]


def _short_way(instance):
    """Said when up.yml took its short way: what it checked, and how to have everything checked."""
    if not instance.get("short_way"):
        return []
    return [
        "Nothing changed since this checkout's last whole run (settings, code, vault values, stacks, secrets, AMI):"
        " only the server was checked (-e recheck=true checks and compares everything)"
    ]


def _left_out(record):
    count = int(record.get("left_out") or 0)
    if not count:
        return ""
    return (
        f" ({counted(count, 'path')} left out of the snapshot: too large, unreadable, a repository of its own,"
        " or a branch that is no commit; the server's log names them, and so does the snapshot's commit message)"
    )


def autosave_said(instance, prefix):
    """What became of the work of a server down.yml took down, from the capacity module's autosave record."""
    record = instance.get("autosave") or {}
    problem = instance.get("autosave_problem")
    if problem and instance.get("work_kept"):
        return f"Its work was not all pushed: {problem}, which stays for the next up.yml."
    if problem:
        return f"Its work was NOT saved: {problem}; -e force=true went ahead anyway."
    if instance.get("stopped"):
        if record.get("status") == "saved":
            return f"Its unsaved work was pushed to {record.get('branch') or prefix + '/...'} when it stopped{_left_out(record)}."
        return f"It had no unsaved work when it stopped{_left_out(record)}."
    if record.get("status") in ("saved", "nothing"):
        where = f" to {record['branch']}" if record.get("branch") else ""
        return f"It was not running; its last autosave ({record['status']}{where}, {record.get('at') or 'time unknown'}) stands."
    return "It was not running: there was nothing to save."


class FilterModule:
    """The summary of up.yml, and what down.yml says of the work."""

    def filters(self):
        return {"up_summary": up_summary, "autosave_said": autosave_said}
