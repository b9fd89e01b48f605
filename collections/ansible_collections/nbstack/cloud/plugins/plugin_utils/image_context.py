# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What goes into the notebook image, read from its Dockerfile, and the tag that names it.

Tagging by content lets image.yml ask ECR whether this exact image is already
pushed, instead of rebuilding and pushing on every run, and lets up.yml name
the same tag without talking to Docker. The content is the Dockerfile and
exactly the paths its COPY and ADD instructions take from the build context.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from pathlib import Path

# Tags are "c-" and this many hex digits of the content hash (48 bits: a
# collision between two versions of one image is not a practical concern).
TAG_DIGITS = 12
# Never part of an image: Python's byte-code caches (.dockerignore says so too).
SKIPPED_DIRS = {"__pycache__"}
SKIPPED_SUFFIXES = (".pyc",)


class ContextError(ValueError):
    """The build context or its Dockerfile cannot be read the way this module needs."""


def _instructions(dockerfile):
    """(keyword, arguments) of each instruction, continuation lines joined."""
    pending = ""
    for raw in dockerfile.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _space, arguments = line.partition(" ")
        yield keyword.upper(), arguments.strip()


def copied_sources(dockerfile):
    """The build-context paths that COPY and ADD take, in order (not those copied from a stage)."""
    sources = []
    for keyword, arguments in _instructions(dockerfile):
        if keyword not in ("COPY", "ADD"):
            continue
        words = json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)
        flags = [word for word in words if word.startswith("--")]
        if any(flag.startswith("--from") for flag in flags):
            continue
        paths = [word for word in words if not word.startswith("--")][:-1]
        for path in paths:
            if "$" in path or path.startswith(("http://", "https://")):
                raise ContextError(f"{keyword} {path}: only plain paths of the build context can be hashed")
        sources.extend(paths)
    return sources


def _walk(root, relative):
    path = root / relative
    if path.is_dir() and not path.is_symlink():
        for folder, dirs, files in os.walk(path):
            dirs[:] = sorted(name for name in dirs if name not in SKIPPED_DIRS)
            for name in files:
                if not name.endswith(SKIPPED_SUFFIXES):
                    yield (Path(folder) / name).relative_to(root).as_posix()
    elif path.exists() or path.is_symlink():
        yield Path(relative).as_posix()
    else:
        raise ContextError(f"the Dockerfile copies {relative}, which is not in {root}")


def context_files(context):
    """Sorted relative paths of the Dockerfile and every file it copies from the context."""
    root = Path(context)
    dockerfile = root / "Dockerfile"
    if not dockerfile.is_file():
        raise ContextError(f"{root} is not a Docker build context: it has no Dockerfile.")
    names = {"Dockerfile"}
    for source in copied_sources(dockerfile.read_text()):
        relative = os.path.normpath(source.lstrip("/"))
        if relative == ".." or relative.startswith("../"):
            raise ContextError(f"the Dockerfile copies {source}, outside the build context")
        for match in sorted(root.glob(relative)) if any(c in relative for c in "*?[") else [root / relative]:
            names.update(_walk(root, match.relative_to(root)))
    return sorted(names)


def content_digest(context):
    """sha256 over the sorted relative paths, executable bits and bytes of what the image is built from."""
    root = Path(context)
    digest = hashlib.sha256()
    for relative in context_files(root):
        path = root / relative
        # The executable bit is part of the image (the startup hooks need it);
        # other mode bits depend on the umask of the checkout, so they are left out.
        if path.is_symlink():
            kind, data = b"l", os.readlink(path).encode()
        else:
            kind = b"x" if os.access(path, os.X_OK) else b"f"
            data = path.read_bytes()
        name = relative.encode()
        # Lengths first, so that no two different contexts feed the same bytes.
        digest.update(b"%d:%s%s%d:" % (len(name), name, kind, len(data)))
        digest.update(data)
    return digest.hexdigest()


def content_tag(context):
    """Image tag for a build context: "c-" and the first 12 hex digits of its content digest."""
    return "c-" + content_digest(context)[:TAG_DIGITS]
