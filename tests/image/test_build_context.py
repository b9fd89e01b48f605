"""The image's build context, checked without a Docker engine.

What `docker build` would trip over (a COPY of a missing file, a hook that
is not executable) and what would quietly weaken the image (an unpinned
base, a secret missing from JUPYTER_ENV_VARS_TO_UNSET) fails here first.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from nbstack_devkit.paths import HOOKS_DIR, IMAGE_DIR
from nbstack_devkit.start import IMAGE_CMD
from nbstack_runtime.settings import SECRET_VARIABLES, VARIABLES

DOCKERFILE = (IMAGE_DIR / "Dockerfile").read_text()
INSTRUCTIONS = [
    line.strip()
    for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]


def instructions(keyword: str) -> list[str]:
    return [line.split(None, 1)[1] for line in INSTRUCTIONS if line.split(None, 1)[0].upper() == keyword]


def test_copy_sources_exist_in_the_build_context() -> None:
    copies = instructions("COPY")
    assert copies
    for copy in copies:
        parts = [p for p in copy.split() if not p.startswith("--")]
        for source in parts[:-1]:
            assert (IMAGE_DIR / source).exists(), f"COPY {source}: not in files/image"


def test_dockerignore_lets_the_copied_files_through() -> None:
    ignore = (IMAGE_DIR / ".dockerignore").read_text().split()
    for copy in instructions("COPY"):
        for source in [p for p in copy.split() if not p.startswith("--")][:-1]:
            assert f"!{source}" in ignore, f"{source} is excluded by .dockerignore"


def test_base_image_is_pinned_by_date_tag_and_used() -> None:
    """Both bases named once, pinned by one date tag; VARIANT (default cpu) picks the one the recipe builds on."""
    assert instructions("ARG")[0] == "VARIANT=cpu"
    cpu, gpu, chosen = instructions("FROM")
    assert re.fullmatch(r"quay\.io/jupyter/scipy-notebook:\d{4}-\d{2}-\d{2} AS base-cpu", cpu)
    assert chosen == "base-${VARIANT}"
    # The GPU variant uses the same date.
    date = cpu.split()[0].rsplit(":", 1)[1]
    assert gpu == f"quay.io/jupyter/pytorch-notebook:cuda12-{date} AS base-gpu"
    assert DOCKERFILE.count("quay.io/jupyter/") == 2, "a base image is named more than once"


def test_recipe_style() -> None:
    assert instructions("SHELL") == ['["/bin/bash", "-o", "pipefail", "-c"]']
    users = instructions("USER")
    assert users and users[-1] == "${NB_UID}"
    # The base image's entry point stays: tini, then start.sh (its hooks, the secrets unset, the drop to jovyan).
    assert "ENTRYPOINT" not in DOCKERFILE
    for run in instructions("RUN"):
        if "pip install" in run:
            assert "--no-cache-dir" in run and "fix-permissions" in run
    for copy in instructions("COPY"):
        assert copy.startswith("--chown=")


def test_every_secret_is_unset_before_jupyter_starts() -> None:
    (env,) = [e for e in instructions("ENV") if e.startswith("JUPYTER_ENV_VARS_TO_UNSET=")]
    assert env.split("=", 1)[1].split(",") == list(SECRET_VARIABLES)


def test_start_sh_execs_jupyterlab_itself_as_the_devkit_does() -> None:
    """Not the base image's start-notebook.py, whose `jupyter lab` execs jupyter-lab: two interpreter starts less."""
    (cmd,) = instructions("CMD")
    assert json.loads(cmd) == ["jupyter-lab"] == list(IMAGE_CMD)


def test_one_sourced_hook_that_stops_start_sh_on_failure() -> None:
    """A `*.sh` hook is sourced by run-hooks.sh: its `exit 1` ends start.sh, so Jupyter never starts.

    An executable hook's failure is only logged, and start.sh goes on to start Jupyter.
    """
    hooks = sorted(HOOKS_DIR.iterdir())
    assert [h.name for h in hooks] == ["10-nbstack-start.sh"]
    text = hooks[0].read_text()
    assert "python3 -I -m nbstack_runtime.hooks start" in text and "exit 1" in text
    assert "set -e" not in text.replace("`set -e`", ""), "errexit would stay on in start.sh"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed (apt-get install shellcheck)")
def test_hooks_are_shellcheck_clean() -> None:
    done = subprocess.run(["shellcheck", *map(str, sorted(HOOKS_DIR.iterdir()))], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_readme_documents_exactly_the_settings() -> None:
    readme = (IMAGE_DIR / "README.md").read_text()
    documented = re.findall(r"^\| `([A-Z_]+)` \|", readme, flags=re.M)
    assert documented == [variable.name for variable in VARIABLES]
    # Each row says what the declaration says: default and meaning.
    for variable in VARIABLES:
        default = {None: "required", "": "empty"}.get(variable.default, f"`{variable.default}`")
        assert f"| `{variable.name}` | {default} | {variable.description} |" in readme, variable.name
