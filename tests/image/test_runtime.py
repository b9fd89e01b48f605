"""Unit tests of the runtime package's pieces (no Jupyter, no network)."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from nbstack_runtime import contract, gitsetup, health, jupyter_config, procfs, warehouse
from nbstack_runtime.settings import Secret, Settings, SettingsError, without_secrets

BASE = {"NBSTACK_PREFIX": "alice", "HOME": "/home/jovyan"}


def settings(**env: str) -> Settings:
    return Settings.from_environ({**BASE, **env})


def test_defaults_follow_the_contract() -> None:
    s = settings()
    assert (s.base_url, s.notebook_port, s.health_port) == ("/alice/", 8888, 8889)
    assert s.work_dir == Path("/home/jovyan/work")
    assert s.autosave_timeout == 90
    assert s.warehouse_port == 5439  # Redshift's, as the playbooks say
    assert settings(AWS_DEFAULT_REGION="eu-west-1").aws_region == "eu-west-1"
    assert settings(AWS_REGION="us-east-1", AWS_DEFAULT_REGION="eu-west-1").aws_region == "us-east-1"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_environ(
            {"NBSTACK_PREFIX": "Alice!", "NBSTACK_NOTEBOOK_PORT": "99999", "NBSTACK_BASE_URL": "alice",
             "NBSTACK_REPO_URL": "http://git.example.com/x.git", "NBSTACK_AUTOSAVE_TIMEOUT": "600"}
        )
    message = str(error.value)
    for name in ("NBSTACK_PREFIX", "NBSTACK_NOTEBOOK_PORT", "NBSTACK_BASE_URL", "NBSTACK_REPO_URL", "NBSTACK_AUTOSAVE_TIMEOUT"):
        assert name in message


def test_credentials_in_the_repository_url_are_refused() -> None:
    with pytest.raises(SettingsError, match="must not contain credentials"):
        settings(NBSTACK_REPO_URL="https://x:tok@github.com/team/nb.git")
    assert settings(NBSTACK_REPO_URL="http://127.0.0.1:9/nb.git").repo_url  # loopback http for tests


def test_secrets_never_show_in_reprs() -> None:
    s = settings(NBSTACK_GIT_TOKEN="tok-123", NBSTACK_NOTEBOOK_PASSWORD="pw-456")
    assert "tok-123" not in repr(s) and "pw-456" not in repr(s)
    assert s.git_token.value == "tok-123" and not Secret("")


def test_without_secrets_drops_listed_and_known_secrets() -> None:
    env = {"A": "1", "NBSTACK_GIT_TOKEN": "t", "EXTRA_SECRET": "x", "JUPYTER_ENV_VARS_TO_UNSET": "EXTRA_SECRET"}
    assert without_secrets(env) == {"A": "1", "JUPYTER_ENV_VARS_TO_UNSET": "EXTRA_SECRET"}


def test_credential_line_escapes_and_defaults_the_user() -> None:
    line = gitsetup.credential_line("https://github.com/team/nb.git", "a:b/c")
    assert line == "https://x-access-token:a%3Ab%2Fc@github.com\n"
    assert gitsetup.credential_line("http://bot@127.0.0.1:8080/nb.git", "t") == "http://bot:t@127.0.0.1:8080\n"


def test_clone_refuses_a_non_empty_directory_without_git(tmp_path: Path) -> None:
    (tmp_path / "someones-file.txt").write_text("keep me")
    s = settings(NBSTACK_WORK_DIR=str(tmp_path), NBSTACK_REPO_URL="https://github.com/team/nb.git")
    with pytest.raises(RuntimeError, match="refusing to clone"):
        gitsetup.clone_if_missing(s)
    assert (tmp_path / "someones-file.txt").read_text() == "keep me"


def test_warehouse_files(tmp_path: Path) -> None:
    s = settings(
        HOME=str(tmp_path), NBSTACK_WAREHOUSE_HOST="wh.example.com", NBSTACK_WAREHOUSE_DATABASE="dw",
        NBSTACK_WAREHOUSE_USER="analyst", NBSTACK_WAREHOUSE_PASSWORD="p:a\\ss",
        NBSTACK_WAREHOUSE_ROLE_ARN="arn:aws:iam::1:role/r", AWS_REGION="eu-west-1",
    )
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text("[default]\nregion = us-east-1\n")
    assert warehouse.configure(s) == [".pg_service.conf", ".pgpass", ".aws/config"]
    assert (tmp_path / ".pgpass").read_text() == "wh.example.com:5439:dw:analyst:p\\:a\\\\ss\n"
    for name in (".pgpass", ".pg_service.conf", ".aws/config"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    config = (tmp_path / ".aws" / "config").read_text()
    assert "[default]" in config and "[profile warehouse]" in config
    assert "credential_source = EcsContainer" in config and "role_arn = arn:aws:iam::1:role/r" in config


def test_no_role_no_aws_profile(tmp_path: Path) -> None:
    s = settings(HOME=str(tmp_path), NBSTACK_WAREHOUSE_HOST="wh", NBSTACK_WAREHOUSE_PASSWORD="p")
    assert warehouse.configure(s) == [".pg_service.conf", ".pgpass"]


def test_jupyter_config_holds_a_hash_that_jupyter_accepts(tmp_path: Path) -> None:
    from jupyter_server.auth import passwd_check

    (tmp_path / ".jupyter").mkdir()
    (tmp_path / ".jupyter" / "jupyter_server_config.json").write_text('{"ServerApp": {"shutdown_no_activity_timeout": 5}}')
    s = settings(HOME=str(tmp_path), NBSTACK_NOTEBOOK_PASSWORD="correct horse", NBSTACK_WORK_DIR="/w")
    jupyter_config.configure(s)
    config = json.loads(s.jupyter_config_file.read_text())
    assert "correct horse" not in s.jupyter_config_file.read_text()
    assert passwd_check(config["PasswordIdentityProvider"]["hashed_password"], "correct horse")
    assert config["IdentityProvider"]["token"] == ""
    assert config["ServerApp"]["root_dir"] == "/w" and config["ServerApp"]["base_url"] == "/alice/"
    assert config["ServerApp"]["shutdown_no_activity_timeout"] == 5  # what was there is kept
    assert stat.S_IMODE(s.jupyter_config_file.stat().st_mode) == 0o600


def test_jupyter_config_without_a_password_fails_closed(tmp_path: Path) -> None:
    s = settings(HOME=str(tmp_path))
    with pytest.raises(ValueError, match="NBSTACK_NOTEBOOK_PASSWORD is empty"):
        jupyter_config.configure(s)
    with pytest.raises(ValueError, match="argon2"):
        jupyter_config.configure(s, "plaintext")
    assert not s.jupyter_config_file.exists()


def test_jupyter_config_takes_the_hash_made_as_root(tmp_path: Path) -> None:
    from jupyter_server.auth import passwd_check

    s = settings(HOME=str(tmp_path))  # the notebook user's side: no password in its environment
    jupyter_config.configure(s, jupyter_config.hash_password("made as root"))
    config = json.loads(s.jupyter_config_file.read_text())
    assert passwd_check(config["PasswordIdentityProvider"]["hashed_password"], "made as root")


def test_jupyter_config_is_written_once_naming_the_watcher_provider_when_it_is_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[Path] = []
    write = jupyter_config.write_private
    monkeypatch.setattr(jupyter_config, "write_private", lambda path, text: (written.append(path), write(path, text)))
    idle_on = {"NBSTACK_CLUSTER": "c", "NBSTACK_SERVICE": "s", "NBSTACK_AUTOSCALING_GROUP": "g"}
    s = settings(HOME=str(tmp_path / "on"), NBSTACK_NOTEBOOK_PASSWORD="pw", **idle_on)
    jupyter_config.configure(s)
    # The config file once, the token before it; JupyterLab's page config after it.
    assert written == [s.idle_token_file, s.jupyter_config_file, jupyter_config.page_config_file(s)]
    config = json.loads(s.jupyter_config_file.read_text())
    assert config["ServerApp"]["identity_provider_class"] == "nbstack_runtime.identity.WatcherIdentityProvider"
    assert stat.S_IMODE(s.idle_token_file.stat().st_mode) == 0o600 and s.idle_token_file.read_text().strip()

    written.clear()
    off = settings(HOME=str(tmp_path / "off"), NBSTACK_NOTEBOOK_PASSWORD="pw", NBSTACK_IDLE_TIMEOUT_MINUTES="0", **idle_on)
    jupyter_config.configure(off)
    assert written == [off.jupyter_config_file, jupyter_config.page_config_file(off)]
    assert not off.idle_token_file.exists()
    assert "identity_provider_class" not in json.loads(off.jupyter_config_file.read_text())["ServerApp"]


def test_health_check_reads_process_states(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    assert health.check(pid_file).reason == "not started"
    child = subprocess.Popen(["sleep", "30"])
    try:
        health.write_pid_file(pid_file, child.pid)
        assert health.check(pid_file).healthy
        child.send_signal(signal.SIGSTOP)
        time.sleep(0.1)
        status = health.check(pid_file)
        assert status.healthy and status.state == "T"
        child.kill()
        time.sleep(0.1)
        status = health.check(pid_file)  # not yet reaped: a zombie
        assert not status.healthy and status.state == "Z"
    finally:
        child.kill()
        child.wait()
    assert health.check(pid_file).reason == "exited"
    pid_file.write_text(f"{os.getpid()} 1\n")  # our pid, another start time: a reused pid
    assert health.check(pid_file).reason == "exited (pid reused)"


def test_procfs_reads_this_process() -> None:
    found = procfs.stat(os.getpid())
    assert found is not None and found.ppid == os.getppid() and found.state in ("R", "S")
    ppid, cmdline = procfs.process_table()[os.getpid()]
    assert ppid == os.getppid() and Path(sys.executable).name in cmdline
    assert procfs.stat(2**22 + 1) is None  # above pid_max: no such process


def test_autosave_branches_match_the_shared_pattern() -> None:
    stamp = datetime(2026, 1, 5, 9, 30, 15, tzinfo=timezone.utc).strftime(contract.AUTOSAVE_STAMP_FORMAT)
    branch = contract.autosave_branch("alice", stamp)
    assert branch == "autosave/alice/20260105T093015Z"
    assert re.fullmatch(contract.AUTOSAVE_BRANCH_PATTERN, branch)
    for other in ("autosave/alice/20260105", "autosave/Alice/20260105T093015Z", "feature/alice/20260105T093015Z"):
        assert not re.fullmatch(contract.AUTOSAVE_BRANCH_PATTERN, other)
    assert re.fullmatch(contract.PREFIX_PATTERN, "alice") and not re.fullmatch(contract.PREFIX_PATTERN, "9lives")


def test_startup_logs_each_invalid_setting_on_a_line_of_its_own_and_fails(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbstack_runtime import hooks

    for name in list(os.environ):
        if name.startswith("NBSTACK_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NBSTACK_PREFIX", "alice")
    monkeypatch.setenv("NBSTACK_NOTEBOOK_PORT", "99999")
    monkeypatch.setenv("NBSTACK_REPO_URL", "http://git.example.com/x.git")
    monkeypatch.setenv("NBSTACK_NOTEBOOK_PASSWORD", "pw")
    monkeypatch.setenv("JUPYTER_ENV_VARS_TO_UNSET", ",".join(hooks.SECRET_VARIABLES))  # as the image sets it
    assert hooks.main(["start"]) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert [e.split(":", 1)[1].split()[0] for e in errors] == ["NBSTACK_NOTEBOOK_PORT", "NBSTACK_REPO_URL"]


def test_startup_refuses_no_password_and_sudo_for_the_notebook_user() -> None:
    from nbstack_runtime import hooks

    with pytest.raises(hooks.StartupError, match="NBSTACK_NOTEBOOK_PASSWORD is empty"):
        hooks.secret_payload(settings())
    with pytest.raises(hooks.StartupError, match="GRANT_SUDO"):
        hooks.check_root_options({"GRANT_SUDO": "yes"})
    hooks.check_root_options({"GRANT_SUDO": "no"})
    with pytest.raises(hooks.StartupError, match="root"):
        hooks.notebook_user({"NB_USER": "root"})
    payload = hooks.secret_payload(settings(NBSTACK_NOTEBOOK_PASSWORD="pw", NBSTACK_GIT_TOKEN="tok"))
    assert payload["git_token"] == "tok"
    assert "pw" not in payload.values() and payload["notebook_password_hash"].startswith("argon2:")


def test_a_failed_clone_is_logged_and_the_server_still_gets_its_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from nbstack_runtime import hooks

    def refuse(_: Settings) -> str:
        raise RuntimeError("git clone failed: 401")

    started: list[Settings] = []
    monkeypatch.setattr(gitsetup, "clone_if_missing", refuse)
    monkeypatch.setattr(hooks, "start_sidecar", started.append)
    s = settings(HOME=str(tmp_path), NBSTACK_WORK_DIR=str(tmp_path / "work"), NBSTACK_REPO_URL="https://git.example.com/x.git")
    hooks.configure(s, {"git_token": "tok", "notebook_password_hash": jupyter_config.hash_password("pw")})
    assert "git clone failed: 401" in caplog.text
    assert s.jupyter_config_file.exists() and len(started) == 1
    with pytest.raises(ValueError, match="argon2"):
        hooks.configure(s, {"notebook_password_hash": "pw"})


def test_jupyter_config_holds_the_api_tokens_digest_never_the_token(tmp_path: Path) -> None:
    from nbstack_runtime import hooks, identity

    token = "t0ken" * 10
    s = settings(HOME=str(tmp_path), NBSTACK_NOTEBOOK_PASSWORD="a password", NBSTACK_API_TOKEN=token)
    payload = hooks.secret_payload(s)  # root's side: only the digest goes to the notebook user
    assert token not in json.dumps(payload)
    jupyter_config.configure(settings(HOME=str(tmp_path)), payload["notebook_password_hash"], payload["api_token_hash"])
    text = s.jupyter_config_file.read_text()
    config = json.loads(text)
    assert token not in text
    assert config["ServerApp"]["identity_provider_class"] == "nbstack_runtime.identity.WatcherIdentityProvider"
    digest = config["WatcherIdentityProvider"]["api_token_hash"]
    assert identity.digest_matches(token, digest) and not identity.digest_matches(token + "x", digest)

    # A later start without a token (and without the watcher) leaves nothing of it behind.
    jupyter_config.configure(settings(HOME=str(tmp_path)), payload["notebook_password_hash"], "")
    config = json.loads(s.jupyter_config_file.read_text())
    assert "identity_provider_class" not in config["ServerApp"] and "WatcherIdentityProvider" not in config


def test_a_short_api_token_stops_the_container(tmp_path: Path) -> None:
    from nbstack_runtime import hooks

    s = settings(HOME=str(tmp_path), NBSTACK_NOTEBOOK_PASSWORD="a password", NBSTACK_API_TOKEN="short")
    with pytest.raises(hooks.StartupError, match="NBSTACK_API_TOKEN has fewer than 32 characters"):
        hooks.secret_payload(s)


def test_the_identity_provider_the_config_names_is_the_class() -> None:
    from nbstack_runtime.identity import WatcherIdentityProvider

    cls = WatcherIdentityProvider
    assert f"{cls.__module__}.{cls.__qualname__}" == jupyter_config.IDENTITY_PROVIDER_CLASS


#: The start steps' work in one process: root's hashing, then the notebook user's files with the idle watcher on.
START_STEPS = """
import json, sys
from nbstack_runtime import hooks
from nbstack_runtime.settings import Settings
env = {"NBSTACK_PREFIX": "alice", "HOME": sys.argv[1], "NBSTACK_WORK_DIR": sys.argv[1] + "/work",
       "NBSTACK_NOTEBOOK_PASSWORD": "pw", "NBSTACK_API_TOKEN": "t" * 40, "NBSTACK_CLUSTER": "c",
       "NBSTACK_SERVICE": "s", "NBSTACK_AUTOSCALING_GROUP": "g"}
