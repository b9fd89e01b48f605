"""Save everything unpushed to `autosave/<prefix>/<UTC timestamp>` without touching the checkout.

Runs when the server stops (SIGTERM from ECS, or a shutdown from the UI). The
snapshot is built with plumbing so the user's working tree, index, HEAD and
branches stay exactly as they were:

1. copy .git/index to a temporary GIT_INDEX_FILE and `git add -A` into it
   (tracked and untracked files, .gitignore respected), leaving out what
   would make the whole save fail: a nested repository (a directory with a
   .git of its own that is no registered submodule), a file or directory the
   notebook user cannot read, and a file over NBSTACK_AUTOSAVE_MAX_FILE_MB
   (a git host refuses the whole push for one such file: GitHub above
   100 MiB). What is left out stays on disk untouched; a tracked file left
   out keeps its staged or committed version in the snapshot. The commit
   message and the log name each one and why;
2. `git write-tree`, then `git commit-tree` with HEAD as first parent, the
   tips of other local branches with unpushed commits as further parents,
   and every stash entry (refs/stash and its reflog) after them, so one ref
   keeps every unpushed commit and every stash reachable; the message says
   how to put the stashes back. Unpushed commits that hold a file over the
   limit cannot be pushed: a stash or branch tip holding one is left out;
   when HEAD's do, the snapshot builds on the pushed commits they start
   from instead of HEAD, so it keeps their files as they are now but not
   the commits (which stay in the checkout);
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

`record` writes the outcome on the person's ECS service as the tag
nbstack:autosave (`<saved|nothing|failed> <UTC time>[ <branch>][ left-out=<n>][ <commit>]`),
which replaces the idle watcher's marks (`mark`: `running <start>`,
`stopping <time>`) and which down.yml reads; the SIGTERM path (extension)
and the idle stop (watcher) call it after every save, bounded by
RECORD_TIMEOUT_SECONDS.

Run by hand: python -m nbstack_runtime.autosave [--work-dir DIR] [--prefix P]
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from .contract import AUTOSAVE_STAMP_FORMAT, AUTOSAVE_TAG, autosave_branch
from .gitcmd import git
from .gitsetup import incomplete, made_since_clone
from .logs import setup_logging
from .models import AUTOSAVE_RECORD, record_autosave
from .policy import iso

if TYPE_CHECKING:
    from .scaler import Scaler

log = logging.getLogger("nbstack.autosave")

RETRY_PAUSE_SECONDS = 2.0
#: The default of NBSTACK_AUTOSAVE_MAX_FILE_MB: GitHub refuses a push holding a file above 100 MiB.
MAX_FILE_MB = 100.0
#: Left-out paths named one by one in a snapshot's message (all of them go to the log).
LEFT_OUT_LISTED = 20
#: Seconds `record` may take (the SIGTERM path must end within ECS's stop timeout).
RECORD_TIMEOUT_SECONDS = 10.0
_MIB = 1024 * 1024
_UNREADABLE_DIRECTORY = re.compile(r"could not open directory '(.+)': (.+)$")


@dataclass(frozen=True)
class LeftOut:
    """A path the snapshot does not hold, and why; it stays on disk untouched."""

    path: str
    reason: str


@dataclass(frozen=True)
class Result:
    """What the autosave did: `pushed` is True only when the remote has the ref."""

    status: str  # "nothing to save" | "already saved" | "pushed" | "failed" | "skipped"
    ref: str | None = None
    sha: str | None = None
    detail: str = ""
    left_out: tuple[LeftOut, ...] = ()

    @property
    def pushed(self) -> bool:
        return self.status == "pushed"

    @property
    def outcome(self) -> str:
        """The nbstack:autosave tag's status: saved (on the remote), nothing (to save) or failed."""
        if self.status in ("pushed", "already saved"):
            return "saved"
        return "failed" if self.status == "failed" else "nothing"


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())


def _rev(work_dir: Path, rev: str) -> str | None:
    out = git(["rev-parse", "--verify", "--quiet", rev], cwd=work_dir, check=False)
    return out.stdout.strip() or None


def _unpushed(top: Path, remote: str, commits: Sequence[str], deadline: _Deadline, *options: str) -> str:
    """`git rev-list <options>` of what `commits` bring that no remote-tracking ref holds.

    The commits go in on standard input: any number of them, one process.
    """
    if not commits:
        return ""
    return git(
        ["rev-list", *options, "--not", f"--remotes={remote}", "--stdin"],  # --not does not reach --stdin's
        cwd=top,
        input="".join(f"{commit}\n" for commit in commits),
        timeout=deadline.left(),
    ).stdout


