"""The container's startup and shutdown, with real processes and servers.

Every assertion looks at observable state: files, /proc, HTTP answers, refs
on the git server.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from nbstack_devkit.gitserver import GitHttpServer, git
from nbstack_devkit.notebook import PREFIX, Notebook, StartNotebook, wait_until_serving
from nbstack_devkit.waits import wait_until


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat_text = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat_text[stat_text.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def cmdline(pid: int) -> str:
    return (Path(f"/proc/{pid}/cmdline").read_bytes()).replace(b"\0", b" ").decode(errors="replace")


def assert_no_secrets(notebook: Notebook, pid: int, what: str) -> None:
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    command = Path(f"/proc/{pid}/cmdline").read_bytes()
    names = {entry.split(b"=", 1)[0].decode() for entry in environ.split(b"\0") if entry}
    for name, value in notebook.secrets.items():
        assert name not in names, f"{name} is in the environment of {what}"
        assert value.encode() not in environ, f"a secret value is in the environment of {what}"
        assert value.encode() not in command, f"a secret value is on the command line of {what}"


def as_the_notebook_users_edits(work: Path) -> None:
    """The test edits the checkout as root; in the container the notebook user makes them, so they are its files."""
    owner = work.stat()
    for path in [work, *work.rglob("*")]:
        os.lchown(path, owner.st_uid, owner.st_gid)


def health(notebook: Notebook, timeout: float = 1.0) -> int:
    return requests.get(notebook.health_url, timeout=timeout).status_code


def test_first_start_clones_and_keeps_the_token_out_of_everything(
    notebook: Notebook, git_server: GitHttpServer
) -> None:
    work = notebook.work_dir
    assert (work / ".git").is_dir() and (work / "analysis" / "churn.ipynb").is_file()
    token = notebook.secrets["NBSTACK_GIT_TOKEN"]

    # Not in the repository's config or remote URL; in a 0600 file outside the work dir.
    assert token not in (work / ".git" / "config").read_text()
    assert git("remote", "get-url", "origin", cwd=work).strip() == notebook.env["NBSTACK_REPO_URL"]
    credentials = notebook.home / ".nbstack" / "git-credentials"
    assert token in credentials.read_text()
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert work not in credentials.parents
    assert token not in (notebook.home / ".gitconfig").read_text()

    # Not in the server's environment or command line.
    assert "jupyter" in cmdline(notebook.pid)
    assert_no_secrets(notebook, notebook.pid, "the Jupyter server")

    http = notebook.session()
    # A kernel started through the REST API.
    kernel = http.post(notebook.url + "api/kernels", json={"name": "python3"}, timeout=30)
    assert kernel.status_code == 201, kernel.text
    kernel_pid = wait_until(
        lambda: next((p for p in children(notebook.pid) if kernel.json()["id"] in cmdline(p)), None),
        what="the kernel process",
    )
    assert_no_secrets(notebook, kernel_pid, "a kernel")

    # A terminal's shell.
    terminal = http.post(notebook.url + "api/terminals", timeout=30)
    assert terminal.status_code == 200, terminal.text
    shell_pid = wait_until(
        lambda: next((p for p in children(notebook.pid) if p != kernel_pid and "ipykernel" not in cmdline(p)), None),
        what="the terminal's shell",
    )
    assert_no_secrets(notebook, shell_pid, "a terminal's shell")

    # The health sidecar.
    sidecar_pid = int((notebook.home / ".nbstack" / "health.pid").read_text().split()[0])
    assert "nbstack_runtime.sidecar" in cmdline(sidecar_pid)
    assert_no_secrets(notebook, sidecar_pid, "the health sidecar")

    # The clone authenticated with the token (the server refuses anonymous requests).
    assert any("git-upload-pack" in line for line in git_server.requests)


def test_login_requires_the_password_and_then_lists_the_repository(notebook: Notebook) -> None:
    wrong = notebook.session(password="not-the-password")
    assert wrong.login_status != 302  # type: ignore[attr-defined]
    assert wrong.get(notebook.url + "api/contents", timeout=10).status_code == 403
    # No token login: the server printed no token URL and ?token= gets nowhere.
    assert "?token=" not in notebook.log()
    assert requests.get(notebook.url + "api/contents?token=", timeout=10).status_code == 403

    right = notebook.session()
    assert right.login_status == 302  # type: ignore[attr-defined]
    listing = right.get(notebook.url + "api/contents", timeout=10)
    assert listing.status_code == 200
    names = {item["name"] for item in listing.json()["content"]}
    assert {"README.md", "analysis", "lib"} <= names
    config = json.loads((notebook.home / ".jupyter" / "jupyter_server_config.json").read_text())
    assert notebook.secrets["NBSTACK_NOTEBOOK_PASSWORD"] not in json.dumps(config)
    assert config["PasswordIdentityProvider"]["hashed_password"].startswith("argon2:")


def test_warehouse_accepts_a_connection_without_a_password(
    notebook: Notebook, warehouse: dict[str, str | int]
) -> None:
    pgpass = notebook.home / ".pgpass"
    assert stat.S_IMODE(pgpass.stat().st_mode) == 0o600
    # As a notebook would: a kernel-like process with the server's environment (no secrets).
    code = (
        "import psycopg2\n"
        f"c = psycopg2.connect(host={warehouse['host']!r}, port={warehouse['port']}, "
        f"dbname={warehouse['database']!r}, user={warehouse['user']!r})\n"
        "cur = c.cursor(); cur.execute('select current_user'); print(cur.fetchone()[0])\n"
        "s = psycopg2.connect(service='warehouse')\n"
        "cur = s.cursor(); cur.execute('select current_database()'); print(cur.fetchone()[0])\n"
    )
    server_env = dict(
        entry.split("=", 1)
        for entry in Path(f"/proc/{notebook.pid}/environ").read_bytes().decode().split("\0")
        if "=" in entry
    )
    done = subprocess.run([sys.executable, "-c", code], env=server_env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [warehouse["user"], warehouse["database"]]
    aws_config = (notebook.home / ".aws" / "config").read_text()
    assert "credential_source = EcsContainer" in aws_config
    assert notebook.env["NBSTACK_WAREHOUSE_ROLE_ARN"] in aws_config


def test_restart_leaves_an_existing_checkout_and_its_edits_alone(
    notebook_factory: StartNotebook, tmp_path: Path
) -> None:
    first = notebook_factory()
    work = first.work_dir
    (work / "lib" / "features.py").write_text("def double(x):\n    return x + x  # edited\n")
    (work / "scratch.ipynb").write_text("{}\n")
    head = git("rev-parse", "HEAD", cwd=work)
    first.signal_group(signal.SIGKILL)  # a crash: no autosave, nothing cleaned up
    first.wait_exit()

    second = notebook_factory(work_dir=work)
    assert second.pid != first.pid
    assert (work / "lib" / "features.py").read_text().endswith("# edited\n")
    assert (work / "scratch.ipynb").read_text() == "{}\n"
    assert git("rev-parse", "HEAD", cwd=work) == head
    assert "left untouched" in second.log()


def test_health_follows_the_server_process_not_its_http(notebook_factory: StartNotebook) -> None:
    notebook = notebook_factory(wait=False)
    # The sidecar answers before Jupyter has loaded: 503, not started.
    first = wait_until(lambda: _health_or_none(notebook), timeout=30, what="the health sidecar")
    assert first == 503
    wait_until_serving(notebook)
    assert health(notebook) == 200

    os.kill(notebook.pid, signal.SIGSTOP)  # too busy to answer HTTP at all
    try:
        with pytest.raises(requests.Timeout):
            requests.get(notebook.url + "api/status", timeout=1)
        started = time.monotonic()
        assert health(notebook, timeout=1) == 200
        assert time.monotonic() - started < 1
    finally:
        os.kill(notebook.pid, signal.SIGCONT)

    os.kill(notebook.pid, signal.SIGKILL)
    wait_until(lambda: notebook.process.poll() is not None, what="the server to die")
    assert health(notebook) == 503


def _health_or_none(notebook: Notebook) -> int | None:
    try:
        return health(notebook)
    except requests.ConnectionError:
        return None


def _checkout_state(work: Path) -> dict[str, str]:
    return {
        "status": git("status", "--porcelain=v2", "--branch", "--untracked-files=all", cwd=work),
        "index": hashlib.sha256((work / ".git" / "index").read_bytes()).hexdigest(),
        "head": (work / ".git" / "HEAD").read_text(),
        "refs": git("for-each-ref", cwd=work),
        "diff": git("diff", "HEAD", cwd=work),
    }


def test_sigterm_pushes_every_unsaved_change_to_an_autosave_branch(
    notebook: Notebook, git_server: GitHttpServer, repo: str
) -> None:
    work = notebook.work_dir
    git("checkout", "--quiet", "-b", "feature", cwd=work)
    (work / "lib" / "features.py").write_text("def double(x):\n    return x * 2\n")
    git("commit", "--quiet", "-am", "Unpushed local commit", cwd=work)
    (work / "README.md").write_text("# Team notebooks\n\nstaged edit\n")
    git("add", "README.md", cwd=work)
    (work / "analysis" / "churn.ipynb").write_text('{"cells": ["unstaged"]}\n')
    (work / "analysis" / "new.ipynb").write_text('{"cells": ["untracked"]}\n')
    (work / "cache.tmp").write_text("ignored\n")
    as_the_notebook_users_edits(work)
    before = _checkout_state(work)

    notebook.signal_group(signal.SIGTERM)  # what tini -g does on `docker stop`
    assert notebook.wait_exit(60) == 0

    refs = {ref: sha for ref, sha in git_server.refs(repo).items() if ref.startswith(f"refs/heads/autosave/{PREFIX}/")}
    assert len(refs) == 1, notebook.log()[-3000:]
    sha = next(iter(refs.values()))
    bare = git_server.root / repo
    show = lambda path: git("show", f"{sha}:{path}", cwd=bare)  # noqa: E731
    assert show("README.md").endswith("staged edit\n")
    assert show("analysis/churn.ipynb") == '{"cells": ["unstaged"]}\n'
    assert show("analysis/new.ipynb") == '{"cells": ["untracked"]}\n'
    assert show("lib/features.py").endswith("x * 2\n")  # the unpushed commit's content
    assert "cache.tmp" not in git("ls-tree", "-r", "--name-only", sha, cwd=bare).split()
    assert git("log", "--format=%s", sha, cwd=bare).splitlines()[1] == "Unpushed local commit"
    assert _checkout_state(work) == before


def test_sigterm_to_a_stopped_jupyter_still_autosaves(notebook: Notebook, git_server: GitHttpServer, repo: str) -> None:
    work = notebook.work_dir
    (work / "analysis" / "new.ipynb").write_text('{"cells": ["made before a ^Z"]}\n')
    as_the_notebook_users_edits(work)
    os.kill(notebook.pid, signal.SIGSTOP)  # e.g. `kill -STOP` from a terminal; the sidecar still says healthy

    notebook.signal_group(signal.SIGTERM)
    assert notebook.wait_exit(60) == 0, notebook.log()[-3000:]

    refs = [sha for ref, sha in git_server.refs(repo).items() if ref.startswith(f"refs/heads/autosave/{PREFIX}/")]
    assert len(refs) == 1, notebook.log()[-3000:]
    shown = git("show", f"{refs[0]}:analysis/new.ipynb", cwd=git_server.root / repo)
    assert shown == '{"cells": ["made before a ^Z"]}\n'


def test_sigterm_with_nothing_to_save_pushes_nothing(
    notebook: Notebook, git_server: GitHttpServer, repo: str
) -> None:
    before = git_server.refs(repo)
    notebook.signal_group(signal.SIGTERM)
    assert notebook.wait_exit(60) == 0
    assert git_server.refs(repo) == before
    assert "nothing to save" in notebook.log()


def test_sigterm_saves_the_rest_when_some_files_are_unreadable(
    notebook: Notebook, git_server: GitHttpServer, repo: str
) -> None:
    """Files the notebook user cannot read (another user's, mode 0600; or 0000) are left out, not fatal."""
    work = notebook.work_dir
    (work / "analysis" / "new.ipynb").write_text('{"cells": ["saved anyway"]}\n')
    (work / "private").mkdir()
    (work / "private" / "key.txt").write_text("k\n")
    (work / "lib" / "features.py").write_text("def double(x):\n    return x + x  # edited, then locked\n")
    (work / "root-only.txt").write_text("r\n")
    as_the_notebook_users_edits(work)
    locked = [work / "root-only.txt", work / "lib" / "features.py", work / "private"]
    for path in locked:
        if os.geteuid() == 0:
            os.chown(path, 0, 0)  # root's, which the notebook user cannot read
        path.chmod(0o700 if path.is_dir() else 0o600)
        if os.geteuid() != 0:
            path.chmod(0)
    before = _checkout_state(work)

    notebook.signal_group(signal.SIGTERM)
    assert notebook.wait_exit(60) == 0

    refs = [sha for ref, sha in git_server.refs(repo).items() if ref.startswith(f"refs/heads/autosave/{PREFIX}/")]
    assert len(refs) == 1, notebook.log()[-3000:]
    bare = git_server.root / repo
    files = set(git("ls-tree", "-r", "--name-only", refs[0], cwd=bare).split())
    assert "analysis/new.ipynb" in files and "root-only.txt" not in files
    assert not any(name.startswith("private/") for name in files)
    assert git("show", f"{refs[0]}:lib/features.py", cwd=bare) == "def double(x):\n    return 2 * x\n"  # as committed
    message = git("log", "-1", "--format=%B", refs[0], cwd=bare)
    assert "root-only.txt: a file the notebook user cannot read" in message
    assert "lib/features.py: a file the notebook user cannot read" in message
    assert "private: a directory the notebook user cannot read" in message
    assert "3 path(s) left out of the snapshot" in notebook.log()
    for path in locked:
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert _checkout_state(work) == before
    assert (work / "root-only.txt").read_text() == "r\n"


def test_the_startup_hook_starts_python_once_and_jupyter_in_the_clone(
    notebook_factory: StartNotebook, tmp_path: Path
) -> None:
    """Each Python the hook starts costs an interpreter's start before Jupyter's own: one does it all."""
    calls = tmp_path / "python-calls"
    recorder = tmp_path / "record-python.bash"
    # bash reads BASH_ENV before it runs the hook: every `python3` the hook runs is recorded, then run.
    recorder.write_text(f'python3() {{ printf "%s\\n" "$*" >> {calls}; command python3 "$@"; }}\n')
    notebook = notebook_factory(BASH_ENV=str(recorder))
    assert calls.read_text().splitlines() == ["-I -m nbstack_runtime.hooks start"]
    assert Path(f"/proc/{notebook.pid}/cwd").resolve() == notebook.work_dir.resolve()
    assert (notebook.work_dir / ".git").is_dir()
    assert f"nbstack: Jupyter starts in {notebook.work_dir}" in notebook.log()


def test_a_jupyter_config_that_cannot_be_written_stops_the_container(
    notebook_factory: StartNotebook, container_dir: Path
) -> None:
    home = container_dir / "home-unwritable-config"
    home.mkdir()
    (home / ".jupyter").write_text("a file where the config directory belongs\n")  # root's: the user cannot replace it
    notebook = notebook_factory(wait=False, HOME=str(home))
    code = notebook.exit_code(60)
    assert code is not None, f"the container kept running without its Jupyter config:\n{notebook.log()[-2000:]}"
    assert code != 0
    log = notebook.log()
    assert "container startup failed in step 'configure'" in log, log[-3000:]
    assert "stopping without starting Jupyter" in log
    assert "Executing the command" not in log and "is running at" not in log
    assert not (home / ".nbstack" / "health.pid").exists(), "the health sidecar started for a container that did not"


def test_jupyter_starts_while_the_repository_clones_and_listens_only_once_it_is_cloned(
    notebook_factory: StartNotebook, container_dir: Path
) -> None:
    """The clone runs while Jupyter imports; a clone that takes longer holds Jupyter back before it listens."""
    slow = container_dir / "slow-git"
    slow.mkdir()
    (slow / "git").write_text(f'#!/bin/sh\ncase " $* " in *" clone "*) sleep 4;; esac\nexec {shutil.which("git")} "$@"\n')
    (slow / "git").chmod(0o755)
    notebook = notebook_factory(PATH=f"{slow}{os.pathsep}{os.environ['PATH']}")
    lines = notebook.log().splitlines()

    def first(text: str) -> int:
        return next(number for number, line in enumerate(lines) if text in line)

    assert first("Executing the command: jupyter-lab") < first("cloned http://"), "Jupyter waited for the clone to start"
    assert first("cloned http://") < first("is running at"), "Jupyter listened before the clone had finished"
    names = {item["name"] for item in notebook.session().get(notebook.url + "api/contents", timeout=10).json()["content"]}
    assert {"README.md", "analysis", "lib"} <= names
