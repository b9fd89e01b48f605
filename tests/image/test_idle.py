"""The idle watcher against a real Jupyter Server and the AWS emulator.

The server starts the way the container starts it (hooks, then Jupyter), with
short timeouts set through the container's settings, and the sidecar scales a
real ECS service and auto scaling group on the emulator.
"""

from __future__ import annotations

import json
import re
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import regex
import requests
import websocket

from nbstack_devkit.emulator import Emulator
from nbstack_devkit.gitserver import GitHttpServer, git
from nbstack_devkit.notebook import PREFIX, Notebook, StartNotebook
from nbstack_devkit.waits import free_port, wait_until
from nbstack_runtime import autosave, contract, policy
from nbstack_runtime.scaler import AwsScaler, tag_value
from nbstack_runtime.watcher import Watcher, busy_terminal_shells, parse_time

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


# --- The policy, without servers ------------------------------------------------------


def activity(idle_minutes: float, busy_kernels: int = 0, lived_hours: float = 1.0, **extra: Any) -> policy.Activity:
    return policy.Activity(
        started=T0 - timedelta(hours=lived_hours),
        last_activity=T0 - timedelta(minutes=idle_minutes),
        busy_kernels=busy_kernels,
        kernels=max(1, busy_kernels),
        **extra,
    )


def test_idle_past_the_timeout_stops() -> None:
    decision = policy.decide(activity(61), T0, 60, 0)
    assert decision.stop and "idle for 61.0 min" in decision.reason


def test_idle_short_of_the_timeout_does_not_stop() -> None:
    assert not policy.decide(activity(59), T0, 60, 0).stop


def test_a_busy_kernel_is_never_idle_however_long() -> None:
    decision = policy.decide(activity(60 * 24 * 7, busy_kernels=1, lived_hours=24 * 7), T0, 60, 0)
    assert not decision.stop and decision.reason.startswith("busy")


def test_a_terminal_running_a_command_is_busy() -> None:
    assert not policy.decide(activity(600, busy_terminals=1, terminals=1), T0, 60, 0).stop


def test_timeout_zero_turns_the_idle_stop_off() -> None:
    assert not policy.decide(activity(60 * 24 * 30), T0, 0, 0).stop


def test_max_lifetime_stops_even_a_busy_server() -> None:
    decision = policy.decide(activity(0, busy_kernels=2, lived_hours=12), T0, 60, 12)
    assert decision.stop and "max lifetime of 12 h" in decision.reason
    assert not policy.decide(activity(0, busy_kernels=2, lived_hours=11.9), T0, 60, 12).stop


def test_busy_terminal_shells_from_a_process_table() -> None:
    table = {
        100: (1, "jupyter-lab"),
        200: (100, "python -m ipykernel_launcher -f /run/kernel-1.json"),
        201: (200, "python worker.py"),  # a kernel's child: the kernel state covers it
        300: (100, "/bin/bash -l"),  # idle terminal
        400: (100, "/bin/bash -l"),
        401: (400, "python train.py"),  # running a command
    }
    assert busy_terminal_shells(100, table) == 1


def test_stop_reasons_become_tag_values_ecs_accepts() -> None:
    reason = policy.decide(activity(61), T0, 60, 0).reason
    assert "(" in reason and ";" in reason and "," in reason  # all refused by ECS in a tag value
    value = tag_value(reason)
    assert value == "idle for 61.0 min timeout 60 min no busy kernel last activity 2026-01-05T07:59:00Z 0 open connections"
    assert re.fullmatch(r"[\w .:/=+\-@]*", value)  # ECS: letters, numbers, spaces and _.:/=+-@
    assert len(tag_value("x" * 300)) == 256


@dataclass
class FakeScaler:
    calls: list[str]

    def publish(self, tags: dict[str, str]) -> None:
        self.calls.append("publish " + ",".join(sorted(tags)))

    def scale_to_zero(self) -> None:
        self.calls.append("scale")


def saving(calls: list[str]) -> Callable[[], autosave.Result]:
    """An autosave that succeeds, noted in `calls`."""

    def save() -> autosave.Result:
        calls.append("autosave")
        return autosave.Result("pushed", f"refs/heads/autosave/{PREFIX}/20260105T090000Z", "0" * 40)

    return save


def test_the_watcher_autosaves_before_it_scales_and_stops_once() -> None:
    calls: list[str] = []
    watcher = Watcher(
        read=lambda: activity(90),
        scaler=FakeScaler(calls),
        autosave=saving(calls),
        idle_timeout_minutes=60,
        clock=lambda: T0,
    )
    watcher.run(__import__("threading").Event())  # returns after the stop
    assert calls == [
        "publish nbstack:last-activity",
        "publish nbstack:autosave",  # the mark that a stop began
        "autosave",
        "publish nbstack:autosave",
        "scale",
        "publish nbstack:stop-reason,nbstack:stopped-at",
    ]
    assert watcher.stopped is not None