def _branch_commits(top: Path, deadline: _Deadline) -> tuple[list[str], list[LeftOut]]:
    """The commit each local branch points at, and the branches that point at none but hold something.

    A branch holding a tag object (git writes none, other tools may) stands
    for the commit the tag names. One holding a tree or a blob cannot be
    saved: it is named, and the rest saved. One whose object this
    repository lacks holds nothing left to save: the log says so.
    """
    listed = git(["for-each-ref", "--format=%(objectname) %(refname)", "refs/heads"], cwd=top, timeout=deadline.left())
    refs = [line.split(" ", 1) for line in listed.stdout.splitlines() if line]
    if not refs:
        return [], []
    # One answer line per line asked, in order: "<name> <type>", or "<what was asked> missing".
    answers = git(
        ["cat-file", "--batch-check=%(objectname) %(objecttype)"],
        cwd=top,
        input="".join(f"{sha}\n{sha}^{{commit}}\n" for sha, _ in refs),
        timeout=deadline.left(),
    ).stdout.splitlines()
    answers += [""] * (2 * len(refs) - len(answers))  # none is missing; a backstop that fails closed (below)
    commits, skipped = [], []
    for index, (sha, ref) in enumerate(refs):
        kind = answers[2 * index].partition(" ")[2]
        found, _, peeled = answers[2 * index + 1].partition(" ")
        name = ref.removeprefix("refs/heads/")
        if peeled == "commit":
            commits.append(found)
        elif kind in ("tree", "blob", "tag"):
            why = f"points at a {kind}, {sha[:12]}, not a commit (git cat-file -p {sha[:12]} shows it)"
            skipped.append(LeftOut(f"branch {name}", why))
        elif kind != "missing":
            skipped.append(LeftOut(f"branch {name}", f"points at {sha[:12]}, which git could not tell"))
        else:
            log.warning(
                "autosave: branch %s points at %s, which this repository lacks: nothing of it is left to save "
                "(git branch -D %s removes it)",
                name,
                sha[:12],
                name,
            )
    return commits, skipped


def _unpushed_tips(
    top: Path, remote: str, head: str | None, deadline: _Deadline
) -> tuple[list[str], set[str], list[LeftOut]]:
    """Commits at HEAD or a local branch tip that no remote-tracking ref holds; HEAD's unpushed commits;
    the branches that point at no commit.

    Two walks whatever the number of branches (a git process per branch
    took longer than a save may with thousands of them).
    """
    commits, skipped = _branch_commits(top, deadline)
    candidates = list(dict.fromkeys(([head] if head else []) + commits))
    unpushed = set(_unpushed(top, remote, candidates, deadline).split())
    in_head = set(_unpushed(top, remote, [head], deadline).split()) if head in unpushed else set()
    return [tip for tip in candidates if tip in unpushed], in_head, skipped


def _snapshot_tree(
    top: Path, git_dir: Path, head: str | None, limit: int, deadline: _Deadline
) -> tuple[str, list[LeftOut]]:
    """Tree of the working tree as `git add -A` sees it, via a throwaway index, and what it leaves out."""
    with tempfile.TemporaryDirectory(prefix="nbstack-autosave-") as tmp:
        index = Path(tmp) / "index"
        if (git_dir / "index").exists():
            # The stat cache keeps add -A fast. copy2 keeps the index's mtime too:
            # git re-reads an entry modified in the same second as the index was
            # written ("racy git"), which a fresh mtime on the copy would hide.
            shutil.copy2(git_dir / "index", index)
        env = {"GIT_INDEX_FILE": str(index)}
        left_out = _left_out(top, env, limit, deadline)
        spec = Path(tmp) / "pathspec"
        excluded = [b":(top,exclude,literal)" + os.fsencode(item.path) for item in left_out]
        spec.write_bytes(b"\0".join([b":/", *excluded]))
        git(
            ["add", "--all", f"--pathspec-from-file={spec}", "--pathspec-file-nul"],
            cwd=top,
            env=env,
            timeout=deadline.left(),
        )
        # A path left out keeps its index entry: an unmerged one would stop
        # write-tree, an oversized staged one the push. Those take HEAD's version.
        listed = git(["ls-files", "-u", "-z"], cwd=top, env=env, timeout=deadline.left()).stdout
        unmerged = {line.split("\t", 1)[1] for line in _z(listed)}
        oversized = _oversized_staged(top, env, head, limit, deadline) if limit else {}
        if unmerged or oversized:
            _reset_to_head(top, env, head, sorted(unmerged | set(oversized)), Path(tmp), deadline)
        named = {item.path for item in left_out}
        left_out += [LeftOut(path, reason) for path, reason in sorted(oversized.items()) if path not in named]
        tree = git(["write-tree"], cwd=top, env=env, timeout=deadline.left()).stdout.strip()
        return tree, left_out


