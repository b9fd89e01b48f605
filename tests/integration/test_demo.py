"""A person's day on `make demo`, through the env file it prints, with no other environment set by hand.

The demo runs as `make demo` runs it (`python -m nbstack_devkit.demo`, in a
process of its own); the playbooks run in a shell that only sourced the env
file (`. <state>/env.sh`), from the checkout, as the README writes them:
status.yml, up.yml (a no-op), work left on the work volume (a git-ignored
data file, an unsaved notebook edit, a stash, a package installed into a
virtual environment in the work directory), up.yml with a one-minute idle
timeout, the sidecar's own idle stop, up.yml restarting the server with the
work as it was left, up.yml with a changed setting replacing the task
(autosave first), down.yml, then `make demo-stop`.
"""

from __future__ import annotations

import contextlib
import json
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
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from nbstack_devkit.paths import ROOT

pytestmark = pytest.mark.slow

APP = "nbdemo"
PREFIX = "demo"
#: What a fresh terminal has before sourcing the env file.
BARE_ENV = {"HOME": os.environ.get("HOME", "/root"), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
#: A changed setting (a settings group is given whole).
IDLE_30 = '{"notebook_idle": {"timeout_minutes": 30, "max_lifetime_hours": 0}}'
#: The shortest idle timeout: the sidecar stops the server after a minute without use (and up to a minute more).
IDLE_1 = '{"notebook_idle": {"timeout_minutes": 1, "max_lifetime_hours": 0}}'


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


def api(started: Started, path: str, model: dict[str, Any] | None = None) -> tuple[int | None, Any]:
    """The server's answer to GET (or, with a model, PUT) api/<path> with the person's API token: (status, JSON body).

    (None, None) while nothing listens.
    """
    with aws(started.env_file, "secretsmanager") as secretsmanager:
        token = secretsmanager.get_secret_value(SecretId=f"{APP}/{PREFIX}/api-token")["SecretString"]
    request = urllib.request.Request(
        f"{started.url}api/{path}",
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        data=None if model is None else json.dumps(model).encode(),
        method="GET" if model is None else "PUT",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None
    except (urllib.error.URLError, OSError):
        return None, None


def contents(started: Started, path: str) -> int | None:
    """The server's answer to GET api/contents/<path> with the person's API token (None: nothing listens)."""
    return api(started, f"contents/{path}")[0]


def revision(started: Started) -> int:
    """The revision of the task definition the person's stack names."""
    with aws(started.env_file, "cloudformation") as cloudformation:
        stack = cloudformation.describe_stacks(StackName=f"{APP}-{PREFIX}")["Stacks"][0]
    arn = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["TaskDefinitionArn"]
    return int(arn.rsplit(":", 1)[1])


def git(work_dir: Path, *args: str) -> str:
    """git in the work directory, as the notebook user works there (what it makes stays the notebook user's)."""
    owner = work_dir.stat()
    run = subprocess.run(
        ["git", "-c", f"safe.directory={work_dir}", "-c", "user.name=Demo", "-c", "user.email=demo@example.com", *args],
        cwd=work_dir, env={"PATH": "/usr/bin:/bin", "HOME": str(work_dir)}, capture_output=True, text=True,
    )
    hand_back(work_dir, owner)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def hand_back(work_dir: Path, owner: os.stat_result) -> None:
    """Run as root here (the notebook user cannot reach pytest's 0700 directories): give the notebook user
    back what a command made or rewrote (git's objects, refs, the index, a file a stash put back; a package)."""
    if os.geteuid() == 0:
        for path in [work_dir, *work_dir.rglob("*")]:
            if path.lstat().st_uid != owner.st_uid:
                os.lchown(path, owner.st_uid, owner.st_gid)


#: A package installed into the work volume, as the README says to keep one: a virtual environment in ~/work.
VENV = ".venv"
PACKAGE = "nbstack_demo_helpers"


def install_package(work_dir: Path, mark: str, scratch: Path) -> None:
    """`python -m venv ~/work/.venv`, then pip installs a package (a wheel made here: no index) into it."""
    owner = work_dir.stat()
    wheel = scratch / f"{PACKAGE}-1.0-py3-none-any.whl"
    info = f"{PACKAGE}-1.0.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"{PACKAGE}/__init__.py", f"MARK = {mark!r}\n")
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: 1.0\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(work_dir / VENV)], check=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(work_dir / VENV / "bin" / "python"), "install", "--quiet",
         "--no-index", "--no-deps", "--disable-pip-version-check", str(wheel)],
        check=True, capture_output=True,
    )
    hand_back(work_dir, owner)


