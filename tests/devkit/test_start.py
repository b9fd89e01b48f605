"""The start.sh imitation that runs the container's startup on this machine (no Jupyter, no network)."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from nbstack_devkit import container, start
from nbstack_devkit.paths import HOOKS_DIR
from nbstack_runtime.settings import SECRET_VARIABLES


def run_start(hooks: Path, command: list[str], env: dict[str, str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """`python -m nbstack_devkit.start --hooks-dir HOOKS -- COMMAND` with `env`, as the devkit runs the start."""
    return subprocess.run(
        [sys.executable, "-m", "nbstack_devkit.start", "--hooks-dir", str(hooks), "--", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        **kwargs,  # type: ignore[call-overload]
    )


def environ_of(output: str) -> dict[str, str]:
    """What `env -0` printed."""
    return dict(item.split("=", 1) for item in output.split("\0") if "=" in item)


def test_start_mimics_start_sh(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "10-exported.sh").write_text("export FROM_SOURCED=yes\n")
    (hooks / "20-fails").write_text("#!/bin/bash\nexit 3\n")
    (hooks / "30-records").write_text(f'#!/bin/bash\necho "$FROM_SOURCED $SECRET_A" > {tmp_path}/seen\n')
    (hooks / "40-not-executable").write_text("#!/bin/bash\ntouch /should-not-run\n")
    for name in ("20-fails", "30-records"):
        (hooks / name).chmod(0o755)
    done = run_start(
        hooks, ["env", "-0"], {"PATH": os.environ["PATH"], "SECRET_A": "a", "JUPYTER_ENV_VARS_TO_UNSET": "SECRET_A"}
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "seen").read_text() == "yes a\n"  # hooks see secrets; later hooks see sourced exports
    env = environ_of(done.stdout)
    assert env["FROM_SOURCED"] == "yes"
    assert "SECRET_A" not in env and "JUPYTER_ENV_VARS_TO_UNSET" not in env
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert f"{hooks}/20-fails has failed, continuing execution" in done.stderr
    assert f"Ignoring non-executable: {hooks}/40-not-executable" in done.stderr
    assert start.server_command(["bash"]) == ["bash"]
    assert start.server_command() == ["jupyter-lab"]


def test_a_hook_s_own_set_e_ends_the_start_as_in_the_image(tmp_path: Path) -> None:
    """run-hooks.sh sources a hook outside any condition: errexit, if the hook turns it on, holds there, and a
    failing command ends start.sh (the image's start fails closed)."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "10-strict.sh").write_text(f"set -e\nfalse\ntouch {tmp_path}/after-false\n")
    done = run_start(hooks, ["touch", str(tmp_path / "command-ran")], {"PATH": os.environ["PATH"]})
    assert done.returncode == 1 and "10-strict.sh ended the start with exit code 1" in done.stderr
    assert not (tmp_path / "after-false").exists() and not (tmp_path / "command-ran").exists()


def test_a_hook_cannot_change_the_command(tmp_path: Path) -> None:
    """A sourced hook sees start.sh's arguments: its `shift` or `set --` must not reach the command."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "10-shifts.sh").write_text("shift\nset -- sh -c 'echo hijacked'\n")
    done = run_start(hooks, ["echo", "the", "command"], {"PATH": os.environ["PATH"]})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "the command\n"


@pytest.mark.parametrize(
    ("listed", "hook", "said"),
    [
        ("SECRET_A\nSECRET_B", "", ""),  # a newline separates names as a comma does
        ("SECRET_A, SECRET_B", "readonly SECRET_B\n", "SECRET_B could not be unset"),
        ("SECRET_A,PIPESTATUS[$(touch {marker})]", "", "which is not a variable's name"),
    ],
)
def test_every_listed_secret_is_unset_or_the_start_ends(tmp_path: Path, listed: str, hook: str, said: str) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "10-hook.sh").write_text(hook)
    marker = tmp_path / "ran"
    environ = {"PATH": os.environ["PATH"], "SECRET_A": "a", "SECRET_B": "b", "JUPYTER_ENV_VARS_TO_UNSET": listed.format(marker=marker)}
    done = run_start(hooks, ["env", "-0"], environ)
    if said:
        assert done.returncode == 1 and said in done.stderr
        assert done.stdout == "" and not marker.exists()
    else:
        assert done.returncode == 0, done.stderr
        assert not {"SECRET_A", "SECRET_B"} & set(environ_of(done.stdout))


def test_a_sourced_hook_that_exits_ends_the_start_as_in_start_sh(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "10-returns.sh").write_text("return 1\n")  # logged, start goes on
    (hooks / "20-exits.sh").write_text("export LATER=no\nexit 3\n")  # ends start.sh
    (hooks / "30-never").write_text(f"#!/bin/bash\ntouch {tmp_path}/ran\n")
    (hooks / "30-never").chmod(0o755)
    done = run_start(hooks, ["touch", str(tmp_path / "command-ran")], {"PATH": os.environ["PATH"]})
    assert done.returncode == 3 and "20-exits.sh ended the start with exit code 3" in done.stderr
    assert "10-returns.sh has failed, continuing execution" in done.stderr
    assert not (tmp_path / "ran").exists() and not (tmp_path / "command-ran").exists()


def test_the_command_runs_where_a_sourced_hook_left_the_working_directory(tmp_path: Path) -> None:
    """As in start.sh, which sources the hook: its `cd` moves start.sh, and so the server (the image's hook enters the work directory)."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "10-enters.sh").write_text("cd /usr/share\n")
    (hooks / "20-runs").write_text(f"#!/bin/bash\npwd > {tmp_path}/hook-pwd\n")
    (hooks / "20-runs").chmod(0o755)
    done = run_start(hooks, ["pwd"], {**os.environ, "PWD": "/somewhere/stale"}, cwd="/")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "/usr/share\n"
    assert (tmp_path / "hook-pwd").read_text() == "/usr/share\n"  # later hooks run there too, as in start.sh


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to the notebook user needs root")
def test_as_root_the_server_command_runs_as_the_notebook_user(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "10-whoami").write_text(f"#!/bin/bash\nid -u > {tmp_path}/hook-uid\n")
    (hooks / "10-whoami").chmod(0o755)
    done = run_start(
        hooks,
        ["sh", "-c", "id -u; id -G; env"],
        {**os.environ, "SECRET_A": "a", "JUPYTER_ENV_VARS_TO_UNSET": "SECRET_A", "NB_USER": "nobody"},
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "hook-uid").read_text() == "0\n"  # hooks run as root, as start.sh runs them
    uid, groups, *environ = done.stdout.splitlines()
    nobody = pwd.getpwnam("nobody")
    assert int(uid) == nobody.pw_uid and "0" not in groups.split()
    assert not any(line.startswith(("SECRET_A=", "JUPYTER_ENV_VARS_TO_UNSET=")) for line in environ)
    assert "USER=nobody" in environ


def test_start_defaults_unset_the_image_secrets(tmp_path: Path) -> None:
    done = run_start(tmp_path, ["env", "-0"], {"PATH": os.environ["PATH"], **{name: "x" for name in SECRET_VARIABLES}})
    assert done.returncode == 0, done.stderr
    assert not set(SECRET_VARIABLES) & set(environ_of(done.stdout))


def test_env_file(tmp_path: Path) -> None:
    path = tmp_path / "task.env"
    path.write_text("# task definition\nNBSTACK_PREFIX=alice\n\nNBSTACK_NOTEBOOK_PASSWORD=a=b\n")
    assert start.read_env_file(path) == {"NBSTACK_PREFIX": "alice", "NBSTACK_NOTEBOOK_PASSWORD": "a=b"}
    path.write_text("oops\n")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        start.read_env_file(path)


def user_site(python: str, home: Path) -> Path:
    """The user site-packages folder `python` reads for HOME=`home`."""
    done = subprocess.run(
        [python, "-c", "import site; print(site.ENABLE_USER_SITE, site.getusersitepackages())"],
        env={"HOME": str(home), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    enabled, path = done.stdout.split()
    if enabled != "True":
        pytest.skip(f"{python} reads no user site-packages here")
    return Path(path)


@pytest.mark.parametrize("plant", ["module in the working directory", "pth in the user site-packages"])
def test_the_root_start_step_imports_nothing_from_the_notebook_user(tmp_path: Path, plant: str) -> None:
    # The image's start step runs as root with the notebook user's working
    # directory and HOME, both of which that user writes.
    home = tmp_path / "home"
    home.mkdir()
    marker = tmp_path / "ran-as-hook"
    payload = f"open({str(marker)!r}, 'w').close()\n"
    if plant.startswith("module"):
        package = home / "nbstack_runtime"
        package.mkdir()
        (package / "__init__.py").write_text(payload)
        (package / "hooks.py").write_text("raise SystemExit(0)\n")
        bin_dir = Path(sys.executable).parent
    else:
        # A virtualenv never reads the user site; the interpreter it was made from does.
        python = getattr(sys, "_base_executable", sys.executable)
        site_dir = user_site(python, home)
        site_dir.mkdir(parents=True)
        (site_dir / "planted.pth").write_text("import os; " + payload.replace("\n", "") + "\n")
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "python3").symlink_to(python)
    environ = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(home)}
    # No settings: the real start step refuses them and the hook ends the start.
    # start.sh itself, so that the hook's `python3` is the one on this PATH.
    done = subprocess.run(
        ["bash", str(start.START_SH), str(HOOKS_DIR), "true"], env=environ, cwd=home, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr
    assert "10-nbstack-start.sh ended the start with exit code 1" in done.stderr
    assert not marker.exists(), f"the root start step ran the notebook user's {plant}"


def test_the_server_is_the_child_tini_started_not_one_it_adopted(monkeypatch: pytest.MonkeyPatch) -> None:
    """tini adopts the sidecar the start step leaves (in the start's process group); after a pid wrap the sidecar
    can hold a lower pid, and once the start has exited it is tini's only child."""
    init, server, sidecar = 30990, 31000, 120
    processes = [
        container.Proc(sidecar, init, server, init, 9000),  # adopted: still in the start's group
        container.Proc(server, init, server, init, 8000),  # tini made it a group of its own
        container.Proc(7, 1, 7, 7, 10),
    ]
    monkeypatch.setattr(container, "_processes", lambda: processes)
    assert container.first_child(init) == server
    del processes[1]  # the start has exited (a hook ended it)
    assert container.first_child(init) is None