def _z(output: str) -> list[str]:
    return [item for item in output.split("\0") if item]


def _mb(size: int) -> str:
    """A size as people read it (MB here meaning MiB, as GitHub's limit does)."""
    return f"{size / _MIB:.1f} MB" if size >= _MIB // 10 else f"{size / 1024:.1f} KB"


def _left_out(top: Path, env: Mapping[str, str], limit: int, deadline: _Deadline) -> list[LeftOut]:
    """What `git add -A` must not read: nested repositories, unreadable paths, files over `limit` bytes."""
    untracked = git(["ls-files", "-z", "--others", "--exclude-standard"], cwd=top, env=env, timeout=deadline.left())
    # Tracked files whose stat data differs from the index (diff-files compares stat data, it reads no file).
    changed = git(["diff-files", "--name-only", "-z"], cwd=top, env=env, timeout=deadline.left())
    found: dict[str, str] = {}
    for line in untracked.stderr.splitlines():  # git skips an unreadable directory with a warning
        match = _UNREADABLE_DIRECTORY.search(line)
        if match:
            why = f"a directory the notebook user cannot read ({match.group(2)})"
            found.setdefault(match.group(1).rstrip("/"), why)
    for path in _z(untracked.stdout):
        if path.endswith("/"):  # ls-files names a nested repository as a directory, and does not enter it
            found[path.rstrip("/")] = "a git repository of its own, not a registered submodule"
    for path in _z(untracked.stdout) + _z(changed.stdout):
        reason = None if path.endswith("/") else _unsaveable(top / path, limit)
        if reason:
            found[path] = reason
    return [LeftOut(path, reason) for path, reason in sorted(found.items())]


def _unsaveable(path: Path, limit: int) -> str | None:
    """Why git could not or should not take this file, or None."""
    try:
        info = os.lstat(path)
    except OSError:
        return None  # gone: add -A records the deletion
    if not stat.S_ISREG(info.st_mode):
        return None  # a symbolic link is saved as the link; git skips other kinds itself
    if limit and info.st_size > limit:
        return f"{_mb(info.st_size)}, over the {_mb(limit)} limit (NBSTACK_AUTOSAVE_MAX_FILE_MB)"
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW))
    except PermissionError:
        return "a file the notebook user cannot read"
    except OSError:
        return None
    return None


def _blob_sizes(top: Path, shas: list[str], deadline: _Deadline) -> dict[str, int]:
    """The size of each blob among `shas` (other objects left out)."""
    if not shas:
        return {}
    checked = git(
        ["cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)"],
        cwd=top,
        input="\n".join(dict.fromkeys(shas)) + "\n",
        timeout=deadline.left(),
    )
    fields = [line.split() for line in checked.stdout.splitlines()]
    return {found[0]: int(found[2]) for found in fields if len(found) == 3 and found[1] == "blob"}


def _oversized_staged(
    top: Path, env: Mapping[str, str], head: str | None, limit: int, deadline: _Deadline
) -> dict[str, str]:
    """Paths whose staged blob (new since HEAD) is over `limit` bytes, with why."""
    base = head or _empty_tree(top)
    raw = _z(
        git(["diff-index", "--cached", "--no-renames", "-z", base], cwd=top, env=env, timeout=deadline.left()).stdout
    )
    # -z raw output: ":<old mode> <new mode> <old sha> <new sha> <status>" then the path.
    pairs = zip(raw[::2], raw[1::2], strict=True)
    staged = {path: meta.split()[3] for meta, path in pairs if meta.split()[4] in ("A", "M", "T")}
    sizes = _blob_sizes(top, list(staged.values()), deadline)
    return {
        path: f"its staged version is {_mb(sizes[sha])}, over the {_mb(limit)} limit (NBSTACK_AUTOSAVE_MAX_FILE_MB)"
        for path, sha in staged.items()
        if sizes.get(sha, 0) > limit
    }


