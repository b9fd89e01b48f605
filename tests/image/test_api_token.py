"""The person's API token, used by clients written elsewhere: requests, and nbclient through jupyter_server's gateway client.

The server is started as the container starts it (nbstack_devkit.notebook)
with NBSTACK_API_TOKEN among its secrets. A script sends the token in an
``Authorization: token <t>`` header and needs no login form, cookie or XSRF
header; nbclient runs a notebook on the server's kernels through the
server's REST and websocket API: jupyter_server's GatewayKernelManager,
with its kernel client's websocket carrying the token too (jupyter_server's
own GatewayKernelClient opens the websocket with no header, so the server
refuses it), as the README shows, on a notebook of its own and on the demo
repository's `analysis/primes.ipynb` as shipped. A wrong token is refused and logged, and
does not count against the login throttle (any web page could send one). That the token is nowhere a notebook user can read is
checked with the other secrets (test_container, test_isolation).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import nbformat
import pytest
import requests
from jupyter_server.gateway.gateway_client import GatewayClient
from jupyter_server.gateway.managers import GatewayKernelManager
from nbclient import NotebookClient

from nbstack_devkit.notebook import Notebook
from nbstack_devkit.paths import DEMO_DIR
from nbstack_devkit.token_kernel import TokenGatewayKernelClient


def token_of(notebook: Notebook) -> str:
    return notebook.secrets["NBSTACK_API_TOKEN"]


def with_token(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


def test_a_script_lists_and_writes_contents_with_the_token_alone(notebook: Notebook) -> None:
    headers = with_token(token_of(notebook))
    listing = requests.get(notebook.url + "api/contents", headers=headers, timeout=10)
    assert listing.status_code == 200, listing.text
    assert {"README.md", "analysis", "lib"} <= {entry["name"] for entry in listing.json()["content"]}
    # A write needs no XSRF cookie or header when the token authenticates the request.
    written = requests.put(
        notebook.url + "api/contents/from-script.txt",
        json={"type": "file", "format": "text", "content": "written by a script\n"},
        headers=headers,
        timeout=10,
    )
    assert written.status_code in (200, 201), written.text
    assert (notebook.work_dir / "from-script.txt").read_text() == "written by a script\n"
    # Without the token the same calls are refused.
    assert requests.get(notebook.url + "api/contents", timeout=10).status_code == 403


def test_a_wrong_token_is_refused_and_leaves_the_login_throttle_alone(notebook: Notebook) -> None:
    token = token_of(notebook)
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for _ in range(3):
        assert requests.get(notebook.url + "api/contents", headers=with_token(wrong), timeout=10).status_code == 403
        # As any web page could make a colleague's browser send it (an image URL).
        assert requests.get(notebook.url + f"static/x.png?token={wrong}", timeout=10).status_code in (403, 404)
    assert notebook.log().count("wrong API token") >= 3
    # Wrong tokens are no failed logins: the password login from the same client does not wait.
    assert notebook.session().login_status == 302
    assert requests.get(notebook.url + "api/contents", headers=with_token(token), timeout=10).status_code == 200
    assert "waits" not in notebook.log() and "refused unchecked" not in notebook.log()
    assert token not in notebook.log()


@pytest.fixture
def gateway(notebook: Notebook) -> Iterator[GatewayClient]:
    """jupyter_server's gateway client pointed at the notebook server, with the token (a process-wide singleton)."""
    GatewayClient.clear_instance()
    client = GatewayClient.instance(
        url=notebook.url.rstrip("/"),
        auth_token=token_of(notebook),
        request_timeout=60.0,
        connect_timeout=30.0,
    )
    client.init_connection_args()
    yield client
    GatewayClient.clear_instance()


def test_nbclient_runs_a_notebook_on_the_server_with_the_token(notebook: Notebook, gateway: GatewayClient) -> None:
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("import os\nprimes = [n for n in range(2, 30) if all(n % d for d in range(2, n))]"),
            nbformat.v4.new_code_cell("print(primes, os.environ.get('NBSTACK_API_TOKEN'))"),
        ]
    )
    executed = execute_on_server(nb)
    (output,) = executed.cells[1].outputs
    assert output["text"] == "[2, 3, 5, 7, 11, 13, 17, 19, 23, 29] None\n"
    assert_kernel_ran_and_ended_on(notebook, count=1)


def test_nbclient_runs_the_demo_repositorys_primes_notebook_as_shipped(notebook: Notebook, gateway: GatewayClient) -> None:
    """The README's nbclient route, on a notebook from a person's checkout of the demo repository."""
    nb = nbformat.read(DEMO_DIR / "repo" / "analysis" / "primes.ipynb", as_version=4)
    assert all(cell.get("outputs") == [] for cell in nb.cells if cell.cell_type == "code")  # shipped without output
    executed = execute_on_server(nb)
    (cell,) = [cell for cell in executed.cells if cell.cell_type == "code"]
    (output,) = cell.outputs
    assert output["output_type"] == "execute_result" and output["data"]["text/plain"] == "(25, 1060)"
    assert cell.execution_count == 1
    assert_kernel_ran_and_ended_on(notebook, count=1)


def execute_on_server(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Run `nb` with nbclient on the gateway's server, through the token-sending kernel client."""
    manager = GatewayKernelManager(kernel_name="python3", client_factory=TokenGatewayKernelClient)
    client = NotebookClient(nb, km=manager, kernel_name="python3", timeout=120, startup_timeout=120)
    return asyncio.run(client.async_execute(cleanup_kc=True))


def assert_kernel_ran_and_ended_on(notebook: Notebook, count: int) -> None:
    """The server started `count` kernels, and nbclient shut them down there."""
    assert notebook.log().count("Kernel started:") == count
    kernels = requests.get(notebook.url + "api/kernels", headers=with_token(token_of(notebook)), timeout=10)
    assert kernels.status_code == 200 and kernels.json() == []
