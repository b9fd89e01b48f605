"""`make demo`: the whole flow on this machine, without an AWS account.

    python -m nbstack_devkit.demo [start]   bring everything up, print URL and password, wait for Ctrl-C
    python -m nbstack_devkit.demo stop      stop a demo running in another terminal (its pid file)

(`make demo` and `make demo-stop` run these in the project's .venv.)

Start, in order:
1. the AWS emulator (moto server on a free loopback port);
2. a git server (`git http-backend`, basic auth with a demo token) holding a
   small notebook repository made from devkit/demo/repo/, and a throwaway
   PostgreSQL cluster as the warehouse (skipped when PostgreSQL is missing);
3. a demo vault encrypted with ansible-vault, whose token and passwords are
   the ones those servers accept;
4. the env file `<state>/env.sh`: the emulator's address and dummy keys,
   ANSIBLE_INVENTORY with the checkout's inventory and `<state>/inventory.yml`
   (the demo's settings as localhost's host variables, which take precedence
   over group_vars/all: devkit/demo/settings.yml, the ports actually taken,
   `notebook_team_vault` at the demo vault, `prefix: demo`),
   ANSIBLE_VAULT_PASSWORD_FILE at the demo vault's password file, and this
   virtualenv first on PATH. After `. <state>/env.sh`, `ansible-playbook
   status.yml`, `up.yml` and `down.yml` run against the demo as the README
   writes them;
5. `ansible-playbook up.yml` in that environment, exactly as a user runs it
   against AWS;
6. the provisioned task, run by nbstack_devkit.ecs_agent from the task
   definition up.yml registered (environment, secrets by ARN, ports, volume);
   then it prints the URL, the password, the repository's clone URL with the
   demo token, and the line `. <state>/env.sh`.

While it runs, the local agent follows the service every 2 s (`watch`): an
idle stop (the group at 0) or `down.yml` stops the task (SIGTERM: autosave);
`up.yml` after it starts a task again; a new task definition revision
(`up.yml` with a changed setting) replaces the running task. The work
directory is a local folder standing in for the person's EFS file system
(`<state>/efs/<file system id>/...`, printed as `Work dir`): it survives
the idle stop, `up.yml` and `down.yml` as the file system does on AWS, and
goes when `down.yml -e purge_work=true` deletes the file system (a work
volume that is a host path goes with the instance, as its disk does).
`--idle-minutes N` (`make demo IDLE=N`) sets the idle timeout.

Stop (Ctrl-C, SIGTERM, or `make demo-stop`): `down.yml`; the local
agent sees the service gone and SIGTERMs the task as ECS would (the server
pushes unsaved work to an `autosave/demo/<time>` branch); then the warehouse,
the git server and the emulator stop. Everything lives in one state directory
(NBSTACK_DEMO_DIR, default $TMPDIR/nbstack-demo), wiped at the next start
(a new demo is a new account), so the git server's repository and the work
folder can be inspected after a stop.

Tests use the same thing through `Rehearsal` (a context manager) with free
ports; `make demo` prefers the ports in the settings (8888, 8889, 8418) and
falls back to free ones when they are taken.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shlex
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import yaml

from .ecs_agent import LocalAgent, LocalTask, LocalVolume
from .emulator import REAL_ACCOUNT_VARIABLES, Emulator, follow_task_definition_updates, quiet
from .gitserver import GitHttpServer
from .paths import BIN, DEMO_DIR, ROOT
from .playbooks import PlaybookRun, Playbooks
from .postgres import PG_BIN, PostgresCluster
from .vault import Vault, write_vault
from .waits import free_port, wait_until

SETTINGS_FILE = DEMO_DIR / "settings.yml"
REPO_SOURCE = DEMO_DIR / "repo"
PREFIX = "demo"
#: The demo's Jupyter password (override with NBSTACK_DEMO_PASSWORD).
DEFAULT_PASSWORD = "nbstack-demo"
STATE_DIR = Path(os.environ.get("NBSTACK_DEMO_DIR") or Path(tempfile.gettempdir()) / "nbstack-demo")
#: Demo warehouse contents, so warehouse/query.ipynb has something to show.
WAREHOUSE_ROWS = [("north", 120), ("north", 80), ("south", 150), ("east", 95), ("west", 60), ("west", 45)]


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and where the log is."""