def _reset_to_head(
    top: Path, env: Mapping[str, str], head: str | None, paths: list[str], tmp: Path, deadline: _Deadline
) -> None:
    """Set these paths' entries in the throwaway index to HEAD's (none when HEAD lacks them)."""
    spec = tmp / "reset-pathspec"
    spec.write_bytes(b"\0".join(os.fsencode(path) for path in paths))
    literal = {**env, "GIT_LITERAL_PATHSPECS": "1"}
    files = [f"--pathspec-from-file={spec}", "--pathspec-file-nul"]
    if head:
        git(["reset", "--quiet", *files, head], cwd=top, env=literal, timeout=deadline.left())
    else:
        git(["rm", "--cached", "--quiet", "--ignore-unmatch", *files], cwd=top, env=literal, timeout=deadline.left())


def _largest_unpushed(
    top: Path, remote: str, commits: Sequence[str], limit: int, deadline: _Deadline
) -> tuple[int, str] | None:
    """(size, path) of the largest blob over `limit` bytes that `commits` bring and the remote lacks, or None."""
    # Objects the remote lacks, as "<sha> <path>" lines (a path may hold spaces).
    objects = _unpushed(top, remote, commits, deadline, "--objects")
    paths = {line.split(" ", 1)[0]: line.partition(" ")[2] for line in objects.splitlines()}
    sizes = _blob_sizes(top, [found for found in paths if re.fullmatch(r"[0-9a-f]{40,64}", found)], deadline)
    big = [(size, paths[blob]) for blob, size in sizes.items() if size > limit]
    return max(big) if big else None


def _heavy_tips(top: Path, remote: str, tips: list[str], limit: int, deadline: _Deadline) -> dict[str, tuple[int, str]]:
    """The tips whose unpushed commits hold a file over `limit` (a positive limit), each with its largest.

    A group of tips holds such a file when one of them does: one walk
    clears a group, and only a group that holds one is halved and walked
    again, so a few such tips among thousands take a few dozen walks.
    """
    if not (limit and tips):
        return {}
    big = _largest_unpushed(top, remote, tips, limit, deadline)
    if big is None:
        return {}
    if len(tips) == 1:
        return {tips[0]: big}
    half = len(tips) // 2
    return {
        **_heavy_tips(top, remote, tips[:half], limit, deadline),
        **_heavy_tips(top, remote, tips[half:], limit, deadline),
    }


def _pushable_base(
    top: Path, remote: str, head: str | None, limit: int, deadline: _Deadline
) -> tuple[str | None, list[str], list[LeftOut]]:
    """What the snapshot builds on: (tree base, parents, what that leaves out).

    HEAD, unless its unpushed commits hold a file over `limit`: a git host
    refuses a push that carries one, the snapshot's own files with it. Then
    the snapshot builds on the newest commit of HEAD's first-parent line that
    brings no such file (or, when none is clean, on the pushed commits the
    line starts from, or nothing when nothing is pushed), so it holds the
    files as they are now and the commits up to that one, but not the later
    ones, which stay in the checkout.
    """
    if not head:
        return None, [], []
    big = _largest_unpushed(top, remote, [head], limit, deadline) if limit else None
    if big is None:
        return head, [head], []
    size, path = big
    # Newest first; line[0] is HEAD. A commit brings its ancestors' unpushed
    # files too, so along the line "brings a file over the limit" turns from
    # true to false once: the newest clean commit is found by bisection, in
    # at most a quarter of the time left (each step reads the objects of the
    # commits it tests). Any clean commit is a base the push takes: when the
    # time runs out, the newest one found so far is kept.
    line = git(
        ["rev-list", "--first-parent", head, "--not", f"--remotes={remote}"], cwd=top, timeout=deadline.left()
    ).stdout.split()
    budget = _Deadline(deadline.left() / 4)
    low, high = 1, len(line)
    while low < high:
        middle = (low + high) // 2
        try:
            clean = _largest_unpushed(top, remote, [line[middle]], limit, budget) is None
        except subprocess.TimeoutExpired:
            log.warning("autosave: no time left to look for newer unpushed commits to keep; keeping what was found")
            break
        if clean:
            high = middle
        else:
            low = middle + 1
    heavy = f"hold {path or 'a file'} of {_mb(size)}, over the {_mb(limit)} limit"
    if high < len(line):
        kept = line[high]
        after = git(
            ["rev-list", "--count", head, "--not", kept, f"--remotes={remote}"], cwd=top, timeout=deadline.left()
        ).stdout.strip()
        why = (
            f"{heavy}; the snapshot keeps the commits up to {kept[:12]} and has the files as they are now"
            f" (that one as in {kept[:12]}), not the {after} commit(s) HEAD has beyond it"
        )
        return kept, [kept], [LeftOut("HEAD's unpushed commits", why)]
    listed = git(["rev-list", "--boundary", head, "--not", f"--remotes={remote}"], cwd=top, timeout=deadline.left())
    pushed = [entry[1:] for entry in listed.stdout.splitlines() if entry.startswith("-")]
    why = f"{heavy}; the snapshot has their files as they are now (that one as last pushed), not the commits"
    return (pushed[0] if pushed else None), pushed, [LeftOut("HEAD's unpushed commits", why)]


