"""Jupyter's identity provider in the container: password login, plus the idle watcher's token.

Runs inside the Jupyter server process (jupyter_config names this class as
``ServerApp.identity_provider_class`` when the idle watcher is on). Jupyter
has password login only, no token login; the sidecar's watcher presents a
random token from a 0600 file in the container's HOME, written by the jupyter
startup hook, and this provider accepts it only in an ``Authorization``
header, only for GET on the watcher's three read-only endpoints.
"""

from __future__ import annotations

import hmac
from typing import Any

from jupyter_server.auth.identity import PasswordIdentityProvider, User

from .settings import Settings
from .watcher import WATCHED_ENDPOINTS


class WatcherIdentityProvider(PasswordIdentityProvider):
    """Password login as configured, plus the watcher's token for three read-only GETs.

    The token is accepted only in an Authorization header (never ?token=, never
    the login form), only for GET on WATCHED_ENDPOINTS; everything else goes
    through password login unchanged. Nothing is printed: Jupyter shows no
    token URL because ``IdentityProvider.token`` stays empty.
    """

    _watcher_token: str | None = None

    def _token(self) -> str:
        if self._watcher_token is None:
            try:
                path = Settings.from_environ().idle_token_file
                self._watcher_token = path.read_text().strip()
            except Exception:  # no file: the watcher is off, only password login
                self._watcher_token = ""
        return self._watcher_token

    def _is_watcher(self, handler: Any) -> bool:
        request = handler.request
        header = request.headers.get("Authorization", "")
        if request.method != "GET" or not header.startswith("token "):
            return False
        base = handler.base_url if handler.base_url.endswith("/") else handler.base_url + "/"
        path = request.path[len(base) :] if request.path.startswith(base) else ""
        token = self._token()
        return (
            bool(token)
            and path.rstrip("/") in WATCHED_ENDPOINTS
            and hmac.compare_digest(header[len("token ") :].strip().encode(), token.encode())
        )

    async def _get_user(self, handler: Any) -> User | None:
        if self._is_watcher(handler):
            return User(username="nbstack-idle-watcher", name="idle watcher")
        return await super()._get_user(handler)
