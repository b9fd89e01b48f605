"""No secret where the notebook user can read it, and no server at all when a setting is wrong.

The container runs as the image runs it: `tini -g -- <start>` as root (the
task definition's user 0), the startup as root, Jupyter dropped to the
notebook user (nbstack_devkit.container, start). Code then runs the way a
notebook user runs it, through Jupyter: in a kernel (its websocket API) and
in a terminal's shell (its websocket too). That code looks through every
/proc/*/environ and /proc/*/cmdline, PID 1's stand-in (tini) included, and
every file it can read under HOME, the work directory and /tmp.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket

from nbstack_devkit.notebook import Notebook, StartNotebook
from nbstack_runtime.settings import SECRET_VARIABLES

#: As a non-root user (a developer's laptop) everything runs as that one user, as docker-stacks does without root.
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="the notebook user's isolation needs root to start the container, as the task does"
)

#: How long a probe may take: it reads every changed file under /tmp, which on a shared machine is large.
PROBE_TIMEOUT = 300

#: Looks for the needles (hex, so that the probe's own code holds none of
#: them) and writes what it found to OUT as JSON. Files are searched for the
#: Jupyter password and the API token (FILE_NEEDLES) if they changed after
#: SINCE (the container's start).
PROBE = """
import json, os
needles = [bytes.fromhex(h) for h in NEEDLES]
file_needles = [bytes.fromhex(h) for h in FILE_NEEDLES]
found, environ_readable, environ_unreadable = [], [], []
for entry in os.listdir("/proc"):
    if not entry.isdigit():
        continue
    for what in ("environ", "cmdline"):
        try:
            with open(f"/proc/{entry}/{what}", "rb") as f:
                data = f.read()
        except OSError:
            if what == "environ":
                environ_unreadable.append(int(entry))
            continue
        if what == "environ":
            environ_readable.append(int(entry))
        found += [[entry, what, i] for i, n in enumerate(needles) if n in data]
for top in ROOTS:
    for directory, _, files in os.walk(top):
        for name in files:
            path = os.path.join(directory, name)
            try:
                info = os.lstat(path)
                # Only what changed since the container started can hold its secrets (ctime cannot be set back).
                if os.path.islink(path) or info.st_size > 2**20 or info.st_ctime < SINCE:
                    continue
                with open(path, "rb") as f:
                    data = f.read()
                found += [[path, "file", i] for i, n in enumerate(file_needles) if n in data]
            except OSError:
                pass
result = {"uid": os.getuid(), "pid": os.getpid(), "found": found,
          "environ_readable": environ_readable, "environ_unreadable": environ_unreadable}
with open(OUT + ".tmp", "w") as f:
    json.dump(result, f)
os.rename(OUT + ".tmp", OUT)
"""


def process_start(pid: int) -> float:
    """When a process started, in seconds since the epoch (from /proc, as ps computes it)."""
    stat_text = Path(f"/proc/{pid}/stat").read_text()
    ticks = int(stat_text[stat_text.rindex(")") + 2 :].split()[19])
    boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def probe_code(notebook: Notebook, out: Path) -> str:
    values = [value.encode().hex() for value in notebook.secrets.values()]
    file_values = [notebook.secrets[name].encode().hex() for name in ("NBSTACK_NOTEBOOK_PASSWORD", "NBSTACK_API_TOKEN")]
    roots = [str(notebook.home), str(notebook.work_dir), "/tmp"]
    since = process_start(notebook.process.pid) - 5
    return (
        f"NEEDLES = {values!r}\nFILE_NEEDLES = {file_values!r}\n"
        f"ROOTS = {roots!r}\nOUT = {str(out)!r}\nSINCE = {since!r}\n" + PROBE
    )


def cookie_header(http: requests.Session) -> str:
    return "; ".join(f"{name}={value}" for name, value in http.cookies.items())


def run_in_kernel(notebook: Notebook, http: requests.Session, code: str) -> None:
    kernel = http.post(notebook.url + "api/kernels", json={"name": "python3"}, timeout=30)
    assert kernel.status_code == 201, kernel.text
    ws_url = notebook.url.replace("http://", "ws://") + f"api/kernels/{kernel.json()['id']}/channels"
    connection = websocket.create_connection(ws_url, cookie=cookie_header(http), timeout=PROBE_TIMEOUT)
    try:
        message: dict[str, Any] = {
            "header": {
                "msg_id": uuid.uuid4().hex,
                "msg_type": "execute_request",
                "username": "test",
                "session": uuid.uuid4().hex,
                "version": "5.3",
            },
            "parent_header": {},
            "metadata": {},
            "content": {"code": code, "silent": False, "store_history": False, "allow_stdin": False},
            "channel": "shell",
        }
        connection.send(json.dumps(message))
        deadline = time.monotonic() + PROBE_TIMEOUT
        while time.monotonic() < deadline:
            reply = json.loads(connection.recv())
            if reply.get("msg_type") == "execute_reply":
                assert reply["content"]["status"] == "ok", reply["content"]
                return
        raise TimeoutError("no execute_reply from the kernel")
    finally:
        connection.close()


def run_in_terminal(notebook: Notebook, http: requests.Session, code: str, out: Path) -> None:
    """Run `code` from a terminal's shell, as a script file (a terminal line holds at most 4 KiB under sh)."""
    script = notebook.home / "probe.py"
    script.write_text(code)
    script.chmod(0o644)
    notebook.in_terminal(http, f"python3 {script}", lambda _printed: out.exists(), PROBE_TIMEOUT)