@dataclass
class FailingScaler(FakeScaler):
    """A group call that fails (after the client's own retries) the first `failures` times."""

    failures: int = 1

    def scale_to_zero(self) -> None:
        if self.failures > 0:
            self.failures -= 1
            self.calls.append("scale failed")
            raise ConnectionError("Could not connect to the endpoint URL: https://autoscaling.eu-west-1.amazonaws.com/")
        super().scale_to_zero()


def test_a_failed_group_call_records_no_stop_and_is_tried_again_at_the_next_poll(caplog: pytest.LogCaptureFixture) -> None:
    """The instance would bill with the tags saying stopped, and nothing would retry: neither may happen."""
    calls: list[str] = []
    watcher = Watcher(
        read=lambda: activity(90),
        scaler=FailingScaler(calls),
        autosave=saving(calls),
        idle_timeout_minutes=60,
        clock=lambda: T0,
    )
    with caplog.at_level("ERROR", logger="nbstack.idle"):
        watcher.check_once()
    # After the failed call, the service is marked running again (the record may not vouch for what comes next).
    assert calls[-4:] == ["autosave", "publish nbstack:autosave", "scale failed", "publish nbstack:autosave"]
    assert not any("stop-reason" in call for call in calls), "the stop was recorded although the group is still up"
    assert watcher.stopped is None
    assert "idle stop failed: the auto scaling group could not be set to 0" in caplog.text
    assert "tried again at the next poll" in caplog.text

    watcher.check_once()
    assert calls[-4:] == ["autosave", "publish nbstack:autosave", "scale", "publish nbstack:stop-reason,nbstack:stopped-at"]
    assert watcher.stopped is not None


def test_a_person_back_before_the_retry_is_not_stopped() -> None:
    calls: list[str] = []
    readings = iter([activity(90), activity(0)])
    watcher = Watcher(
        read=lambda: next(readings),
        scaler=FailingScaler(calls),
        autosave=saving(calls),
        idle_timeout_minutes=60,
        clock=lambda: T0,
    )
    watcher.check_once()
    watcher.check_once()
    assert calls.count("scale failed") == 1 and "scale" not in calls and watcher.stopped is None


#: ECS's pattern for tag keys and values (letters, separators, numbers and _.:/=+-@), from its API reference.
ECS_TAG_PATTERN = regex.compile(r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*")


class RecordingEcs:
    """The two ECS calls publish makes, recorded."""

    def __init__(self) -> None:
        self.tags: list[dict[str, str]] = []

    def describe_services(self, cluster: str, services: list[str]) -> dict[str, Any]:
        return {"services": [{"serviceArn": f"arn:aws:ecs:eu-west-1:123456789012:service/{cluster}/{services[0]}"}]}

    def tag_resource(self, resourceArn: str, tags: list[dict[str, str]]) -> None:  # noqa: N803 (boto3's names)
        self.tags.extend(tags)


def test_every_tag_the_watcher_writes_is_one_ecs_accepts() -> None:
    """The last activity, the stop time and the stop reason: keys and values, as they reach TagResource."""
    ecs = RecordingEcs()
    scaler = AwsScaler("cluster", "service", "group")
    scaler._clients["ecs"] = ecs
    scaler._clients["autoscaling"] = type("Group", (), {"set_desired_capacity": lambda self, **kw: None})()
    reason = policy.decide(activity(61), T0, 60, 0).reason
    saved = autosave.Result("pushed", f"refs/heads/autosave/{PREFIX}/20260105T090000Z", "0" * 40)
    watcher = Watcher(read=lambda: activity(61), scaler=scaler, autosave=lambda: saved, idle_timeout_minutes=60, clock=lambda: T0)
    watcher.check_once()
    assert watcher.stopped is not None
    written = {tag["key"]: tag["value"] for tag in ecs.tags}
    assert set(written) == {contract.LAST_ACTIVITY_TAG, contract.AUTOSAVE_TAG, contract.STOPPED_AT_TAG, contract.STOP_REASON_TAG}
    for key, value in written.items():
        assert ECS_TAG_PATTERN.fullmatch(key) and 1 <= len(key) <= 128 and not key.lower().startswith("aws:"), key
        assert ECS_TAG_PATTERN.fullmatch(value) and len(value) <= 256, value
    assert written[contract.STOP_REASON_TAG] == tag_value(reason)
    assert parse_time(written[contract.STOPPED_AT_TAG]) == T0


def test_the_scaler_retries_each_call_itself_with_bounded_timeouts() -> None:
    config = AwsScaler("cluster", "service", "group", "eu-west-1")._client("autoscaling").meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 5}
    assert (config.connect_timeout, config.read_timeout) == (10, 20)