def port_is_free(port: int) -> bool:
    """Whether `port` on loopback can be bound now: `make demo` then keeps the settings' port."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (the demo's pid file may be left from a killed run)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_pid(path: Path) -> int | None:
    """The pid in a pid file, if that process still runs."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def http_status(url: str) -> int | None:
    """The status a URL answers with, or None while nothing listens (the server is still starting)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


def succeeded(run: PlaybookRun, log: Path) -> None:
    """Raise DemoError with the end of the log unless the playbook succeeded."""
    if run.returncode != 0:
        raise DemoError(f"{run.args[1]} failed ({run.returncode}); see {log}:\n{run.tail()}")


def repo_files() -> dict[str, str]:
    """devkit/demo/repo's files by relative path: the first commit of the demo's notebook repository."""
    return {
        str(path.relative_to(REPO_SOURCE)): path.read_text()
        for path in sorted(REPO_SOURCE.rglob("*"))
        if path.is_file()
    }


def shell_exports(env: dict[str, str], unset: tuple[str, ...] = ()) -> str:
    """A POSIX shell script that sets `env` (values quoted) and unsets `unset`."""
    lines = ["# nbstack demo: point ansible-playbook at the running demo. Source it: . <this file>"]
    lines += [f"unset {name}" for name in unset]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
    return "\n".join(lines) + "\n"


class DemoPlaybooks(Playbooks):
    """The project's playbooks as a person runs them after `. <state>/env.sh`: no -e, no vault option.

    Settings, the vault and its password come from the env file's variables
    (`env`), so the demo's own runs and a person's are the same commands.
    """

    def __init__(self, emulator: Emulator, settings: Path, vault: Vault, environ: dict[str, str]) -> None:
        super().__init__(emulator, settings, vault)
        self.environ = environ

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.environ}

    def run(self, playbook: str, *extra: str, settings: bool = True, with_vault: bool = True, **kwargs: Any) -> PlaybookRun:
        return super().run(playbook, *extra, settings=False, with_vault=False, **kwargs)


@dataclass
class StopReport:
    """What a stop left behind: the autosave branches on the git server."""

    autosave_branches: dict[str, str] = field(default_factory=dict)
    task_exit: int | None = None
    down_ok: bool = False


@dataclass
class Rehearsal:
    """The demo's lifecycle; `with Rehearsal() as demo:` starts it and always stops it."""

    state_dir: Path = STATE_DIR
    password: str = field(default_factory=lambda: os.environ.get("NBSTACK_DEMO_PASSWORD", DEFAULT_PASSWORD), repr=False)
    #: Prefer the settings' ports (8888, 8889, the git URL's); False: always free ones (tests).
    preferred_ports: bool = True
    echo: Callable[[str], None] = print
    #: notebook_idle.timeout_minutes for the demo (None: the settings' default, 60).
    idle_minutes: int | None = None
    #: The git server's demo token (the vault's vault_github_token).
    git_token: str = field(default="", repr=False)

    emulator: Emulator | None = None
    git_server: GitHttpServer | None = None
    warehouse: PostgresCluster | None = None
    playbooks: Playbooks | None = None
    agent: LocalAgent | None = None
    task: LocalTask | None = None
    #: Undoes the emulator patch start() applies (emulator.follow_task_definition_updates).
    _unfollow: Callable[[], None] = field(default=lambda: None, repr=False)
    settings: dict[str, Any] = field(default_factory=dict)
    notebook_port: int = 0
    health_port: int = 0
    _up_ran: bool = False

    # --- what a person (or a test) needs --------------------------------------

    @property
    def app(self) -> str:
        return str(self.settings["notebook_app_name"])

    @property
    def repo_name(self) -> str:
        return urlsplit(str(self.settings["notebook_repo_url"])).path.strip("/")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.notebook_port}/{PREFIX}/"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}/health"

    @property
    def work_dir(self) -> Path:
        assert self.task is not None
        return next(iter(self.task.plan.mounts.values()))

    @property
    def work_volume(self) -> LocalVolume:
        """The volume behind the work directory: the person's EFS file system, or a host path on the instance's disk."""
        assert self.task is not None
        return next(iter(self.task.plan.volumes.values()))

    def work_volume_note(self) -> str:
        """What the work directory stands for, and what keeps it: said beside the `Work dir` line."""
        volume = self.work_volume
        if volume.outlives_the_instance:
            return (f"the task's /home/jovyan/work: EFS file system {volume.file_system_id}, access point "
                    f"{volume.access_point_id}; kept through an idle stop, up.yml and down.yml, deleted by "
                    "down.yml -e purge_work=true")
        return "the task's /home/jovyan/work, a host path on the instance's disk: deleted by an idle stop or down.yml"

    @property
    def bare_repo(self) -> Path:
        return self.state_dir / "git" / self.repo_name

    @property
    def env_file(self) -> Path:
        """`. <this>` points ansible-playbook at the demo."""
        return self.state_dir / "env.sh"

    @property
    def inventory_file(self) -> Path:
        return self.state_dir / "inventory.yml"

    @property
    def clone_url(self) -> str:
        """The demo repository's URL with the demo token in it (the git server takes any user name)."""
        assert self.git_server is not None
        url = urlsplit(self.git_server.url(self.repo_name))
        return url._replace(netloc=f"demo:{self.git_token}@{url.netloc}").geturl()

    # --- start ----------------------------------------------------------------

    def __enter__(self) -> Rehearsal:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.stop()

    def start(self) -> Rehearsal:
        started = time.monotonic()
        self.settings = yaml.safe_load(SETTINGS_FILE.read_text())
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)
        self.state_dir.mkdir(parents=True)
        extra: dict[str, Any] = {}

        self._unfollow = follow_task_definition_updates()
        self.emulator = Emulator().start()
        self.echo(f"AWS emulator on {self.emulator.url}")

        token = self.git_token = f"ghp_demo{secrets.token_hex(16)}"
        repo_url = urlsplit(str(self.settings["notebook_repo_url"]))
        git_port = self._port(repo_url.port or 0)
        (self.state_dir / "git").mkdir()
        self.git_server = GitHttpServer(self.state_dir / "git", token=token, port=git_port).start()
        self.git_server.create_repo(self.repo_name, repo_files())
        if git_port != repo_url.port:
            extra["notebook_repo_url"] = self.git_server.url(self.repo_name)
        self.echo(f"git server with {self.git_server.url(self.repo_name)} (user any, password the demo token)")

        warehouse_password = f"wh-demo-{secrets.token_hex(12)}"
        if (PG_BIN / "initdb").exists():
            wanted = self.settings["notebook_warehouse"]
            port = self._port(int(wanted["port"]))
            self.warehouse = self._start_warehouse(port, warehouse_password)
            if port != wanted["port"]:
                extra["notebook_warehouse"] = {**wanted, "port": port}
            self.echo(f"warehouse: PostgreSQL on 127.0.0.1:{port}, database {wanted['database']}")
        else:
            self.echo(f"warehouse: skipped ({PG_BIN}/initdb not found; warehouse/query.ipynb will not connect)")

        self.notebook_port = self._port(int(self.settings["notebook_port"]))
        self.health_port = self._port(int(self.settings["notebook_health_port"]), avoid={self.notebook_port})
        if self.notebook_port != self.settings["notebook_port"]:
            extra["notebook_port"] = self.notebook_port
        if self.health_port != self.settings["notebook_health_port"]:
            extra["notebook_health_port"] = self.health_port
        if self.idle_minutes is not None:
            # A settings group is given whole.
            extra["notebook_idle"] = {"timeout_minutes": self.idle_minutes, "max_lifetime_hours": 0}

        vault = write_vault(
            self.state_dir,
            {
                "vault_github_token": token,
                "vault_notebook_password": self.password,
                "vault_warehouse_password": warehouse_password,
            }
        )
        environ = self._write_env_file(vault, extra)
        self.playbooks = DemoPlaybooks(self.emulator, SETTINGS_FILE, vault, environ)
        log = self.state_dir / "up.log"
        self.echo(f". {self.env_file} && ansible-playbook up.yml (log: {log})")
        self._up_ran = True
        # The local agent that runs the task starts once this first up.yml has returned (it reads the
        # stack's outputs): one look at the health check, not a wait for a task nothing runs yet.
        succeeded(self.playbooks.up(PREFIX, "-e", "instance_start_timeout=0", log=log), log)

        self.agent = LocalAgent(self.emulator, f"{self.app}-{PREFIX}", self.state_dir)
        self.task = self.agent.start(self.emulator.environ())
        ports = self.task.plan.ports
        if ports != [self.notebook_port, self.health_port]:
            raise DemoError(f"the task definition maps ports {ports}, expected {[self.notebook_port, self.health_port]}")
        self.echo(f"task {self.task.task_id} of {self.task.plan.task_definition_arn} (pid {self.task.pid}; log: {self.task.log_path})")
        self._wait_until_serving()
        self.agent.report()
        self.echo(f"ready in {time.monotonic() - started:.0f} s")
        return self

    def _write_env_file(self, vault: Vault, extra: dict[str, Any]) -> dict[str, str]:
        """Write the inventory and env.sh that point ansible-playbook at the demo; the variables they set."""
        assert self.emulator is not None
        host_vars = {
            **{key: value for key, value in self.settings.items()},
            **extra,
            "prefix": PREFIX,
            "notebook_team_vault": str(vault.path),
        }
        self.inventory_file.write_text(
            "# The demo's settings, written by `make demo` (devkit/demo/settings.yml and the ports it took).\n"
            "# Host variables take precedence over group_vars/all; -e still overrides them.\n"
            + yaml.safe_dump({"all": {"hosts": {"localhost": host_vars}}}, sort_keys=False)
        )
        aws = {name: value for name, value in self.emulator.environ({}).items()}
        environ = {
            **aws,
            "ANSIBLE_INVENTORY": f"{ROOT / 'inventory' / 'localhost.yml'},{self.inventory_file}",
            "ANSIBLE_VAULT_PASSWORD_FILE": str(vault.password_file),
        }
        script = shell_exports(environ, unset=REAL_ACCOUNT_VARIABLES)
        script += f'export PATH={shlex.quote(str(BIN))}:"$PATH"\n'
        self.env_file.write_text(script)
        return environ

    def watch(self) -> str | None:
        """One look of the local agent at the service; a line saying what it did, or None.

        Stops the task when the service wants none (idle stop, down.yml),
        starts one when it wants one again (up.yml), replaces it when the
        service's task definition changed; reports the serving task to the
        emulator. Waits until a started task serves.
        """
        assert self.agent is not None
        before = self.task
        done = self.agent.reconcile()
        self.task = self.agent.task
        if done in ("started", "replaced"):
            self._wait_until_serving()
        self.agent.report()
        purged = [
            f"work file system {file_system} is gone (down.yml -e purge_work=true): its folder {folder} deleted"
            for file_system, folder in self.agent.discarded_file_systems
        ]
        if done is None:
            return "\n".join(purged) or None
        assert self.task is not None and before is not None
        revision = self.task.plan.task_definition_arn.rsplit("/", 1)[-1]
        if done == "stopped":
            if self.agent.stack_exists() and self.agent.group and self.agent.group_capacity() < 1:
                why = "the auto scaling group is at 0 (idle stop)"
            else:
                why = "the service wants no task (down.yml)"
            if self.work_volume.outlives_the_instance:
                disk = (f"the instance went with it, as on AWS; the work volume stays ({self.work_dir}, "
                        f"EFS file system {self.work_volume.file_system_id}). "
                        "Start it again: ansible-playbook up.yml (the same files, as you left them)")
            else:
                disk = (f"the instance went with it, and its disk ({self.work_dir}), as on AWS. "
                        "Start it again: ansible-playbook up.yml (a fresh clone; the work is on the autosave branch)")
            return "\n".join([f"{why}: stopped task {before.task_id} (SIGTERM: unsaved work pushed to an autosave branch); {disk}", *purged])
        if done == "replaced":
            return (f"new task definition {revision}: replaced task {before.task_id} with task {self.task.task_id} "
                    "as an ECS deployment does (SIGTERM and autosave first); "
                    f"serving at {self.url}")
        return f"the service wants its task again: started task {self.task.task_id} of {revision}; serving at {self.url}"

    def _port(self, preferred: int, avoid: set[int] = frozenset()) -> int:  # type: ignore[assignment]
        if self.preferred_ports and preferred and preferred not in avoid and port_is_free(preferred):
            return preferred
        while True:
            port = free_port()
            if port not in avoid:
                return port

    def _start_warehouse(self, port: int, password: str) -> PostgresCluster:
        cluster = PostgresCluster(port=port).start()
        user, database = self.settings["notebook_warehouse"]["user"], self.settings["notebook_warehouse"]["database"]
        cluster.execute(
            f"CREATE ROLE {user} LOGIN PASSWORD '{password}'",
            f"CREATE DATABASE {database} OWNER {user}",
        )
        conn = cluster.connect(database)
        try:
            with conn, conn.cursor() as cur:
                cur.execute("CREATE TABLE sales (region text NOT NULL, amount integer NOT NULL)")
                cur.executemany("INSERT INTO sales VALUES (%s, %s)", WAREHOUSE_ROWS)
                cur.execute(f"ALTER TABLE sales OWNER TO {user}")
        finally:
            conn.close()
        return cluster

    def _wait_until_serving(self, timeout: float = 120) -> None:
        assert self.task is not None
        task = self.task

        def serving() -> bool:
            if not task.running():
                raise DemoError(f"the task exited with {task.process.returncode}; log {task.log_path}:\n{task.log()[-4000:]}")
            return http_status(self.url + "login") == 200 and http_status(self.health_url) == 200

        wait_until(serving, timeout, f"Jupyter at {self.url}", interval=0.25)

    # --- stop -----------------------------------------------------------------

    def _down_while_watching(self, log: Path) -> PlaybookRun:
        """down.yml, with the local agent looking on as ECS would: down.yml waits for the task to stop (its autosave)."""
        assert self.playbooks is not None
        playbooks = self.playbooks
        done: list[PlaybookRun] = []
        runner = threading.Thread(target=lambda: done.append(playbooks.down(PREFIX, log=log)), name="nbstack-demo-down")
        runner.start()
        while runner.is_alive():
            if self.agent is not None:
                try:
                    self.agent.reconcile()
                    self.task = self.agent.task
                    self.agent.report()
                except Exception as error:  # noqa: BLE001 - the stack is going away under the agent; look again
                    print(f"[demo] agent: {error}", file=sys.stderr)
            runner.join(0.5)
        if not done:
            raise DemoError(f"down.yml did not run; see {log}")
        return done[0]

    def stop(self) -> StopReport:
        """down.yml, then the task stopped as ECS stops it, then the servers. Safe after a partial start."""
        report = StopReport()
        try:
            if self.playbooks is not None and self.emulator is not None and self._up_ran:
                self._up_ran = False
                log = self.state_dir / "down.log"
                self.echo(f"ansible-playbook down.yml (log: {log})")
                try:
                    succeeded(self._down_while_watching(log), log)
                    report.down_ok = True
                except DemoError as error:
                    self.echo(str(error))
            if self.task is not None and self.task.running():
                if self.agent is not None and report.down_ok and self.agent.wait_until_unwanted(30):
                    self.echo("the service is gone: SIGTERM to the task (autosave runs, up to its stop timeout)")
                else:
                    self.echo("the service is still there; stopping the task anyway (SIGTERM)")
                report.task_exit = self.agent.stop_task() if self.agent is not None else self.task.stop()
            elif self.task is not None:
                report.task_exit = self.task.process.returncode
        finally:
            if self.git_server is not None:
                with contextlib.suppress(RuntimeError, OSError):  # the report says what it could read
                    report.autosave_branches = self.git_server.refs(self.repo_name, "refs/heads/autosave/")
                self.git_server.stop()
                self.git_server = None
            if self.warehouse is not None:
                self.warehouse.stop()
                self.warehouse = None
            if self.emulator is not None:
                self.emulator.stop()
                self.emulator = None
            self._unfollow()
            self._unfollow = lambda: None
        lines = [
            f"autosave: {name} on the git server (git --git-dir {self.bare_repo} show --stat {name})"
            for name in (branch.removeprefix("refs/heads/") for branch in report.autosave_branches)
        ] or ["autosave: no branch pushed (nothing to save)"]
        for line in lines:
            self.echo(line)
        # For `demo stop`, which runs in another process and prints them too.
        with contextlib.suppress(OSError):
            stop_report_file(self.state_dir).write_text("".join(line + "\n" for line in lines))
        return report


