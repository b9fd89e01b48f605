"""The unauthenticated surfaces of a running container: the health sidecar and the login form.

Real processes: a notebook server started as the container starts it (its
sidecar included), and a sidecar started with the hook's command line next
to a stand-in process. Timing assertions compare one attempt with another on
the same server, never with a wall-clock figure, so a busy machine does not
make them flake.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from nbstack_devkit.container import stop_process_group
from nbstack_devkit.gitserver import GitHttpServer
from nbstack_devkit.notebook import NOTEBOOK_FILES, Notebook, container_environ, start_notebook, wait_until_serving
from nbstack_devkit.waits import free_port, wait_until
from nbstack_runtime import health, procfs
from nbstack_runtime.extension import LOGIN_DELAY_STEP_SECONDS, LoginThrottle, client_address
from nbstack_runtime.sidecar import MAX_CONNECTIONS, REQUEST_TIMEOUT_SECONDS, continue_jupyter

STEP = LOGIN_DELAY_STEP_SECONDS


# --- The sidecar -------------------------------------------------------------------


def _threads(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def _open_files(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


@pytest.fixture
def sidecar(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """The sidecar as the health hook starts it, watching a live stand-in process; yields (it, its port)."""
    alive = subprocess.Popen(["sleep", "300"])
    pid_file = tmp_path / "jupyter.pid"
    health.write_pid_file(pid_file, alive.pid)
    port = free_port()
    own_pid_file = tmp_path / "health.pid"
    with (tmp_path / "sidecar.log").open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "nbstack_runtime.sidecar", "--port", str(port), "--pid-file", str(pid_file),
             "--own-pid-file", str(own_pid_file), "--idle-watcher"],
            # Valid settings with the idle stop off: the watcher thread is not started.
            env={**os.environ, "HOME": str(tmp_path), "NBSTACK_PREFIX": "alice", "NBSTACK_IDLE_TIMEOUT_MINUTES": "0"},
            stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_until(lambda: _answers(port), timeout=30, what="the health sidecar")
        yield process, port
    finally:
        stop_process_group(process, 10)
        alive.kill()
        alive.wait()


def _answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def test_the_health_answer_names_no_process_detail(server: Notebook) -> None:
    notebook = server
    answer = requests.get(notebook.health_url, timeout=5)
    assert answer.status_code == 200
    assert len(answer.content) <= 16, answer.text
    text = answer.text.lower()
    for detail in (str(notebook.pid), "pid", "state", "alive", str(notebook.home), "python"):
        assert detail not in text, f"the health answer shows {detail!r}: {answer.text!r}"
    for name, value in answer.headers.items():
        assert "python" not in value.lower() and str(notebook.pid) not in value, f"{name}: {value}"
    assert "Server" not in answer.headers


def test_idle_connections_neither_block_the_check_nor_add_threads(
    sidecar: tuple[subprocess.Popen[bytes], int], tmp_path: Path
) -> None:
    process, port = sidecar
    pid = process.pid
    threads, files = _threads(pid), _open_files(pid)
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(MAX_CONNECTIONS * 3)]
    try:
        time.sleep(0.5)  # a thread per connection would have started by now
        started = time.monotonic()
        answer = requests.get(f"http://127.0.0.1:{port}/health", timeout=REQUEST_TIMEOUT_SECONDS)
        assert answer.status_code == 200
        assert time.monotonic() - started < REQUEST_TIMEOUT_SECONDS
        assert _threads(pid) <= threads, "the sidecar started threads for idle connections"
        assert _open_files(pid) <= files + MAX_CONNECTIONS + 2, "the sidecar keeps every idle connection open"
        # docker stop's SIGTERM still ends it at once, with the idle connections open.
        process.send_signal(signal.SIGTERM)
        assert process.wait(REQUEST_TIMEOUT_SECONDS) == 0
        log = (tmp_path / "sidecar.log").read_text()
        assert "Traceback" not in log and "ERROR" not in log, log[-3000:]  # a flood of connections is no log flood
    finally:
        for connection in idle:
            connection.close()


def test_a_connection_that_sends_nothing_or_trickles_is_closed(sidecar: tuple[subprocess.Popen[bytes], int]) -> None:
    _, port = sidecar
    silent = socket.create_connection(("127.0.0.1", port))
    trickle = socket.create_connection(("127.0.0.1", port))
    silent.settimeout(REQUEST_TIMEOUT_SECONDS * 3)
    trickle.settimeout(0.5)
    started = time.monotonic()
    try:
        request = b"GET /health HTTP/1.1\r\nHost: x\r\n"
        closed_by_server = False
        for byte in request * 20:  # a byte every half second, never the blank line that ends the head
            try:
                trickle.send(bytes([byte]))
                if trickle.recv(1) == b"":
                    closed_by_server = True
                    break
            except TimeoutError:  # nothing from the server yet
                pass
            except OSError:
                closed_by_server = True
                break
            if time.monotonic() - started > REQUEST_TIMEOUT_SECONDS * 3:
                break
        assert closed_by_server, "a request that trickles in is never cut off"
        with contextlib.suppress(ConnectionResetError):  # closed, without an answer
            assert silent.recv(1) == b""
        assert time.monotonic() - started < REQUEST_TIMEOUT_SECONDS * 3
    finally:
        silent.close()
        trickle.close()


# --- Login throttling ---------------------------------------------------------------


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, git_server: GitHttpServer, warehouse: dict[str, str | int]
) -> Iterator[Notebook]:
    """One notebook server for the login tests; each test logs in as a client address of its own."""
    root = tmp_path_factory.mktemp("login")
    repo = f"login-{secrets.token_hex(3)}.git"
    git_server.create_repo(repo, NOTEBOOK_FILES, commits=1)
    (root / "home").mkdir()
    env = container_environ(root / "home", root / "work", git_server.url(repo), git_server.token, warehouse)
    if "PYTHONPATH" in os.environ:  # the runtime under test, when it is not the installed one
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    notebook = start_notebook(env, root / "server.log")
    try:
        wait_until_serving(notebook)
        yield notebook
    finally:
        notebook.stop()


def _login(notebook: Notebook, password: str, **headers: str) -> tuple[int, float]:
    """One password form post, as a browser behind the load balancer sends it; returns (status, seconds)."""
    http = requests.Session()
    http.get(notebook.url + "login", timeout=10)
    xsrf = http.cookies.get("_xsrf", "")
    started = time.monotonic()
    answer = http.post(
        notebook.url + "login",
        data={"password": password, "_xsrf": xsrf},
        headers={"X-XSRFToken": xsrf, **headers},
        allow_redirects=False,
        timeout=120,
    )
    return answer.status_code, time.monotonic() - started


def _password(notebook: Notebook) -> str:
    return notebook.secrets["NBSTACK_NOTEBOOK_PASSWORD"]


def _as_seen_by_the_balancer(client: str, forged: str | None = None) -> dict[str, str]:
    """The headers the load balancer sends: whatever X-Forwarded-For the client wrote, then the client's address."""
    return {"X-Forwarded-For": f"{forged}, {client}" if forged else client}


