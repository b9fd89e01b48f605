"""The capacity module's stops: the task stopped first, and nothing that loses the instance's disk unless its autosave succeeded."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ansible_collections.nbstack.cloud.plugins.filter.summary import autosave_said
from ansible_collections.nbstack.cloud.plugins.module_utils.contract import autosave_record
from ansible_collections.nbstack.cloud.plugins.modules import capacity as module_under_test

RUNNING = {"service": 1, "autoscaling_group": 1}
SAVED = "saved 2026-11-27T09:12:03Z autosave/alice/20261127T091203Z"


class Failed(Exception):
    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result["msg"])
        self.result = result


class Module:
    """What the module's functions use of AnsibleAWSModule: parameters, warnings, failure."""

    check_mode = False

    def __init__(
        self, force: bool = False, replace_instance: bool = False, work_kept: bool = False, purge_work: bool = False
    ) -> None:
        self.params = {
            "prefix": "alice",
            "cluster": "app",
            "service": "app-alice",
            "autoscaling_group": "app-alice",
            "stop_timeout": 5,
            "wait_interval": 0,
            "force": force,
            "replace_instance": replace_instance,
            "work_kept": work_kept,
            "purge_work": purge_work,
        }
        self.warnings: list[str] = []

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def fail_json(self, **result: Any) -> None:
        raise Failed(result)


class Capacity(module_under_test.Capacity):
    """The module's own steps, with AWS's answers: a task that stops, and the tag its container writes as it does."""

    def __init__(self, module: Module, tasks: list[str], tag_after_stop: str | None, tag_before: str | None = None) -> None:  # pylint: disable=super-init-not-called
        self.module, self.params = module, module.params
        self.began, self.timeline, self.waited = 0.0, [], 0.0
        self.calls: list[str] = []
        self._tasks = tasks
        self._tag = tag_before
        self._tag_after_stop = tag_after_stop

    def running_tasks(self) -> list[str]:
        return list(self._tasks)

    def tasks_stopped(self, arns: list[str]) -> bool:
        self.calls.append("stopped?")
        self._tag = self._tag_after_stop  # the container recorded its save as it stopped
        return True

    def clear_autosave(self, service: dict[str, Any]) -> None:
        self.calls.append("clear autosave")
        self._tag = None

    def autosave(self, service: dict[str, Any]) -> dict[str, Any] | None:
        return autosave_record(self._tag)

    def set_service(self, count: int) -> None:
        self.calls.append(f"service {count}")

    def set_group(self, count: int) -> None:
        self.calls.append(f"group {count}")


def stop(found: Capacity, module: Module, was: dict[str, int] = RUNNING) -> dict[str, Any]:
    return module_under_test.stop(module, found, {"serviceArn": "arn", "desiredCount": was["service"]}, {}, was)


def test_a_running_server_is_stopped_and_its_saved_work_lets_the_deletion_go_on() -> None:
    module = Module()
    found = Capacity(module, ["task-1"], SAVED, tag_before="failed 2026-11-26T10:00:00Z")
    result = stop(found, module)
    # The old record is cleared before the stop, so only this stop's result counts.
    assert found.calls == ["clear autosave", "service 0", "stopped?"]
    assert result["stopped"] is True and result["autosave_problem"] == "" and result["autosave_read"] is True
    assert result["autosave"] == {"status": "saved", "at": "2026-11-27T09:12:03Z", "branch": "autosave/alice/20261127T091203Z", "left_out": 0, "commit": ""}
    assert "pushed to autosave/alice/20261127T091203Z" in autosave_said(result, "alice")


@pytest.mark.parametrize(
    ("tag", "reason"),
    [("failed 2026-11-27T09:12:03Z", "its last autosave did not succeed (failed"), (None, "recorded no autosave result")],
    ids=["failed", "not-recorded"],
)
def test_a_save_that_failed_or_said_nothing_stops_the_run_with_the_instance_kept(tag: str | None, reason: str) -> None:
    module = Module()
    found = Capacity(module, ["task-1"], tag)
    with pytest.raises(Failed) as failed:
        stop(found, module)
    message = str(failed.value)
    assert reason in message and "the deletion of its stack did not happen" in message
    assert "-e force=true" in message and "up.yml" in message
    assert "group 0" not in found.calls


def test_force_goes_ahead_with_a_warning_and_says_the_work_was_not_saved() -> None:
    module = Module(force=True)
    found = Capacity(module, ["task-1"], "failed 2026-11-27T09:12:03Z")
    result = stop(found, module)
    assert "its last autosave did not succeed (failed" in result["autosave_problem"]
    assert len(module.warnings) == 1 and "force=true" in module.warnings[0]
    assert autosave_said(result, "alice").startswith("Its work was NOT saved")