def test_a_failed_autosave_postpones_the_stop_until_a_save_succeeds() -> None:
    """Scaling the group to zero terminates the instance and its work directory: never after a failed save."""
    calls: list[str] = []
    results = iter([autosave.Result("failed", detail="push refused"), autosave.Result("pushed")])

    def save() -> autosave.Result:
        calls.append("autosave")
        return next(results)

    watcher = Watcher(read=lambda: activity(90), scaler=FakeScaler(calls), autosave=save, idle_timeout_minutes=60, clock=lambda: T0)
    assert watcher.check_once() is not None
    assert "scale" not in calls and watcher.stopped is None
    watcher.check_once()
    assert calls.count("autosave") == 2 and calls[-2] == "scale" and watcher.stopped is not None


@pytest.mark.parametrize(
    "outcome",
    [autosave.Result("failed", detail="push refused"), autosave.Result("pushed", left_out=(autosave.LeftOut("data/big.parquet", "over 100 MiB"),))],
    ids=["failed", "left-out"],
)
def test_on_a_work_volume_an_unpushed_save_does_not_hold_up_the_stop(
    outcome: autosave.Result, caplog: pytest.LogCaptureFixture
) -> None:
    """The scale-in takes the instance, not the volume: the files stay, the tag says what was not pushed."""
    calls: list[str] = []

    def save() -> autosave.Result:
        calls.append("autosave")
        return outcome

    watcher = Watcher(
        read=lambda: activity(90), scaler=FakeScaler(calls), autosave=save, idle_timeout_minutes=60, clock=lambda: T0,
        work_kept=True,
    )
    watcher.check_once()
    assert calls[-3:] == ["publish nbstack:autosave", "scale", "publish nbstack:stop-reason,nbstack:stopped-at"]
    assert watcher.stopped is not None
    assert "the files stay on the work volume" in caplog.text


def test_an_unreadable_server_is_never_a_reason_to_stop() -> None:
    def refused() -> policy.Activity:
        raise ConnectionRefusedError("not listening yet")

    calls: list[str] = []
    watcher = Watcher(read=refused, scaler=FakeScaler(calls), autosave=saving(calls), idle_timeout_minutes=1)
    assert watcher.check_once() is None and calls == []


# --- A real server, a real ECS service and auto scaling group on the emulator ---------


@dataclass
class Capacity:
    """The person's ECS service and auto scaling group, as the instance stack makes them."""

    cluster: str
    service: str
    group: str
    ecs: Any
    autoscaling: Any

    def desired(self) -> tuple[int, int]:
        service = self.ecs.describe_services(cluster=self.cluster, services=[self.service])["services"][0]
        group = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.group])["AutoScalingGroups"][0]
        return int(service["desiredCount"]), int(group["DesiredCapacity"])

    def service_tags(self) -> dict[str, str]:
        arn = self.ecs.describe_services(cluster=self.cluster, services=[self.service])["services"][0]["serviceArn"]
        return {tag["key"]: tag["value"] for tag in self.ecs.list_tags_for_resource(resourceArn=arn)["tags"]}

    def environ(self, emulator: Emulator) -> dict[str, str]:
        return {
            "NBSTACK_CLUSTER": self.cluster,
            "NBSTACK_SERVICE": self.service,
            "NBSTACK_AUTOSCALING_GROUP": self.group,
            **emulator.environ({}),
        }


@pytest.fixture
def capacity(emulator: Emulator) -> Iterator[Capacity]:
    """A running (desired 1) ECS service and auto scaling group on the emulator."""
    name = f"nbtest-{PREFIX}-{uuid.uuid4().hex[:6]}"
    ecs = emulator.client("ecs")
    autoscaling = emulator.client("autoscaling")
    ec2 = emulator.client("ec2")
    cluster = ecs.create_cluster(clusterName=f"{name}-cluster")["cluster"]["clusterName"]
    task = ecs.register_task_definition(family=name, containerDefinitions=[{"name": "notebook", "image": "nbstack-notebook", "memory": 512}])["taskDefinition"][
        "taskDefinitionArn"
    ]
    ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=task, desiredCount=1, launchType="EC2")
    template = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "m5.xlarge"})[
        "LaunchTemplate"
    ]["LaunchTemplateId"]
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        MinSize=0,
        MaxSize=1,
        DesiredCapacity=1,
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
        VPCZoneIdentifier=subnet,
        Tags=[{"Key": "nbstack:prefix", "Value": PREFIX, "PropagateAtLaunch": True}],
    )
    found = Capacity(cluster, name, name, ecs, autoscaling)
    assert found.desired() == (1, 1)
    yield found
    autoscaling.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
    ecs.delete_service(cluster=cluster, service=name, force=True)