def test_each_failed_login_waits_longer(server: Notebook) -> None:
    client = _as_seen_by_the_balancer("203.0.113.11")
    durations = []
    for _ in range(4):
        status, seconds = _login(server, "wrong password", **client)
        assert status == 401
        durations.append(seconds)
    # Waits of 0, 1, 2 and 4 steps: the fourth takes at least a step longer than the first.
    assert durations[3] >= durations[0] + STEP, durations
    assert durations[3] > durations[1], durations
    assert "waits" in server.log()


def test_the_right_password_after_failures_logs_in_and_clears_the_count(server: Notebook) -> None:
    client = _as_seen_by_the_balancer("203.0.113.22")
    for _ in range(3):
        assert _login(server, "wrong password", **client)[0] == 401
    status, delayed = _login(server, _password(server), **client)
    assert status == 302  # logged in, after its wait
    status, after = _login(server, "wrong password", **client)
    assert status == 401
    assert delayed >= after + STEP, (delayed, after)  # the count started again


def test_a_forged_forwarding_header_does_not_reset_the_count(server: Notebook) -> None:
    client = "203.0.113.33"
    durations = [_login(server, "wrong password", **_as_seen_by_the_balancer(client))[1] for _ in range(3)]
    # The client names other addresses itself; the balancer still appends the real one.
    status, forged = _login(
        server,
        "wrong password",
        **_as_seen_by_the_balancer(client, forged="198.51.100.99"),
        **{"X-Real-Ip": "198.51.100.98"},
    )
    assert status == 401
    assert forged >= durations[0] + STEP, (durations, forged)
    # Another client, meanwhile, is not slowed down by this one's failures.
    status, other = _login(server, "wrong password", **_as_seen_by_the_balancer("203.0.113.44"))
    assert status == 401 and forged >= other + STEP, (forged, other)




