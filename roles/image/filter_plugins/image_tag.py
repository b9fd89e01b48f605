"""The notebook image's tag, derived from what goes into its build context.

Tagging by content lets image.yml ask ECR whether this exact image is already
pushed, instead of rebuilding and pushing on every run, and lets up.yml name
the same tag without talking to Docker.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleFilterError

# Tags are "c-" and this many hex digits of the content hash (48 bits: a
# collision between two versions of one image is not a practical concern).
TAG_DIGITS = 12
# Never part of an image, whatever .dockerignore says: Python's byte-code caches.
ALWAYS_SKIPPED_DIRS = {"__pycache__"}
ALWAYS_SKIPPED_SUFFIXES = (".pyc",)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regular expression over a relative path.

    Follows Docker's rules: "*" and "?" stay within one path segment,
    "**" spans any number of segments, "[...]" is a character class.
    """
    out = ""
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out += re.escape(char)
            else:
                body = pattern[i + 1:end]
                if body.startswith("^"):
                    body = "^" + body[1:].replace("\\", "\\\\")
                elif body.startswith("!"):
                    body = "^" + body[1:].replace("\\", "\\\\")
                out += "[" + body + "]"
                i = end
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(char)
        i += 1
    return re.compile(out + r"\Z")


def dockerignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """(excludes, regex) for each pattern of a .dockerignore file, in order."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        excludes = not line.startswith("!")
        if not excludes:
            line = line[1:].strip()
        line = os.path.normpath(line).replace(os.sep, "/").lstrip("/")
        if line in ("", "."):
            continue
        rules.append((excludes, _pattern_regex(line)))
    return rules


def _ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves a file out: the last pattern matching it or a parent wins."""
    parts = relative.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    ignored = False
    for excludes, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            ignored = excludes
    return ignored


def context_files(context: Path) -> Iterator[tuple[str, Path]]:
    """(relative posix path, path) of every file the build sees, sorted by relative path.

    The Dockerfile always counts: it is the build, even where .dockerignore
    keeps it out of what COPY can reach.
    """
    ignore_file = context / ".dockerignore"
    rules = dockerignore_rules(ignore_file.read_text()) if ignore_file.is_file() else []
    found = []
    for folder, dirs, files in os.walk(context):
        dirs[:] = [name for name in dirs if name not in ALWAYS_SKIPPED_DIRS]
        for name in files:
            if name.endswith(ALWAYS_SKIPPED_SUFFIXES):
                continue
            path = Path(folder) / name
            relative = path.relative_to(context).as_posix()
            if relative == "Dockerfile" or not _ignored(relative, rules):
                found.append((relative, path))
    return iter(sorted(found))


def content_digest(context: str | os.PathLike[str]) -> str:
    """sha256 over the sorted relative paths, executable bits and bytes of the build context."""
    root = Path(context)
    if not (root / "Dockerfile").is_file():
        raise AnsibleFilterError(f"{root} is not a Docker build context: it has no Dockerfile.")
    digest = hashlib.sha256()
    for relative, path in context_files(root):
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


def nbstack_content_tag(context: str | os.PathLike[str]) -> str:
    """Image tag for a build context: "c-" and the first 12 hex digits of its content digest."""
    return "c-" + content_digest(context)[:TAG_DIGITS]


class FilterModule:
    """Ansible filters of the image role."""

    def filters(self) -> dict[str, Any]:
        return {"nbstack_content_tag": nbstack_content_tag}