def read_probe(out: Path) -> dict[str, Any]:
    return json.loads(out.read_text())


@needs_root
def test_kernels_and_terminals_cannot_read_any_secret_anywhere(notebook: Notebook) -> None:
    init = notebook.process.pid
    assert "tini" in Path(f"/proc/{init}/cmdline").read_text()
    # The init does hold the secrets (ECS put them in the container's environment): only permissions keep them.
    assert notebook.secrets["NBSTACK_NOTEBOOK_PASSWORD"].encode() in Path(f"/proc/{init}/environ").read_bytes()

    http = notebook.session()
    results = {}
    for where in ("kernel", "terminal"):
        out = notebook.home / f"probe-{where}.json"
        code = probe_code(notebook, out)
        if where == "kernel":
            run_in_kernel(notebook, http, code)
        else:
            run_in_terminal(notebook, http, code, out)
        results[where] = read_probe(out)

    for where, result in results.items():
        assert result["pid"] in result["environ_readable"], f"the {where} could not even read its own environ"
        assert result["found"] == [], f"the {where} found secrets: {result['found']}"
        assert init in result["environ_unreadable"], f"the {where} can read the init's environment"
        assert result["uid"] != 0, f"the {where} runs as root"


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("NBSTACK_NOTEBOOK_PORT", "99999"),
        ("NBSTACK_REPO_URL", "http://git.example.com/team/notebooks.git"),
        ("NBSTACK_NOTEBOOK_PASSWORD", ""),
        ("NBSTACK_REPO_URL", "https://ghp_token@git.example.com/team/notebooks.git"),
        # A task overriding the image's list would leave the secrets in Jupyter's environment.
        ("JUPYTER_ENV_VARS_TO_UNSET", "NBSTACK_GIT_TOKEN"),
        # start.sh unsets each name with `unset`, which evaluates a subscript: code run as root.
        ("JUPYTER_ENV_VARS_TO_UNSET", "{secrets},PIPESTATUS[$(touch /tmp/nbstack-unset-ran)]"),
    ],
)
def test_an_invalid_setting_stops_the_container_before_jupyter_listens(
    notebook_factory: StartNotebook, setting: str, value: str
) -> None:
    notebook = notebook_factory(wait=False, **{setting: value.format(secrets=",".join(SECRET_VARIABLES))})
    code = notebook.exit_code(60)
    assert code is not None, f"the container kept running with {setting}={value!r}:\n{notebook.log()[-2000:]}"
    assert code != 0
    log = notebook.log()
    assert any(setting in line and "ERROR" in line for line in log.splitlines()), log
    assert "stopping without starting Jupyter" in log
    assert "is running at" not in log and "Executing the command" not in log
    if setting != "NBSTACK_NOTEBOOK_PORT":
        assert not listening(notebook.port)
    assert not listening(notebook.health_port), "the health sidecar answers for a container that did not start"
    assert not (notebook.home / ".jupyter" / "jupyter_server_config.json").exists()
    assert not Path("/tmp/nbstack-unset-ran").exists()