def jupyter_api(notebook: Notebook, path: str) -> requests.Response:
    """Read the API as the watcher does: its token, no_track_activity."""
    token = (notebook.home / ".nbstack" / "idle-watcher-token").read_text().strip()
    return requests.get(f"{notebook.url}{path}?no_track_activity=1", headers={"Authorization": f"token {token}"}, timeout=10)


def execute(notebook: Notebook, http: requests.Session, kernel_id: str, code: str) -> None:
    """Send one execute_request over the kernel's websocket, as JupyterLab does, and hang up."""
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{notebook.port}/{PREFIX}/api/kernels/{kernel_id}/channels",
        cookie="; ".join(f"{k}={v}" for k, v in http.cookies.items()),
        timeout=10,
    )
    msg_id = uuid.uuid4().hex
    ws.send(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "msg_type": "execute_request",
                    "session": uuid.uuid4().hex,
                    "username": "alice",
                    "version": "5.3",
                    "date": datetime.now(timezone.utc).isoformat(),
                },
                "parent_header": {},
                "metadata": {},
                "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
                "channel": "shell",
                "buffers": [],
            }
        )
    )
    # Wait until the kernel says it is busy with our request, then leave it running.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        message = json.loads(ws.recv())
        if message.get("msg_type") == "status" and message.get("parent_header", {}).get("msg_id") == msg_id and message["content"]["execution_state"] == "busy":
            break
    ws.close()


def idle_notebook(notebook_factory: StartNotebook, capacity: Capacity, emulator: Emulator, timeout_minutes: str, **extra: str) -> Notebook:
    return notebook_factory(
        NBSTACK_IDLE_TIMEOUT_MINUTES=timeout_minutes,
        NBSTACK_IDLE_POLL_SECONDS="2",
        **capacity.environ(emulator),
        **extra,
    )


def test_the_watcher_token_reads_only_the_watched_endpoints(notebook_factory: StartNotebook, capacity: Capacity, emulator: Emulator) -> None:
    notebook = idle_notebook(notebook_factory, capacity, emulator, "30")
    token_file = notebook.home / ".nbstack" / "idle-watcher-token"
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    token = token_file.read_text().strip()
    header = {"Authorization": f"token {token}"}
    for path in ("api/status", "api/kernels", "api/terminals"):
        assert requests.get(notebook.url + path, headers=header, timeout=10).status_code == 200, path
    # Nothing else: no contents, no writes, no token in the query, no token URL in the log.
    assert requests.get(notebook.url + "api/contents", headers=header, timeout=10).status_code == 403
    assert requests.post(notebook.url + "api/kernels", headers=header, timeout=10).status_code == 403
    assert requests.get(f"{notebook.url}api/status?token={token}", timeout=10).status_code == 403
    assert requests.get(notebook.url + "api/status", headers={"Authorization": "token wrong"}, timeout=10).status_code == 403
    assert token not in notebook.log()
    assert "?token=..." not in notebook.log()  # Jupyter printed no token URL at start
    # Password login still works as before.
    assert notebook.session().login_status == 302  # type: ignore[attr-defined]
    # The watcher publishes the last activity for status.yml.
    wait_until(lambda: contract.LAST_ACTIVITY_TAG in capacity.service_tags(), 30, what="the last-activity tag")
    assert capacity.desired() == (1, 1)


def test_timeout_zero_runs_no_watcher(notebook_factory: StartNotebook, capacity: Capacity, emulator: Emulator) -> None:
    notebook = idle_notebook(notebook_factory, capacity, emulator, "0")
    wait_until(lambda: "idle watcher off" in notebook.log(), 30, what="the watcher to say it is off")
    assert not (notebook.home / ".nbstack" / "idle-watcher-token").exists()
    assert capacity.desired() == (1, 1)


