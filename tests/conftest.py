"""Shared test set-up: where the project is, and the local AWS emulator."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The emulator wrapper is shared with `make demo`.
sys.path.insert(0, str(ROOT / "files" / "demo"))
