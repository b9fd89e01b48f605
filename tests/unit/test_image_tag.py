"""The content tag of the notebook image: same build context, same tag; any change, a new tag.

image.yml skips the build when ECR already holds the tag, so a change that
kept the tag would never reach ECR, and a tag that moved without a change
would rebuild for nothing.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

# Loaded by path rather than through conftest, so that this file can run in
# one pytest call with the integration tests (whose conftest has the same name).
ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("image_image_tag", ROOT / "roles" / "image" / "filter_plugins" / "image_tag.py")
assert _spec and _spec.loader
image_tag = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(image_tag)
IMAGE_DIR = ROOT / "files" / "image"


@pytest.fixture
def context(tmp_path: Path) -> Path:
    """A copy of the real build context, to change."""
    copy = tmp_path / "image"
    shutil.copytree(IMAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return copy


def tag(path: Path) -> str:
    return image_tag.nbstack_content_tag(str(path))


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
    """The hooks must be executable in the image, so the bit is part of the content."""
    before = tag(context)
    hook = context / "before-notebook.d" / "10-nbstack-git"
    hook.chmod(0o644)
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


def test_what_dockerignore_excludes_is_ignored(context: Path) -> None:
    """files/image/.dockerignore keeps the README (and anything not listed) out of the build."""
    before = tag(context)
    (context / "README.md").write_text("changed documentation\n")
    (context / "notes.txt").write_text("not copied\n")
    assert tag(context) == before


def test_only_the_copied_files_count() -> None:
    names = [name for name, _ in image_tag.context_files(IMAGE_DIR)]
    assert names == sorted(names)
    assert "Dockerfile" in names and "pyproject.toml" in names
    assert "before-notebook.d/10-nbstack-git" in names and "nbstack_runtime/settings.py" in names
    assert "README.md" not in names and ".dockerignore" not in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


@pytest.mark.parametrize(
    ("ignore", "path", "ignored"),
    [
        ("*\n!src/\n", "src/a/b.py", False),
        ("*\n!src/\n", "other.py", True),
        ("**/*.log\n", "a/b/c.log", True),
        ("**/*.log\n", "c.log", True),
        ("docs\n", "docs/deep/file.md", True),
        ("*.md\n!KEEP.md\n", "KEEP.md", False),
        ("*.md\n!KEEP.md\n", "sub/x.md", False),
        ("/build\n", "build/out", True),
        ("# comment\n\n", "anything", False),
        ("file?.txt\n", "file1.txt", True),
        ("file[0-9].txt\n", "filex.txt", False),
    ],
)
def test_dockerignore_rules(ignore: str, path: str, ignored: bool) -> None:
    assert image_tag._ignored(path, image_tag.dockerignore_rules(ignore)) is ignored


def test_a_directory_without_dockerfile_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no Dockerfile"):
        tag(tmp_path)


def test_gpu_base_matches_the_dockerfile() -> None:
    """The GPU base is a role default, outside the content tag: it must move with the Dockerfile's base."""
    defaults = yaml.safe_load((ROOT / "roles" / "image" / "defaults" / "main.yml").read_text())
    dockerfile = (IMAGE_DIR / "Dockerfile").read_text()
    (base,) = re.findall(r"^ARG BASE_IMAGE=\S+:(\d{4}-\d{2}-\d{2})$", dockerfile, re.MULTILINE)
    assert defaults["image_gpu_base_image"] == f"quay.io/jupyter/pytorch-notebook:cuda12-{base}"
    assert defaults["image_gpu_base_image"] in dockerfile