@pytest.mark.slow
def test_a_busy_kernel_is_not_stopped_and_the_idle_server_is(
    notebook_factory: StartNotebook, capacity: Capacity, emulator: Emulator, git_server: GitHttpServer, repo: str
) -> None:
    """A 3-minute computation under a 1-minute idle timeout; then idle, then stopped."""
    notebook = idle_notebook(notebook_factory, capacity, emulator, "1")
    (notebook.work_dir / "scratch.py").write_text("unsaved = True\n")  # for the autosave
    http = notebook.session()
    kernel = http.post(notebook.url + "api/kernels", json={"name": "python3"}, timeout=30).json()
    execute(notebook, http, kernel["id"], "import time\ntime.sleep(180)\n")
    began = time.monotonic()
    http.close()  # from here on nobody uses the server

    # Busy for 3 minutes: three idle timeouts pass, nothing stops.
    while time.monotonic() - began < 170:
        assert capacity.desired() == (1, 1), "stopped while a kernel was busy"
        time.sleep(5)
    assert jupyter_api(notebook, "api/kernels").json()[0]["execution_state"] == "busy"
    assert "STOPPING" not in notebook.log()

    # The computation ends; one idle minute later (plus a poll) the group goes to zero.
    # The service keeps wanting its task (the task role cannot update it): the task ends with its instance.
    wait_until(lambda: jupyter_api(notebook, "api/kernels").json()[0]["execution_state"] == "idle", 60, what="the end of the computation")
    finished = time.monotonic()
    wait_until(lambda: capacity.desired() == (1, 0), 120, what="the group to go to zero")
    stopped_after = time.monotonic() - finished
    assert 55 <= stopped_after <= 75, f"stopped {stopped_after:.0f} s after the kernel went idle"

    log = notebook.log()
    assert "STOPPING THE NOTEBOOK SERVER" in log and "idle for 1.0 min" in log
    assert log.index("idle stop: autosave pushed") < log.index("set to 0 instances")
    assert "set to 0 tasks" not in log
    autosaves = [ref for ref in git_server.refs(repo) if ref.startswith(f"refs/heads/autosave/{PREFIX}/")]
    assert autosaves, "the idle stop pushed no autosave"
    # The watcher records the stop on the service after the group's call (a status detail), so it may come a moment later.
    wait_until(lambda: contract.STOP_REASON_TAG in capacity.service_tags(), 30, what="the stop recorded on the service")
    tags = capacity.service_tags()
    assert tags[contract.STOP_REASON_TAG].startswith("idle for") and contract.STOPPED_AT_TAG in tags
    # The health endpoint still answers: the instance's end, not the sidecar, ends the task.
    assert requests.get(notebook.health_url, timeout=5).status_code == 200

    # The instance's shutdown then stops the task: its SIGTERM autosave finds the snapshot already on the remote.
    notebook.stop()
    assert "nbstack: autosave already saved" in notebook.log()
    assert [ref for ref in git_server.refs(repo) if ref.startswith(f"refs/heads/autosave/{PREFIX}/")] == autosaves


# --- The autosave's outcome, tagged on the service (down.yml reads it) ----------------------

AUTOSAVE_TAG_VALUE = re.compile(
    rf"(saved|nothing|failed) (\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ)( autosave/{PREFIX}/\d{{8}}T\d{{6}}Z)?( left-out=\d+)?"
    r"( [0-9a-f]{40})?"  # the commit a saved one pushed
)


def autosave_tag(capacity: Capacity) -> re.Match[str]:
    value = capacity.service_tags()[contract.AUTOSAVE_TAG]
    assert ECS_TAG_PATTERN.fullmatch(value) and len(value) <= 256, value
    found = AUTOSAVE_TAG_VALUE.fullmatch(value)
    assert found, value
    assert abs(parse_time(found.group(2)) - datetime.now(timezone.utc)) < timedelta(minutes=2)
    return found


@dataclass
class HangingScaler(FakeScaler):
    """A service whose tagging never answers (or fails at once), while the group call works."""

    raise_instead: bool = False

    def publish(self, tags: dict[str, str]) -> None:
        if contract.AUTOSAVE_TAG in tags:
            if self.raise_instead:
                raise ConnectionError("Could not connect to the endpoint URL: https://ecs.eu-west-1.amazonaws.com/")
            time.sleep(60)
        super().publish(tags)