def _stashes(top: Path, remote: str, limit: int, deadline: _Deadline) -> tuple[list[tuple[str, str]], list[LeftOut]]:
    """Every stash entry as (sha, its message), newest first; and those left out for a file over `limit`."""
    if not _rev(top, "refs/stash"):
        return [], []
    listed = git(
        ["reflog", "show", "--format=%H%x1f%gs", "refs/stash", "--"], cwd=top, check=False, timeout=deadline.left()
    ).stdout
    entries = [tuple(line.split("\x1f", 1)) for line in listed.splitlines() if "\x1f" in line]
    kept: list[tuple[str, str]] = []
    left_out: list[LeftOut] = []
    for number, (sha, message) in enumerate(entries):
        big = _largest_unpushed(top, remote, [sha], limit, deadline) if limit else None
        if big:
            size, path = big
            left_out.append(
                LeftOut(f"stash@{{{number}}}", f"holds {path or 'a file'} of {_mb(size)}, over the {_mb(limit)} limit")
            )
        else:
            kept.append((sha, message))
    return kept, left_out


def _message(
    work_dir: Path, branch: str, stamp: str, others: bool, stashes: list[tuple[str, str]], left_out: list[LeftOut]
) -> str:
    message = f"Autosave of {work_dir} at {stamp} (server stop)\n\n"
    if others:
        message += "Further parents keep unpushed local branch tips reachable.\n\n"
    if stashes:
        message += (
            f"The last {len(stashes)} parent(s) are the stash entries, newest first. To put them back\n"
            f"in `git stash list`, run `git fetch origin {branch}`, then, in this order:\n\n"
        )
        message += "".join(f"    git stash store -m {shlex.quote(text)} {sha}\n" for sha, text in reversed(stashes))
        message += "\n"
    if left_out:
        message += "Left out of this snapshot (still on the server's disk, untouched):\n\n"
        message += "".join(f"    {item.path}: {item.reason}\n" for item in left_out[:LEFT_OUT_LISTED])
        if len(left_out) > LEFT_OUT_LISTED:
            message += f"    ...and {len(left_out) - LEFT_OUT_LISTED} more (the server's log lists them all)\n"
        message += "\nA tracked file left out keeps its staged or committed version here.\n"
    return message


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
    max_file_mb: float = MAX_FILE_MB,
) -> Result:
    """Push a snapshot of unsaved work; never raises, never exceeds `timeout` by much.

    `max_file_mb`: files above this many MiB are left out of the snapshot (0: no limit).
    """
    deadline = _Deadline(timeout)
    try:
        return _autosave(work_dir, prefix, deadline, remote, now or datetime.now(timezone.utc), int(max_file_mb * _MIB))
    except subprocess.TimeoutExpired as error:
        log.error("AUTOSAVE FAILED: out of time (%.0f s) during %s", timeout, " ".join(map(str, error.cmd)))
        return Result("failed", detail="timeout")
    except (subprocess.CalledProcessError, OSError) as error:
        stderr = getattr(error, "stderr", "") or ""
        log.error("AUTOSAVE FAILED: %s %s", error, stderr.strip())
        return Result("failed", detail=str(error))


