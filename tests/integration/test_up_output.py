"""What up.yml prints: one line per phase, a short summary, errors in full, full detail only with -v.

The output is the nbstack.cloud.phases callback's (ansible.cfg). From an
empty account, in the README's order: image.yml (it creates the network and
the persistent stack), a first up.yml (it creates the person's stack), the
same again (a no-op), and the no-op with -v; then one run that preflight
refuses.
"""

from __future__ import annotations

import re

import pytest
from team import APP

from nbstack_devkit.emulator import Emulator
from nbstack_devkit.playbooks import PlaybookRun, Playbooks, ok

PREFIX = "alice"
PHASES = ["preflight", "network", "persistent", "work", "secrets", "instance"]
#: Each run's phases: the first goes the whole way after comparing with a record it has not got;
#: the second, with nothing to apply, only the short way (role last_run).
RUN_PHASES = {"first": ["last_run", *PHASES], "again": ["last_run"]}
PHASE_LINE = re.compile(r"^\d\d:\d\d:\d\d (\S+)$")
DURATION = r"\d+(\.\d)? s|\d+ min \d\d s"
#: The most lines a run that succeeds may print: title, phases (seven), why it checks everything, summary, recap.
MOST_LINES = 25
#: The most lines from the summary's first line to the end (recap included, and
#: the AWS phases of a run that changed something).
MOST_SUMMARY_LINES = 16


@pytest.fixture(scope="module")
def runs(emulator: Emulator, playbooks: Playbooks) -> dict[str, PlaybookRun]:
    emulator.reset()
    ok(playbooks.image("-e", f"prefix={PREFIX}"))
    return {
        "first": ok(playbooks.up(PREFIX)),
        "again": ok(playbooks.up(PREFIX)),
        # Nothing to apply, so only -e recheck=true goes the whole way, every task of it printed.
        "verbose": ok(playbooks.up(PREFIX, "-v", "-e", "recheck=true")),
    }


def lines(run: PlaybookRun) -> list[str]:
    return run.output.splitlines()


def summary(run: PlaybookRun) -> list[str]:
    """From the summary's first line to the end."""
    found = lines(run)
    return found[next(i for i, line in enumerate(found) if line.startswith("Notebook: ")) :]


def phases_line(run: PlaybookRun) -> str:
    (line,) = [line for line in lines(run) if line.startswith("Phases: ")]
    return line


@pytest.mark.parametrize("name", ["first", "again"])
def test_up_prints_the_phases_in_order_then_a_short_summary(runs: dict[str, PlaybookRun], name: str) -> None:
    run = runs[name]
    found = lines(run)
    assert len(found) <= MOST_LINES, run.output
    assert found[0] == "Bring up a notebook server"
    assert [m.group(1) for line in found if (m := PHASE_LINE.match(line))] == RUN_PHASES[name]
    assert len(summary(run)) <= MOST_SUMMARY_LINES, run.output
    # No task detail: no task headers, no per-task results, no included files.
    for detail in ("TASK [", "ok: [", "changed: [", "skipping: [", "included: "):
        assert detail not in run.output, run.output


def test_the_summary_says_where_what_and_what_changed(runs: dict[str, PlaybookRun]) -> None:
    first = "\n".join(summary(runs["first"]))
    again = "\n".join(summary(runs["again"]))
    assert f"Stacks: {APP}-network unchanged, {APP}-persistent unchanged, {APP}-{PREFIX}-work created, {APP}-{PREFIX} created" in first
    assert (
        f"Stacks: {APP}-network unchanged, {APP}-persistent unchanged, {APP}-{PREFIX}-work unchanged, {APP}-{PREFIX} unchanged"
    ) in again
    for text in (first, again):
        assert re.search(rf"^Notebook: http://\S+/{PREFIX}/$", text, re.MULTILINE)
        assert re.search(r"^Egress IP \(allow-list it at the warehouse\): \d+\.\d+\.\d+\.\d+$", text, re.MULTILINE)
        assert "Instance type: m5.xlarge (0 GPU, 16384 MiB)" in text
        assert "Idle stop after 60 minutes without use (0: never)" in text
        assert f"--secret-id {APP}/{PREFIX}/api-token" in text
        assert re.search(r"^localhost\s+: ok=\d+\s+changed=\d+", text, re.MULTILINE)