@pytest.mark.parametrize("raise_instead", [False, True], ids=["hangs", "fails"])
def test_a_tag_that_cannot_be_written_never_holds_up_the_stop(raise_instead: bool, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []
    scaler = HangingScaler(calls, raise_instead)
    watcher = Watcher(read=lambda: activity(90), scaler=scaler, autosave=saving(calls), idle_timeout_minutes=60, clock=lambda: T0, record_timeout=1)
    began = time.monotonic()
    with caplog.at_level("ERROR", logger="nbstack.autosave"):
        watcher.check_once()
    assert time.monotonic() - began < 10
    assert watcher.stopped is not None and "scale" in calls
    assert "could not record 'saved " in caplog.text


@dataclass
class AutosaveTagService(FakeScaler):
    """The service's autosave tag as its writes land, in order: the first may be slow; later ones, or those numbered, refused."""

    first_takes: float = 0.0
    refuse_later: bool = False
    refused: frozenset[int] = frozenset()  # 1 is the first write
    landed: list[str] = field(default_factory=list)
    tried: int = 0  # writes of the tag, refused ones too

    def publish(self, tags: dict[str, str]) -> None:
        if contract.AUTOSAVE_TAG in tags:
            self.tried += 1
            if self.tried == 1:
                time.sleep(self.first_takes)
            if self.tried in self.refused or (self.refuse_later and self.tried > 1):
                raise ConnectionError("Rate exceeded")
            self.landed.append(tags[contract.AUTOSAVE_TAG])
        super().publish(tags)


def stopping_watcher(scaler: AutosaveTagService) -> Watcher:
    return Watcher(
        read=lambda: activity(90), scaler=scaler, autosave=saving(scaler.calls), idle_timeout_minutes=60,
        clock=lambda: T0, record_timeout=1,
    )


def test_a_stop_whose_record_cannot_be_written_leaves_the_mark_that_it_began() -> None:
    """An earlier stop's "saved" must not stand for this one: a purge reads the mark and refuses."""
    scaler = AutosaveTagService([], refuse_later=True)
    watcher = stopping_watcher(scaler)
    watcher.check_once()
    assert watcher.stopped is not None and "scale" in scaler.calls
    assert scaler.landed == [f"stopping {T0.strftime('%Y-%m-%dT%H:%M:%SZ')}"]
    assert scaler.calls.index("publish nbstack:autosave") < scaler.calls.index("autosave")


def test_a_slow_stop_mark_lands_before_the_record_never_after_it() -> None:
    scaler = AutosaveTagService([], first_takes=1.5)
    watcher = stopping_watcher(scaler)
    watcher.check_once()
    assert watcher.stopped is not None  # the stop did not wait for the mark
    wait_until(lambda: len(scaler.landed) == 2, timeout=10)
    assert [value.split()[0] for value in scaler.landed] == ["stopping", "saved"]


def test_a_server_marks_itself_running_so_that_an_earlier_tasks_record_does_not_vouch_for_its_work() -> None:
    """ECS may start a task by itself (an unhealthy check, a lost instance): the record on the service is then
    the task's before it. Once this server answers, the service says it runs; a stop whose own mark and record
    cannot be written leaves that, and a purge refuses (modules/capacity.py's autosave_problem)."""
    earlier = f"saved 2026-01-05T07:00:00Z autosave/{PREFIX}/20260105T070000Z {'1' * 40}"
    # The first mark is refused and tried again at the next poll; the stop's mark and record are refused too.
    scaler = AutosaveTagService([], refused=frozenset({1, 3, 4}), landed=[earlier])
    reads = iter([activity(5), activity(10), activity(20), activity(90)])
    watcher = Watcher(
        read=lambda: next(reads), scaler=scaler, autosave=saving(scaler.calls), idle_timeout_minutes=60,
        clock=lambda: T0, record_timeout=1,
    )
    watcher.check_once()
    assert scaler.landed == [earlier]  # refused: tried again
    watcher.check_once()
    started = (T0 - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")  # Jupyter's start, from /api/status
    assert scaler.landed == [earlier, f"running {started}"]
    watcher.check_once()  # written once only
    assert scaler.tried == 2
    watcher.check_once()
    assert watcher.stopped is not None and "autosave" in scaler.calls
    assert scaler.landed == [earlier, f"running {started}"]
    assert scaler.tried == 4  # the running mark, twice; the stop's mark and its record


def test_a_running_mark_that_gets_no_answer_is_not_tried_again_while_it_waits() -> None:
    """One write at a time: a hung endpoint must not gather a thread per poll, queued before the stop's writes."""
    scaler = AutosaveTagService([], first_takes=1.5)
    reads = iter([activity(5)] * 5 + [activity(90)])
    watcher = Watcher(
        read=lambda: next(reads), scaler=scaler, autosave=saving(scaler.calls), idle_timeout_minutes=60,
        clock=lambda: T0, record_timeout=0.2,
    )
    for _ in range(5):
        watcher.check_once()
    assert scaler.tried == 1
    watcher.check_once()
    assert watcher.stopped is not None
    wait_until(lambda: len(scaler.landed) == 3, timeout=10)
    assert [value.split()[0] for value in scaler.landed] == ["running", "stopping", "saved"]


def test_a_mark_that_gets_no_thread_is_tried_again_at_the_next_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """A notebook can use up the container's processes: the mark must neither raise nor stay "in flight" for ever."""
    import threading

    scaler = AutosaveTagService([])
    watcher = Watcher(
        read=lambda: activity(5), scaler=scaler, autosave=saving(scaler.calls), idle_timeout_minutes=60,
        clock=lambda: T0, record_timeout=1,
    )
    real_start = threading.Thread.start

    def no_thread(thread: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", no_thread)
    watcher.check_once()
    assert scaler.landed == []
    monkeypatch.setattr(threading.Thread, "start", real_start)
    watcher.check_once()
    assert [value.split()[0] for value in scaler.landed] == ["running"]


def test_a_write_of_the_tag_whose_turn_comes_after_a_later_one_landed_is_dropped() -> None:
    """A mark that waited through the client's retries must not overwrite the record issued after it."""
    calls: list[str] = []
    scaler = AutosaveTagService(calls)
    order = autosave.TagOrder()
    mark_ticket, record_ticket = order.ticket(), order.ticket()
    order.publish(record_ticket, scaler, "saved 2026-01-05T09:00:00Z")
    order.publish(mark_ticket, scaler, "stopping 2026-01-05T09:00:00Z")
    assert scaler.landed == ["saved 2026-01-05T09:00:00Z"]


@dataclass
class FlakyGroupAndTags(AutosaveTagService, FailingScaler):
    """A group call that fails the first time, and the tag writes numbered in `refused` refused."""


def test_a_stop_whose_group_call_failed_does_not_leave_its_record_to_vouch_for_what_comes_next() -> None:
    """The server runs on after a failed group call (a max-lifetime stop may find it busy). The next attempt's
    mark and record may not land: the first attempt's "saved" must not then stand for the work done in between."""
    started = (T0 - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    scaler = FlakyGroupAndTags([], refused=frozenset({4, 5}))  # the second attempt's mark and record
    watcher = Watcher(
        read=lambda: activity(90), scaler=scaler, autosave=saving(scaler.calls), idle_timeout_minutes=60,
        clock=lambda: T0, record_timeout=1, work_kept=True,
    )
    watcher.check_once()
    assert watcher.stopped is None and "scale failed" in scaler.calls
    assert [value.split()[0] for value in scaler.landed] == ["stopping", "saved", "running"]
    watcher.check_once()
    assert watcher.stopped is not None and scaler.tried == 5
    assert scaler.landed[-1] == f"running {started}"


def test_a_running_mark_after_a_failed_group_call_is_tried_again_until_written() -> None:
    """The outage that failed the group call often fails the mark too; the person may go on working."""
    started = (T0 - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    scaler = FlakyGroupAndTags([], refused=frozenset({3}))  # the mark after the failed call
    reads = iter([activity(90), activity(0), activity(0)])
    watcher = Watcher(
        read=lambda: next(reads), scaler=scaler, autosave=saving(scaler.calls), idle_timeout_minutes=60,
        clock=lambda: T0, record_timeout=1, work_kept=True,
    )
    watcher.check_once()
    assert [value.split()[0] for value in scaler.landed] == ["stopping", "saved"]
    watcher.check_once()  # the person is back: no stop, and the mark is tried again
    assert scaler.landed[-1] == f"running {started}"
    watcher.check_once()  # written: not again
    assert scaler.tried == 4


def test_a_stop_that_begins_at_the_first_poll_writes_no_running_mark() -> None:
    scaler = AutosaveTagService([])
    stopping_watcher(scaler).check_once()
    assert [value.split()[0] for value in scaler.landed] == ["stopping", "saved"]


def test_a_save_on_the_remote_is_recorded_in_the_model_bucket_for_a_fresh_volume_to_offer(
    s3_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from nbstack_runtime import models

    bucket = f"models-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    monkeypatch.setenv("NBSTACK_MODEL_BUCKET", bucket)
    monkeypatch.setenv("NBSTACK_PREFIX", PREFIX)
    calls: list[str] = []
    assert autosave.record(saving(calls)(), FakeScaler(calls)) is True
    assert models.recorded_autosave() == (f"autosave/{PREFIX}/20260105T090000Z", "0" * 40)
    # Nothing saved on the remote: the record stays as it was.
    assert autosave.record(autosave.Result("failed", detail="401"), FakeScaler(calls)) is True
    assert models.recorded_autosave() == (f"autosave/{PREFIX}/20260105T090000Z", "0" * 40)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A clone of a repository on this disk (its remote, 'origin', takes pushes)."""
    remote = tmp_path / "remote.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(remote), str(clone))
    (clone / "a.py").write_text("a = 1\n")
    git("add", "-A", cwd=clone)
    git("commit", "--quiet", "-m", "Seed", cwd=clone)
    git("push", "--quiet", "origin", "main", cwd=clone)
    return clone


def test_the_idle_stop_tags_each_outcome_of_its_autosave(capacity: Capacity, s3_env: str, checkout: Path) -> None:
    """nothing, failed (no stop), saved with a file left out (no stop: it is on the disk only), then saved: each on the real service's tags."""

    def stop_once() -> Watcher:
        watcher = Watcher(
            read=lambda: activity(90),
            scaler=AwsScaler(capacity.cluster, capacity.service, capacity.group, "eu-west-1"),
            autosave=lambda: autosave.autosave(checkout, PREFIX, timeout=20, max_file_mb=0.01),
            idle_timeout_minutes=60,
        )
        watcher.check_once()
        return watcher

    assert stop_once().stopped is not None
    found = autosave_tag(capacity)
    assert (found.group(1), found.group(3), found.group(4)) == ("nothing", None, None)
    assert capacity.desired() == (1, 0)

    capacity.autoscaling.set_desired_capacity(AutoScalingGroupName=capacity.group, DesiredCapacity=1)
    (checkout / "b.py").write_text("b = 2\n")
    (checkout / "big.bin").write_text("x" * 20_000)
    url = git("remote", "get-url", "origin", cwd=checkout).strip()
    git("remote", "set-url", "origin", f"http://127.0.0.1:{free_port()}/gone.git", cwd=checkout)
    assert stop_once().stopped is None
    found = autosave_tag(capacity)
    assert (found.group(1), found.group(3), found.group(4)) == ("failed", None, " left-out=1")
    assert capacity.desired() == (1, 1), "stopped after a failed save"

    git("remote", "set-url", "origin", url, cwd=checkout)
    assert stop_once().stopped is None
    found = autosave_tag(capacity)
    assert found.group(1) == "saved" and found.group(4) == " left-out=1"
    branch = found.group(3).strip()
    assert git("show", f"{branch}:b.py", cwd=url) == "b = 2\n"
    # The record names the commit the branch was pushed at (a restore checks that out, not the branch).
    assert found.group(5).strip() == git("rev-parse", branch, cwd=url).strip()
    assert capacity.desired() == (1, 1), "stopped with a file that only the instance's disk holds"
    assert (checkout / "big.bin").stat().st_size == 20_000

    (checkout / "big.bin").unlink()  # the person moved it away
    assert stop_once().stopped is not None
    found = autosave_tag(capacity)
    assert found.group(1) == "saved" and found.group(4) is None
    assert capacity.desired() == (1, 0)


def test_sigterm_tags_the_outcome_of_its_autosave(
    notebook_factory: StartNotebook, capacity: Capacity, emulator: Emulator, git_server: GitHttpServer, repo: str
) -> None:
    notebook = idle_notebook(notebook_factory, capacity, emulator, "30", NBSTACK_AUTOSAVE_MAX_FILE_MB="0.01")
    (notebook.work_dir / "scratch.py").write_text("unsaved = True\n")
    (notebook.work_dir / "big.bin").write_text("x" * 20_000)
    notebook.signal_group(signal.SIGTERM)
    assert notebook.wait_exit(60) == 0, notebook.log()[-3000:]
    found = autosave_tag(capacity)
    assert found.group(1) == "saved" and found.group(4) == " left-out=1", notebook.log()[-3000:]
    assert f"refs/heads/{found.group(3).strip()}" in git_server.refs(repo)
    assert "1 path(s) left out of the snapshot, still on disk untouched: big.bin" in notebook.log()
    assert (notebook.work_dir / "big.bin").stat().st_size == 20_000


def test_sigterm_with_a_broken_remote_tags_failed(
    notebook_factory: StartNotebook, capacity: Capacity, emulator: Emulator, git_server: GitHttpServer
) -> None:
    notebook = idle_notebook(notebook_factory, capacity, emulator, "30")
    (notebook.work_dir / "scratch.py").write_text("unsaved = True\n")
    git_server.fail_pushes = True
    try:
        notebook.signal_group(signal.SIGTERM)
        assert notebook.wait_exit(60) == 0, notebook.log()[-3000:]
    finally:
        git_server.fail_pushes = False
    found = autosave_tag(capacity)
    assert (found.group(1), found.group(3), found.group(4)) == ("failed", None, None), notebook.log()[-3000:]
