"""A person's day on `make demo`, through the env file it prints, with no other environment set by hand.

The demo runs as `make demo` runs it (`python -m nbstack_devkit.demo`, in a
process of its own); the playbooks run in a shell that only sourced the env
file (`. <state>/env.sh`), from the checkout, as the README writes them:
status.yml, up.yml (a no-op), the sidecar's idle stop, up.yml restarting the
server with the work still there, up.yml with a changed setting replacing the
task (autosave first), down.yml, then `make demo-stop`.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from nbstack_devkit.emulator import REGION
from nbstack_devkit.paths import ROOT
from nbstack_runtime.scaler import AwsScaler

pytestmark = pytest.mark.slow

APP = "nbdemo"
PREFIX = "demo"
#: What a fresh terminal has before sourcing the env file.
BARE_ENV = {"HOME": os.environ.get("HOME", "/root"), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
#: A changed setting (a settings group is given whole).
IDLE_30 = '{"notebook_idle": {"timeout_minutes": 30, "max_lifetime_hours": 0}}'


@dataclass
class RunningDemo:
    """The demo's process and what it printed, line by line."""

    process: subprocess.Popen[str]
    state_dir: Path
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        # Reaped at once, as a shell reaps `make demo`: `demo stop` waits until the pid is gone.
        self.process.wait()

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first line printed from now on that matches `pattern`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.process.poll() is not None and self.lines.empty():
                raise AssertionError(f"the demo printed no line matching {pattern!r}; it printed:\n" + "\n".join(self.seen[-60:]))
            try:
                line = self.lines.get(timeout=min(left, 1))
            except queue.Empty:
                continue
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDemo]:
    state_dir = tmp_path_factory.mktemp("demo") / "state"
    process = subprocess.Popen(
        # Free ports: a `make demo` on this machine may take the settings' ports while the server is stopped.
        [sys.executable, "-m", "nbstack_devkit.demo", "--state-dir", str(state_dir), "--free-ports"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    running = RunningDemo(process, state_dir)
    threading.Thread(target=running.read, daemon=True).start()
    try:
        yield running
    finally:
        if process.poll() is None:
            subprocess.run([sys.executable, "-m", "nbstack_devkit.demo", "stop", "--state-dir", str(state_dir)], timeout=300)
            process.wait(timeout=60)


@dataclass
class Started:
    env_file: Path
    url: str
    work_dir: Path


@pytest.fixture(scope="module")
def started(demo: RunningDemo) -> Started:
    work_dir = demo.wait_for(r"^\s+Work dir:\s+(\S+)", timeout=600).group(1)
    env_file = demo.wait_for(r"^\s+\. (\S+/env\.sh)$", timeout=30).group(1)
    url = re.search(r"URL:\s+(\S+)", "\n".join(demo.seen))
    assert url, demo.seen
    return Started(Path(env_file), url.group(1), Path(work_dir))


def playbook(started: Started, *args: str) -> subprocess.CompletedProcess[str]:
    """`. <env file> && ansible-playbook ARGS` in a fresh shell with nothing else set, from the checkout."""
    return subprocess.run(
        ["bash", "-c", '. "$1" && shift && exec ansible-playbook "$@"', "bash", str(started.env_file), *args],
        cwd=ROOT,
        env=BARE_ENV,
        capture_output=True,
        text=True,
        timeout=900,
    )


def ok(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    return run.stdout


def changed(output: str) -> int:
    found = re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)", output)
    assert found, output[-3000:]
    return int(found.group(1))


def sourced(env_file: Path) -> dict[str, str]:
    """The environment after sourcing the env file in a fresh shell."""
    out = subprocess.run(
        ["bash", "-c", '. "$1" && env -0', "bash", str(env_file)], env=BARE_ENV, capture_output=True, check=True
    ).stdout.decode()
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


@contextlib.contextmanager
def aws(env_file: Path, service: str) -> Iterator[Any]:
    """A client of the emulator the env file names; closed after use, so that no idle connection holds the emulator's stop."""
    env = sourced(env_file)
    client = boto3.client(
        service,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    try:
        yield client
    finally:
        client.close()


def container_env(env_file: Path) -> dict[str, str]:
    with aws(env_file, "cloudformation") as cloudformation, aws(env_file, "ecs") as ecs:
        stack = cloudformation.describe_stacks(StackName=f"{APP}-{PREFIX}")["Stacks"][0]
        arn = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["TaskDefinitionArn"]
        container = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["containerDefinitions"][0]
    return {item["name"]: item["value"] for item in container["environment"]}


def contents(started: Started, path: str) -> int | None:
    """The server's answer to GET api/contents/<path> with the person's API token (None: nothing listens)."""
    with aws(started.env_file, "secretsmanager") as secretsmanager:
        token = secretsmanager.get_secret_value(SecretId=f"{APP}/{PREFIX}/api-token")["SecretString"]
    request = urllib.request.Request(f"{started.url}api/contents/{path}", headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


def branch_files(demo: RunningDemo, ref: str) -> list[str]:
    return subprocess.run(
        ["git", "--git-dir", str(demo.state_dir / "git" / "notebooks.git"), "ls-tree", "-r", "--name-only", ref],
        capture_output=True, text=True, check=True,
    ).stdout.split()


def autosave_branches(demo: RunningDemo) -> set[str]:
    out = subprocess.run(
        ["git", "--git-dir", str(demo.state_dir / "git" / "notebooks.git"), "for-each-ref", "--format=%(refname)",
         "refs/heads/autosave/"],
        capture_output=True, text=True, check=True,
    ).stdout
    return set(out.split())


def test_the_env_file_holds_no_secret_and_points_at_the_demo(started: Started) -> None:
    env = sourced(started.env_file)
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert env["ANSIBLE_VAULT_PASSWORD_FILE"].endswith(".password")
    text = started.env_file.read_text() + Path(env["ANSIBLE_INVENTORY"].split(",")[-1]).read_text()
    assert "nbstack-demo" not in text  # the Jupyter password stays in the vault
    assert "ghp_" not in text


def test_status_and_a_no_op_up_through_the_env_file(started: Started) -> None:
    status = ok(playbook(started, "status.yml"))
    assert re.search(rf"^\s*- {PREFIX}\s+running\s", status, re.MULTILINE), status[-3000:]
    up = ok(playbook(started, "up.yml"))
    assert changed(up) == 0, up[-4000:]


def test_an_idle_stop_stops_the_server_and_up_starts_it_with_the_work_on_its_autosave_branch(
    demo: RunningDemo, started: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"notes-{secrets.token_hex(4)}.txt"
    (started.work_dir / name).write_text("kept across the idle stop\n")
    assert contents(started, name) == 200
    before = autosave_branches(demo)

    # What the sidecar does once idle, with the names its task definition gives it.
    for key, value in sourced(started.env_file).items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    env = container_env(started.env_file)
    AwsScaler(env["NBSTACK_CLUSTER"], env["NBSTACK_SERVICE"], env["NBSTACK_AUTOSCALING_GROUP"], REGION).scale_to_zero()
    demo.wait_for(r"auto scaling group is at 0 \(idle stop\): stopped task", timeout=120)
    assert contents(started, name) is None  # nothing serves
    assert demo.process.poll() is None  # the demo itself goes on
    status = ok(playbook(started, "status.yml"))
    assert re.search(rf"^\s*- {PREFIX}\s+stopped\s", status, re.MULTILINE), status[-3000:]

    up = ok(playbook(started, "up.yml"))
    # The service to 0 before the stack update (the group is at 0), then group, instance, service.
    assert changed(up) == 2, up[-4000:]
    assert "health check has not passed" not in " ".join(up.split()), up[-4000:]
    demo.wait_for(r"the service wants its task again: started task", timeout=60)
    # As on AWS until the work outlives the instance: a fresh clone, the work on the stop's autosave branch.
    assert contents(started, "README.md") == 200
    assert contents(started, name) == 404
    pushed = autosave_branches(demo) - before
    assert pushed, "the idle stop pushed no autosave branch"
    assert name in branch_files(demo, sorted(pushed)[-1])


def test_a_changed_setting_replaces_the_running_task_after_an_autosave(demo: RunningDemo, started: Started) -> None:
    name = f"unsaved-{secrets.token_hex(4)}.txt"
    (started.work_dir / name).write_text("pushed by the SIGTERM autosave\n")
    before = autosave_branches(demo)

    up = ok(playbook(started, "up.yml", "-e", IDLE_30))
    assert changed(up) >= 1, up[-4000:]
    assert container_env(started.env_file)["NBSTACK_IDLE_TIMEOUT_MINUTES"] == "30"
    line = demo.wait_for(r"new task definition (\S+): replaced task (\S+) with task (\S+)", timeout=180)
    assert line.group(1) == f"{APP}-{PREFIX}:2"
    new_task = line.group(3)
    log = (demo.state_dir / "tasks" / new_task / "container.log").read_text()
    assert "timeout 30 min" in log
    assert contents(started, name) == 200
    pushed = autosave_branches(demo) - before
    assert pushed, "the replaced task pushed no autosave branch"
    assert name in branch_files(demo, sorted(pushed)[-1])


def test_down_stops_the_task_and_demo_stop_ends_the_demo(demo: RunningDemo, started: Started) -> None:
    ok(playbook(started, "down.yml"))
    demo.wait_for(r"the service wants no task \(down\.yml\): stopped task", timeout=120)
    assert demo.process.poll() is None
    stop = subprocess.run(
        [sys.executable, "-m", "nbstack_devkit.demo", "stop", "--state-dir", str(demo.state_dir)],
        capture_output=True, text=True, timeout=300,
    )
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert demo.process.wait(timeout=60) == 0
