"""Git set-up in the container against the devkit's git server over HTTP: a 401 keeps the token, a killed clone is redone."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbstack_devkit.gitserver import GitHttpServer, git
from nbstack_runtime import gitsetup, models
from nbstack_runtime import settings as settings_module
from nbstack_runtime.gitcmd import git_environ
from nbstack_runtime.settings import Settings


@pytest.fixture
def configured(tmp_path: Path, git_server: GitHttpServer, repo: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The notebook user's git, set up as the startup does, in a HOME of its own."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    settings = Settings.from_environ(
        {
            "NBSTACK_PREFIX": "alice",
            "HOME": str(home),
            "NBSTACK_WORK_DIR": str(tmp_path / "work"),
            "NBSTACK_REPO_URL": git_server.url(repo),
            "NBSTACK_GIT_TOKEN": git_server.token,
        }
    )
    gitsetup.configure(settings)
    return settings


def credential(action: str, url: str, given: str = "") -> str:
    """git's credential machinery, as the notebook user's git runs it: `fill` answers for url, `reject` erases."""
    return user_git(["credential", action], given or f"url={url}\n\n")


def user_git(args: list[str], given: str = "", cwd: Path | None = None) -> str:
    """git with the notebook user's global configuration (HOME), as the runtime runs it (no prompt)."""
    return subprocess.run(["git", *args], input=given, cwd=cwd, capture_output=True, text=True, check=True, env=git_environ()).stdout


def test_a_401_from_the_host_leaves_the_stored_token_in_place(configured: Settings, git_server: GitHttpServer, repo: str) -> None:
    url = git_server.url(repo)
    stored = configured.git_credentials_file.read_text()
    filled = credential("fill", url)
    assert f"password={git_server.token}" in filled

    # What git does when the host answers 401 to the stored token: it asks the helpers to erase it.
    credential("reject", url, filled + "\n")

    assert configured.git_credentials_file.read_text() == stored
    assert f"password={git_server.token}" in credential("fill", url)
    assert "refs/heads/main" in user_git(["ls-remote", url])


def test_a_clone_killed_half_way_is_made_again_at_the_next_start(configured: Settings) -> None:
    work = configured.work_dir
    # What a container stopped during its first clone leaves: the repository initialised and marked, nothing checked out.
    work.mkdir()
    user_git(["clone", "--quiet", "--no-checkout", "--config", f"{gitsetup.INCOMPLETE_MARK}=true", configured.repo_url, str(work)])
    assert not (work / "README.md").exists()

    assert gitsetup.clone_if_missing(configured) == "cloned"
    assert (work / "README.md").exists()
    assert git("status", "--porcelain", cwd=work) == ""
    assert "nbstack" not in (work / ".git" / "config").read_text()
    # Finished: the next start leaves the checkout, and what the person added to it, alone.
    (work / "mine.txt").write_text("work\n")
    assert gitsetup.clone_if_missing(configured) == "kept"
    assert (work / "mine.txt").read_text() == "work\n"