def _autosave(work_dir: Path, prefix: str, deadline: _Deadline, remote: str, now: datetime, limit: int) -> Result:
    probe = git(["rev-parse", "--absolute-git-dir"], cwd=work_dir, check=False) if work_dir.is_dir() else None
    if probe is None or probe.returncode != 0:
        if work_dir.is_dir() and any(work_dir.iterdir()):
            # Files and no checkout (a clone that failed, then work made there): nothing
            # can push them, and the instance's disk is all they have.
            log.error("AUTOSAVE FAILED: %s holds files but is not a git checkout: nothing can push them", work_dir)
            return Result("failed", detail="files in a work directory that is not a git checkout")
        log.info("%s is not a git checkout: nothing to autosave", work_dir)
        return Result("skipped", detail="not a checkout")
    git_dir = Path(probe.stdout.strip())
    if incomplete(work_dir):
        # A first clone stopped half-way (the container stopped during the
        # start): when it holds only what the clone wrote, nothing in it is
        # anyone's work, a snapshot of it would only show every file missing,
        # and the next start clones again. Anything made since (the mark can
        # be set by hand) is saved as in any checkout.
        made = made_since_clone(work_dir)
        if not made:
            log.warning("%s holds a clone the start did not finish: nothing to autosave", work_dir)
            return Result("skipped", detail="unfinished clone")
        log.warning("%s is marked as an unfinished clone but holds %s: saved as any checkout", work_dir, made)
    # Paths below are the top level's: ls-files lists only below its working directory.
    top = Path(git(["rev-parse", "--show-toplevel"], cwd=work_dir, check=False).stdout.strip() or work_dir)
    url = git(["remote", "get-url", remote], cwd=top, check=False).stdout.strip()

    head = _rev(top, "HEAD^{commit}")
    base, base_parents, left_out = _pushable_base(top, remote, head, limit, deadline)
    tree, tree_left_out = _snapshot_tree(top, git_dir, base, limit, deadline)
    left_out += tree_left_out
    stashes, stashes_left_out = _stashes(top, remote, limit, deadline)
    left_out += stashes_left_out
    base_tree = _rev(top, f"{base}^{{tree}}") if base else None
    tips, in_head, skipped = _unpushed_tips(top, remote, head, deadline)
    left_out += skipped
    # Every unpushed branch tip that HEAD does not already contain becomes a
    # parent, unless it carries a file over the limit (it stays in the
    # checkout). A tip in HEAD's history is in the snapshot's, or among the
    # commits HEAD's entry above counts as left out.
    others = [tip for tip in tips if tip != head and tip not in in_head]
    heavy = _heavy_tips(top, remote, others, limit, deadline)
    for tip, (size, path) in heavy.items():
        why = f"holds {path or 'a file'} of {_mb(size)}, over the {_mb(limit)} limit"
        left_out.append(LeftOut(f"unpushed commit {tip[:12]}", why))
    others = [tip for tip in others if tip not in heavy]
    if left_out:
        log.warning(
            "autosave: %d path(s) left out of the snapshot, still on disk untouched: %s",
            len(left_out),
            "; ".join(f"{item.path} ({item.reason})" for item in left_out[:200]),
        )
    dirty = tree != base_tree and not (base is None and tree == _empty_tree(top))
    if not dirty and not tips and not stashes:
        log.info("autosave: nothing to save in %s", work_dir)
        return Result("nothing to save", left_out=tuple(left_out))

    parents = list(dict.fromkeys(base_parents + others + [sha for sha, _ in stashes]))
    # Only unpushed commits on HEAD: push HEAD as it is (a commit of ours only to say what was left out).
    as_is = head if head and not dirty and not others and not stashes and not left_out else None
    if url:
        latest = _latest_autosave(top, url, prefix, deadline)
        if latest and (latest[1] == as_is if as_is else _same_snapshot(top, latest[1], tree, parents)):
            log.info("autosave: nothing new since %s", latest[0])
            return Result("already saved", latest[0], latest[1], left_out=tuple(left_out))

    stamp = now.astimezone(timezone.utc).strftime(AUTOSAVE_STAMP_FORMAT)
    ref = f"refs/heads/{autosave_branch(prefix, stamp)}"
    if as_is:
        sha = as_is
    else:
        parent_args = [arg for parent in parents for arg in ("-p", parent)]
        sha = git(
            [
                "commit-tree",
                tree,
                *parent_args,
                "-m",
                _message(work_dir, autosave_branch(prefix, stamp), stamp, bool(others), stashes, left_out),
            ],
            cwd=top,
            env=_identity_env(top, prefix),
            timeout=deadline.left(),
        ).stdout.strip()

    if not url:
        return _keep_locally(top, sha, stamp, f"no remote named {remote!r}", left_out)
    error = ""
    for attempt in (1, 2):
        if deadline.left() <= 1:
            error = error or "no time left to push"
            break
        push = git(
            ["push", "--no-verify", "--quiet", url, f"{sha}:{ref}"],
            cwd=top,
            check=False,
            timeout=deadline.left(),
        )
        if push.returncode == 0:
            log.info("autosave: pushed %s to %s", sha[:12], ref)
            return Result("pushed", ref, sha, left_out=tuple(left_out))
        error = push.stderr.strip()
        log.error("AUTOSAVE PUSH FAILED (attempt %d of 2) for %s: %s", attempt, ref, error)
        if attempt == 1:
            time.sleep(min(RETRY_PAUSE_SECONDS, deadline.left()))
    return _keep_locally(top, sha, stamp, error, left_out)


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


