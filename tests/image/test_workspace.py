"""Where a person lands: the file browser, a new terminal and the JupyterLab page, through Jupyter's own API.

The server is started the way the container starts it (hooks, secrets
unset, exec), so these see the working directory start.sh leaves and the
configuration the startup writes.
"""

from __future__ import annotations

import html
import json
import re

from nbstack_devkit.gitserver import git
from nbstack_devkit.notebook import Notebook

ANNOUNCEMENTS = "@jupyterlab/apputils-extension:announcements"
DONE = "nbstack-done"


def test_a_new_terminal_and_the_file_browser_open_in_the_repository(notebook: Notebook) -> None:
    http = notebook.session()
    work = notebook.work_dir
    assert (work / ".git").is_dir()

    # The marker is split in the command, so only its output can match.
    printed = notebook.in_terminal(http, "pwd; git status; echo nbstack-'done'", lambda out: DONE in out)
    assert "not a git repository" not in printed, printed
    assert "On branch main" in printed, printed
    assert str(work) in printed, printed

    # The file browser's root is the clone: its listing is the repository's top level.
    listing = http.get(notebook.url + "api/contents", timeout=10)
    assert listing.status_code == 200, listing.text
    shown = {item["name"] for item in listing.json()["content"]}
    tracked = set(git("ls-tree", "--name-only", "HEAD", cwd=work).split())
    assert shown == {name for name in tracked if not name.startswith(".")}


def test_jupyterlab_is_served_with_the_news_announcements_turned_off(notebook: Notebook) -> None:
    http = notebook.session()
    page = http.get(notebook.url + "lab", timeout=30)
    assert page.status_code == 200, page.text[:500]
    found = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page.text, re.S)
    assert found, "no jupyter-config-data in the JupyterLab page"
    config = json.loads(html.unescape(found.group(1)))
    # The plugin that asks "Would you like to get notified about official Jupyter news?".
    assert ANNOUNCEMENTS in config["disabledExtensions"], config["disabledExtensions"]