def test_a_server_stopped_after_a_refusal_is_still_refused_while_its_save_stands_failed() -> None:
    # The group runs, the service is at 0 (the refused run left it so), no task: the work is on the disk.
    module = Module()
    found = Capacity(module, [], None, tag_before="failed 2026-11-27T09:12:03Z")
    with pytest.raises(Failed, match=re.escape("its last autosave did not succeed (failed")):
        stop(found, module, {"service": 0, "autoscaling_group": 1})
    assert found.calls == []


@pytest.mark.parametrize("tag", [SAVED, "nothing 2026-11-27T09:12:03Z"], ids=["saved", "nothing"])
def test_with_no_task_to_save_an_old_record_does_not_let_the_files_go(tag: str) -> None:
    """The instance runs, no task does (one that keeps failing to start): work since the last record may be there."""
    module = Module()  # work_kept false: the volume is purged next (or the stack predates it)
    found = Capacity(module, [], None, tag_before=tag)
    with pytest.raises(Failed, match="no task was running to save just now") as failed:
        stop(found, module, {"service": 1, "autoscaling_group": 1})
    assert "-e force=true" in str(failed.value) and "group 0" not in found.calls
    forced = Module(force=True)
    result = stop(Capacity(forced, [], None, tag_before=tag), forced, {"service": 1, "autoscaling_group": 1})
    assert "no task was running" in result["autosave_problem"] and "force=true" in forced.warnings[0]
    # With the volume kept, the deletion goes on: nothing on it is lost.
    kept = Module(work_kept=True)
    result = stop(Capacity(kept, [], None, tag_before=tag), kept, {"service": 1, "autoscaling_group": 1})
    assert result["autosave_problem"] == ""


def test_an_idle_stopped_server_has_nothing_to_stop_or_save() -> None:
    module = Module()
    found = Capacity(module, [], None, tag_before=SAVED)
    result = stop(found, module, {"service": 1, "autoscaling_group": 0})
    assert found.calls == [] and result["changed"] is False and result["stopped"] is False
    assert result["autosave_read"] is True  # what lets a purge go ahead
    assert "its last autosave (saved to autosave/alice/20261127T091203Z" in autosave_said(result, "alice")


def test_an_instance_replacement_waits_for_a_saved_stop_and_keeps_the_instance_otherwise() -> None:
    module = Module(replace_instance=True)
    found = Capacity(module, ["task-1"], "failed 2026-11-27T09:12:03Z")
    with pytest.raises(Failed, match="the replacement of its instance did not happen"):
        module_under_test.prepare(module, found, {"serviceArn": "arn", "desiredCount": 1}, {}, RUNNING)
    assert "group 0" not in found.calls

    module = Module(replace_instance=True)
    found = Capacity(module, ["task-1"], SAVED)
    result = module_under_test.prepare(module, found, {"serviceArn": "arn", "desiredCount": 1}, {}, RUNNING)
    assert found.calls == ["clear autosave", "service 0", "stopped?", "group 0"]
    assert result["stopped"] is True


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("saved 2026-11-27T09:12:03Z autosave/alice/20261127T091203Z left-out=2", "left 2 path(s) out"),
        ("pending 2026-11-27T09:12:03Z", "did not succeed (pending"),
    ],
    ids=["left-out", "unknown-status"],
)
def test_work_left_on_the_disk_or_an_unknown_outcome_refuses_the_deletion(tag: str, reason: str) -> None:
    module = Module()
    with pytest.raises(Failed, match=re.escape(reason)):
        stop(Capacity(module, ["task-1"], tag), module)


def test_the_record_is_read_as_the_container_writes_it() -> None:
    sha = "ab" * 20
    assert autosave_record(f"saved 2026-11-27T09:12:03Z autosave/alice/20261127T091203Z left-out=3 {sha}") == {
        "status": "saved", "at": "2026-11-27T09:12:03Z", "branch": "autosave/alice/20261127T091203Z", "left_out": 3,
        "commit": sha,
    }
    # An older container's record names no commit.
    assert autosave_record("saved 2026-11-27T09:12:03Z autosave/alice/20261127T091203Z")["commit"] == ""
    assert autosave_record("nothing 2026-11-27T09:12:03Z") == {
        "status": "nothing", "at": "2026-11-27T09:12:03Z", "branch": "", "left_out": 0, "commit": ""
    }
    assert autosave_record("") is None and autosave_record(None) is None
    said = autosave_said({"stopped": True, "autosave": autosave_record("saved t autosave/alice/x left-out=2")}, "alice")
    assert "2 paths left out" in said


