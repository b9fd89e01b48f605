"""The content tag of the notebook image: same build context, same tag; any change, a new tag.

image.yml skips the build when ECR already holds the tag, so a change that
kept the tag would never reach ECR, and a tag that moved without a change
would rebuild for nothing.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from ansible_collections.nbstack.cloud.plugins.plugin_utils import image_context

ROOT = Path(__file__).resolve().parents[2]
IMAGE_DIR = ROOT / "files" / "image"


@pytest.fixture
def context(tmp_path: Path) -> Path:
    """A copy of the real build context, to change."""
    copy = tmp_path / "image"
    shutil.copytree(IMAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return copy


def tag(path: Path) -> str:
    return image_context.content_tag(path)


def test_tag_form_and_stability(context: Path) -> None:
    first = tag(context)
    assert re.fullmatch(r"c-[0-9a-f]{12}", first)
    assert tag(context) == first
    # A copy elsewhere has the same content, so the same tag.
    assert tag(IMAGE_DIR) == first


def test_any_byte_change_makes_a_new_tag(context: Path) -> None:
    before = tag(context)
    module = context / "nbstack_runtime" / "health.py"
    data = bytearray(module.read_bytes())
    data[len(data) // 2] ^= 0x01
    module.write_bytes(bytes(data))
    assert tag(context) != before


def test_dockerfile_change_makes_a_new_tag(context: Path) -> None:
    before = tag(context)
    dockerfile = context / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "\n")
    assert tag(context) != before


def test_renaming_or_adding_a_copied_file_makes_a_new_tag(context: Path) -> None:
    before = tag(context)
    (context / "nbstack_runtime" / "models.py").rename(context / "nbstack_runtime" / "model.py")
    renamed = tag(context)
    assert renamed != before
    (context / "nbstack_runtime" / "extra.py").write_text("")
    assert tag(context) not in (before, renamed)


def test_executable_bit_counts(context: Path) -> None:
    """Whether a hook is executable decides how start.sh runs it (run, or sourced), so the bit is part of the content."""
    before = tag(context)
    hook = context / "before-notebook.d" / "10-nbstack-start.sh"
    hook.chmod(0o755)
    assert tag(context) != before


def test_python_caches_are_ignored(context: Path) -> None:
    before = tag(context)
    cache = context / "nbstack_runtime" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "health.cpython-311.pyc").write_bytes(os.urandom(64))
    (context / "nbstack_runtime" / "stray.pyc").write_bytes(os.urandom(64))
    (context / "__pycache__").mkdir()
    (context / "__pycache__" / "anything").write_text("x")
    assert tag(context) == before


def test_what_the_dockerfile_does_not_copy_is_ignored(context: Path) -> None:
    """The README (and anything not copied) stays out of the image, so out of its tag."""
    before = tag(context)
    (context / "README.md").write_text("changed documentation\n")
    (context / "notes.txt").write_text("not copied\n")
    assert tag(context) == before


def test_only_the_copied_files_count() -> None:
    names = image_context.context_files(IMAGE_DIR)
    assert names == sorted(names)
    assert "Dockerfile" in names and "pyproject.toml" in names
    assert "before-notebook.d/10-nbstack-start.sh" in names and "nbstack_runtime/settings.py" in names
    assert "README.md" not in names and ".dockerignore" not in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_dockerignore_lets_through_exactly_what_the_dockerfile_copies() -> None:
    """docker build sends what .dockerignore allows; the tag covers what the Dockerfile copies: the same paths."""
    lines = [line.strip() for line in (IMAGE_DIR / ".dockerignore").read_text().splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert patterns[0] == "*", "the .dockerignore starts by excluding everything"
    allowed = {line[1:].rstrip("/") for line in patterns if line.startswith("!")}
    copied = set(image_context.copied_sources((IMAGE_DIR / "Dockerfile").read_text()))
    assert allowed == {"Dockerfile"} | {path.rstrip("/") for path in copied}


@pytest.mark.parametrize(
    ("dockerfile", "sources"),
    [
        ("FROM x\nCOPY a b /dest/\n", ["a", "b"]),
        ("FROM x\nCOPY --chown=${UID}:${GID} src/ /tmp/src/\n", ["src/"]),
        ('FROM x\nCOPY ["a b", "/dest"]\n', ["a b"]),
        ("FROM x AS build\nCOPY --from=build /out /out\nADD tool.tar /opt/\n", ["tool.tar"]),
        ("FROM x\n# COPY commented /nowhere\nCOPY a \\\n     b /dest/\n", ["a", "b"]),
    ],
    ids=["several", "flags", "json-form", "from-a-stage", "continuation-and-comment"],
)
def test_copied_sources_are_read_from_the_instructions(dockerfile: str, sources: list[str]) -> None:
    assert image_context.copied_sources(dockerfile) == sources


def test_a_copy_from_outside_the_context_or_a_variable_is_refused(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM x\nCOPY ../secret /x\n")
    with pytest.raises(image_context.ContextError, match="outside the build context"):
        tag(tmp_path)
    (tmp_path / "Dockerfile").write_text("FROM x\nCOPY ${SRC} /x\n")
    with pytest.raises(image_context.ContextError, match="only plain paths"):
        tag(tmp_path)


def test_a_directory_without_dockerfile_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no Dockerfile"):
        tag(tmp_path)
