"""Save everything unpushed to `autosave/<prefix>/<UTC timestamp>` without touching the checkout.

Runs when the server stops (SIGTERM from ECS, or a shutdown from the UI). The
snapshot is built with plumbing so the user's working tree, index, HEAD and
branches stay exactly as they were:

1. copy .git/index to a temporary GIT_INDEX_FILE and `git add -A` into it
   (tracked and untracked files, .gitignore respected);
2. `git write-tree`, then `git commit-tree` with HEAD as first parent and the
   tips of other local branches with unpushed commits as further parents, so
   one ref keeps every unpushed commit reachable;
3. push that commit's sha to refs/heads/autosave/<prefix>/<timestamp> at the
   remote's URL (by URL so that no remote-tracking ref is created locally).

Nothing to save (tree equals HEAD's and no local commit is missing from the
remote-tracking refs) pushes nothing. Nor does a snapshot the remote already
holds as this prefix's newest autosave (same tree, same parents): an idle stop
saves work, then ECS stops the container, and the second save finds nothing
new. A failed push is logged loudly and
retried once inside the deadline; if it still fails, the snapshot is kept
locally under refs/nbstack-autosave/ (in the persistent work directory) so it
can be recovered after the next start.

Run by hand: python -m nbstack_runtime.autosave [--work-dir DIR] [--prefix P]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .contract import AUTOSAVE_STAMP_FORMAT, autosave_branch
from .gitcmd import git
from .logs import setup_logging

log = logging.getLogger("nbstack.autosave")

RETRY_PAUSE_SECONDS = 2.0


@dataclass(frozen=True)
class Result:
    """What the autosave did: `pushed` is True only when the remote has the ref."""

    status: str  # "nothing to save" | "already saved" | "pushed" | "failed" | "skipped"
    ref: str | None = None
    sha: str | None = None
    detail: str = ""

    @property
    def pushed(self) -> bool:
        return self.status == "pushed"


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())


def _rev(work_dir: Path, rev: str) -> str | None:
    out = git(["rev-parse", "--verify", "--quiet", rev], cwd=work_dir, check=False)
    return out.stdout.strip() or None


def _unpushed_tips(work_dir: Path, remote: str, head: str | None) -> list[str]:
    """Commits at HEAD or a local branch tip that no remote-tracking ref contains."""
    refs = git(["for-each-ref", "--format=%(objectname)", "refs/heads"], cwd=work_dir).stdout.split()
    tips: list[str] = []
    for tip in ([head] if head else []) + refs:
        if tip in tips:
            continue
        missing = git(["rev-list", "-1", tip, "--not", f"--remotes={remote}"], cwd=work_dir).stdout.strip()
        if missing:
            tips.append(tip)
    return tips


def _is_ancestor(work_dir: Path, commit: str, of: str) -> bool:
    return git(["merge-base", "--is-ancestor", commit, of], cwd=work_dir, check=False).returncode == 0


def _snapshot_tree(work_dir: Path, git_dir: Path, deadline: _Deadline) -> str:
    """Tree of the working tree as `git add -A` sees it, via a throwaway index."""
    with tempfile.TemporaryDirectory(prefix="nbstack-autosave-") as tmp:
        index = Path(tmp) / "index"
        if (git_dir / "index").exists():
            # The stat cache keeps add -A fast. copy2 keeps the index's mtime too:
            # git re-reads an entry modified in the same second as the index was
            # written ("racy git"), which a fresh mtime on the copy would hide.
            shutil.copy2(git_dir / "index", index)
        env = {"GIT_INDEX_FILE": str(index)}
        git(["add", "--all", "--", ":/"], cwd=work_dir, env=env, timeout=deadline.left())
        return git(["write-tree"], cwd=work_dir, env=env, timeout=deadline.left()).stdout.strip()


def _identity_env(work_dir: Path, prefix: str) -> dict[str, str]:
    """Fallback committer identity when git has none configured."""
    env: dict[str, str] = {}
    if not git(["config", "user.name"], cwd=work_dir, check=False).stdout.strip():
        env["GIT_AUTHOR_NAME"] = env["GIT_COMMITTER_NAME"] = f"nbstack autosave ({prefix})"
    if not git(["config", "user.email"], cwd=work_dir, check=False).stdout.strip():
        env["GIT_AUTHOR_EMAIL"] = env["GIT_COMMITTER_EMAIL"] = f"{prefix}@nbstack.invalid"
    return env


def autosave(
    work_dir: Path,
    prefix: str,
    *,
    timeout: float = 90.0,
    remote: str = "origin",
    now: datetime | None = None,
) -> Result:
    """Push a snapshot of unsaved work; never raises, never exceeds `timeout` by much."""
    deadline = _Deadline(timeout)
    try:
        return _autosave(work_dir, prefix, deadline, remote, now or datetime.now(timezone.utc))
    except subprocess.TimeoutExpired as error:
        log.error("AUTOSAVE FAILED: out of time (%.0f s) during %s", timeout, " ".join(map(str, error.cmd)))
        return Result("failed", detail="timeout")
    except (subprocess.CalledProcessError, OSError) as error:
        stderr = getattr(error, "stderr", "") or ""
        log.error("AUTOSAVE FAILED: %s %s", error, stderr.strip())
        return Result("failed", detail=str(error))


def _autosave(work_dir: Path, prefix: str, deadline: _Deadline, remote: str, now: datetime) -> Result:
    probe = git(["rev-parse", "--absolute-git-dir"], cwd=work_dir, check=False) if work_dir.is_dir() else None
    if probe is None or probe.returncode != 0:
        log.info("%s is not a git checkout: nothing to autosave", work_dir)
        return Result("skipped", detail="not a checkout")
    git_dir = Path(probe.stdout.strip())
    url = git(["remote", "get-url", remote], cwd=work_dir, check=False).stdout.strip()

    head = _rev(work_dir, "HEAD^{commit}")
    tree = _snapshot_tree(work_dir, git_dir, deadline)
    head_tree = _rev(work_dir, "HEAD^{tree}") if head else None
    tips = _unpushed_tips(work_dir, remote, head)
    # Every unpushed branch tip that HEAD does not already contain becomes a parent.
    others = [tip for tip in tips if tip != head and not (head and _is_ancestor(work_dir, tip, head))]
    dirty = tree != head_tree and not (head is None and tree == _empty_tree(work_dir))
    if not dirty and not tips:
        log.info("autosave: nothing to save in %s", work_dir)
        return Result("nothing to save")

    parents = ([head] if head else []) + others
    # Only unpushed commits on HEAD: push HEAD as it is.
    as_is = head if head and not dirty and not others else None
    if url:
        latest = _latest_autosave(work_dir, url, prefix, deadline)
        if latest and (latest[1] == as_is if as_is else _same_snapshot(work_dir, latest[1], tree, parents)):
            log.info("autosave: nothing new since %s", latest[0])
            return Result("already saved", latest[0], latest[1])

    stamp = now.astimezone(timezone.utc).strftime(AUTOSAVE_STAMP_FORMAT)
    ref = f"refs/heads/{autosave_branch(prefix, stamp)}"
    if as_is:
        sha = as_is
    else:
        parent_args = [arg for parent in parents for arg in ("-p", parent)]
        message = f"Autosave of {work_dir} at {stamp} (server stop)\n\n"
        if others:
            message += "Further parents keep unpushed local branch tips reachable.\n"
        sha = git(
            ["commit-tree", tree, *parent_args, "-m", message],
            cwd=work_dir,
            env=_identity_env(work_dir, prefix),
            timeout=deadline.left(),
        ).stdout.strip()

    if not url:
        return _keep_locally(work_dir, sha, stamp, f"no remote named {remote!r}")
    error = ""
    for attempt in (1, 2):
        if deadline.left() <= 1:
            error = error or "no time left to push"
            break
        push = git(
            ["push", "--no-verify", "--quiet", url, f"{sha}:{ref}"],
            cwd=work_dir,
            check=False,
            timeout=deadline.left(),
        )
        if push.returncode == 0:
            log.info("autosave: pushed %s to %s", sha[:12], ref)
            return Result("pushed", ref, sha)
        error = push.stderr.strip()
        log.error("AUTOSAVE PUSH FAILED (attempt %d of 2) for %s: %s", attempt, ref, error)
        if attempt == 1:
            time.sleep(min(RETRY_PAUSE_SECONDS, deadline.left()))
    return _keep_locally(work_dir, sha, stamp, error)


def _latest_autosave(work_dir: Path, url: str, prefix: str, deadline: _Deadline) -> tuple[str, str] | None:
    """(ref, sha) of the prefix's newest autosave branch on the remote, if it can be listed."""
    listing = git(
        ["ls-remote", "--refs", url, f"refs/heads/{autosave_branch(prefix, '*')}"],
        cwd=work_dir,
        check=False,
        timeout=deadline.left(),
    )
    refs = [line.split("\t")[::-1] for line in listing.stdout.splitlines() if "\t" in line]
    if listing.returncode != 0 or not refs:
        return None  # the push will say what is wrong with the remote
    ref, sha = max(refs)  # UTC timestamps sort by name
    return ref, sha


