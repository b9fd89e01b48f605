"""Git for the notebook user: identity, credentials, and the first clone.

The token is written once into a 0600 credential-store file in HOME (outside
the work directory, so it can never be committed) and ~/.gitconfig points a
read-only helper at it (`credential_helper`). It never goes into
.git/config, a remote URL, a command line, or the environment of anything
this module starts.

A first clone killed half-way (the container stopped during it) leaves a
checkout that is missing objects or files. The clone marks the repository
with `nbstack.cloneIncomplete` before it fetches and clears the mark once it
has finished; the next start finds the mark and clones again, once it has
checked that the checkout holds only what the clone wrote (made_since_clone:
the mark is in .git/config, which anything the notebook user runs can set).
A clone that runs out of time (Settings.clone_timeout) is set aside instead,
and Jupyter starts on what it fetched: see clone_if_missing.

A fresh clone is a fresh work volume (a new person, or after a purge): when
the person has autosave branches, the newest is named in the log and in
RESTORE-AUTOSAVE.md at the top of the clone (git ignores it), with the one
command that restores it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
import shutil
import stat
import subprocess
from pathlib import Path
from urllib.parse import quote, urlsplit

from .contract import AUTOSAVE_BRANCH_PATTERN, AUTOSAVE_BRANCH_PREFIX
from .gitcmd import git, git_environ, git_in_own_group
from .privatefiles import write_private
from .settings import Settings

log = logging.getLogger("nbstack.git")

#: The user name sent with the token when the URL names none; GitHub accepts
#: any user name with a token, and this is the one its own docs use.
DEFAULT_TOKEN_USER = "x-access-token"
#: Set in a clone's .git/config from before its fetch until it has finished.
INCOMPLETE_MARK = "nbstack.cloneIncomplete"
#: The note a fresh clone gets when the person has an autosave branch to restore.
RESTORE_NOTE = "RESTORE-AUTOSAVE.md"
#: Where a clone that ran out of time leaves its git directory, and the note that says what to do.
UNFINISHED_GIT_DIR = ".git-unfinished-clone"
UNFINISHED_NOTE = "CLONE-DID-NOT-FINISH.md"


def credential_line(repo_url: str, token: str) -> str:
    """One line of git's credential-store format for the repository's host."""
    parts = urlsplit(repo_url)
    user = parts.username or DEFAULT_TOKEN_USER
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{quote(user, safe='')}:{quote(token, safe='')}@{host}\n"


def credential_helper(credentials_file: Path) -> str:
    """The credential.helper value: git's store file, answered for `get` only.

    git's own `store` helper erases the stored line whenever a host answers
    401 with it (a password mistyped into a prompt-less `git fetch`, a
    remote briefly refusing): every later autosave would then run without a
    token. Here `store` and `erase` do nothing; the file changes only at
    the container's start, from the secret.
    """
    store = f"git credential-store --file={shlex.quote(str(credentials_file))}"
    return f'!f() {{ if [ "$1" = get ]; then {store} get; fi; }}; f'


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
        git(["config", "--global", "credential.helper", credential_helper(settings.git_credentials_file)])
        log.info("credential helper set up (token in %s, mode 0600)", settings.git_credentials_file)
    elif settings.repo_url:
        log.warning("NBSTACK_GIT_TOKEN is empty: cloning and pushing work only for a public repository")


def clone_if_missing(settings: Settings, *, timeout: float | None = None) -> str:
    """Clone into the work directory on first start; leave an existing checkout alone.

    Returns what happened: "cloned", "kept" or "skipped". Refuses to clone
    into a non-empty directory that is not a checkout, because that directory
    is a persistent volume and its files may be someone's work. A clone that
    an earlier start left unfinished (see the module docstring) is removed
    and made again: everything in it came from the repository, since a clone
    starts only in an empty directory, and Jupyter did not start on it.

    The clone gets `timeout` seconds (default: settings.clone_timeout, what
    the health check grace period allows before ECS would replace a task
    that does not listen yet). Past it, git's process group is killed, and
    what it fetched stays, its git directory renamed UNFINISHED_GIT_DIR (so
    that no later start takes it for a clone to empty: Jupyter starts on it),
    with UNFINISHED_NOTE saying what to do. Nothing is deleted: removing a
    large checkout from the volume could itself outlast the grace period.
    """
    work_dir: Path = settings.work_dir
    timeout = settings.clone_timeout if timeout is None else timeout
    if not settings.repo_url:
        log.info("NBSTACK_REPO_URL is empty: no repository to clone")
        return "skipped"
    if (work_dir / ".git").exists():
        if not incomplete(work_dir):
            log.info("%s already holds a checkout: left untouched", work_dir)
            return "kept"
        made = made_since_clone(work_dir)
        if made:
            raise RuntimeError(
                f"{work_dir} is marked as a clone an earlier start did not finish ({INCOMPLETE_MARK} in its "
                f".git/config), but holds {made}: left as it is, not cloned again. If it is a finished "
                f"checkout, clear the mark in a terminal there: git config --unset {INCOMPLETE_MARK}"
            )
        log.warning("%s holds a clone an earlier start did not finish: cloning again", work_dir)
        _empty(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    if (work_dir / UNFINISHED_GIT_DIR).exists():
        raise RuntimeError(
            f"{work_dir} holds what an earlier start's clone fetched before it ran out of time: not cloning over "
            f"it; {UNFINISHED_NOTE} there says what to do"
        )
    if any(work_dir.iterdir()):
        raise RuntimeError(
            f"{work_dir} is not empty and holds no .git: refusing to clone over files there; "
            "move them away (or clone by hand) and restart"
        )
    try:
        # --config takes effect right after the repository is initialised, before the fetch.
        mark = f"{INCOMPLETE_MARK}=true"
        git_in_own_group(
            ["clone", "--quiet", "--origin", "origin", "--config", mark, "--", settings.repo_url, str(work_dir)],
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as error:
        problem = (
            f"git clone of {settings.repo_url} did not finish within {timeout:.0f} s, all that the health check "
            f"grace period ({settings.health_check_grace_seconds:.0f} s) leaves before ECS would replace this task "
            "while it does not listen yet"
        )
        if _set_aside(work_dir, settings.repo_url, problem):
            raise RuntimeError(
                f"{problem}; the server starts on what it fetched, which no later start clones over or deletes: "
                "raise notebook_health_check_grace_period, or clone by hand "
                f"({UNFINISHED_NOTE} in the work directory says how)"
            ) from error
        raise RuntimeError(f"{problem}; nothing was fetched, and the next start clones again") from error
    except subprocess.CalledProcessError as error:
        raise RuntimeError(f"git clone of {settings.repo_url} failed: {error.stderr.strip()}") from error
    try:
        git(["config", "--unset", INCOMPLETE_MARK], cwd=work_dir)
    except subprocess.SubprocessError as error:
        # A clone still marked would be emptied at the next start, with whatever the person made in it
        # meanwhile (Jupyter starts without the clone): emptied now, before anyone has worked in it.
        _empty(work_dir)
        raise RuntimeError(
            f"the clone of {settings.repo_url} finished but could not be marked finished: {error}"
        ) from error
    log.info("cloned %s into %s", settings.repo_url, work_dir)
    offer_own_autosave(work_dir, settings.prefix)
    return "cloned"


def _autosave_branches(work_dir: Path, prefix: str) -> list[str]:
    """The autosave branches of `prefix` a fresh clone fetched (origin/autosave/<prefix>/...), whoever pushed them."""
    found = git(
        ["for-each-ref", "--format=%(refname:lstrip=3)", f"refs/remotes/origin/{AUTOSAVE_BRANCH_PREFIX}{prefix}/"],
        cwd=work_dir,
        check=False,
    )
    return [name for name in found.stdout.split() if re.match(AUTOSAVE_BRANCH_PATTERN, name)]


#: Keeps the offered autosave's commit in the clone (RESTORE_NOTE checks it out), whatever later becomes of its branch.
RESTORE_REF = "refs/nbstack/restore"


def own_autosave(work_dir: Path, prefix: str) -> tuple[str, str] | None:
    """(branch, commit) of the person's last autosave, as their own server recorded it, when the clone has it.

    Anyone who may push to the repository can push a branch named
    autosave/<prefix>/..., or move one: only the commit recorded under the
    person's own prefix in the model bucket (models.recorded_autosave, which
    no other person's task role may write), still at the tip of the branch
    recorded with it when the clone fetched it, is offered.
    """
    if not _autosave_branches(work_dir, prefix):
        return None  # nothing to offer: no call to S3 on a first start
    from .models import recorded_autosave

    recorded = recorded_autosave(prefix=prefix)
    if recorded is None:
        log.warning("autosave branches of %s exist, but none is recorded as this server's own: none is offered", prefix)
        return None
    branch, sha = recorded
    if not (branch.startswith(f"{AUTOSAVE_BRANCH_PREFIX}{prefix}/") and re.match(AUTOSAVE_BRANCH_PATTERN, branch)):
        log.warning("the recorded autosave %r is no autosave branch of %s: it is not offered", branch, prefix)
        return None
    at = git(
        ["rev-parse", "--verify", "--quiet", f"refs/remotes/origin/{branch}^{{commit}}"], cwd=work_dir, check=False
    )
    if at.stdout.strip() != sha:
        log.warning(
            "the recorded autosave %s (%s) is %s on the remote: it is not offered",
            branch,
            sha[:12],
            "at another commit" if at.stdout.strip() else "not",
        )
        return None
    return branch, sha


def offer_own_autosave(work_dir: Path, prefix: str) -> str | None:
    """Name the person's own last recorded autosave in the log and in RESTORE_NOTE; never fails the start."""
    try:
        found = own_autosave(work_dir, prefix)
        if found is None:
            return None
        branch, sha = found
        git(["update-ref", RESTORE_REF, sha], cwd=work_dir)
        # The commit, not the branch: whoever may push can move the branch after this check.
        command = f"git checkout -b restored {sha}"
        (work_dir / RESTORE_NOTE).write_text(
            "# Your earlier work\n\n"
            "This server started on a fresh work volume (your first start, or after a purge).\n"
            f"Your last recorded autosave is commit {sha}, pushed as `{branch}`:\n"
            "what your last server had not pushed, committed as it was (its commit message\n"
            "lists what was left out, and how to bring back stashes).\n\n"
            f"To continue from it, run in a terminal here:\n\n    {command}\n\n"
            "git ignores this file; delete it when you no longer need it.\n"
        )
        exclude = work_dir / ".git" / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with exclude.open("a") as handle:
            handle.write(f"/{RESTORE_NOTE}\n")
        log.warning(
            "fresh work volume: your last recorded autosave is %s (%s); restore it with: %s", branch, sha, command
        )
        return branch
    except Exception as error:  # the model bucket, git: an offer never fails the start
        log.warning("could not look for autosave branches to restore: %s", error)
        return None


