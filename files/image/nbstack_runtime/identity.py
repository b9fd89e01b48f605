"""Jupyter's identity provider in the container: password login, the person's API token, the idle watcher's token.

Runs inside the Jupyter server process (jupyter_config names this class as
``ServerApp.identity_provider_class`` when the API token or the idle watcher
is on). Jupyter's own token login stays off (``IdentityProvider.token`` is
empty, so no token URL is printed).

- The API token (the person's, for scripts and editors): accepted as
  jupyter_server accepts its own token, in ``Authorization: token <t>`` (or
  ``bearer``) or a ``?token=`` URL parameter, for every request; a request
  it authenticates skips the XSRF and origin checks, as jupyter_server's
  own token login does. The provider holds only the token's SHA-256 digest
  (``api_token_hash``, from the config file the notebook user can read) and
  compares digests in constant time. Wrong tokens are logged, not
  throttled (see get_user_token).
- The watcher's token: random, from a 0600 file in the container's HOME
  written by the jupyter startup hook, accepted only in an
  ``Authorization`` header, only for GET on the watcher's three read-only
  endpoints.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from jupyter_server.auth.identity import PasswordIdentityProvider, User
from traitlets import Unicode

from .extension import request_client
from .settings import Settings
from .watcher import WATCHED_ENDPOINTS

#: Who a request authenticated with the API token is (a new User each time: Jupyter's /api/me can change it).
API_TOKEN_USERNAME = "api-token"


def digest_matches(token: str, expected: str) -> bool:
    """Whether `token`'s SHA-256 digest is `expected` ("sha256:<hex>"), compared in constant time."""
    kind, _, hexdigest = expected.partition(":")
    if kind != "sha256" or not hexdigest:
        return False
    return hmac.compare_digest(hashlib.sha256(token.encode()).hexdigest().encode(), hexdigest.encode())


class WatcherIdentityProvider(PasswordIdentityProvider):
    """Password login as configured, plus the person's API token, plus the watcher's token for three read-only GETs.

    The watcher's token is accepted only in an Authorization header (never
    ?token=, never the login form), only for GET on WATCHED_ENDPOINTS. The API
    token is checked against its digest. Nothing is printed: Jupyter shows no
    token URL because ``IdentityProvider.token`` stays empty.
    """

    api_token_hash = Unicode(
        "",
        config=True,
        help="The person's API token as 'sha256:<hex digest>'; empty: no API token is accepted.",
    )

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

    async def get_user_token(self, handler: Any) -> User | None:
        """The API token's user when the request carries the person's token; None otherwise.

        Not part of the login throttle: the token is 48 random characters
        (about 285 bits), so guessing it is hopeless with or without waits,
        and counting wrong tokens would let any web page a colleague visits
        (an image URL with ?token=) slow down the logins of everyone behind
        the same address, and a right one would clear a password guesser's
        failures.
        """
        presented = self.get_token(handler)
        if not presented or not self.api_token_hash:
            return None
        if digest_matches(presented, self.api_token_hash):
            return User(username=API_TOKEN_USERNAME, name="API token", display_name="API token")
        self.log.warning("nbstack: wrong API token from %s", request_client(handler))
        return None
