"""The Jupyter server configuration the container's server starts with; this module is its only writer.

Written to ~/.jupyter/jupyter_server_config.json (merged into what is
already there), which Jupyter loads after docker-stacks'
/etc/jupyter/jupyter_server_config.py and which therefore wins over it.
(A jupyter_server_config.d/ drop-in would not do: traitlets reads those
directories only for `jpserver_extensions`, not for ServerApp options.) It
holds the password's argon2 hash, never the password, and disables token
login; it is written by the notebook user from the hash the startup made as
root, so the plaintext never reaches a process the user owns. The identity
provider it names (nbstack_runtime.identity) also accepts the person's API
token, of which the config holds only the SHA-256 digest (the token is
random and long, so its digest cannot be turned back into it; argon2 would
cost every API request tens of milliseconds), and the idle watcher's token,
whose file is written first.

JupyterLab's page config (~/.jupyter/labconfig/page_config.json, the user
level of `jupyter labextension disable`) is written beside it, merged the
same way: it disables the announcements plugin, which asks on every new
browser profile whether to fetch Jupyter news from the internet and checks
for JupyterLab updates the pinned image cannot take.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from pathlib import Path
from typing import Any

from .privatefiles import write_private
from .settings import Settings, why_idle_watcher_off

log = logging.getLogger("nbstack.jupyter")

EXTENSION_NAME = "nbstack_runtime"
#: JupyterLab plugins the page config disables (see the module docstring).
DISABLED_LAB_PLUGINS = ("@jupyterlab/apputils-extension:announcements",)
#: The identity provider the config names when the idle watcher or the API token
#: is on: nbstack_runtime.identity.WatcherIdentityProvider, by name, because
#: importing that module loads jupyter_server (over a second of start-up time in
#: a process that only writes a file). A test checks the name against the class.
IDENTITY_PROVIDER_CLASS = "nbstack_runtime.identity.WatcherIdentityProvider"


def hash_password(password: str) -> str:
    """Argon2 hash in the format jupyter_server's password login checks ("argon2:" + the encoded hash).

    Made with argon2-cffi directly, as jupyter_server's `passwd` makes it:
    importing jupyter_server.auth would cost the root start step a large
    part of Jupyter's own import time, for one function call.
    """
    import argon2  # imported late: only the root start step hashes

    # jupyter_server's own parameters (jupyter_server.auth.security.passwd);
    # its login reads them back from the hash.
    hasher = argon2.PasswordHasher(memory_cost=10240, time_cost=10, parallelism=8)
    return "argon2:" + hasher.hash(password)


#: The shortest API token the server accepts (up.yml makes 48 letters and digits).
API_TOKEN_MIN_LENGTH = 32
#: How the config writes the API token's digest.
API_TOKEN_HASH_PREFIX = "sha256:"


def hash_api_token(token: str) -> str:
    """The API token's digest, as the identity provider compares it."""
    return API_TOKEN_HASH_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def server_config(
    settings: Settings, hashed_password: str, identity_provider: str | None = None, api_token_hash: str = ""
) -> dict[str, Any]:
    """Our part of the config; `identity_provider` only when the idle watcher or the API token is on."""
    server: dict[str, Any] = {
        "base_url": settings.base_url,
        "ip": "0.0.0.0",  # the ALB reaches the task on the instance's address
        "port": settings.notebook_port,
        "port_retries": 0,  # a busy port must fail, not move away from the target group's port
        "root_dir": str(settings.work_dir),
        "open_browser": False,
        "trust_xheaders": True,  # behind the ALB: honour X-Forwarded-Proto/For
        "jpserver_extensions": {EXTENSION_NAME: True},
    }
    config: dict[str, Any] = {
        "ServerApp": server,
        "IdentityProvider": {"token": ""},
        "PasswordIdentityProvider": {
            "hashed_password": hashed_password,
            "password_required": True,
            "allow_password_change": False,
            "login_handler_class": "nbstack_runtime.extension.ThrottledLoginHandler",  # waits after failed logins
        },
    }
    if identity_provider:
        server["identity_provider_class"] = identity_provider
        # Written even when empty, so a token removed since the last start stops working.
        config[identity_provider.rsplit(".", 1)[-1]] = {"api_token_hash": api_token_hash}
    return config


def page_config() -> dict[str, Any]:
    """Our part of JupyterLab's page config."""
    return {"disabledExtensions": dict.fromkeys(DISABLED_LAB_PLUGINS, True)}


def page_config_file(settings: Settings) -> Path:
    """Where JupyterLab reads the user level of its page config."""
    return settings.jupyter_config_file.parent / "labconfig" / "page_config.json"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict update: our keys win, other keys are kept."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def write_watcher_token(settings: Settings) -> str:
    """A fresh watcher token for this container start (0600 in the state directory)."""
    token = secrets.token_urlsafe(32)
    write_private(settings.idle_token_file, token + "\n")
    return token


def configure(settings: Settings, hashed_password: str | None = None, api_token_hash: str | None = None) -> None:
    """Write the whole config (and the watcher's token when it is on).

    `hashed_password` and `api_token_hash` are what the startup made as root
    from the secrets (this runs as the notebook user, which never sees the
    plaintext); without them, the secrets in `settings` are hashed here. No
    password at all is an error: Jupyter must not start without one (no open
    server); an empty API token leaves password login only.
    """
    if hashed_password is None:
        if not settings.notebook_password:
            raise ValueError("NBSTACK_NOTEBOOK_PASSWORD is empty: Jupyter does not start without a password")
        hashed_password = hash_password(settings.notebook_password.value)
    if not hashed_password.startswith("argon2:"):
        raise ValueError("the Jupyter password hash is not an argon2 hash")
    if api_token_hash is None:
        api_token_hash = hash_api_token(settings.api_token.value) if settings.api_token else ""
    if api_token_hash and not api_token_hash.startswith(API_TOKEN_HASH_PREFIX):
        raise ValueError("the API token digest is not a SHA-256 digest")
    watcher_on = why_idle_watcher_off(settings) is None
    if watcher_on:
        # The idle watcher reads Jupyter's REST API with its own token.
        write_watcher_token(settings)
    identity_provider = IDENTITY_PROVIDER_CLASS if watcher_on or api_token_hash else None
    config = merge(
        _read_json(settings.jupyter_config_file),
        server_config(settings, hashed_password, identity_provider, api_token_hash),
    )
    if identity_provider is None:
        # Neither token is on now: drop what an earlier start of this HOME named.
        config["ServerApp"].pop("identity_provider_class", None)
        config.pop(IDENTITY_PROVIDER_CLASS.rsplit(".", 1)[-1], None)
    write_private(settings.jupyter_config_file, json.dumps(config, indent=2) + "\n")
    lab_file = page_config_file(settings)
    write_private(lab_file, json.dumps(merge(_read_json(lab_file), page_config()), indent=2) + "\n")
    log.info(
        "Jupyter configuration written to %s (base_url %s, API token %s)",
        settings.jupyter_config_file,
        settings.base_url,
        "on" if api_token_hash else "off",
    )