def installed_package(work_dir: Path) -> str:
    """What the work volume's environment says of the package: its version and the mark it was installed with."""
    done = subprocess.run(
        [str(work_dir / VENV / "bin" / "python"), "-c",
         f"import importlib.metadata, {PACKAGE}; print(importlib.metadata.version({PACKAGE!r}), {PACKAGE}.MARK)"],
        capture_output=True, text=True, cwd="/",
    )
    return done.stdout.strip() or done.stderr.strip()[-500:]


@dataclass
class Work:
    """What a person leaves on the work volume, outside any commit: read back from the disk as it is now."""

    data: str
    notebook: str
    notebook_status: str
    stash: str
    stash_list: str
    package: str

    @classmethod
    def read(cls, work_dir: Path) -> Work:
        return cls(
            data=(work_dir / DATA).read_text(),
            notebook=(work_dir / NOTEBOOK).read_text(),
            notebook_status=git(work_dir, "status", "--porcelain", "--", NOTEBOOK),
            stash=git(work_dir, "rev-parse", "refs/stash"),
            stash_list=git(work_dir, "stash", "list"),
            package=installed_package(work_dir),
        )


#: A data set, git-ignored (the demo repository ignores data/), kept only by the work volume.
DATA = "data/big.csv"
#: A notebook of the demo repository, edited and saved through the server, not committed.
NOTEBOOK = "analysis/primes.ipynb"


def leave_work(started: Started, scratch: Path) -> Work:
    """A git-ignored data file and an unsaved notebook edit, both saved through the server's API, a stash,
    and a package installed into a virtual environment in the work directory."""
    mark = secrets.token_hex(4)
    assert api(started, "contents/data", {"type": "directory"})[0] in (200, 201)
    rows = "".join(f"{i},{mark},{i * i}\n" for i in range(200_000))  # about 4 MB
    assert api(started, f"contents/{DATA}", {"type": "file", "format": "text", "content": "n,mark,square\n" + rows})[0] in (200, 201)
    status, notebook = api(started, f"contents/{NOTEBOOK}?content=1")
    assert status == 200, status
    notebook["content"]["cells"].append({"cell_type": "markdown", "metadata": {}, "source": f"A note not committed, mark {mark}"})
    assert api(started, f"contents/{NOTEBOOK}", {"type": "notebook", "content": notebook["content"]})[0] == 200
    # A stash, as a person puts a change aside in a terminal.
    with (started.work_dir / "README.md").open("a") as readme:
        readme.write(f"\nPut aside, mark {mark}\n")
    git(started.work_dir, "stash", "push", "--message", f"aside {mark}", "--", "README.md")
    assert git(started.work_dir, "check-ignore", DATA).strip() == DATA  # outside git: only the volume keeps it
    install_package(started.work_dir, mark, scratch)
    assert git(started.work_dir, "check-ignore", VENV).strip() == VENV
    work = Work.read(started.work_dir)
    assert mark in work.notebook and work.notebook_status.startswith(" M"), work.notebook_status
    assert f"aside {mark}" in work.stash_list
    assert work.package == f"1.0 {mark}", work.package
    return work


def keep_busy(started: Started, until: threading.Event) -> threading.Thread:
    """A person using the server every few seconds (API requests are activity), until `until` is set."""

    def use() -> None:
        while not until.wait(5):
            contents(started, "README.md")

    thread = threading.Thread(target=use, daemon=True)
    thread.start()
    return thread


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


@pytest.fixture(scope="module")
def work(started: Started, tmp_path_factory: pytest.TempPathFactory) -> Work:
    return leave_work(started, tmp_path_factory.mktemp("wheel"))


