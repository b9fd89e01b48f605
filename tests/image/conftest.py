"""Fixtures that start and stop every real component the container talks to.

git over smart HTTP with basic auth, PostgreSQL, the AWS emulator, and the
notebook server itself, started the way the container starts it: the
before-notebook.d hooks, then the secrets unset, then `exec jupyter-lab`
(nbstack_devkit.start). Each fixture stops what it started.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbstack_devkit.emulator import REAL_ACCOUNT_VARIABLES, Emulator
from nbstack_devkit.gitserver import GitHttpServer
from nbstack_devkit.notebook import (
    NOTEBOOK_FILES,
    WAREHOUSE,
    Notebook,
    StartNotebook,
    container_environ,
    start_notebook,
    wait_until_serving,
)
from nbstack_devkit.postgres import PostgresCluster


@pytest.fixture(scope="session", autouse=True)
def git_trusts_the_notebook_users_checkouts() -> Iterator[None]:
    """As root, the tests run git in work directories the notebook user owns; git refuses that unless told.

    GIT_CONFIG_* is git's command-line scope, which safe.directory honours.
    """
    added = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*"}
    if "GIT_CONFIG_COUNT" in os.environ:
        yield
        return
    os.environ.update(added)
    yield
    for name in added:
        os.environ.pop(name, None)


@pytest.fixture
def container_dir() -> Iterator[Path]:
    """Where the containers' HOMEs and work directories live: a directory the notebook user can enter.

    Run as root, pytest's tmp_path is in root's private (0700) directory, and
    the devkit runs Jupyter as an unprivileged user (start.sh).
    """
    path = Path(tempfile.mkdtemp(prefix="nbstack-container-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitHttpServer]:
    server = GitHttpServer(tmp_path_factory.mktemp("git-server"), token=f"ghp_{secrets.token_hex(16)}").start()
    yield server
    server.stop()


@pytest.fixture
def repo(git_server: GitHttpServer, request: pytest.FixtureRequest) -> str:
    """A fresh notebook repository on the git server, for one test; returns its name."""
    name = f"{request.node.name.replace('[', '-').replace(']', '')}-{secrets.token_hex(3)}.git"
    git_server.create_repo(name, NOTEBOOK_FILES, commits=2)
    return name


@pytest.fixture(scope="session")
def warehouse() -> Iterator[dict[str, str | int]]:
    cluster = PostgresCluster().start()
    password = f"wh-{secrets.token_hex(12)}"
    cluster.execute(
        f"CREATE ROLE {WAREHOUSE['user']} LOGIN PASSWORD '{password}'",
        f"CREATE DATABASE {WAREHOUSE['database']} OWNER {WAREHOUSE['user']}",
    )
    yield {"host": "127.0.0.1", "port": cluster.port, "password": password, **WAREHOUSE}
    cluster.stop()


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """The AWS emulator on a loopback port (S3 for the model store, ECS and auto scaling for the idle stop).

    Stopped after each module: emulators in one process share the emulator's
    state, so one left running while tests/integration runs would register
    every instance a second time (its own instance agents).
    """
    server = Emulator().start()
    yield server
    server.stop()


@pytest.fixture
def s3_env(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """boto3 in this process talks to the emulator with dummy credentials; returns its URL."""
    for name in REAL_ACCOUNT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in emulator.environ({}).items():
        monkeypatch.setenv(name, value)
    return emulator.url


@pytest.fixture
def notebook_factory(
    tmp_path: Path, container_dir: Path, git_server: GitHttpServer, repo: str, warehouse: dict[str, str | int]
) -> Iterator[StartNotebook]:
    """start(work_dir=None, home=None, **env) -> a serving Notebook; all stopped at teardown."""
    started: list[Notebook] = []
    counter = iter(range(100))

    def start(work_dir: Path | None = None, wait: bool = True, **overrides: str) -> Notebook:
        number = next(counter)
        home = container_dir / f"home-{number}"  # a container restart gets a fresh HOME
        home.mkdir()
        env = container_environ(
            home, work_dir or container_dir / "work", git_server.url(repo), git_server.token, warehouse
        )
        env.update(overrides)
        notebook = start_notebook(env, tmp_path / f"server-{number}.log")
        started.append(notebook)
        if wait:
            wait_until_serving(notebook)
        return notebook

    yield start
    for notebook in started:
        notebook.stop()


@pytest.fixture
def notebook(notebook_factory: StartNotebook) -> Notebook:
    return notebook_factory()