class Ecs:
    """ListTasks and DescribeTasks as ECS answers them for one service: a RUNNING list and a STOPPED-desired list."""

    def __init__(self, tasks: dict[str, tuple[str, str]]) -> None:
        self.tasks = tasks  # arn -> (desiredStatus, lastStatus)
        self.described: list[int] = []

    def list_tasks(self, desiredStatus: str, **_: Any) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        return {"taskArns": [arn for arn, (desired, _last) in self.tasks.items() if desired == desiredStatus]}

    def describe_tasks(self, tasks: list[str], **_: Any) -> dict[str, Any]:
        self.described.append(len(tasks))
        return {"tasks": [{"taskArn": arn, "lastStatus": self.tasks[arn][1]} for arn in tasks]}


def reading(ecs: Ecs) -> module_under_test.Capacity:
    found = module_under_test.Capacity.__new__(module_under_test.Capacity)
    found.params, found.ecs = {"cluster": "app", "service": "app-alice"}, ecs
    return found


def test_a_task_an_earlier_run_began_to_stop_still_counts_until_its_container_exited() -> None:
    # down.yml run again after a Ctrl-C: the task's desired status is STOPPED, its autosave still runs.
    ecs = Ecs({"t-saving": ("STOPPED", "DEACTIVATING"), "t-done": ("STOPPED", "STOPPED"), "t-up": ("RUNNING", "RUNNING")})
    found = reading(ecs)
    assert sorted(found.running_tasks()) == ["t-saving", "t-up"]
    assert found.tasks_stopped(["t-saving"]) is False
    ecs.tasks["t-saving"] = ("STOPPED", "STOPPED")
    assert found.tasks_stopped(["t-saving"]) is True


def test_tasks_are_described_a_hundred_at_a_time() -> None:
    ecs = Ecs({f"t-{n}": ("RUNNING", "RUNNING") for n in range(150)})
    assert len(reading(ecs).running_tasks()) == 150
    assert ecs.described == [100, 50]


@pytest.mark.parametrize(
    "tag", ["failed 2026-11-27T09:12:03Z", SAVED + " left-out=2", None], ids=["failed", "left-out", "not-recorded"]
)
def test_on_the_work_volume_an_unpushed_save_is_reported_and_the_deletion_goes_on(tag: str | None) -> None:
    """The stack's deletion takes the instance, not the work volume: nothing the save missed is lost."""
    module = Module(work_kept=True)
    found = Capacity(module, ["task-1"], tag)
    result = stop(found, module)
    assert result["stopped"] is True
    assert result["autosave_problem"].endswith("only on the work volume")
    assert len(module.warnings) == 1 and "force=true" not in module.warnings[0]
    said = autosave_said({**result, "work_kept": True}, "alice")
    assert said.startswith("Its work was not all pushed") and "stays for the next up.yml" in said


def test_a_purge_refuses_the_failed_save_an_idle_stop_left_and_force_goes_ahead() -> None:
    """Idle-stopped on the work volume after a failed save: purging the volume would lose that work."""
    stale = "failed 2026-11-27T09:12:03Z"
    module = Module(purge_work=True)
    found = Capacity(module, [], None, tag_before=stale)
    with pytest.raises(Failed, match=re.escape("its last autosave did not succeed (failed")) as failed:
        stop(found, module, {"service": 1, "autoscaling_group": 0})
    assert "only on the work volume" in str(failed.value) and "its work volume is kept" in str(failed.value)
    assert found.calls == []
    forced = Module(force=True, purge_work=True)
    result = stop(Capacity(forced, [], None, tag_before=stale), forced, {"service": 1, "autoscaling_group": 0})
    assert result["autosave_problem"] and "force=true" in forced.warnings[0]
    # Without a purge the same stopped server's record is reported, and the deletion goes on.
    kept = Module(work_kept=True)
    result = stop(Capacity(kept, [], None, tag_before=stale), kept, {"service": 1, "autoscaling_group": 0})
    assert result["autosave_problem"].startswith("its last autosave did not succeed (failed, 2026-11-27T09:12:03Z)")
    assert len(kept.warnings) == 1 and "force=true" not in kept.warnings[0]
    said = autosave_said({**result, "work_kept": True}, "alice")
    assert said.startswith("Its work was not all pushed") and "only on the work volume" in said