def _same_snapshot(work_dir: Path, commit: str, tree: str, parents: list[str]) -> bool:
    """Whether `commit` (when this checkout has it) holds `tree` on `parents`."""
    if git(["cat-file", "-e", f"{commit}^{{commit}}"], cwd=work_dir, check=False).returncode != 0:
        return False  # saved from elsewhere: compare nothing, save again
    listed = git(["rev-list", "--parents", "-n", "1", commit], cwd=work_dir).stdout.split()
    return _rev(work_dir, f"{commit}^{{tree}}") == tree and listed[1:] == parents


def _empty_tree(work_dir: Path) -> str:
    return git(["hash-object", "-t", "tree", "/dev/null"], cwd=work_dir).stdout.strip()


def _keep_locally(work_dir: Path, sha: str, stamp: str, error: str) -> Result:
    """Keep the snapshot reachable in the persistent checkout (not a branch, not the index)."""
    local_ref = f"refs/nbstack-autosave/{stamp}"
    git(["update-ref", local_ref, sha], cwd=work_dir, check=False)
    log.error(
        "AUTOSAVE FAILED: %s. The snapshot is commit %s, kept in %s as %s; "
        "recover it with: git branch recovered-autosave %s",
        error or "push failed",
        sha,
        work_dir,
        local_ref,
        sha,
    )
    return Result("failed", None, sha, error)


def main(argv: list[str] | None = None) -> int:
    from .settings import Settings

    parser = argparse.ArgumentParser(description="Push unsaved work to an autosave branch.")
    parser.add_argument("--work-dir", type=Path)
    parser.add_argument("--prefix")
    parser.add_argument("--timeout", type=float)
    args = parser.parse_args(argv)
    setup_logging()
    settings = None if (args.work_dir and args.prefix) else Settings.from_environ()
    result = autosave(
        args.work_dir or settings.work_dir,  # type: ignore[union-attr]
        args.prefix or settings.prefix,  # type: ignore[union-attr]
        timeout=args.timeout or (settings.autosave_timeout if settings else 90.0),
    )
    print(result.status, result.ref or "", result.sha or "")
    return 1 if result.status == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