def test_the_phase_timings_count_the_changes(runs: dict[str, PlaybookRun]) -> None:
    phase = rf"({'|'.join(RUN_PHASES['first'])}) ({DURATION})( \((\d+) changes?\))?"
    timings = {}
    for name in ("first", "again"):
        line = phases_line(runs[name])
        assert re.fullmatch(rf"Phases: {phase}(, {phase}){{{len(RUN_PHASES[name]) - 1}}}; total ({DURATION})", line), line
        timings[name] = {m.group(1): int(m.group(5) or 0) for m in re.finditer(phase, line)}
        assert list(timings[name]) == RUN_PHASES[name]
    # The first run stored the secrets and created the person's stack (image.yml
    # created the team's two); the second changed nothing.
    assert all(timings["first"][name] > 0 for name in ("secrets", "instance"))
    # Why: no record from this checkout (or, on a reused port, one of an emulator's earlier account).
    assert re.search(r"^Checking everything: .+", runs["first"].output, re.MULTILINE)
    assert timings["first"]["network"] == timings["first"]["persistent"] == 0
    assert sum(timings["first"].values()) == runs["first"].changed
    assert set(timings["again"].values()) == {0} and runs["again"].changed == 0


def seconds_of(duration: str) -> float:
    minutes, _, rest = duration.rpartition(" min ")
    return float(minutes or 0) * 60 + float(rest.removesuffix(" s"))


def test_the_summary_times_what_happened_on_aws_from_its_timestamps(runs: dict[str, PlaybookRun]) -> None:
    # The emulator records the stack's events, the instance's launch time and
    # the agent's registration; it has no launch activity and no task, and these
    # tests' settings do not wait for the health check (instance_start_timeout: 0).
    # Its timestamps are not AWS's (the order of the two phases varies): the
    # arithmetic is tested on recorded answers (tests/unit/test_phase_times.py).
    (line,) = [line for line in summary(runs["first"]) if line.startswith("AWS phases: ")]
    found = re.fullmatch(rf"AWS phases: (.*); together ({DURATION}) \(overlaps counted once\) of ({DURATION}) since up\.yml began", line)
    assert found, line
    phases = {m.group(1): (seconds_of(m.group(2)), m.group(4) or "") for m in re.finditer(rf"([^,(]+?) ({DURATION})(?: \(([^)]*)\))?(?:, |$)", found.group(1))}
    assert set(phases) == {f"stack {APP}-{PREFIX}-work created", f"stack {APP}-{PREFIX} created", "agent registration"}, line
    # The devkit's instance agents register an instance a 2 s boot after its group wants it.
    assert phases["agent registration"][0] >= 2 and phases["agent registration"][1] == "from the instance's launch time", line
    together, wall = seconds_of(found.group(2)), seconds_of(found.group(4))
    assert phases["agent registration"][0] <= together <= sum(seconds for seconds, _ in phases.values()) + 0.1
    assert together <= wall
    # The whole run, as the callback timed it, holds AWS's part of it.
    total = seconds_of(phases_line(runs["first"]).rpartition("; total ")[2])
    assert wall <= total + 1
    # Nothing happened on AWS in a run with nothing to do: no line, no reading.
    assert not [line for line in lines(runs["again"]) if line.startswith("AWS phases")]


def test_v_prints_every_task(runs: dict[str, PlaybookRun]) -> None:
    run = runs["verbose"]
    assert len(lines(run)) > 150
    assert "TASK [preflight : Ask AWS who is calling]" in run.output
    assert "ok: [localhost]" in run.output
    assert "Phases: last_run " in run.output and ", preflight " in run.output


def test_a_refused_run_prints_the_whole_report(runs: dict[str, PlaybookRun], playbooks: Playbooks) -> None:
    run = playbooks.up("Bad_Prefix", "-e", "instance_type=m5.nosuch")
    assert run.returncode != 0
    assert run.output.count("fatal: [localhost]") == 1
    assert "TASK [preflight : " in run.output
    assert 'prefix "Bad_Prefix" is not usable' in run.text
    assert "Phases: last_run " in run.output and ", preflight " in run.output
