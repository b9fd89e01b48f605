"""The page a person sees, in headless Chromium, against the `make demo` rehearsal.

One rehearsal for the module (emulator, git server, warehouse, up.yml, the
registered task run locally), one browser page walked through a session the
way a person would: log in, open the repository, run and save each of the
demo repository's notebooks as shipped (the analysis, the warehouse query,
the model saved to and loaded from the bucket), take the README's picture,
`git status` in a terminal, run `analysis/primes.ipynb` with nbclient and the
person's API token (the README's "Scripts and editors" route), edit and save
a file, go through an idle stop (the sidecar's own scaler code), find the
edits on the git server's autosave branch and `up.yml` bringing the server
back with the edit still there (the work volume outlives the instance),
then stop the rehearsal. The tests run in file order and build on each
other's page state; each asserts on what is visible, on the server or on the
git server.

Debian's chromium only (/usr/bin/chromium); Playwright never downloads a browser.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nbformat
import pytest
import requests
from jupyter_server.gateway.gateway_client import GatewayClient
from jupyter_server.gateway.managers import GatewayKernelManager
from nbclient import NotebookClient

from nbstack_devkit.demo import PREFIX, Rehearsal, http_status, stop_report_file
from nbstack_devkit.emulator import REGION
from nbstack_devkit.paths import DEMO_DIR
from nbstack_devkit.token_kernel import TokenGatewayKernelClient
from nbstack_devkit.waits import wait_until
from nbstack_runtime.scaler import AwsScaler

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The README's picture, written by this test from the shipped notebook and its output.
PASSWORD = "browser-test-password"
# The demo repository's notebooks, each with what its last cell shows when it
# runs green.
NOTEBOOKS = {
    "warehouse/query.ipynb": "north",
    "models/save_and_load.ipynb": "(True, 1)",
    "analysis/primes.ipynb": "(25, 1060)",
}
WAREHOUSE_TOTALS = [["east", "95"], ["north", "200"], ["south", "150"], ["west", "105"]]
NOTEBOOK = "analysis/primes.ipynb"
OUTPUT = NOTEBOOKS[NOTEBOOK]
# The file edited in the editor before the idle stop.
EDITED = "README.md"
TIMEOUT_MS = 60_000

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsal]:
    rehearsal = Rehearsal(
        state_dir=tmp_path_factory.mktemp("demo") / "state",
        password=PASSWORD,
        preferred_ports=False,  # never collide with a `make demo` on this machine
        echo=lambda line: None,
    )
    with rehearsal:
        yield rehearsal


@pytest.fixture(scope="module")
def page(demo: Rehearsal) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 760})
        context.set_default_timeout(TIMEOUT_MS)
        yield context.new_page()
        browser.close()


def test_login_page_appears_and_refuses_a_wrong_password(demo: Rehearsal, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(demo.url)
    assert "/demo/login" in page.url
    page.fill("#password_input", "not-the-password")
    page.click("#login_submit")
    page.wait_for_load_state()
    assert "/demo/login" in page.url
    assert page.get_by_text("Invalid credentials").is_visible()
    # Nothing behind the login answers without the cookie a right password gets.
    assert page.request.get(demo.url + "api/contents").status == 403


def test_right_password_opens_jupyterlab_with_the_cloned_repository(demo: Rehearsal, page) -> None:  # type: ignore[no-untyped-def]
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    page.wait_for_url("**/demo/lab**")
    listing = page.locator(".jp-DirListing-content")
    for name in ("analysis", "models", "warehouse", "README.md"):
        listing.get_by_text(name, exact=True).wait_for()
    # The clone really is the git server's repository.
    assert (demo.work_dir / ".git").is_dir()
    assert _git(demo.work_dir, "remote", "get-url", "origin").strip().endswith("/notebooks.git")


@pytest.mark.parametrize("path", list(NOTEBOOKS))
def test_each_demo_notebook_runs_green_as_shipped(demo: Rehearsal, page, path: str) -> None:  # type: ignore[no-untyped-def]
    shipped = json.loads((DEMO_DIR / "repo" / path).read_text())
    # An empty layout: only this notebook open, so every locator below is about it.
    page.goto(demo.url + f"lab/tree/{path}?reset")
    page.locator(".jp-StatusBar-Widget").get_by_text("Idle").first.wait_for()  # the kernel is up
    # JupyterLab's announcements plugin is off: no question about Jupyter news covers the page.
    assert page.get_by_text("Would you like to get notified").count() == 0
    page.locator(".lm-MenuBar-item", has_text="Run").click()
    page.locator(".lm-Menu-itemLabel:visible").get_by_text("Run All Cells", exact=True).click()
    outputs = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output")
    # A traceback (and anything else on stderr) ends the wait at once, with its text in the failure.
    failed = outputs.and_(page.locator('[data-mime-type="application/vnd.jupyter.stderr"]'))
    outputs.get_by_text(NOTEBOOKS[path]).or_(failed).first.wait_for(timeout=120_000)
    assert failed.count() == 0, "\n".join(failed.all_inner_texts())
    page.locator(".jp-NotebookPanel:visible").click()  # command mode, so the save shortcut reaches the notebook
    page.keyboard.press("Control+s")

    saved = demo.work_dir / path
    wait_until(lambda: _all_cells_ran(saved), 60, f"the saved {path} to hold every cell's output", interval=0.2)
    cells = json.loads(saved.read_text())["cells"]
    # The code is the shipped code, and nothing failed.
    assert [c["source"] for c in cells] == [c["source"] for c in shipped["cells"]]
    outputs = [o for c in cells for o in c.get("outputs", [])]
    assert [o for o in outputs if o["output_type"] == "error" or o.get("name") == "stderr"] == []
    text = "".join(_output_text(o) for o in outputs)
    if path == "warehouse/query.ipynb":
        assert [line.split() for line in text.splitlines()] == WAREHOUSE_TOTALS
    else:
        assert NOTEBOOKS[path] in text


def test_the_readme_picture_shows_the_shipped_notebook_with_its_output(demo: Rehearsal, page) -> None:  # type: ignore[no-untyped-def]
    # The picture the README shows: the repository in the file browser, the notebook as run above.
    page.goto(demo.url + f"lab/tree/{NOTEBOOK}?reset")
    page.locator(".jp-StatusBar-Widget").get_by_text("Idle").first.wait_for()
    page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output").get_by_text(OUTPUT).wait_for()
    page.locator(".jp-BreadCrumbs-home").click()
    page.locator(".jp-DirListing-content").get_by_text("README.md", exact=True).wait_for()
    shipped = json.loads((DEMO_DIR / "repo" / NOTEBOOK).read_text())
    first_line = next("".join(c["source"]).splitlines()[0] for c in shipped["cells"] if c["cell_type"] == "code")
    assert first_line in page.locator(".jp-NotebookPanel:visible .jp-CodeCell .cm-content").first.inner_text()
    # `make screenshot` writes the README's copy; other runs leave the checkout as it is.
    picture = Path(os.environ.get("NBSTACK_SCREENSHOT") or demo.state_dir / "jupyterlab.png")
    before = picture.stat().st_mtime_ns if picture.exists() else 0
    page.screenshot(path=str(picture))
    assert picture.stat().st_mtime_ns > before


def test_a_terminal_shows_the_edit_in_git_status(demo: Rehearsal, page) -> None:  # type: ignore[no-untyped-def]
    # xterm draws on a canvas; its screen-reader mode mirrors the text into the DOM.
    xsrf = next(c["value"] for c in page.context.cookies() if c["name"] == "_xsrf")
    answer = page.request.put(
        demo.url + "lab/api/settings/@jupyterlab/terminal-extension:plugin",
        data=json.dumps({"raw": json.dumps({"screenReaderMode": True})}),
        headers={"X-XSRFToken": xsrf, "Content-Type": "application/json"},
    )
    assert answer.ok, answer.text()
    # Load the page again for the setting to apply, with an empty layout: a restored
    # notebook can take the front back from a new terminal while its kernel connects.
    page.goto(demo.url + "lab?reset")
    page.locator("#jupyterlab-splash").wait_for(state="detached")  # JupyterLab has started
    try:
        _open_terminal_and_run_git_status(page)
    except Exception as failure:
        shot = demo.state_dir / "terminal-failure.png"
        page.screenshot(path=str(shot))
        failure.add_note(f"screenshot of the page: {shot}")
        raise


def _open_terminal_and_run_git_status(page) -> None:  # type: ignore[no-untyped-def]
    page.locator(".lm-MenuBar-item", has_text="File").click()
    page.locator('.lm-Menu-item[data-type="submenu"]:visible', has_text="New").hover()
    page.locator('.lm-Menu-item[data-command="terminal:create-new"]:visible').click()
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="Terminal")
    terminal = page.locator(".jp-Terminal:visible")
    # Keys go to xterm's own input element, never to whatever else has the focus.
    keys = terminal.locator("textarea.xterm-helper-textarea")
    # Under load the first prompt can take a while to reach the page; bring the
    # terminal to the front as a person would, and nudge it with Enter until it shows.
    for attempt in range(6):
        tab.click()
        terminal.locator(".xterm-accessibility-tree").wait_for(state="attached")
        try:
            wait_until(lambda: _terminal_text(terminal).strip() != "", 15, "the shell prompt", interval=0.2)
            break
        except TimeoutError:
            if attempt == 5:
                raise
            keys.press("Enter")
    # No `cd`: a new terminal starts in the clone.
    keys.press_sequentially("git status")
    keys.press("Enter")
    wait_until(lambda: f"modified:   {NOTEBOOK}" in _terminal_text(terminal), 60, "git status to show the edit", interval=0.2)
    assert "On branch main" in _terminal_text(terminal)


def test_nbclient_runs_the_primes_notebook_on_the_server_with_the_api_token(demo: Rehearsal) -> None:
    """The README's "Scripts and editors" route: jupyter_server's gateway client, the token-sending kernel client."""
    assert demo.emulator is not None and demo.task is not None
    # What up.yml's printed command reads: <app>/<prefix>/api-token in Secrets Manager.
    token = demo.emulator.client("secretsmanager").get_secret_value(SecretId=f"{demo.app}/{PREFIX}/api-token")["SecretString"]
    started_before = demo.task.log().count("Kernel started:")
    kernels_before = _kernel_ids(demo, token)
    nb = nbformat.read(DEMO_DIR / "repo" / NOTEBOOK, as_version=4)
    assert all(cell.get("outputs") == [] for cell in nb.cells if cell.cell_type == "code")  # shipped without output
    GatewayClient.clear_instance()
    try:
        GatewayClient.instance(url=demo.url.rstrip("/"), auth_token=token, request_timeout=60.0, connect_timeout=30.0)
        GatewayClient.instance().init_connection_args()
        manager = GatewayKernelManager(kernel_name="python3", client_factory=TokenGatewayKernelClient)
        client = NotebookClient(nb, km=manager, kernel_name="python3", timeout=120, startup_timeout=120)
        # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
        with ThreadPoolExecutor(max_workers=1) as pool:
            executed = pool.submit(asyncio.run, client.async_execute(cleanup_kc=True)).result()
    finally:
        GatewayClient.clear_instance()
    (cell,) = [cell for cell in executed.cells if cell.cell_type == "code"]
    (output,) = cell.outputs
    assert output["output_type"] == "execute_result" and output["data"]["text/plain"] == OUTPUT
    # The kernel ran on the demo's server, and nbclient shut it down there.
    assert demo.task.log().count("Kernel started:") == started_before + 1
    assert _kernel_ids(demo, token) == kernels_before


def _kernel_ids(demo: Rehearsal, token: str) -> set[str]:
    kernels = requests.get(demo.url + "api/kernels", headers={"Authorization": f"token {token}"}, timeout=10)
    assert kernels.status_code == 200, kernels.text
    return {kernel["id"] for kernel in kernels.json()}


def test_an_idle_stop_then_up_yml_brings_the_server_back_with_the_edit_still_there(  # type: ignore[no-untyped-def]
    demo: Rehearsal, page, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert demo.emulator is not None and demo.playbooks is not None and demo.task is not None
    # An edit, saved from the editor as a person saves it (no brackets: the editor closes them itself).
    edit = f"Edited before an idle stop, mark {secrets.token_hex(4)}"
    page.goto(demo.url + f"lab/tree/{EDITED}?reset")
    editor = page.locator(".jp-FileEditor:visible .cm-content")
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.press("Enter")
    page.keyboard.type(edit)
    page.keyboard.press("Control+s")
    wait_until(lambda: edit in (demo.work_dir / EDITED).read_text(), 30, f"the saved {EDITED} to hold the edit", interval=0.2)
    # What the stop must save: the notebook as run above, the edited file; not JupyterLab's checkpoints.
    notebook_before, file_before = (demo.work_dir / NOTEBOOK).read_text(), (demo.work_dir / EDITED).read_text()
    assert (demo.work_dir / "analysis" / ".ipynb_checkpoints").is_dir()

    # The demo's ECS agent, as `make demo` runs it: one look at the service a second.
    said: list[str] = []
    failed: list[BaseException] = []
    done = threading.Event()

    def follow() -> None:
        while not done.is_set():
            try:
                line = demo.watch()
            except BaseException as error:  # noqa: BLE001 - reported by the test
                failed.append(error)
                return
            if line:
                said.append(line)
            done.wait(1)

    def agent_said(words: str) -> bool:
        if failed:
            raise failed[0]
        return any(words in line for line in said)

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    try:
        # What the sidecar does once idle, with the names its task definition gives it.
        for key, value in demo.emulator.environ({}).items():
            monkeypatch.setenv(key, value)
        env = demo.task.plan.environ
        AwsScaler(env["NBSTACK_CLUSTER"], env["NBSTACK_SERVICE"], env["NBSTACK_AUTOSCALING_GROUP"], REGION).scale_to_zero()
        wait_until(lambda: agent_said("(idle stop): stopped task"), 120, "the idle stop to stop the task", interval=0.5)
        # The server is gone: the page does not load, nothing answers.
        from playwright.sync_api import Error as PlaywrightError

        with pytest.raises(PlaywrightError, match="ERR_CONNECTION_REFUSED"):
            page.reload()
        assert http_status(demo.url + "login") is None

        up = demo.playbooks.up(PREFIX, log=demo.state_dir / "up-after-idle-stop.log")
        assert up.returncode == 0, up.tail()
        wait_until(lambda: agent_said("wants its task again: started task"), 120, "up.yml to start the task again", interval=0.5)
    finally:
        done.set()
        follower.join(timeout=60)
    assert not failed, failed

    # The instance went with the stop, the work volume did not: the edits
    # are where they were, and on the stop's autosave branch too.
    (branch,) = _git(demo.bare_repo, "for-each-ref", "--format=%(refname)", "refs/heads/autosave/").split()
    assert branch.startswith("refs/heads/autosave/demo/")
    on_server = _git(demo.bare_repo, "show", f"{branch}:{NOTEBOOK}")
    assert on_server == notebook_before and OUTPUT in on_server
    assert _git(demo.bare_repo, "show", f"{branch}:{EDITED}") == file_before
    assert ".ipynb_checkpoints" not in _git(demo.bare_repo, "ls-tree", "-r", "--name-only", branch)

    # Back in the browser: the same address, a login if the session is gone, the edited file.
    page.goto(demo.url + f"lab/tree/{EDITED}?reset")
    if "/login" in page.url:
        page.fill("#password_input", PASSWORD)
        page.click("#login_submit")
        page.wait_for_url(f"**/{PREFIX}/lab/**")
    page.locator(".jp-FileEditor:visible .cm-content").get_by_text(edit).first.wait_for()
    assert (demo.work_dir / EDITED).read_text() == file_before
    assert (demo.work_dir / NOTEBOOK).read_text() == notebook_before


def test_stopping_after_the_restart_pushes_nothing_new(demo: Rehearsal) -> None:
    report = demo.stop()
    assert report.down_ok
    assert report.task_exit == 0
    # Nothing changed since the idle stop saved the edits: its branch is the only one.
    assert len(report.autosave_branches) == 1, report
    (branch,) = report.autosave_branches
    assert branch.startswith("refs/heads/autosave/demo/")
    # What `make demo-stop`, another process, prints: the branches on the server.
    assert f"autosave: {branch.removeprefix('refs/heads/')} on the git server" in stop_report_file(demo.state_dir).read_text()
    assert _git(demo.bare_repo, "rev-parse", "refs/heads/main") == _git(demo.work_dir, "rev-parse", "HEAD")


def _all_cells_ran(notebook: Path) -> bool:
    try:
        cells = json.loads(notebook.read_text())["cells"]
    except ValueError:  # caught mid-write
        return False
    return all(c.get("execution_count") for c in cells if c["cell_type"] == "code")


def _output_text(output: dict[str, Any]) -> str:
    text = output.get("text") or output.get("data", {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else str(text)


def _terminal_text(terminal) -> str:  # type: ignore[no-untyped-def]
    return " ".join(terminal.locator(".xterm-accessibility-tree > div").all_inner_texts())


def _git(directory: Path, *args: str) -> str:
    git = shutil.which("git") or "git"
    arg = "--git-dir" if directory.suffix == ".git" else "-C"
    # As root, the work directory belongs to the notebook user (the devkit drops to it, as the image does).
    trust = ["-c", "safe.directory=*"]
    return subprocess.run([git, *trust, arg, str(directory), *args], check=True, capture_output=True, text=True).stdout
