"""Fixtures of the opt-in suite against a real AWS account (`make test-aws`; never part of `make test`).

One throwaway team per session (sandbox.Team). Its teardown always runs:
after the last test, after a failure, after Ctrl-C or SIGTERM (both become
KeyboardInterrupt, and pytest tears the session's fixtures down on its way
out); while it runs, further signals are refused with a line saying so.
After the teardown the terminal summary prints what the suite created and
what it cost, and where its timings and logs are.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from sandbox import Account, Team, interrupts_deferred, public_cidr, say

#: The summary lines the teardown leaves for pytest_terminal_summary.
REPORT = pytest.StashKey[list[str]]()


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # A terminated run (a closed terminal, a job timeout) tears down as a Ctrl-C does.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    config.stash[REPORT] = []


@pytest.fixture(scope="session")
def account() -> Account:
    region = os.environ.get("NBSTACK_TEST_REGION", "eu-west-1")
    aws = Account(region)
    expected = os.environ.get("NBSTACK_TEST_ACCOUNT", "")
    found = aws.identity()
    if expected and found != expected:
        pytest.exit(f"AWS_PROFILE reaches account {found}, not NBSTACK_TEST_ACCOUNT={expected}: nothing was created", returncode=2)
    say(f"account {found}, region {region}" + (f", endpoint {os.environ['AWS_ENDPOINT_URL']}" if os.environ.get("AWS_ENDPOINT_URL") else ""))
    return aws


@pytest.fixture(scope="session")
def team(account: Account, request: pytest.FixtureRequest) -> Iterator[Team]:
    """The throwaway team; its teardown removes everything of its app and prices what existed."""
    made = Team(
        account,
        repo_url=os.environ["NBSTACK_TEST_REPO_URL"],
        git_token=os.environ["NBSTACK_TEST_GIT_TOKEN"],
        allowed_cidr=os.environ.get("NBSTACK_TEST_ALLOWED_CIDR") or public_cidr(),
        instance_type=os.environ.get("NBSTACK_TEST_INSTANCE_TYPE", "m5.large"),
    )
    say(f"team {made.app}: settings, vaults, logs and timings in {made.folder}")
    try:
        yield made
    finally:
        with interrupts_deferred():
            say(f"teardown of {made.app}")
            lines: list[str] = []
            try:
                notes = made.teardown()
            except BaseException as error:  # noqa: BLE001 - the bill below must still print
                notes = [f"teardown stopped: {error!r}; run: .venv/bin/python tests/aws/sandbox.py sweep {made.app} {made.region}"]
            try:
                lines = made.bill()
            except Exception as error:  # noqa: BLE001
                lines = [f"make test-aws: app {made.app}: could not price the run: {error!r}"]
            try:
                left = made.live_stacks()
            except Exception as error:  # noqa: BLE001
                left, notes = [], [*notes, f"could not list the stacks left: {error!r}"]
            lines += [f"  teardown: {note}" for note in notes]
            lines += [f"  STILL THERE: {s['StackName']} {s['StackStatus']}" for s in left]
            lines.append(f"  Timings: {made.folder / 'timings.json'}; logs: {made.folder / 'logs'}")
            # The vault files hold the git token, and their passwords lie beside them.
            shutil.rmtree(made.folder / "vault", ignore_errors=True)
            request.config.stash[REPORT] = lines


@pytest.fixture(scope="session")
def pushed_image(team: Team) -> str:
    """image.yml, once per session: the notebook image of this checkout in the team's ECR repository."""
    run = team.image()
    if run.returncode != 0:
        pytest.fail(f"image.yml failed (exit {run.returncode}); the cases that need the image cannot run:\n{run.tail(40)}", pytrace=False)
    return run.output


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(REPORT, [])
    if lines:
        terminalreporter.section("what make test-aws created and what it cost")
        for line in lines:
            terminalreporter.write_line(line)