# --- command line -------------------------------------------------------------


class _Stop(Exception):
    """Raised from the signal handler: a person asked the demo to stop."""


def _raise_stop(signum: int, _frame: object) -> None:
    raise _Stop(signal.Signals(signum).name)


@dataclass
class _Console:
    """Lines printed by the demo, flushed at once (output may be a pipe)."""

    def __call__(self, line: str) -> None:
        print(f"[demo] {line}", flush=True)


def start_command(state_dir: Path, idle_minutes: int | None = None, free_ports: bool = False) -> int:
    pid_file = state_dir.with_name(state_dir.name + ".pid")
    running = read_pid(pid_file)
    if running is not None:
        print(f"A demo is already running (pid {running}). Stop it first: make demo-stop", file=sys.stderr)
        return 1
    pid_file.write_text(f"{os.getpid()}\n")
    quiet()
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    demo = Rehearsal(state_dir=state_dir, echo=_Console(), idle_minutes=idle_minutes, preferred_ports=not free_ports)
    code = 0
    try:
        demo.start()
        assert demo.task is not None
        idle = demo.idle_minutes if demo.idle_minutes is not None else 60
        print(
            "\n"
            "  nbstack demo is running\n"
            f"    URL:       {demo.url}\n"
            f"    Password:  {demo.password}\n"
            f"    Clone:     git clone {demo.clone_url}\n"
            f"    Work dir:  {demo.work_dir}   ({demo.work_volume_note()})\n"
            f"    Server log: {demo.task.log_path}\n"
            f"    Idle stop: after {idle} minute{'' if idle == 1 else 's'} without use (make demo IDLE=N)\n"
            "  In another terminal, from this checkout, point ansible-playbook at the demo:\n"
            f"    . {demo.env_file}\n"
            "  then: ansible-playbook status.yml, up.yml (after an idle stop, or with a changed setting), down.yml\n"
            "  Stop it with Ctrl-C here, or from another terminal: make demo-stop\n"
            "  (python -m nbstack_devkit.demo stop). Unsaved work is pushed to an autosave branch.\n",
            flush=True,
        )
        # Play the ECS agent: stop the task when the service wants none
        # (down.yml, or the idle stop's group at 0), start one when it wants
        # one again, replace it when its task definition changes.
        while True:
            time.sleep(2)
            assert demo.agent is not None
            said = demo.watch()
            for line in said.splitlines() if said else []:
                print(f"[demo] {line}", flush=True)
            task = demo.task
            if task is not None and not task.running() and not demo.agent.stopped_by_agent:
                print(f"[demo] the notebook task exited ({task.process.returncode}); log {task.log_path}:\n"
                      f"{task.log()[-3000:]}", flush=True)
                code = 1
                break
    except _Stop as stop:
        print(f"\n[demo] {stop}: stopping (down.yml, then the task's autosave; this takes a few seconds)", flush=True)
    except (DemoError, TimeoutError) as error:
        print(f"[demo] {error}", file=sys.stderr, flush=True)
        code = 1
    finally:
        # A second Ctrl-C must not cut the autosave or down.yml short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        demo.stop()
        pid_file.unlink(missing_ok=True)
        kept = f" (the work folder: {demo.work_dir})" if demo.task is not None else ""
        print(f"[demo] stopped. State kept until the next demo: {state_dir}{kept}", flush=True)
    return code


