"""Git for the notebook user: identity, credentials, and the first clone.

The token is written once into a 0600 credential-store file in HOME (outside
the work directory, so it can never be committed) and ~/.gitconfig points
git's `store` helper at it. It never goes into .git/config, a remote URL, a
command line, or the environment of anything this module starts.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from urllib.parse import quote, urlsplit

from .gitcmd import git
from .privatefiles import write_private
from .settings import Settings

log = logging.getLogger("nbstack.git")

#: The user name sent with the token when the URL names none; GitHub accepts
#: any user name with a token, and this is the one its own docs use.
DEFAULT_TOKEN_USER = "x-access-token"


def credential_line(repo_url: str, token: str) -> str:
    """One line of git's credential-store format for the repository's host."""
    parts = urlsplit(repo_url)
    user = parts.username or DEFAULT_TOKEN_USER
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{quote(user, safe='')}:{quote(token, safe='')}@{host}\n"


def configure(settings: Settings) -> None:
    """Set the global identity and the credential helper (idempotent)."""
    if settings.git_user_name:
        git(["config", "--global", "user.name", settings.git_user_name])
    if settings.git_user_email:
        git(["config", "--global", "user.email", settings.git_user_email])
    if settings.repo_url and settings.git_token:
        write_private(
            settings.git_credentials_file,
            credential_line(settings.repo_url, settings.git_token.value),
        )
        helper = f"store --file={settings.git_credentials_file}"
        git(["config", "--global", "credential.helper", helper])
        log.info("credential helper set up (token in %s, mode 0600)", settings.git_credentials_file)
    elif settings.repo_url:
        log.warning("NBSTACK_GIT_TOKEN is empty: cloning and pushing work only for a public repository")


def clone_if_missing(settings: Settings, *, timeout: float = 900) -> str:
    """Clone into the work directory on first start; leave an existing checkout alone.

    Returns what happened: "cloned", "kept" or "skipped". Refuses to clone
    into a non-empty directory that is not a checkout, because that directory
    is a persistent volume and its files may be someone's work.
    """
    work_dir: Path = settings.work_dir
    if not settings.repo_url:
        log.info("NBSTACK_REPO_URL is empty: no repository to clone")
        return "skipped"
    if (work_dir / ".git").exists():
        log.info("%s already holds a checkout: left untouched", work_dir)
        return "kept"
    work_dir.mkdir(parents=True, exist_ok=True)
    if any(work_dir.iterdir()):
        raise RuntimeError(
            f"{work_dir} is not empty and holds no .git: refusing to clone over files there; "
            "move them away (or clone by hand) and restart"
        )
    try:
        git(["clone", "--quiet", "--origin", "origin", "--", settings.repo_url, str(work_dir)], timeout=timeout)
    except subprocess.CalledProcessError as error:
        raise RuntimeError(f"git clone of {settings.repo_url} failed: {error.stderr.strip()}") from error
    log.info("cloned %s into %s", settings.repo_url, work_dir)
    return "cloned"
