"""The made-up team the integration tests provision: its settings file and the app name in it.

A module of its own (not the conftest) so that test modules can import the
name for their expected stack names; the fixtures use the same file.
"""

from __future__ import annotations

from pathlib import Path

import yaml

SETTINGS = Path(__file__).with_name("settings.yml")
#: notebook_app_name: the first part of every stack and secret name the tests look for.
APP = str(yaml.safe_load(SETTINGS.read_text())["notebook_app_name"])
