"""status.yml against the emulator: running, stopped and absent prefixes, with costs."""

from __future__ import annotations

import re

import pytest
from team import APP, PersonPlaybooks

from nbstack_devkit.emulator import REGION, Clients, Emulator
from nbstack_devkit.playbooks import PlaybookRun, Playbooks, ok
from nbstack_runtime.scaler import AwsScaler


def rows(run: PlaybookRun) -> dict[str, list[str]]:
    """The table's rows by prefix, split on runs of two or more spaces."""
    found = {}
    for line in run.output.splitlines():
        # The callback prints the list as YAML or JSON: drop "- ", quotes, commas.
        cells = re.split(r"\s{2,}", re.sub(r"^[-\s]*[\"']?|[\"']?,?$", "", line.strip()))
        if len(cells) >= 2 and cells[1] in ("running", "stopped", "absent", "failed", "changing"):
            found[cells[0]] = cells
    return found


@pytest.fixture(scope="module")
def playbooks(playbooks: Playbooks, tmp_path_factory: pytest.TempPathFactory) -> Playbooks:
    """Each person's up.yml with their own vault file, as several people need."""
    return PersonPlaybooks(playbooks, tmp_path_factory.mktemp("people") / "vault")


@pytest.fixture(scope="module")
def status(emulator: Emulator, playbooks: Playbooks, aws: Clients) -> PlaybookRun:
    emulator.reset()
    ok(playbooks.up("running"))
    ok(playbooks.up("stopped"))
    ok(playbooks.up("gone"))
    ok(playbooks.down("gone"))
    stack = aws.cloudformation.describe_stacks(StackName=f"{APP}-stopped")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    env = emulator.environ({})
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        scaler = AwsScaler(outputs["ClusterName"], outputs["ServiceName"], outputs["AutoScalingGroupName"], REGION)
        scaler.publish({"nbstack:stopped-at": "2026-01-05T09:30:00Z", "nbstack:stop-reason": "idle for 60.0 min"})
        scaler.scale_to_zero()
    return ok(playbooks.run("status.yml", "-e", "prefix=never", with_vault=False))


def test_one_row_per_prefix_with_its_state(status: PlaybookRun) -> None:
    table = rows(status)
    assert set(table) == {"running", "stopped", "gone", "never"}, status.output[-3000:]
    assert table["running"][1] == "running"
    assert table["stopped"][1] == "stopped"
    assert table["gone"][1] == "absent"  # deleted with down.yml
    assert table["gone"][5] == "0 B"  # its work volume stays
    assert table["never"][1] == "absent"  # your own prefix, never brought up
    assert status.changed == 0


def test_running_row_has_url_type_since_and_cost(status: PlaybookRun, aws: Clients) -> None:
    persistent = aws.cloudformation.describe_stacks(StackName=f"{APP}-persistent")["Stacks"][0]
    base = {o["OutputKey"]: o["OutputValue"] for o in persistent["Outputs"]}["NotebookUrlBase"]
    cells = rows(status)["running"]
    prefix, state, instance_type, since, idle_for, work, per_hour, so_far, url = cells[:9]
    assert instance_type == "m5.xlarge" and url == f"{base}/running/"
    assert work == "0 B"  # the emulator meters every file system at 0 bytes
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", since)
    assert idle_for == "unknown"  # no sidecar runs on the emulator to publish it
    # 0.214 + 100 GB gp3 at 0.088/GB-month, + the warm pool's stopped instance: its 100 GB volume only.
    assert per_hour == "$0.238"
    assert so_far.startswith("$0.0")


def test_a_group_at_zero_is_stopped_though_the_service_still_wants_its_task(status: PlaybookRun, aws: Clients) -> None:
    """The idle stop sets only the group to 0; the service keeps its desired count 1."""
    stack = aws.cloudformation.describe_stacks(StackName=f"{APP}-stopped")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    service = aws.ecs.describe_services(cluster=outputs["ClusterName"], services=[outputs["ServiceName"]])["services"][0]
    group = aws.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[outputs["AutoScalingGroupName"]])
    assert (service["desiredCount"], group["AutoScalingGroups"][0]["DesiredCapacity"]) == (1, 0)
    assert rows(status)["stopped"][1] == "stopped"


def test_stopped_row_costs_only_its_warm_pool_volume_and_says_why(status: PlaybookRun) -> None:
    cells = rows(status)["stopped"]
    # No instance runs: only the warm pool's stopped instance bills, its 100 GB gp3 root volume.
    assert cells[3] == "2026-01-05 09:30" and cells[6] == "$0.012"
    assert "stopped: idle for 60.0 min" in status.text


def test_standing_cost_and_price_source(status: PlaybookRun) -> None:
    text = status.text
    assert "load balancer $0.025" in text and "NAT gateway $0.048" in text and "Elastic IP (egress) $0.005" in text
    assert "= $0.088/hour" in text  # 0.0252 + 2 x 0.005 + 0.048 + 0.005
    assert "Prices: on-demand, eu-west-1, read 2026-11-25" in text


def test_a_bad_region_is_refused_before_aws_is_asked(playbooks: Playbooks) -> None:
    run = playbooks.run("status.yml", "-e", "aws_region=mars", "-v", with_vault=False)
    assert run.returncode != 0
    assert 'aws_region "mars" is not an AWS region name' in run.text
    # The task that asks AWS is skipped: with -v, every task's name and result are printed.
    assert re.search(r"Ask AWS who is calling\] \**\nskipping: \[localhost\]", run.output), run.tail()
