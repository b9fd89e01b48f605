"""Jupyter Server extension: writes the pid file at load, autosaves at stop.

Why an extension and not a wrapper process: in the container tini runs
`start.sh`, which execs `jupyter lab`, so the Jupyter process is tini's
child and the container ends when it exits. On SIGTERM, jupyter_server 2.x
(ServerApp._signal_stop -> stop -> _stop -> _cleanup) awaits
`cleanup_extensions()`, i.e. every ExtensionApp's `stop_extension()`,
*before* shutting kernels down and stopping the IO loop. Awaiting the
autosave there means it finishes before the process exits, with no extra
process in the signal path. The same hook runs for File > Shut Down.
"""

from __future__ import annotations

import asyncio
import logging

from jupyter_server.extension.application import ExtensionApp

from .autosave import autosave
from .health import write_pid_file
from .settings import Settings, SettingsError

log = logging.getLogger("nbstack.extension")


class NbstackExtension(ExtensionApp):
    """Loaded (not launched) next to JupyterLab; has no handlers of its own."""

    name = "nbstack_runtime"

    def initialize_settings(self) -> None:
        try:
            self._settings: Settings | None = Settings.from_environ()
        except SettingsError as error:
            log.error("nbstack extension disabled: %s", error)
            self._settings = None
            return
        write_pid_file(self._settings.jupyter_pid_file)
        self.log.info("nbstack: pid file %s written", self._settings.jupyter_pid_file)

    async def stop_extension(self) -> None:
        # A second SIGTERM makes ServerApp run its cleanup again; share the first
        # autosave instead of starting another one next to it.
        task = getattr(self, "_autosave_task", None)
        if task is None:
            task = self._autosave_task = asyncio.ensure_future(self._autosave())
        await asyncio.shield(task)

    async def _autosave(self) -> None:
        settings = getattr(self, "_settings", None)
        if settings is None:
            return
        self.log.info("nbstack: autosaving %s before the server stops", settings.work_dir)
        try:
            # In a thread so the (already stopping) event loop stays responsive;
            # autosave() bounds itself by its timeout, wait_for is a backstop.
            result = await asyncio.wait_for(
                asyncio.to_thread(autosave, settings.work_dir, settings.prefix, timeout=settings.autosave_timeout),
                timeout=settings.autosave_timeout + 5,
            )
            self.log.info("nbstack: autosave %s %s", result.status, result.ref or "")
        except Exception:  # never let a failed autosave keep the server from stopping
            self.log.exception("AUTOSAVE FAILED: unexpected error")
