#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Capacity before placement: a person's instance first, then the task.

The instance stack's service has no DesiredCount (CloudFormation leaves the
count alone on update) and its group ignores unmodified sizes on update, so
a stack update never starts or stops anything. This module does, around the
update:

- before it (``state: prepared``): a server the idle stop left with its group
  at 0 gets its service set to 0 too, so an update with a new task
  definition stabilises at once instead of waiting for a task that has
  nowhere to run; a running server whose instance the update would replace
  (another instance type) is stopped first, in the stop order (service to
  0, its task stopped with the autosave inside its stop timeout, then the
  group to 0), rather than killed with its instance;
- after it (``state: started``): the group to 1, then a wait until the
  person's container instance (attribute nbstack.prefix) is ACTIVE in the
  cluster, then the service to 1, then a wait for the first healthy check;
- before down.yml deletes the stack (``state: stopped``): a running server
  is stopped (service to 0, its task's autosave inside its stop timeout).

Whenever a running task is stopped here, the autosave's result is read from
the tag the container writes on its service (contract.AUTOSAVE_TAG, cleared
first so only this stop's result counts). A save that failed, or a stopped
task that recorded none, stops the run before anything that would lose the
work directory (the stack's deletion, an instance replacement, a purge of the
work volume) unless O(force): the server stays stopped, its instance and its
files stay. With O(work_kept) (the work directory is the person's work
volume, which outlives all of these) it is reported and the run goes on.

Placement never fails for want of an instance, so ECS's placement back-off
(30 s to minutes) never starts.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: capacity
short_description: Start and stop a person's notebook capacity in order, around a stack update
version_added: 0.1.0
description:
  - C(state=prepared), before the instance stack is updated. When the auto
    scaling group is at 0 (the idle stop) and the ECS service is not, sets the
    service to 0, so an update that changes the task definition completes
    at once. With O(replace_instance) and a running group, stops the server
    first - the service to 0, a wait until its task has stopped (the
    container autosaves within its stop timeout), then the group to 0 - so
    the update replaces no running instance.
  - C(state=started), after the stack update (or create). Sets the group to
    1 when it is at 0 (first terminating warm pool instances of an older
    launch template version, which CloudFormation does not replace), waits until a container instance with the attribute
    C(nbstack.prefix) equal to O(prefix) is ACTIVE in the cluster, its agent
    connected, on one of the group's in-service instances, sets the
    service to 1 when it is at 0 and removes the stop tags the sidecar left
    on it (with the last stop's autosave record), then waits until the target group has a healthy target and the
    service a running task. A task is never asked for before its instance
    has registered.
  - When the container instance does not register within
    O(register_timeout) the module fails and leaves the service at 0. When
    the health check does not pass within O(wait_timeout) it warns and
    returns C(healthy=false) (the capacity is started; a later run reports
    no change).
  - C(state=stopped), before the instance stack is deleted. With the group
    running and a task running, sets the service to 0 and waits until the
    task has stopped (its autosave).
  - Whenever a running task was stopped, and with the group running and the
    service at 0, the last autosave result the container recorded on the
    service (tag C(nbstack:autosave)) is checked. When the save failed, or
    a stopped task recorded none, the module fails (the service stays at 0,
    the group and the instance with the work on its disk stay) unless
    O(force), which only warns, or O(work_kept), which reports it.
  - C(state=stopped) without O(work_kept) (the work volume is about to be
    purged) also checks the record a server stopped earlier (the idle stop)
    left.
  - In check mode nothing changes and nothing is awaited; C(changed) says
    whether something would.
author:
  - nbstack (!UNKNOWN)
options:
  state:
    description: C(prepared) before a stack update, C(started) after it, C(stopped) before the stack's deletion.
    type: str
    choices: [prepared, started, stopped]
    default: started
  cluster:
    description: ECS cluster name.
    type: str
    required: true
  service:
    description: ECS service name.
    type: str
    required: true
  autoscaling_group:
    description: Auto scaling group name.
    type: str
    required: true
  prefix:
    description: The person's prefix, the value of the container instance attribute C(nbstack.prefix).
    type: str
    required: true
  target_group_arn:
    description: Target group whose health check must pass (C(state=started)).
    type: str
  replace_instance:
    description: >-
      Whether the stack update replaces the instance (C(state=prepared)); a
      running server is then stopped first.
    type: bool
    default: false
  stop_timeout:
    description: Seconds to wait for the task to stop when stopping a running server.
    type: int
    default: 300
  force:
    description: >-
      Go on (with a warning) when the autosave of the stopped server failed
      or was not recorded, or, with the work not kept, when no autosave is
      recorded at all (C(state=prepared) and C(state=stopped)).
    type: bool
    default: false
  work_kept:
    description: >-
      The work directory is the person's work volume and outlives what comes
      next (the instance's replacement, the stack's deletion): an autosave that
      did not push everything is reported in C(autosave_problem) and the run
      goes on. False when the work is on the instance's disk, or when the
      volume is about to be purged.
    type: bool
    default: false
  purge_work:
    description: >-
      The person's work volume is deleted next (down.yml -e purge_work=true,
      C(state=stopped)): the work on it must have been pushed, as a record
      the server wrote since it last started shows. No record at all stops
      the run too (unless O(force)).
    type: bool
    default: false
  register_timeout:
    description: Seconds to wait for the person's container instance to be ACTIVE.
    type: int
    default: 900
  wait_timeout:
    description: Seconds to wait for the health check; 0 does not wait.
    type: int
    default: 600
  wait_interval:
    description: Seconds between two looks while waiting.
    type: int
    default: 2
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Stop the service of a stopped server before the stack update
  nbstack.cloud.capacity:
    state: prepared
    cluster: notebook-server-cluster
    service: notebook-server-alice
    autoscaling_group: notebook-server-alice
    prefix: alice

- name: Start the instance, then the task, and wait for the health check
  nbstack.cloud.capacity:
    cluster: notebook-server-cluster
    service: notebook-server-alice
    autoscaling_group: notebook-server-alice
    prefix: alice
    target_group_arn: arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/x/0123456789abcdef
  register: instance__capacity
"""

RETURN = r"""
started:
  description: Whether the group or the service had to be started (C(state=started)).
  type: bool
  returned: success
  sample: true
stopped:
  description: Whether a running server was stopped (for the update with C(state=prepared), before the deletion with C(state=stopped)).
  type: bool
  returned: success
  sample: false
autosave:
  description: >-
    The last autosave result the container recorded on the service: C(status)
    (saved, nothing or failed; running when the server that started at
    C(at) recorded nothing since, stopping when an idle stop recorded nothing
    after its mark), C(at), C(branch), C(left_out) (files left out of the
    snapshot), C(commit); null when none was recorded or nothing was read.
  type: dict
  returned: success
  sample: {"status": "saved", "at": "2026-11-27T09:12:03Z", "branch": "autosave/alice/20261127T091203Z", "left_out": 0}
autosave_problem:
  description: Why the work on the instance may not be saved (empty when it is, or when nothing needed saving).
  type: str
  returned: success
  sample: ""
was:
  description: Desired counts found, C(service) and C(autoscaling_group); empty when either is missing.
  type: dict
  returned: success
  sample: {"service": 1, "autoscaling_group": 0}
healthy:
  description: Whether the health check passed (C(state=started); null in check mode, with O(wait_timeout=0) and for C(state=prepared)).
  type: bool
  returned: success
  sample: true
waited:
  description: Seconds spent waiting, in total.
  type: float
  returned: success
  sample: 42.5
timeline:
  description: What the module did and saw, in order, with the seconds since it began.
  type: list
  elements: dict
  returned: success
  sample: [{"step": "group to 1", "at": 0.1}, {"step": "container instance ACTIVE", "at": 31.8},
           {"step": "service to 1", "at": 31.9}, {"step": "healthy", "at": 75.2}]
"""


try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.nbstack.cloud.plugins.module_utils.capacity import (
    REGISTER_TIMEOUT,
    START_TIMEOUT,
    WAIT_INTERVAL,
    Capacity,
    park_service,
    result,
    start,
)


def autosave_problem(stopped_a_task, record, where="the instance's disk"):
    """Why the work may be unsaved, from the last autosave record; "" when it is saved.

    stopped_a_task: whether a running task was stopped just now (its record
    was cleared first, so a record found is that stop's). where: where the
    unpushed work is now.
    """
    if record is None:
        if stopped_a_task:
            return f"the stopped task recorded no autosave result (its log says what happened): the work may be only on {where}"
        return ""
    when = record["at"] or "time unknown"
    if record["status"] == "stopping":
        # The idle stop marks its start; its own record, once written, replaces the mark.
        return f"its stop at {when} recorded no autosave result (its log says what happened): the work may be only on {where}"
    if record["status"] == "running":
        # The server marks its start (a record of an earlier task's stop may not stand for it).
        return f"no autosave was recorded since its server started at {when} (its log says what happened): the work may be only on {where}"
    if record["status"] not in ("saved", "nothing"):
        return f"its last autosave did not succeed ({record['status']}, {when}): the work was not pushed and is only on {where}"
    if record["left_out"]:
        return (
            f"its last autosave ({when}) left {record['left_out']} path(s) out (too large, unreadable, a repository"
            f" of its own, or a branch that is no commit; the server's log names them, and so does the snapshot's"
            f" commit message when there is one): they are only on {where}"
        )
    return ""


def where_work_is(params):
    """Where a person's unpushed work lives, for the messages."""
    return "the work volume" if params["work_kept"] or params["purge_work"] else "the instance's disk"


def work_problem(params, stopped_a_task, record):
    """Why the work that goes next may be unsaved, from the record and whether a task was stopped just now; "" if not.

    With the work volume about to be purged, no record at all is a problem
    too: the record is cleared when a server starts, so none means no task
    has recorded a save since (a task that never started or never stopped,
    or a record that could not be written).
    """
    where = where_work_is(params)
    problem = autosave_problem(stopped_a_task, record, where)
    if problem:
        return problem
    if record and not stopped_a_task and not params["work_kept"]:
        # The instance runs but no task did (one that keeps failing to start,
        # one killed without its stop): the record is an earlier task's, and
        # may be older than what is on the disk or volume that goes next.
        return (
            f"no task was running to save just now, and its last autosave record ({record['status']},"
            f" {record['at'] or 'time unknown'}) may be older than the work on {where}"
        )
    if record is None and not stopped_a_task and params["purge_work"]:
        return unrecorded_problem(where)
    return ""


def unrecorded_problem(where):
    """No record at all, before a purge: the record is cleared whenever the server starts."""
    return f"no autosave is recorded since the server last started: nothing says the work on {where} was pushed"


def stop_task(module, capacity, service, was, what):
    """Service to 0, wait for the task to stop (its autosave), then its autosave result; fail unless it is safe.

    Returns (stopped_a_task, record, problem). Fails when the task does not
    stop in time, or (without force) when problem is not empty. what: what
    would have come next, for the messages.
    """
    params = module.params
    tasks = capacity.running_tasks()
    running = bool(tasks)
    if running:
        capacity.clear_autosave(service)
    if int(service.get("desiredCount", 0)) >= 1:
        capacity.set_service(0)
    if running and not capacity.wait(lambda: capacity.tasks_stopped(tasks), params["stop_timeout"]):
        module.fail_json(
            msg=(
                f"The notebook task of {params['service']} did not stop within {params['stop_timeout']} s,"
                f" so {what} did not happen (the service is at 0, the instance still runs)."
                " Look at the task's logs (its autosave), then run the playbook again."
            ),
            **result(capacity, stopped=False, started=False, was=was, healthy=None),
        )
    if running:
        capacity.note("task stopped")
    record = capacity.autosave(service)
    problem = work_problem(params, running, record)
    if problem and params["work_kept"]:
        module.warn(f"The server {params['prefix']} is stopped, but {problem}, which {what} keeps.")
        return running, record, problem
    refuse_unless_forced(module, capacity, was, problem, record, what, stopped=running)
    return running, record, problem


def refuse_unless_forced(module, capacity, was, problem, record, what, stopped):
    """Fail with `problem` unless -e force=true, which goes on with a warning; nothing when there is no problem."""
    params = module.params
    if not problem:
        return
    if params["force"]:
        module.warn(f"Going ahead with -e force=true although {problem}.")
        return
    kept = "its work volume is" if params["purge_work"] else "the instance and the files on its disk are"
    module.fail_json(
        msg=(
            f"The server {params['prefix']} is stopped, but {problem}. So {what} did not happen: {kept} kept."
            " Run up.yml to start the server again (with the instance type and settings it had, if this run"
            " changed them), push the work or move it off the server (git push in a terminal, the model"
            " bucket), then run this again; or add -e force=true to go ahead and lose it."
        ),
        **result(capacity, stopped=stopped, started=False, was=was, healthy=None, autosave=record, autosave_problem=problem),
    )


def prepare(module, capacity, service, group, was):
    """Before the stack update: a stopped server's service to 0; a running one stopped if its instance goes."""
    params = module.params
    stopping = was["autoscaling_group"] >= 1 and params["replace_instance"]
    if not stopping:
        parked = park_service(module, capacity, was)
        return result(capacity, changed=parked, stopped=False, started=False, was=was, healthy=None)
    if module.check_mode:
        return result(capacity, changed=True, stopped=True, started=False, was=was, healthy=None)
    # The task's container autosaves on SIGTERM within its stop timeout; the
    # instance goes only once the task has stopped and its work is saved.
    record, problem = stop_task(module, capacity, service, was, "the replacement of its instance")[1:]
    capacity.set_group(0)
    return result(capacity, changed=True, stopped=True, started=False, was=was, healthy=None, autosave=record, autosave_problem=problem)


def stop(module, capacity, service, group, was):
    """Before the stack's deletion: a running server stopped, its autosave checked."""
    params = module.params
    what = "the deletion of its stack"
    if was["autoscaling_group"] < 1:
        # Stopped already (the idle stop); the instance is gone and the work
        # is on the volume. What its last save did not push is reported; it
        # stops the run only when the volume goes next (a purge).
        record = capacity.autosave(service)
        if params["purge_work"]:
            # The idle stop wrote the record as it stopped: no newer work can be on the volume.
            problem = autosave_problem(False, record, "the work volume") or (
                unrecorded_problem("the work volume") if record is None else ""
            )
            refuse_unless_forced(module, capacity, was, problem, record, what, stopped=False)
        else:
            where = "the work volume" if params["work_kept"] else "the instance's disk, which went with the idle stop"
            problem = autosave_problem(False, record, where)
            if problem:
                module.warn(f"The server {params['prefix']} is stopped, but {problem}.")
        return result(
            capacity, changed=False, stopped=False, started=False, was=was, healthy=None,
            autosave=record, autosave_problem=problem, autosave_read=True,
        )
    if module.check_mode:
        # With no task running, what the real run would find is known now (reads only).
        if not params["work_kept"] and not capacity.running_tasks():
            record = capacity.autosave(service)
            refuse_unless_forced(module, capacity, was, work_problem(params, False, record), record, what, False)
        return result(capacity, changed=was["service"] >= 1, stopped=was["service"] >= 1, started=False, was=was, healthy=None)
    running, record, problem = stop_task(module, capacity, service, was, what)
    changed = running or was["service"] >= 1
    return result(
        capacity, changed=changed, stopped=running, started=False, was=was, healthy=None,
        autosave=record, autosave_problem=problem, autosave_read=True,
    )


def main():
    module = AnsibleAWSModule(
        argument_spec={
            "state": {"type": "str", "choices": ["prepared", "started", "stopped"], "default": "started"},
            "cluster": {"type": "str", "required": True},
            "service": {"type": "str", "required": True},
            "autoscaling_group": {"type": "str", "required": True},
            "prefix": {"type": "str", "required": True},
            "target_group_arn": {"type": "str"},
            "replace_instance": {"type": "bool", "default": False},
            "force": {"type": "bool", "default": False},
            "work_kept": {"type": "bool", "default": False},
            "purge_work": {"type": "bool", "default": False},
            "stop_timeout": {"type": "int", "default": 300},
            "register_timeout": {"type": "int", "default": REGISTER_TIMEOUT},
            "wait_timeout": {"type": "int", "default": START_TIMEOUT},
            "wait_interval": {"type": "int", "default": WAIT_INTERVAL},
        },
        required_if=[("state", "started", ["target_group_arn"])],
        supports_check_mode=True,
    )
    params = module.params
    capacity = Capacity(module)
    try:
        service = capacity.service()
        group = capacity.group()
    except (ClientError, BotoCoreError) as error:
        module.fail_json_aws(error, msg="Could not read the notebook's ECS service and auto scaling group")
    if service is None or group is None:
        if params["state"] in ("prepared", "stopped"):
            # Nothing to prepare: the stack update (or the re-create of a stack that
            # cannot be updated) makes them.
            module.exit_json(**result(capacity, changed=False, stopped=False, started=False, was={}, healthy=None))
        module.fail_json(
            msg=(
                f"The ECS service {params['service']} or the auto scaling group {params['autoscaling_group']}"
                " is missing although its stack exists. Run down.yml for this prefix, then up.yml."
            )
        )
    was = {"service": int(service["desiredCount"]), "autoscaling_group": int(group["DesiredCapacity"])}
    act = {"prepared": prepare, "started": start, "stopped": stop}[params["state"]]
    try:
        module.exit_json(**act(module, capacity, service, group, was))
    except (ClientError, BotoCoreError) as error:
        capacity.fail(error, "Could not start the notebook server" if params["state"] == "started" else "Could not stop the notebook server")


if __name__ == "__main__":
    main()
