"""The one logging set-up of every process the runtime starts.

Hooks, the sidecar and a hand-run autosave all log to stderr, which the
container runtime ships to CloudWatch; one format keeps those lines alike.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging() -> None:
    """Log INFO and above to stderr in the runtime's format."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format=FORMAT)