def test_guesses_sent_side_by_side_queue_and_the_surplus_is_refused(server: Notebook) -> None:
    client = _as_seen_by_the_balancer("203.0.113.55")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: _login(server, "wrong password", **client), range(8)))
    checked = sorted(seconds for status, seconds in results if status == 401)
    refused = [seconds for status, seconds in results if status == 429]
    assert len(checked) + len(refused) == 8, results
    # Turns after 0, 0.5, 1.5, 3.5, 7.5 and 15.5 s; any more would be over 30 s away.
    assert refused, results
    assert checked[-1] >= checked[0] + 8 * STEP, results  # one after another, not all at once
    assert max(refused) < checked[-1], results  # refused at once, unchecked

def test_the_throttle_doubles_queues_and_stays_bounded() -> None:
    throttle = LoginThrottle(step=0.5, maximum=30, forget_after=60, max_clients=3)
    now, waits = 1_234_567.891, []  # a monotonic clock far from zero: no rounding past the cap
    for _ in range(10):  # one attempt after another, each sent once the previous one was answered
        wait = throttle.attempt("198.51.100.1", now=now)
        assert wait is not None
        waits.append(wait)
        now += wait + 0.1
    assert waits[:5] == pytest.approx([0, 0.5, 1, 2, 4]) and waits[-1] == pytest.approx(30)  # doubles, then capped

    side_by_side = [throttle.attempt("198.51.100.2", now=100.0) for _ in range(8)]
    assert side_by_side[:6] == pytest.approx([0, 0.5, 1.5, 3.5, 7.5, 15.5])  # each waits for the turn before it
    assert side_by_side[6:] == [None, None]  # more than the longest wait away: refused unchecked

    for n in range(10):
        throttle.attempt(f"192.0.2.{n}", now=200.0)
    assert len(throttle) == 3  # the clients seen longest ago went first
    assert throttle.attempt("192.0.2.9", now=201.0) == pytest.approx(0.5)
    assert throttle.attempt("192.0.2.9", now=300.0) == 0  # a minute without attempts: forgotten
    throttle.succeeded("192.0.2.9")
    assert throttle.attempt("192.0.2.9", now=301.0) == 0


def test_the_client_is_the_address_the_balancer_appended() -> None:
    assert client_address("10.0.1.5", "198.51.100.1, 203.0.113.9", behind_proxy=True) == "203.0.113.9"
    assert client_address("10.0.1.5", "203.0.113.9:50123", behind_proxy=True) == "203.0.113.9"  # client port kept
    assert client_address("10.0.1.5", "[2001:db8::1]:443", behind_proxy=True) == "2001:db8::1"
    assert client_address("10.0.1.5", "2001:db8::1", behind_proxy=True) == "2001:db8::1"
    assert client_address("10.0.1.5", "not-an-address", behind_proxy=True) == "10.0.1.5"
    assert client_address("10.0.1.5", "203.0.113.9", behind_proxy=False) == "10.0.1.5"  # no proxy: header ignored


def test_a_stop_continues_jupyter_and_the_parent_that_stopped_with_it(tmp_path: Path) -> None:
    """In the image sudo waits for Jupyter as its parent, and stops itself when Jupyter stops: stopped, it would
    never reap an autosaved, exited Jupyter, and the container would wait for ECS's kill."""
    parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys; sys.exit(subprocess.call(['sleep', '60']))"])
    try:
        jupyter = wait_until(lambda: next((p for p in _children(parent.pid)), None), what="the parent's child")
        pid_file = tmp_path / "jupyter.pid"
        found = procfs.stat(jupyter)
        assert found is not None
        pid_file.write_text(f"{jupyter} {found.start_time}\n")
        for pid in (jupyter, parent.pid):
            os.kill(pid, signal.SIGSTOP)
        wait_until(lambda: all(_state(pid) == "T" for pid in (jupyter, parent.pid)), what="both to stop")

        continue_jupyter(pid_file)

        wait_until(lambda: "T" not in {_state(jupyter), _state(parent.pid)}, timeout=5, what="both to continue")
    finally:
        parent.kill()
        parent.wait()


def _children(pid: int) -> list[int]:
    return [child for child, (ppid, _) in procfs.process_table().items() if ppid == pid]


def _state(pid: int) -> str:
    found = procfs.stat(pid)
    return found.state if found else "gone"