def _keep_locally(work_dir: Path, sha: str, stamp: str, error: str, left_out: list[LeftOut]) -> Result:
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
    return Result("failed", None, sha, error, tuple(left_out))


def tag_value(result: Result, at: datetime) -> str:
    """The nbstack:autosave tag: `<saved|nothing|failed> <UTC time>[ <branch>][ left-out=<n>][ <commit>]`.

    The commit is what a restore checks out: anyone who may push can move a
    branch, not the commit a branch pointed at.
    """
    parts = [result.outcome, iso(at)]
    if result.outcome == "saved" and result.ref:
        parts.append(result.ref.removeprefix("refs/heads/"))
    if result.left_out:
        parts.append(f"left-out={len(result.left_out)}")
    if result.outcome == "saved" and result.ref and result.sha:
        parts.append(result.sha)
    return " ".join(parts)


#: What a mark on the service says (a record replaces it): the server runs, or an idle stop began.
MARKS = ("running", "stopping")


class TagOrder:
    """The nbstack:autosave writes of one watcher: each lands whole, and never over one issued after it.

    A write slowed by the client's retries may still be under way when a
    later one begins (a stop does not wait for it): the later one waits
    for it, and a write whose turn comes after a later one has landed is
    dropped, so the tag ends as the latest write that landed says.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._issued = 0
        self._landed = 0

    def ticket(self) -> int:
        """A write's place: taken when it begins, in the watcher's own thread."""
        self._issued += 1
        return self._issued

    def publish(self, ticket: int, scaler: Scaler, value: str) -> None:
        with self._lock:
            if ticket < self._landed:
                log.info("autosave: %r is not written: a later write of the tag landed first", value)
                return
            scaler.publish({AUTOSAVE_TAG: value})
            self._landed = ticket


def _publisher(scaler: Scaler, value: str, order: TagOrder | None) -> Callable[[], None]:
    """The write of `value` to the service's tag, in `order` when given (its place taken now)."""
    if order is None:
        return lambda: scaler.publish({AUTOSAVE_TAG: value})
    ticket = order.ticket()
    return lambda: order.publish(ticket, scaler, value)


def mark(
    scaler: Scaler,
    status: str,
    at: datetime,
    *,
    timeout: float = RECORD_TIMEOUT_SECONDS,
    order: TagOrder | None = None,
    in_flight: threading.Event | None = None,
) -> bool:
    """Tag the service `<status> <time>` (one of MARKS); never raises, never blocks past `timeout`.

    A record of a save must never vouch for work made after it, and a purge
    trusts the record an idle stop leaves. Two marks say that no save is
    recorded since: `running`, once the server answers (a task ECS started
    by itself, after an unhealthy check or a failed instance, follows a
    record of the task before it), and `stopping`, as an idle stop begins,
    before its save. The stop's record replaces them; when it cannot be
    written, the mark stays and a purge refuses. Best effort, as the
    record: a tag that cannot be written never holds up a server or a stop.
    `order` (TagOrder) is given to every mark and record of one watcher.
    With `in_flight`, one write at a time: while the last one still waits
    for an answer, none is tried (False).
    """
    if status not in MARKS:
        raise ValueError(f"a mark is one of {', '.join(MARKS)}, not {status!r}")
    value = f"{status} {iso(at)}"
    if in_flight is not None:
        if in_flight.is_set():
            log.info("autosave: the service's earlier mark still waits for an answer; %r is not tried", value)
            return False
        in_flight.set()
    publish = _publisher(scaler, value, order)
    began = threading.Event()

    def write() -> None:
        began.set()
        try:
            publish()
        finally:
            if in_flight is not None:
                in_flight.clear()

    failure = _bounded({f"the service's {AUTOSAVE_TAG} tag": write}, timeout)
    if in_flight is not None and not began.is_set():
        in_flight.clear()  # not started (no thread to be had): nothing is under way
    if failure:
        log.warning("autosave: could not mark the service %r: %s", value, "; ".join(failure))
        return False
    return True


