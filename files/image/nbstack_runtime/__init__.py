"""nbstack's notebook-container runtime: startup hooks, health sidecar, autosave, model store.

Importing this package is cheap (nothing heavy at import time) because
notebooks import `nbstack_runtime.models` in every kernel.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """Entry point Jupyter Server uses to find the extension (enabled by the hook's config)."""
    from .extension import NbstackExtension

    return [{"module": "nbstack_runtime.extension", "app": NbstackExtension}]
