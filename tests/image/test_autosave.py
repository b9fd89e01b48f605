"""Autosave without Jupyter: snapshot contents, what counts as unsaved, a failing remote."""

from __future__ import annotations

import logging
import os
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
    assert autosave(tmp_path, "bob").status == "skipped"
    assert autosave(tmp_path / "missing", "bob").status == "skipped"