def _bounded(calls: Mapping[str, Callable[[], None]], timeout: float) -> list[str]:
    """Run `calls` side by side in daemon threads for at most `timeout` seconds; what failed or did not answer.

    Side by side, so that a slow one does not use up another's time; one
    that hangs (an endpoint that does not answer, retries) is left behind.
    """
    failure: list[str] = []

    def run(what: str, call: Callable[[], None]) -> None:
        try:
            call()
        except Exception as error:  # a status detail, or no offer on a fresh volume: never a reason not to stop
            failure.append(f"{what}: {type(error).__name__}: {error}")

    threads = {what: threading.Thread(target=run, args=(what, call), daemon=True) for what, call in calls.items()}
    began = time.monotonic()
    for what, thread in list(threads.items()):
        try:
            thread.start()
        except RuntimeError as error:  # no thread to be had (the container's process limit)
            failure.append(f"{what}: not started: {error}")
            del threads[what]
    for what, thread in threads.items():
        thread.join(max(0.0, timeout - (time.monotonic() - began)))
        if thread.is_alive():
            failure.append(f"{what}: no answer within {timeout:g} s")
    return failure


def record(
    result: Result, scaler: Scaler, *, timeout: float = RECORD_TIMEOUT_SECONDS, order: TagOrder | None = None
) -> bool:
    """Tag the person's service with the outcome (down.yml reads it); never raises, never blocks past `timeout`.

    A save on the remote is also recorded under the person's own prefix in
    the model bucket (models.record_autosave), which a fresh work volume
    reads to offer that commit and no other. The two calls run side by side
    in daemon threads: one that hangs (an endpoint that does not answer,
    retries) is left behind, and the stop goes on.
    """
    value = tag_value(result, datetime.now(timezone.utc))
    calls: dict[str, Callable[[], None]] = {f"the service's {AUTOSAVE_TAG} tag": _publisher(scaler, value, order)}
    if result.outcome == "saved" and result.ref and result.sha:
        branch, sha = result.ref.removeprefix("refs/heads/"), result.sha
        calls[f"models/<prefix>/{AUTOSAVE_RECORD} in the model bucket"] = lambda: record_autosave(branch, sha)
    failure = _bounded(calls, timeout)
    where = " and ".join(calls)
    if failure:
        log.error("autosave: could not record %r as %s: %s", value, where, "; ".join(failure))
        return False
    log.info("autosave: recorded %r as %s", value, where)
    return True


def main(argv: list[str] | None = None) -> int:
    from .settings import Settings

    parser = argparse.ArgumentParser(description="Push unsaved work to an autosave branch.")
    parser.add_argument("--work-dir", type=Path)
    parser.add_argument("--prefix")
    parser.add_argument("--timeout", type=float)
    parser.add_argument("--max-file-mb", type=float)
    args = parser.parse_args(argv)
    setup_logging()
    settings = None if (args.work_dir and args.prefix) else Settings.from_environ()
    result = autosave(
        args.work_dir or settings.work_dir,  # type: ignore[union-attr]
        args.prefix or settings.prefix,  # type: ignore[union-attr]
        timeout=args.timeout or (settings.autosave_timeout if settings else 90.0),
        max_file_mb=args.max_file_mb
        if args.max_file_mb is not None
        else (settings.autosave_max_file_mb if settings else MAX_FILE_MB),
    )
    print(result.status, result.ref or "", result.sha or "")
    for item in result.left_out:
        print(f"left out: {item.path}: {item.reason}")
    return 1 if result.status == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