payload = hooks.secret_payload(Settings.from_environ(env))
hooks.start_sidecar = lambda settings: None
hooks.configure(Settings.from_environ({k: v for k, v in env.items() if "PASSWORD" not in k and "TOKEN" not in k}), payload)
heavy = ("jupyter_server", "tornado", "jupyterlab", "boto3", "botocore")
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in heavy)))
"""


def test_the_start_steps_load_neither_jupyter_nor_the_aws_sdk(tmp_path: Path) -> None:
    """Jupyter's own import is most of a start; the steps before it must not pay it a second time."""
    done = subprocess.run(
        [sys.executable, "-c", START_STEPS, str(tmp_path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
    config = json.loads((tmp_path / ".jupyter" / "jupyter_server_config.json").read_text())
    assert config["ServerApp"]["identity_provider_class"] == jupyter_config.IDENTITY_PROVIDER_CLASS


def test_jupyter_may_start_once_its_config_and_sidecar_are_ready_and_the_clone_comes_after(tmp_path: Path) -> None:
    from nbstack_runtime import hooks

    seen: list[str] = []
    s = settings(HOME=str(tmp_path), NBSTACK_WORK_DIR=str(tmp_path / "work"), NBSTACK_REPO_URL="https://git.example.com/x.git")

    def ready() -> None:
        assert s.jupyter_config_file.exists() and seen == ["sidecar"]
        seen.append("ready")

    def clone(_: Settings) -> str:
        seen.append("clone")
        return "cloned"

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gitsetup, "clone_if_missing", clone)
        patch.setattr(hooks, "start_sidecar", lambda _: seen.append("sidecar"))
        hooks.configure(s, {"git_token": "tok", "notebook_password_hash": jupyter_config.hash_password("pw")}, ready)
    assert seen == ["sidecar", "ready", "clone"]


def test_the_server_waits_for_the_start_step_before_it_listens(tmp_path: Path) -> None:
    from nbstack_runtime import extension

    s = settings(HOME=str(tmp_path))
    assert extension.wait_for_the_start_step(s, timeout=5)  # no start step recorded: no wait
    still_cloning = subprocess.Popen(["sleep", "1"])
    try:
        health.write_pid_file(s.startup_pid_file, still_cloning.pid)
        assert extension.wait_for_the_start_step(s, timeout=30, poll=0.01)
        assert still_cloning.poll() is not None or procfs.stat(still_cloning.pid).state in ("Z", "X")
        still_cloning.wait()
        hung = subprocess.Popen(["sleep", "30"])
        health.write_pid_file(s.startup_pid_file, hung.pid)
        started = time.monotonic()
        assert not extension.wait_for_the_start_step(s, timeout=0.3, poll=0.01)  # bounded: the server starts
        assert time.monotonic() - started < 10
        hung.kill()
        hung.wait()
    finally:
        still_cloning.kill()
        still_cloning.wait()
