"""Files only the container user may read: credentials, tokens, configs holding hashes, pid files."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, content: str) -> None:
    """Write `content` to a 0600 file in a 0700 directory, atomically.

    The file is created with mode 0600 from the start (no window where it is
    world-readable) and renamed into place, so a reader never sees half a file.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, content.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