def test_a_save_that_left_files_out_before_an_idle_stop_is_reported_by_down() -> None:
    """The idle stop's save pushed, but without some paths: down.yml names them as not pushed."""
    kept = Module(work_kept=True)
    found = Capacity(kept, [], None, tag_before=SAVED + " left-out=3")
    result = stop(found, kept, {"service": 0, "autoscaling_group": 0})
    assert "left 3 path(s) out" in result["autosave_problem"] and found.calls == []
    said = autosave_said({**result, "work_kept": True}, "alice")
    assert "left 3 path(s) out" in said and "nothing to save" not in said


@pytest.mark.parametrize(
    "was", [{"service": 1, "autoscaling_group": 1}, {"service": 1, "autoscaling_group": 0}], ids=["no-task", "idle-stopped"]
)
def test_a_purge_refuses_a_server_with_no_save_recorded_since_it_started(was: dict[str, int]) -> None:
    """No record (starting a server clears it; no task stopped with a save since, or its tag write failed): the volume may hold unpushed work."""
    module = Module(purge_work=True)
    found = Capacity(module, [], None)
    with pytest.raises(Failed, match="no autosave is recorded since the server last started") as failed:
        stop(found, module, was)
    message = str(failed.value)
    assert "nothing says the work on the work volume was pushed" in message and "its work volume is kept" in message
    assert "-e force=true" in message and "group 0" not in found.calls
    forced = Module(force=True, purge_work=True)
    result = stop(Capacity(forced, [], None), forced, was)
    assert "no autosave is recorded" in result["autosave_problem"] and "force=true" in forced.warnings[0]
    assert autosave_said(result, "alice").startswith("Its work was NOT saved")
    # Without a purge nothing goes that a record would vouch for: the volume
    # stays, and a stack from before the volume has nothing left to save
    # once idle-stopped (its disk went with its instance).
    for kept in (Module(work_kept=True), Module()):
        if not kept.params["work_kept"] and was["autoscaling_group"] >= 1:
            continue  # a stack from before the volume with its instance up: the disk goes next (another test)
        result = stop(Capacity(kept, [], None), kept, was)
        assert result["autosave_problem"] == "" and kept.warnings == []


def test_an_idle_stopped_server_from_before_the_volume_reports_its_failed_save_and_goes(  # its disk is gone already
) -> None:
    module = Module()  # no work volume, no purge
    result = stop(Capacity(module, [], None, tag_before="failed 2026-11-27T09:12:03Z"), module, {"service": 1, "autoscaling_group": 0})
    assert "the instance's disk, which went with the idle stop" in result["autosave_problem"]
    assert len(module.warnings) == 1 and "force=true" not in module.warnings[0]


def test_check_mode_refuses_a_purge_the_real_run_would_refuse_and_changes_nothing() -> None:
    module = Module(purge_work=True)
    module.check_mode = True
    found = Capacity(module, [], None)
    with pytest.raises(Failed, match="no autosave is recorded since the server last started"):
        stop(found, module, {"service": 1, "autoscaling_group": 1})
    assert found.calls == []
    # With a task running, its stop's save decides: check mode cannot tell yet.
    running = Capacity(module, ["task-1"], None)
    assert stop(running, module, {"service": 1, "autoscaling_group": 1})["stopped"] is True and running.calls == []


@pytest.mark.parametrize(
    ("mark", "problem"),
    [
        # The idle stop tags "stopping <time>" before its save; a record that could not be written leaves that.
        ("stopping", "its stop at 2026-11-29T10:00:00Z recorded no autosave result"),
        # A server tags "running <start>" once it answers: an earlier task's record no longer stands for it.
        ("running", "no autosave was recorded since its server started at 2026-11-29T10:00:00Z"),
    ],
)
def test_a_purge_refuses_a_mark_that_no_record_replaced(mark: str, problem: str) -> None:
    module = Module(purge_work=True)
    found = Capacity(module, [], None, tag_before=f"{mark} 2026-11-29T10:00:00Z")
    with pytest.raises(Failed, match=re.escape(problem)):
        stop(found, module, {"service": 1, "autoscaling_group": 0})
    kept = Module(work_kept=True)
    result = stop(Capacity(kept, [], None, tag_before=f"{mark} 2026-11-29T10:00:00Z"), kept, {"service": 1, "autoscaling_group": 0})
    assert result["autosave_problem"].startswith(problem)
    assert len(kept.warnings) == 1 and "did not succeed" not in kept.warnings[0]