def test_a_clone_killed_while_it_checked_out_files_is_made_again(configured: Settings) -> None:
    """Some files written as HEAD has them, the rest and the index not yet: all of it the clone's, so emptied and cloned."""
    work = configured.work_dir
    user_git(["clone", "--quiet", "--config", f"{gitsetup.INCOMPLETE_MARK}=true", configured.repo_url, str(work)])
    (work / ".git" / "index").unlink()
    (work / "README.md").unlink()
    tracked = next(path for path in work.iterdir() if path.is_file() and path.stat().st_size > 1)
    tracked.write_bytes(tracked.read_bytes()[: tracked.stat().st_size // 2])  # the file it was writing: cut short
    assert gitsetup.made_since_clone(work) == ""
    assert gitsetup.clone_if_missing(configured) == "cloned"
    assert (work / "README.md").exists() and git("status", "--porcelain", cwd=work) == ""


@pytest.mark.parametrize("made", ["edited-file", "new-file", "local-commit", "stash", "detached-commit", "local-tag", "staged-only"])
def test_a_checkout_marked_unfinished_by_hand_keeps_what_the_person_made(configured: Settings, made: str) -> None:
    """The mark is in .git/config, which the notebook user writes: one `git config` must not empty the volume."""
    work = configured.work_dir
    assert gitsetup.clone_if_missing(configured) == "cloned"
    if made == "edited-file":
        (work / "README.md").write_text("edited\n")
    else:
        (work / "notes.txt").write_text("mine\n")
    if made == "local-commit":
        git("add", "notes.txt", cwd=work)
        git("-c", "user.name=A", "-c", "user.email=a@example.com", "commit", "-qm", "mine", cwd=work)
    elif made == "stash":
        git("add", "notes.txt", cwd=work)
        git("-c", "user.name=A", "-c", "user.email=a@example.com", "stash", "-q", cwd=work)
    elif made in ("detached-commit", "local-tag"):
        git("checkout", "-q", "--detach", cwd=work)
        git("add", "notes.txt", cwd=work)
        git("-c", "user.name=A", "-c", "user.email=a@example.com", "commit", "-qm", "mine", cwd=work)
        if made == "local-tag":
            git("tag", "mine", cwd=work)
            git("checkout", "-q", "main", cwd=work)
    elif made == "staged-only":
        git("add", "notes.txt", cwd=work)
        (work / "notes.txt").unlink()
    before = files_in(work)
    head = git("rev-parse", "HEAD", cwd=work)
    git("config", "--local", gitsetup.INCOMPLETE_MARK, "true", cwd=work)

    for _ in range(2):  # every later start too
        with pytest.raises(RuntimeError) as refused:
            gitsetup.clone_if_missing(configured)
        assert f"git config --unset {gitsetup.INCOMPLETE_MARK}" in str(refused.value)
        assert files_in(work) == before
        assert git("rev-parse", "HEAD", cwd=work) == head
    if made == "stash":
        assert git("stash", "list", cwd=work).strip()


def files_in(work: Path) -> dict[Path, bytes]:
    return {path.relative_to(work): path.read_bytes() for path in work.rglob("*") if path.is_file() and ".git" not in path.parts}


def test_a_clone_that_cannot_be_marked_finished_is_emptied_before_anyone_works_in_it(configured: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # Marked unfinished, the checkout would be emptied at the next start, with what the person made in it since.
    real_git = gitsetup.git

    def git_failing_to_unset(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        if args[:2] == ["config", "--unset"]:
            raise subprocess.CalledProcessError(4, ["git", *args], "", "error: could not lock config file")
        return real_git(args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gitsetup, "git", git_failing_to_unset)
    with pytest.raises(RuntimeError, match="could not be marked finished"):
        gitsetup.clone_if_missing(configured)
    assert list(configured.work_dir.iterdir()) == []
    # The next start clones again, and this time finishes.
    monkeypatch.setattr(gitsetup, "git", real_git)
    assert gitsetup.clone_if_missing(configured) == "cloned"
    assert "nbstack" not in (configured.work_dir / ".git" / "config").read_text()


@pytest.fixture
def silent_host() -> Iterator[str]:
    """A git host that takes the connection and never answers (a huge repository, seen from the clone)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.listen()
        yield f"http://127.0.0.1:{server.getsockname()[1]}/team/notebooks.git"


def test_a_clone_ends_before_ecs_would_replace_the_task_and_says_which_setting_to_raise(
    tmp_path: Path, silent_host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With no grace period, ECS replaces a task once the load balancer has seen ten failed checks (50 s here,
    # made 33 s so that the clone gets 3 s).
    monkeypatch.setattr(settings_module, "UNHEALTHY_AFTER_SECONDS", 33.0)
    settings = Settings.from_environ(
        {
            "NBSTACK_PREFIX": "alice",
            "HOME": str(tmp_path / "home"),
            "NBSTACK_WORK_DIR": str(tmp_path / "work"),
            "NBSTACK_REPO_URL": silent_host,
            "NBSTACK_HEALTH_CHECK_GRACE_SECONDS": "0",
        }
    )
    began = time.monotonic()
    with pytest.raises(RuntimeError) as raised:
        gitsetup.clone_if_missing(settings)
    took = time.monotonic() - began

    assert 3 <= took < 10, took
    assert "within 3 s" in str(raised.value) and "grace period (0 s)" in str(raised.value)
    assert "raise notebook_health_check_grace_period" in str(raised.value)
    # git had made its repository, marked unfinished, before it waited for the host: set aside, not deleted.
    work = settings.work_dir
    assert not (work / ".git").exists()
    assert (work / gitsetup.UNFINISHED_GIT_DIR / "config").is_file()
    note = (work / gitsetup.UNFINISHED_NOTE).read_text()
    assert "notebook_health_check_grace_period" in note and f"git clone {silent_host} ~/work" in note
    # Nothing of git's is left running in it (its remote helper included).
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and silent_host in _command_line(int(pid))]
    # Jupyter starts on it; a person may work there: no later start clones over it or empties it.
    (work / "mine.txt").write_text("work\n")
    with pytest.raises(RuntimeError, match=gitsetup.UNFINISHED_NOTE):
        gitsetup.clone_if_missing(settings)
    assert (work / "mine.txt").read_text() == "work\n"


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def push_autosave(configured: Settings, branch: str, content: str) -> None:
    """An autosave branch on the host, as an earlier server of someone pushed it."""
    elsewhere = configured.work_dir.parent / f"elsewhere-{branch.replace('/', '-')}"
    user_git(["clone", "--quiet", configured.repo_url, str(elsewhere)])
    (elsewhere / "unsaved.py").write_text(content)
    git("add", "unsaved.py", cwd=elsewhere)
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "snapshot", cwd=elsewhere)
    user_git(["push", "--quiet", "origin", f"HEAD:refs/heads/{branch}"], cwd=elsewhere)


@pytest.fixture
def model_bucket(s3_env: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The team's model bucket, where a person's own server records its last autosave (as alice, the caller)."""
    import boto3

    name = f"models-{time.time_ns()}"
    boto3.client("s3").create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    monkeypatch.setenv("NBSTACK_MODEL_BUCKET", name)
    monkeypatch.setenv("NBSTACK_PREFIX", "alice")
    return name


def remote_sha(configured: Settings, branch: str) -> str:
    return user_git(["ls-remote", configured.repo_url, f"refs/heads/{branch}"]).split()[0]


def test_a_fresh_volume_offers_the_persons_own_last_autosave_in_one_command(configured: Settings, model_bucket: str, caplog: pytest.LogCaptureFixture) -> None:
    push_autosave(configured, "autosave/alice/20261126T170000Z", "older\n")
    push_autosave(configured, "autosave/alice/20261127T090000Z", "hers\n")
    # Anyone who may push can name a branch after alice, newer than hers: it is not offered.
    push_autosave(configured, "autosave/alice/99991231T235959Z", "import trojan\n")
    push_autosave(configured, "autosave/alicia/20261128T090000Z", "someone else's\n")
    hers = remote_sha(configured, "autosave/alice/20261127T090000Z")
    models.record_autosave("autosave/alice/20261127T090000Z", hers)
    work = configured.work_dir

    assert gitsetup.clone_if_missing(configured) == "cloned"

    note = (work / gitsetup.RESTORE_NOTE).read_text()
    # The commit, not the branch: whoever may push could move the branch after the check.
    command = f"git checkout -b restored {hers}"
    assert command in note and "autosave/alice/20261127T090000Z" in note
    assert "alicia" not in note and "9999" not in note
    assert command in caplog.text
    assert git("status", "--porcelain", cwd=work) == ""  # the note is git-ignored
    # Moved on the host now, then fetched: the command still restores her commit.
    push_autosave(configured, "autosave/alice/20261127T090000Z-x", "import trojan\n")
    user_git(
        ["push", "--quiet", "--force", configured.repo_url, "HEAD:refs/heads/autosave/alice/20261127T090000Z"],
        cwd=configured.work_dir.parent / "elsewhere-autosave-alice-20261127T090000Z-x",
    )
    user_git(["fetch", "--quiet", "origin"], cwd=work)
    # Nothing else keeps her commit now: it stays for the kept ref (refs/nbstack/restore) alone.
    user_git(["reflog", "expire", "--expire=now", "--all"], cwd=work)
    user_git(["gc", "--quiet", "--prune=now"], cwd=work)
    subprocess.run(command.split(), cwd=work, check=True, capture_output=True, env=git_environ())
    assert (work / "unsaved.py").read_text() == "hers\n"


@pytest.mark.parametrize("recorded", ["none", "moved", "elsewhere"])
def test_an_autosave_branch_the_persons_own_server_did_not_record_is_not_offered(
    configured: Settings, model_bucket: str, caplog: pytest.LogCaptureFixture, recorded: str
) -> None:
    """A branch pushed under the person's name by someone else, or pushed over after their server recorded it."""
    branch = "autosave/alice/20261127T090000Z"
    push_autosave(configured, branch, "hers\n")
    if recorded == "elsewhere":  # a record naming a branch outside the person's autosaves
        models.record_autosave("main", remote_sha(configured, "main"))
    if recorded == "moved":
        models.record_autosave(branch, remote_sha(configured, branch))
        push_autosave(configured, branch + "-x", "x\n")  # another commit, then pushed over the recorded branch
        user_git(
            ["push", "--quiet", "--force", configured.repo_url, f"HEAD:refs/heads/{branch}"],
            cwd=configured.work_dir.parent / f"elsewhere-{branch.replace('/', '-')}-x",
        )

    assert gitsetup.clone_if_missing(configured) == "cloned"

    assert not (configured.work_dir / gitsetup.RESTORE_NOTE).exists()
    said = {
        "none": "none is recorded as this server's own",
        "moved": "is at another commit on the remote",
        "elsewhere": "is no autosave branch of alice",
    }
    assert said[recorded] in caplog.text


def test_a_fresh_volume_without_autosave_branches_gets_no_note(configured: Settings) -> None:
    assert gitsetup.clone_if_missing(configured) == "cloned"
    assert not (configured.work_dir / gitsetup.RESTORE_NOTE).exists()
