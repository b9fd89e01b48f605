"""Autosave without Jupyter: snapshot contents, what counts as unsaved, a failing remote."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from nbstack_devkit.gitserver import GitHttpServer, git
from nbstack_runtime.autosave import autosave

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=timezone.utc)
REF = "refs/heads/autosave/bob/20261125T120000Z"


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No user/system git config; a fixed identity (as the git hook would set)."""
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[user]\n\tname = Bob\n\temail = bob@example.com\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))


@pytest.fixture
def remote_and_clone(tmp_path: Path) -> tuple[Path, Path]:
    remote = tmp_path / "remote.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    seed = tmp_path / "seed"
    git("init", "--quiet", "--initial-branch=main", str(seed))
    (seed / "a.py").write_text("a = 1\n")
    git("add", "-A", cwd=seed)
    git("commit", "--quiet", "-m", "Seed", cwd=seed)
    git("push", "--quiet", str(remote), "main", cwd=seed)
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(remote), str(clone))
    return remote, clone


def remote_refs(remote: Path) -> list[str]:
    return git("for-each-ref", "--format=%(refname)", cwd=remote).split()


def test_clean_checkout_saves_nothing(remote_and_clone: tuple[Path, Path]) -> None:
    remote, clone = remote_and_clone
    assert autosave(clone, "bob", now=NOW).status == "nothing to save"
    assert remote_refs(remote) == ["refs/heads/main"]


def test_untracked_file_is_saved_and_the_index_untouched(remote_and_clone: tuple[Path, Path]) -> None:
    remote, clone = remote_and_clone
    (clone / "new.py").write_text("b = 2\n")
    index = (clone / ".git" / "index").read_bytes()
    result = autosave(clone, "bob", now=NOW)
    assert result.pushed and result.ref == REF
    assert git("show", f"{REF}:new.py", cwd=remote) == "b = 2\n"
    assert (clone / ".git" / "index").read_bytes() == index
    assert git("status", "--porcelain", cwd=clone) == "?? new.py\n"
    # Pushed by URL: no remote-tracking ref appears in the user's checkout.
    assert "autosave" not in git("for-each-ref", cwd=clone)


def test_unpushed_commits_alone_are_pushed_as_they_are(remote_and_clone: tuple[Path, Path]) -> None:
    remote, clone = remote_and_clone
    (clone / "a.py").write_text("a = 3\n")
    git("commit", "--quiet", "-am", "Local", cwd=clone)
    head = git("rev-parse", "HEAD", cwd=clone).strip()
    assert autosave(clone, "bob", now=NOW).sha == head
    assert git("rev-parse", REF, cwd=remote).strip() == head


def test_unpushed_commits_on_other_branches_stay_reachable(remote_and_clone: tuple[Path, Path]) -> None:
    remote, clone = remote_and_clone
    git("checkout", "--quiet", "-b", "side", cwd=clone)
    (clone / "side.py").write_text("s = 1\n")
    git("add", "side.py", cwd=clone)
    git("commit", "--quiet", "-m", "Side work", cwd=clone)
    side = git("rev-parse", "HEAD", cwd=clone).strip()
    git("checkout", "--quiet", "main", cwd=clone)
    result = autosave(clone, "bob", now=NOW)
    assert result.pushed
    git("merge-base", "--is-ancestor", side, REF, cwd=remote)  # raises if not reachable
    assert git("rev-parse", "HEAD", cwd=clone).strip() != result.sha