def stop_report_file(state_dir: Path) -> Path:
    """Where a stopping demo writes its autosave lines (beside the state directory: a new demo empties that)."""
    return state_dir.with_name(state_dir.name + ".stopped")


def stop_command(state_dir: Path, timeout: float = 300) -> int:
    pid_file = state_dir.with_name(state_dir.name + ".pid")
    pid = read_pid(pid_file)
    if pid is None:
        print("No demo is running.")
        pid_file.unlink(missing_ok=True)
        return 0
    print(f"Stopping the demo (pid {pid}): down.yml, autosave, servers...", flush=True)
    report = stop_report_file(state_dir)
    report.unlink(missing_ok=True)
    os.kill(pid, signal.SIGTERM)
    try:
        wait_until(lambda: not pid_alive(pid), timeout, f"the demo (pid {pid}) to stop", interval=0.5)
    except TimeoutError as error:
        print(error, file=sys.stderr)
        return 1
    try:
        print(report.read_text(), end="")
    except OSError:
        print("The demo did not say which autosave branch it pushed; see its own output.")
    print("Stopped.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", choices=["start", "stop"], default="start")
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR, help=f"default {STATE_DIR}")
    parser.add_argument(
        "--idle-minutes", type=int, default=None, metavar="N",
        help="stop the server after N minutes without use (notebook_idle.timeout_minutes; default 60)",
    )
    parser.add_argument("--free-ports", action="store_true", help="free ports only, never the settings' (8888, 8889, 8418, 5432)")
    args = parser.parse_args(argv)
    if args.idle_minutes is not None and args.idle_minutes < 1:
        parser.error(f"--idle-minutes (make demo IDLE=N) must be at least 1, not {args.idle_minutes}")
    if args.command == "stop":
        return stop_command(args.state_dir)
    return start_command(args.state_dir, args.idle_minutes, args.free_ports)


if __name__ == "__main__":
    sys.exit(main())