def _set_aside(work_dir: Path, repo_url: str, problem: str) -> bool:
    """After a clone that ran out of time: its git directory renamed, a note written; False when nothing is there."""
    if not any(work_dir.iterdir()):
        return False
    if (work_dir / ".git").exists():
        (work_dir / ".git").rename(work_dir / UNFINISHED_GIT_DIR)
    (work_dir / UNFINISHED_NOTE).write_text(
        "# The repository's clone did not finish\n\n"
        f"This server's first start cloned {repo_url} into this directory, and {problem}.\n"
        f"What it fetched is here as it was; its git directory is {UNFINISHED_GIT_DIR}. Nothing here is\n"
        "deleted, and no start clones over it.\n\n"
        "To get the repository, either\n\n"
        "- clone it by hand, in a terminal here (it may take as long as it needs):\n\n"
        f"      find ~/work -mindepth 1 -delete && git clone {repo_url} ~/work\n\n"
        "- or raise notebook_health_check_grace_period in the team's settings, empty this directory\n"
        "  (`find ~/work -mindepth 1 -delete`), and run up.yml: the server's next start clones again.\n"
    )
    return True


def _empty(work_dir: Path) -> None:
    """Remove everything in work_dir (a clone that did not finish), keeping the directory (a mount point)."""
    for entry in list(work_dir.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def incomplete(work_dir: Path) -> bool:
    """Whether the checkout in work_dir carries the mark of a clone that did not finish."""
    found = git(["config", "--local", "--get", INCOMPLETE_MARK], cwd=work_dir, check=False)
    return found.stdout.strip() == "true"


def made_since_clone(work_dir: Path) -> str:
    """What in a checkout marked unfinished the clone did not write; "" when emptying it loses nothing.

    A clone writes the remote's objects, refs and tags, one local branch at
    a remote commit, and files as the repository's HEAD has them (the one
    it was writing when stopped may be cut short). Anything else was made
    since, by someone: a file that is not in HEAD or differs from it, a
    commit no remote-tracking branch holds (on any ref, HEAD, a tag or the
    stash), a staged change, a linked worktree. The mark is not to be
    trusted alone: the person can set it (one mistaken `git config`), and
    then every start would empty their work. When git cannot tell (a
    repository it cannot read), that is said too: nothing is emptied on a
    guess. A file not in HEAD is never read (a large data set would hold the
    start past the health check's grace period).
    """
    env = {"GIT_NO_REPLACE_OBJECTS": "1"}  # a replace ref would let HEAD vouch for any file
    try:
        if git(["rev-list", "-n", "1", "--all", "--not", "--remotes=origin"], cwd=work_dir, env=env).stdout.strip():
            return "commits or stashes that no remote branch holds"
        if any((work_dir / ".git" / "worktrees").glob("*")):
            return "linked worktrees"
        head = git(
            ["rev-parse", "--verify", "--quiet", "HEAD^{tree}"], cwd=work_dir, env=env, check=False
        ).stdout.strip()
        index = (work_dir / ".git" / "index").exists()
        if (
            head
            and index
            and git(["diff", "--cached", "--quiet", "HEAD"], cwd=work_dir, env=env, check=False).returncode
        ):
            return "changes staged in its index"
        object_format = git(["rev-parse", "--show-object-format"], cwd=work_dir, env=env).stdout.strip() or "sha1"
        listed = git(["ls-tree", "-r", "-l", "-z", "--full-tree", head], cwd=work_dir, env=env).stdout if head else ""
    except subprocess.SubprocessError as error:
        return f"a repository git cannot read ({error})"
    committed = {}  # path -> (object id, size), as HEAD has them ("<mode> <type> <id> <size>\t<path>")
    for entry in filter(None, listed.split("\0")):
        meta, _, name = entry.partition("\t")
        _, _, oid, size = meta.split()
        committed[name] = (oid, int(size) if size.isdigit() else -1)
    for directory, subdirectories, files in os.walk(work_dir):
        if Path(directory) == work_dir:
            subdirectories[:] = [name for name in subdirectories if name != ".git"]
        for name in [*files, *(d for d in subdirectories if os.path.islink(os.path.join(directory, d)))]:
            path = Path(directory, name)
            relative = path.relative_to(work_dir).as_posix()
            if relative not in committed or not _as_cloned(path, *committed[relative], object_format, work_dir):
                return f"files the repository's HEAD does not have as they are ({relative}, perhaps more)"
    return ""


def _as_cloned(path: Path, oid: str, size: int, object_format: str, work_dir: Path) -> bool:
    """Whether `path` holds HEAD's blob `oid`, or the start of it (a checkout stopped while writing it)."""
    info = path.lstat()
    if stat.S_ISREG(info.st_mode) and 0 <= info.st_size < size:
        return _is_prefix_of_blob(path, oid, work_dir)
    return _blob_id(path, object_format) == oid


def _is_prefix_of_blob(path: Path, oid: str, work_dir: Path) -> bool:
    with (
        path.open("rb") as handle,
        subprocess.Popen(
            ["git", "cat-file", "blob", oid],
            cwd=work_dir,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=git_environ(),
        ) as blob,
    ):
        assert blob.stdout is not None
        try:
            while chunk := handle.read(1 << 20):
                if blob.stdout.read(len(chunk)) != chunk:
                    return False
            return True
        finally:
            blob.kill()


def _blob_id(path: Path, object_format: str) -> str:
    """The object id git gives `path`'s content (a symlink: its target); "" for anything else (a socket, a FIFO)."""
    info = path.lstat()
    digest = hashlib.new(object_format)
    if stat.S_ISLNK(info.st_mode):
        target = os.fsencode(os.readlink(path))
        digest.update(b"blob %d\0" % len(target) + target)
    elif stat.S_ISREG(info.st_mode):
        digest.update(b"blob %d\0" % info.st_size)
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    else:
        return ""
    return digest.hexdigest()
