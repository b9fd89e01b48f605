"""Where things are in the checkout, for every module that runs playbooks or the container."""

from __future__ import annotations

import sys
from pathlib import Path

#: The checkout (the package is installed editable from devkit/).
ROOT = Path(__file__).resolve().parents[2]
#: The notebook image's build context and its startup hooks.
IMAGE_DIR = ROOT / "files" / "image"
HOOKS_DIR = IMAGE_DIR / "before-notebook.d"
#: The demo's settings, notebook repository and README picture.
DEMO_DIR = ROOT / "devkit" / "demo"
#: The virtualenv running this: ansible-playbook, ansible-vault and the
#: container's python3 come from here, never from whatever else is on PATH.
BIN = Path(sys.executable).parent