def test_the_git_processes_of_a_save_do_not_grow_with_the_number_of_branches(
    remote_and_clone: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A git process per branch took longer than a save may, with thousands of branches."""
    from nbstack_runtime import autosave as module

    remote, clone = remote_and_clone
    seed = git("rev-parse", "HEAD", cwd=clone).strip()
    tree = git("rev-parse", "HEAD^{tree}", cwd=clone).strip()
    processes: list[list[str]] = []
    real_git = module.git

    def counting(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        processes.append(list(args))
        return real_git(args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "git", counting)
    counts = []
    for branches in (1, 3, 40):  # the first save has no earlier one to compare with: not counted
        tips = []
        for number in range(branches):
            tip = git("commit-tree", tree, "-p", seed, "-m", f"Side {branches}.{number}", cwd=clone).strip()
            git("update-ref", f"refs/heads/side-{branches}-{number}", tip, cwd=clone)
            tips.append(tip)
        processes.clear()
        result = autosave(clone, "bob", now=NOW.replace(minute=branches))
        assert result.pushed, result
        for tip in tips:  # each unpushed branch is in the snapshot's history
            git("merge-base", "--is-ancestor", tip, result.ref, cwd=remote)
        counts.append(len(processes))
    assert counts[1] == counts[2], counts


def test_a_branch_holding_a_tag_object_saves_the_commit_the_tag_names(remote_and_clone: tuple[Path, Path]) -> None:
    """git itself writes no such branch; other tools can, and its commit was then dropped from the save."""
    remote, clone = remote_and_clone
    side = commit_file(clone, "side.py", "s = 1\n", "Side work")
    git("reset", "--quiet", "--hard", "HEAD~1", cwd=clone)
    git("tag", "--annotate", "--message", "Side", "side-tag", side, cwd=clone)
    tag = git("rev-parse", "side-tag", cwd=clone).strip()
    git("tag", "--delete", "side-tag", cwd=clone)
    (clone / ".git" / "refs" / "heads" / "via-tag").write_text(tag + "\n")

    result = autosave(clone, "bob", now=NOW)

    assert result.pushed, result
    git("merge-base", "--is-ancestor", side, REF, cwd=remote)  # raises if not reachable


def test_a_branch_pointing_at_no_commit_is_named_and_the_rest_saved(
    remote_and_clone: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """One broken branch (an object the repository lacks) made every save fail."""
    remote, clone = remote_and_clone
    heads = clone / ".git" / "refs" / "heads"
    (heads / "broken").write_text("1" * 40 + "\n")
    tree = git("rev-parse", "HEAD^{tree}", cwd=clone).strip()
    (heads / "a-tree").write_text(tree + "\n")
    (clone / "new.py").write_text("n = 1\n")

    with caplog.at_level(logging.WARNING):
        result = autosave(clone, "bob", now=NOW)

    assert result.pushed, result
    why = f"points at a tree, {tree[:12]}, not a commit (git cat-file -p {tree[:12]} shows it)"
    # A tree holds files: left out and named. The broken branch holds nothing left to save: the log says so.
    assert [(item.path, item.reason) for item in result.left_out] == [("branch a-tree", why)]
    assert f"branch a-tree ({why})" in caplog.text
    assert "branch broken points at 111111111111, which this repository lacks" in caplog.text
    assert tree_paths(remote, REF) == {"a.py", "new.py"}


def test_a_branch_git_gives_no_answer_for_is_left_out_not_passed_over(
    remote_and_clone: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only an object git says is missing holds nothing to save; no answer at all must not read as that."""
    from nbstack_runtime import autosave as module

    _, clone = remote_and_clone
    side = commit_file(clone, "side.py", "s = 1\n", "Side work")
    git("branch", "side", side, cwd=clone)
    git("reset", "--quiet", "--hard", "HEAD~1", cwd=clone)
    real_git = module.git

    def silent_cat_file(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        answer = real_git(args, **kwargs)  # type: ignore[arg-type]
        return subprocess.CompletedProcess(answer.args, 0, "", "") if args[0] == "cat-file" else answer

    main = git("rev-parse", "main", cwd=clone).strip()
    monkeypatch.setattr(module, "git", silent_cat_file)
    result = autosave(clone, "bob", now=NOW)
    assert [(item.path, item.reason) for item in result.left_out] == [
        ("branch main", f"points at {main[:12]}, which git could not tell"),
        ("branch side", f"points at {side[:12]}, which git could not tell"),
    ]


def test_a_branch_left_out_alone_is_named_in_the_log(
    remote_and_clone: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """With nothing else to save there is no snapshot, and so no commit message: the log names it."""
    _, clone = remote_and_clone
    tree = git("rev-parse", "HEAD^{tree}", cwd=clone).strip()
    (clone / ".git" / "refs" / "heads" / "a-tree").write_text(tree + "\n")
    with caplog.at_level(logging.WARNING):
        result = autosave(clone, "bob", now=NOW)
    assert result.status == "nothing to save" and [item.path for item in result.left_out] == ["branch a-tree"]
    assert "1 path(s) left out of the snapshot" in caplog.text and "branch a-tree (points at a tree" in caplog.text


def test_an_edit_of_the_same_size_right_after_a_commit_is_saved(remote_and_clone: tuple[Path, Path]) -> None:
    # git trusts a file's size and mtime against its index only when the file
    # is older than the index ("racy git"); the snapshot's copy of the index
    # must keep that judgement, even when the save comes seconds later.
    remote, clone = remote_and_clone
    (clone / "a.py").write_text("a = 5\n")
    git("commit", "--quiet", "-am", "Same size", cwd=clone)
    git("push", "--quiet", "origin", "main", cwd=clone)
    (clone / "a.py").write_text("a = 6\n")  # same size, same second as the index write
    time.sleep(1.1)
    result = autosave(clone, "bob", now=NOW)
    assert result.pushed
    assert git("show", f"{REF}:a.py", cwd=remote) == "a = 6\n"


LATER = datetime(2026, 11, 25, 12, 0, 30, tzinfo=timezone.utc)
LATER_REF = "refs/heads/autosave/bob/20261125T120030Z"


def autosave_refs(remote: Path) -> list[str]:
    return [ref for ref in remote_refs(remote) if ref.startswith("refs/heads/autosave/")]


def test_a_second_save_of_the_same_work_pushes_nothing_new(remote_and_clone: tuple[Path, Path]) -> None:
    # An idle stop saves work, then ECS stops the container: the second save finds it on the remote.
    remote, clone = remote_and_clone
    (clone / "a.py").write_text("a = 2\n")
    first = autosave(clone, "bob", now=NOW)
    assert first.pushed
    second = autosave(clone, "bob", now=LATER)
    assert second.status == "already saved" and (second.ref, second.sha) == (REF, first.sha)
    assert autosave_refs(remote) == [REF]

    (clone / "b.py").write_text("b = 1\n")  # new work after all: saved again, on its own branch
    third = autosave(clone, "bob", now=LATER)
    assert third.pushed and third.ref == LATER_REF
    assert autosave_refs(remote) == [REF, LATER_REF]
    assert git("show", f"{LATER_REF}:b.py", cwd=remote) == "b = 1\n"


def test_unpushed_commits_saved_once_are_not_saved_twice(remote_and_clone: tuple[Path, Path]) -> None:
    remote, clone = remote_and_clone
    (clone / "a.py").write_text("a = 3\n")
    git("commit", "--quiet", "-am", "Local", cwd=clone)
    assert autosave(clone, "bob", now=NOW).pushed
    assert autosave(clone, "bob", now=LATER).status == "already saved"
    # Uncommitted work on top of the saved commit is new.
    (clone / "a.py").write_text("a = 4\n")
    assert autosave(clone, "bob", now=LATER).pushed
    assert git("show", f"{LATER_REF}:a.py", cwd=remote) == "a = 4\n"


def test_work_whose_autosave_branch_was_deleted_is_saved_again(remote_and_clone: tuple[Path, Path]) -> None:
    remote, clone = remote_and_clone
    (clone / "a.py").write_text("a = 2\n")
    assert autosave(clone, "bob", now=NOW).pushed
    git("update-ref", "-d", REF, cwd=remote)
    assert autosave(clone, "bob", now=LATER).pushed
    assert autosave_refs(remote) == [LATER_REF]


def test_another_prefix_has_its_own_autosaves(remote_and_clone: tuple[Path, Path]) -> None:
    remote, clone = remote_and_clone
    (clone / "a.py").write_text("a = 2\n")
    assert autosave(clone, "bob", now=NOW).pushed
    assert autosave(clone, "bo", now=LATER).pushed  # "bo" is not "bob", nor a prefix of its refs
    assert autosave_refs(remote) == ["refs/heads/autosave/bo/20261125T120030Z", REF]


def test_a_failing_push_is_retried_once_logged_and_kept_locally(
    remote_and_clone: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, clone = remote_and_clone
    server = GitHttpServer(tmp_path / "srv", token="t0ken").start()
    try:
        server.create_repo("r.git", {"a.py": "a = 1\n"})
        git("remote", "set-url", "origin", server.url("r.git"), cwd=clone)
        credentials = tmp_path / "cred"
        credentials.write_text(f"http://x:t0ken@127.0.0.1:{server.port}\n")
        os.chmod(credentials, 0o600)
        git("config", "credential.helper", f"store --file={credentials}", cwd=clone)
        server.fail_pushes = True
        (clone / "a.py").write_text("a = 2\n")
        with caplog.at_level(logging.INFO, logger="nbstack.autosave"):
            result = autosave(clone, "bob", now=NOW, timeout=20)
        assert result.status == "failed"
        assert server.push_attempts == 2
        assert "AUTOSAVE PUSH FAILED (attempt 2 of 2)" in caplog.text
        assert server.refs("r.git") == {"refs/heads/main": server.refs("r.git")["refs/heads/main"]}
        assert git("rev-parse", "refs/nbstack-autosave/20261125T120000Z", cwd=clone).strip() == result.sha
        assert git("status", "--porcelain", cwd=clone) == " M a.py\n"

        server.fail_pushes = False  # the same remote, working again
        assert autosave(clone, "bob", now=NOW, timeout=20).pushed
        assert REF in server.refs("r.git")
    finally:
        server.stop()


def test_not_a_checkout_is_skipped(tmp_path: Path) -> None:
    empty = tmp_path / "work"
    empty.mkdir()
    assert autosave(empty, "bob").status == "skipped"
    assert autosave(tmp_path / "missing", "bob").status == "skipped"


def test_a_clone_the_start_did_not_finish_is_not_saved(remote_and_clone: tuple[Path, Path]) -> None:
    """Stopped half-way through its first clone: files are missing, none is anyone's work, and nothing is pushed."""
    remote, clone = remote_and_clone
    git("config", "--local", "nbstack.cloneIncomplete", "true", cwd=clone)
    (clone / "a.py").unlink()  # not checked out yet
    result = autosave(clone, "bob", now=NOW)
    assert (result.status, result.detail) == ("skipped", "unfinished clone")
    assert remote_refs(remote) == ["refs/heads/main"]


def test_a_checkout_marked_unfinished_by_hand_is_saved_as_any_other(remote_and_clone: tuple[Path, Path]) -> None:
    """The mark is in .git/config, which the notebook user writes: work made in the checkout is still saved."""
    remote, clone = remote_and_clone
    git("config", "--local", "nbstack.cloneIncomplete", "true", cwd=clone)
    (clone / "new.py").write_text("b = 2\n")
    result = autosave(clone, "bob", now=NOW)
    assert result.pushed and result.ref == REF
    assert git("show", f"{REF}:new.py", cwd=remote) == "b = 2\n"


def test_files_in_a_work_directory_that_is_not_a_checkout_are_a_failed_save(tmp_path: Path) -> None:
    """A clone that failed, then work made there: nothing can push it, so the stop must not go ahead."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "analysis.ipynb").write_text("{}\n")
    result = autosave(work, "bob")
    assert (result.status, result.outcome) == ("failed", "failed")


# --- What one odd file must not do: fail the whole save ------------------------------


def tree_paths(repo: Path, rev: str) -> set[str]:
    return set(git("ls-tree", "-r", "--name-only", rev, cwd=repo).split())


def commit_file(clone: Path, name: str, text: str, message: str) -> str:
    """Write `name` in the clone, commit it with everything else, and return the commit."""
    (clone / name).write_text(text)
    git("add", "-A", cwd=clone)
    git("commit", "--quiet", "-m", message, cwd=clone)
    return git("rev-parse", "HEAD", cwd=clone).strip()


def message(repo: Path, rev: str) -> str:
    return git("log", "-1", "--format=%B", rev, cwd=repo)


def test_nested_repositories_are_left_out_named_and_untouched(remote_and_clone: tuple[Path, Path]) -> None:
    remote, clone = remote_and_clone
    git("init", "--quiet", str(clone / "scratch" / "fresh"))  # `git init` in a subfolder, no commit yet
    (clone / "scratch" / "fresh" / "notes.txt").write_text("mine\n")
    vendor = clone / "vendor" / "tool"
    git("init", "--quiet", "--initial-branch=main", str(vendor))  # a cloned tool, with commits of its own
    (vendor / "tool.py").write_text("t = 1\n")
    git("add", "-A", cwd=vendor)
    git("commit", "--quiet", "-m", "Tool", cwd=vendor)
    (clone / "new.py").write_text("b = 2\n")
    index = (clone / ".git" / "index").read_bytes()

    result = autosave(clone, "bob", now=NOW)

    assert result.pushed, result
    assert tree_paths(remote, REF) == {"a.py", "new.py"}  # no gitlink, no file of either nested repository
    assert {(item.path, "repository" in item.reason) for item in result.left_out} == {
        ("scratch/fresh", True),
        ("vendor/tool", True),
    }
    text = message(remote, REF)
    assert "scratch/fresh: a git repository of its own" in text and "vendor/tool: a git repository of its own" in text
    assert (clone / "scratch" / "fresh" / "notes.txt").read_text() == "mine\n"
    assert git("rev-parse", "HEAD", cwd=vendor).strip() and (vendor / ".git").is_dir()
    assert (clone / ".git" / "index").read_bytes() == index


def test_files_over_the_size_limit_are_left_out_and_stay_on_disk(remote_and_clone: tuple[Path, Path]) -> None:
    remote, clone = remote_and_clone
    limit_mb = 0.01  # 10 KiB here; 100 MiB (GitHub's limit) by default
    big = "x" * 20_000
    (clone / "data.bin").write_text(big)  # untracked
    (clone / "a.py").write_text(f"a = '{big}'\n")  # tracked, edited past the limit
    (clone / "staged.bin").write_text(big)
    git("add", "staged.bin", cwd=clone)  # staged: its blob is in the person's index
    (clone / "small.py").write_text("s = 1\n")
    index = (clone / ".git" / "index").read_bytes()

    result = autosave(clone, "bob", now=NOW, max_file_mb=limit_mb)

    assert result.pushed, result
    assert tree_paths(remote, REF) == {"a.py", "small.py"}
    assert git("show", f"{REF}:a.py", cwd=remote) == "a = 1\n"  # the committed version, not the oversized one
    left_out = {item.path: item.reason for item in result.left_out}
    assert set(left_out) == {"a.py", "data.bin", "staged.bin"}
    assert left_out["data.bin"] == "19.5 KB, over the 10.2 KB limit (NBSTACK_AUTOSAVE_MAX_FILE_MB)"
    assert left_out["staged.bin"] == "its staged version is 19.5 KB, over the 10.2 KB limit (NBSTACK_AUTOSAVE_MAX_FILE_MB)"
    text = message(remote, REF)
    assert "data.bin: 19.5 KB, over the 10.2 KB limit (NBSTACK_AUTOSAVE_MAX_FILE_MB)" in text
    assert (clone / "data.bin").read_text() == big and (clone / "staged.bin").read_text() == big
    assert (clone / ".git" / "index").read_bytes() == index
    assert git("status", "--porcelain", cwd=clone) == " M a.py\nA  staged.bin\n?? data.bin\n?? small.py\n"
    # Without a limit, the same work is saved whole.
    assert tree_paths(clone, autosave(clone, "bob", now=LATER, max_file_mb=0).sha or "") == {
        "a.py", "data.bin", "small.py", "staged.bin"
    }


def test_unpushed_commits_holding_a_file_over_the_limit_leave_the_snapshot_their_files_but_not_themselves(
    remote_and_clone: tuple[Path, Path],
) -> None:
    """A git host refuses a push that carries one oversized blob, so HEAD cannot be the snapshot's parent."""
    remote, clone = remote_and_clone
    pushed = git("rev-parse", "HEAD", cwd=clone).strip()
    big = "x" * 20_000
    (clone / "data.bin").write_text(big)
    (clone / "a.py").write_text("a = 2\n")
    git("add", "-A", cwd=clone)
    git("commit", "--quiet", "-m", "Data and a change", cwd=clone)
    (clone / "b.py").write_text("b = 1\n")
    git("add", "-A", cwd=clone)
    git("commit", "--quiet", "-m", "Another change", cwd=clone)
    head = git("rev-parse", "HEAD", cwd=clone).strip()
    (clone / "c.py").write_text("c = 1\n")  # untracked, unsaved

    result = autosave(clone, "bob", now=NOW, max_file_mb=0.01)

    assert result.pushed, result
    assert git("rev-list", "--parents", "-1", REF, cwd=remote).split()[1:] == [pushed]
    assert tree_paths(remote, REF) == {"a.py", "b.py", "c.py"}
    assert git("show", f"{REF}:a.py", cwd=remote) == "a = 2\n"
    left_out = {item.path: item.reason for item in result.left_out}
    assert set(left_out) == {"HEAD's unpushed commits", "data.bin"}
    assert left_out["HEAD's unpushed commits"].startswith("hold data.bin of 19.5 KB, over the 10.2 KB limit")
    assert "HEAD's unpushed commits: hold data.bin" in message(remote, REF)
    assert git("rev-parse", "HEAD", cwd=clone).strip() == head and (clone / "data.bin").read_text() == big


def test_unpushed_commits_before_the_one_holding_a_file_over_the_limit_are_kept(
    remote_and_clone: tuple[Path, Path],
) -> None:
    """Only the commits from the one that brings the large file on stay out; a branch into them is kept too."""
    remote, clone = remote_and_clone
    (clone / "a.py").write_text("a = 2\n")
    git("commit", "--quiet", "-am", "A change", cwd=clone)
    clean = commit_file(clone, "b.py", "b = 1\n", "Another change")
    git("branch", "wip", "HEAD~1", cwd=clone)  # a branch into HEAD's history, before the clean tip
    wip = git("rev-parse", "wip", cwd=clone).strip()
    commit_file(clone, "data.bin", "x" * 20_000, "Data")
    commit_file(clone, "c.py", "c = 1\n", "After the data")

    result = autosave(clone, "bob", now=NOW, max_file_mb=0.01)

    assert result.pushed, result
    assert git("rev-list", "--parents", "-1", REF, cwd=remote).split()[1:] == [clean]
    assert git("merge-base", "--is-ancestor", wip, REF, cwd=remote) == ""  # the branch's commit is saved
    assert tree_paths(remote, REF) == {"a.py", "b.py", "c.py"}
    left_out = {item.path: item.reason for item in result.left_out}
    assert set(left_out) == {"HEAD's unpushed commits", "data.bin"}
    assert left_out["HEAD's unpushed commits"] == (
        f"hold data.bin of 19.5 KB, over the 10.2 KB limit; the snapshot keeps the commits up to {clean[:12]}"
        f" and has the files as they are now (that one as in {clean[:12]}), not the 2 commit(s) HEAD has beyond it"
    )


def test_commits_merged_into_head_after_the_kept_one_are_counted_as_left_out(remote_and_clone: tuple[Path, Path]) -> None:
    """A merge brings its side's commits: the count is of every commit HEAD has beyond the kept one, not of its line."""
    remote, clone = remote_and_clone
    (clone / "a.py").write_text("a = 2\n")
    git("commit", "--quiet", "-am", "A change", cwd=clone)
    kept = git("rev-parse", "HEAD", cwd=clone).strip()
    git("checkout", "--quiet", "-b", "feat", cwd=clone)
    for name, text in (("f1.py", "f = 1\n"), ("data.bin", "x" * 20_000), ("f3.py", "f = 3\n")):
        commit_file(clone, name, text, f"Add {name}")
    git("checkout", "--quiet", "main", cwd=clone)
    git("merge", "--quiet", "--no-ff", "-m", "Merge feat", "feat", cwd=clone)
    git("branch", "-D", "feat", cwd=clone)
    commit_file(clone, "x.py", "x = 1\n", "After the merge")

    result = autosave(clone, "bob", now=NOW, max_file_mb=0.01)

    assert result.pushed, result
    assert git("rev-list", "--parents", "-1", REF, cwd=remote).split()[1:] == [kept]
    assert tree_paths(remote, REF) == {"a.py", "f1.py", "f3.py", "x.py"}
    left_out = {item.path: item.reason for item in result.left_out}
    assert set(left_out) == {"HEAD's unpushed commits", "data.bin"}
    # The merge, its three commits and the one after it.
    assert left_out["HEAD's unpushed commits"].endswith("not the 5 commit(s) HEAD has beyond it")


def test_a_branch_whose_unpushed_commits_hold_a_file_over_the_limit_is_left_out(remote_and_clone: tuple[Path, Path]) -> None:
    remote, clone = remote_and_clone
    git("checkout", "--quiet", "-b", "heavy", cwd=clone)
    (clone / "data.bin").write_text("x" * 20_000)
    git("add", "-A", cwd=clone)
    git("commit", "--quiet", "-m", "Data", cwd=clone)
    heavy = git("rev-parse", "HEAD", cwd=clone).strip()
    git("checkout", "--quiet", "main", cwd=clone)
    (clone / "new.py").write_text("n = 1\n")

    result = autosave(clone, "bob", now=NOW, max_file_mb=0.01)

    assert result.pushed, result
    assert [(item.path, item.reason) for item in result.left_out] == [
        (f"unpushed commit {heavy[:12]}", "holds data.bin of 19.5 KB, over the 10.2 KB limit")
    ]
    assert tree_paths(remote, REF) == {"a.py", "new.py"}
    with pytest.raises(RuntimeError, match="git cat-file"):
        git("cat-file", "-e", heavy, cwd=remote)


def test_among_many_branches_only_those_holding_a_file_over_the_limit_are_left_out(
    remote_and_clone: tuple[Path, Path],
) -> None:
    remote, clone = remote_and_clone
    seed = git("rev-parse", "HEAD", cwd=clone).strip()
    light, heavy = [], []
    for number in range(9):
        git("checkout", "--quiet", "-b", f"side-{number}", seed, cwd=clone)
        if number in (2, 7):
            heavy.append(commit_file(clone, f"data-{number}.bin", "x" * 20_000, "Data"))
        light_one = commit_file(clone, f"side-{number}.py", f"s = {number}\n", "Side")
        (heavy if number in (2, 7) else light).append(light_one)  # a light commit on top still brings the data
    git("checkout", "--quiet", "main", cwd=clone)

    result = autosave(clone, "bob", now=NOW, max_file_mb=0.01)

    assert result.pushed, result
    assert {item.path for item in result.left_out} == {f"unpushed commit {heavy[1][:12]}", f"unpushed commit {heavy[3][:12]}"}
    for tip in light:
        git("merge-base", "--is-ancestor", tip, REF, cwd=remote)  # raises if not reachable
    for commit in heavy:
        with pytest.raises(RuntimeError, match="git cat-file"):
            git("cat-file", "-e", commit, cwd=remote)


def test_the_list_of_left_out_paths_in_the_message_is_capped(remote_and_clone: tuple[Path, Path]) -> None:
    remote, clone = remote_and_clone
    for number in range(25):
        (clone / f"big-{number:02}.bin").write_text("x" * 2_000)
    result = autosave(clone, "bob", now=NOW, max_file_mb=0.001)
    assert result.status == "nothing to save" and len(result.left_out) == 25
    (clone / "small.py").write_text("s = 1\n")
    result = autosave(clone, "bob", now=NOW, max_file_mb=0.001)
    assert result.pushed and len(result.left_out) == 25
    text = message(remote, REF)
    assert "big-19.bin" in text and "big-20.bin" not in text and "...and 5 more" in text


# --- Stashes ---------------------------------------------------------------------------


def test_every_stash_is_saved_and_the_message_says_how_to_get_it_back(
    remote_and_clone: tuple[Path, Path], tmp_path: Path
) -> None:
    remote, clone = remote_and_clone
    (clone / "a.py").write_text("a = 'first stash'\n")
    git("stash", "push", "--quiet", "-m", "first idea", cwd=clone)
    (clone / "a.py").write_text("a = 'second stash'\n")
    (clone / "notes.txt").write_text("untracked, stashed\n")
    git("stash", "push", "--quiet", "--include-untracked", "-m", "second 'idea'", cwd=clone)
    stashes = git("stash", "list", "--format=%H %gs", cwd=clone)
    assert git("status", "--porcelain", cwd=clone) == ""  # nothing else to save: the stashes alone

    result = autosave(clone, "bob", now=NOW)

    assert result.pushed, result
    assert git("stash", "list", "--format=%H %gs", cwd=clone) == stashes  # the person's stashes as they were
    # Elsewhere: fetch the branch and run what the message says.
    elsewhere = tmp_path / "elsewhere"
    git("clone", "--quiet", str(remote), str(elsewhere))
    git("fetch", "--quiet", "origin", REF, cwd=elsewhere)
    commands = [line.strip() for line in message(elsewhere, "FETCH_HEAD").splitlines() if "git stash store" in line]
    assert len(commands) == 2
    for command in commands:
        subprocess.run(command, shell=True, cwd=elsewhere, check=True, env=os.environ)  # noqa: S602 (the message's own words)
    assert git("stash", "list", "--format=%H %gs", cwd=elsewhere) == stashes
    git("stash", "pop", "--quiet", cwd=elsewhere)
    assert (elsewhere / "a.py").read_text() == "a = 'second stash'\n"
    assert (elsewhere / "notes.txt").read_text() == "untracked, stashed\n"

    assert autosave(clone, "bob", now=LATER).status == "already saved"


def test_a_stash_holding_a_file_over_the_limit_is_left_out(remote_and_clone: tuple[Path, Path]) -> None:
    remote, clone = remote_and_clone
    (clone / "a.py").write_text("a = 'small stash'\n")
    git("stash", "push", "--quiet", cwd=clone)
    (clone / "big.bin").write_text("x" * 20_000)
    git("stash", "push", "--quiet", "--include-untracked", cwd=clone)
    small = git("rev-parse", "stash@{1}", cwd=clone).strip()
    big = git("rev-parse", "stash@{0}", cwd=clone).strip()

    result = autosave(clone, "bob", now=NOW, max_file_mb=0.01)

    assert result.pushed, result
    assert [(item.path, "big.bin" in item.reason) for item in result.left_out] == [("stash@{0}", True)]
    git("merge-base", "--is-ancestor", small, REF, cwd=remote)
    with pytest.raises(RuntimeError, match="git cat-file"):
        git("cat-file", "-e", big, cwd=remote)
    assert "stash@{0}: holds big.bin" in message(remote, REF)