def test_the_work_volume_outlives_an_idle_stop_and_up_yml_finds_the_work_as_it_was_left(
    demo: RunningDemo, started: Started, work: Work
) -> None:
    before = autosave_branches(demo)

    # A one-minute idle timeout (a changed setting): the task is replaced, on the same volume.
    first = revision(started)
    ok(playbook(started, "up.yml", "-e", IDLE_1))
    assert container_env(started.env_file)["NBSTACK_IDLE_TIMEOUT_MINUTES"] == "1"
    demo.wait_for(rf"new task definition {APP}-{PREFIX}:{first + 1}: replaced task", timeout=180)
    assert Work.read(started.work_dir) == work

    # Nobody uses the server: the sidecar's own idle stop (autosave, then the group to 0).
    line = demo.wait_for(r"auto scaling group is at 0 \(idle stop\): stopped task", timeout=300)
    assert "the work volume stays" in line.string, line.string
    assert contents(started, "README.md") is None  # nothing serves
    assert demo.process.poll() is None  # the demo itself goes on
    status = ok(playbook(started, "status.yml"))
    assert re.search(rf"^\s*- {PREFIX}\s+stopped\s", status, re.MULTILINE), status[-3000:]
    assert Work.read(started.work_dir) == work

    up = ok(playbook(started, "up.yml", "-e", IDLE_1))
    # The same command as before the stop, so the short way: one task sets the service to 0 (the
    # group is at 0), then starts group, instance, service, as the whole way's two tasks do.
    assert re.search(r"^Phases: last_run [^,;]*; total", up, re.MULTILINE), up[-4000:]
    assert changed(up) == 1, up[-4000:]
    assert "health check has not passed" not in " ".join(up.split()), up[-4000:]
    demo.wait_for(r"the service wants its task again: started task", timeout=60)
    # The same files, as the person left them: through the server and on the volume.
    assert Work.read(started.work_dir) == work
    status_code, served = api(started, f"contents/{DATA}?content=1&format=text&type=file")
    assert status_code == 200 and served["content"] == work.data
    # The autosave is the second copy: the unsaved notebook edit is on a branch, the git-ignored data is not.
    pushed = autosave_branches(demo) - before
    assert pushed, "neither the replacement nor the idle stop pushed an autosave branch"
    assert any(NOTEBOOK in branch_files(demo, ref) for ref in pushed)
    assert not any(DATA in branch_files(demo, ref) for ref in pushed)
    assert not any(name.startswith(VENV + "/") for ref in pushed for name in branch_files(demo, ref))

    # Back to the settings' idle timeout while the person works on, so the server stays up for what follows.
    busy = threading.Event()
    user = keep_busy(started, busy)
    try:
        ok(playbook(started, "up.yml"))
        demo.wait_for(rf"new task definition {APP}-{PREFIX}:{first + 2}: replaced task", timeout=180)
    finally:
        busy.set()
        user.join(timeout=30)
    assert container_env(started.env_file)["NBSTACK_IDLE_TIMEOUT_MINUTES"] == "60"
    assert Work.read(started.work_dir) == work


def test_a_changed_setting_replaces_the_running_task_after_an_autosave(demo: RunningDemo, started: Started) -> None:
    name = f"unsaved-{secrets.token_hex(4)}.txt"
    (started.work_dir / name).write_text("pushed by the SIGTERM autosave\n")
    before = autosave_branches(demo)

    first = revision(started)
    up = ok(playbook(started, "up.yml", "-e", IDLE_30))
    assert changed(up) >= 1, up[-4000:]
    assert container_env(started.env_file)["NBSTACK_IDLE_TIMEOUT_MINUTES"] == "30"
    line = demo.wait_for(r"new task definition (\S+): replaced task (\S+) with task (\S+)", timeout=180)
    assert line.group(1) == f"{APP}-{PREFIX}:{first + 1}"
    new_task = line.group(3)
    log = (demo.state_dir / "tasks" / new_task / "container.log").read_text()
    assert "timeout 30 min" in log
    assert contents(started, name) == 200
    pushed = autosave_branches(demo) - before
    assert pushed, "the replaced task pushed no autosave branch"
    assert name in branch_files(demo, sorted(pushed)[-1])


def test_down_then_up_finds_the_work_as_it_was_left(demo: RunningDemo, started: Started, work: Work) -> None:
    ok(playbook(started, "down.yml"))
    line = demo.wait_for(r"the service wants no task \(down\.yml\): stopped task", timeout=120)
    assert "the work volume stays" in line.string, line.string
    assert Work.read(started.work_dir) == work
    ok(playbook(started, "up.yml"))
    demo.wait_for(r"the service wants its task again: started task", timeout=120)
    assert contents(started, "README.md") == 200
    assert Work.read(started.work_dir) == work


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
