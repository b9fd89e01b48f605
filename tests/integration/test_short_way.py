"""up.yml's short way, against the emulator: taken only when nothing is to apply, and left for anything else.

A whole run records what it applied (role last_run, module applied_record)
in the checkout's .cache/applied; the next run compares that record, and its
own inputs, with AWS in the controller's own process (action plugin short_way), which then starts the server. The short way's
output names the phases last_run (and instance, when it starts the server),
never preflight. Each way out of it below changes one thing a person or a
teammate could: a setting, a secret in Secrets Manager, a shared stack, the
public AMI while the server is stopped, the record itself.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.request import getproxies_environment

import pytest
from team import APP
from test_capacity import AMI_PARAMETER, PREFIX, Watch, publish_newer_ami

from nbstack_devkit.ecs_agent import matching_instances
from nbstack_devkit.emulator import Clients, Emulator
from nbstack_devkit.paths import ROOT
from nbstack_devkit.playbooks import PlaybookRun, Playbooks, ok
from nbstack_devkit.vault import Vault
from nbstack_devkit.waits import wait_until

# test_capacity's person: its sampler (Watch) follows that prefix's instance.
STACKS = [f"{APP}-network", f"{APP}-persistent", f"{APP}-{PREFIX}-work", f"{APP}-{PREFIX}"]
RECORDS = ROOT / ".cache" / "applied"


def phases(run: PlaybookRun) -> list[str]:
    (line,) = [line for line in run.output.splitlines() if line.startswith("Phases: ")]
    return [part.split()[0] for part in line.removeprefix("Phases: ").split(";")[0].split(", ")]


def short(run: PlaybookRun) -> bool:
    """Whether the run took the short way: it compared with the record, and checked nothing else."""
    names = phases(run)
    assert names[0] == "last_run", names
    return "preflight" not in names


def changes(aws: Clients) -> dict[str, str]:
    """Each stack's last change, as CloudFormation records it."""
    found = {}
    for name in STACKS:
        stack = aws.cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        found[name] = str(stack.get("LastUpdatedTime") or stack["CreationTime"])
    return found


def record(emulator: Emulator) -> Path:
    """The record of this module's person on this module's emulator (records are per endpoint)."""
    from ansible_collections.nbstack.cloud.plugins.module_utils.applied import record_path

    client = emulator.client("cloudformation")
    account = emulator.client("sts").get_caller_identity()["Account"]
    return Path(record_path(str(RECORDS), client.meta.endpoint_url, account, client.meta.region_name, APP, PREFIX))


def parameters(aws: Clients) -> dict[str, str]:
    stack = aws.cloudformation.describe_stacks(StackName=f"{APP}-{PREFIX}")["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}


def outputs(aws: Clients) -> dict[str, str]:
    stack = aws.cloudformation.describe_stacks(StackName=f"{APP}-{PREFIX}")["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def idle_stop(aws: Clients) -> None:
    """What the sidecar's idle stop leaves: the group at 0, the instance gone from the cluster."""
    out = outputs(aws)
    aws.autoscaling.set_desired_capacity(AutoScalingGroupName=out["AutoScalingGroupName"], DesiredCapacity=0)
    wait_until(lambda: not matching_instances(aws.ecs, out["ClusterName"], {"nbstack.prefix": PREFIX}), 30,
               "the instance to deregister")


@pytest.fixture(scope="module")
def first(emulator: Emulator, playbooks: Playbooks) -> PlaybookRun:
    emulator.reset()
    record(emulator).unlink(missing_ok=True)
    return ok(playbooks.up(PREFIX))


def test_a_whole_run_records_what_it_applied_and_no_secret(first: PlaybookRun, emulator: Emulator, vault: Vault) -> None:
    assert not short(first)
    text = record(emulator).read_text()
    kept = json.loads(text)
    assert sorted(kept["stacks"]) == sorted(STACKS)
    assert sorted(kept["secrets"]) == sorted(f"{APP}/{PREFIX}/{name}" for name in
                                             ("github-token", "notebook-password", "warehouse-password", "api-token"))
    assert kept["ami_parameter"] == AMI_PARAMETER
    for value in vault.values.values():
        assert value not in text


def test_nothing_to_apply_takes_the_short_way_and_changes_nothing(first: PlaybookRun, playbooks: Playbooks,
                                                                  aws: Clients) -> None:
    before = changes(aws)
    run = ok(playbooks.up(PREFIX))
    assert short(run), run.output[-3000:]
    assert run.changed == 0
    assert f"Stacks: {APP}-network unchanged, {APP}-persistent unchanged, {APP}-{PREFIX}-work unchanged, {APP}-{PREFIX} unchanged" in run.text
    assert "Notebook: http" in run.text
    assert "Nothing changed since this checkout's last whole run" in run.text
    assert changes(aws) == before


def test_recheck_goes_the_whole_way_and_the_next_run_the_short_one(first: PlaybookRun, playbooks: Playbooks) -> None:
    run = ok(playbooks.up(PREFIX, "-e", "recheck=true"))
    assert not short(run)
    assert "Nothing changed since" not in run.text
    assert short(ok(playbooks.up(PREFIX)))


def test_the_short_way_runs_in_the_controller_and_shows_no_secret_at_any_verbosity(first: PlaybookRun, playbooks: Playbooks,
                                                                                     vault: Vault) -> None:
    run = ok(playbooks.up(PREFIX, "-vvvv"))
    assert short(run), run.output[-3000:]
    assert "config file = " in run.output  # verbose
    # At -vvv and more, every module's process shows as a local EXEC: a no-op starts none
    # (on macOS without a proxy variable, the short way is a module process: see its action plugin).
    if sys.platform != "darwin" or getproxies_environment():
        assert "<localhost> EXEC" not in run.output
    for name, value in vault.values.items():
        assert value not in run.output, name


def test_with_botocore_logs_the_short_way_runs_as_a_module(first: PlaybookRun, playbooks: Playbooks, vault: Vault) -> None:
    # amazon.aws's setting for the list of calls a module made (resource_actions): AnsibleAWSModule keeps it.
    run = ok(playbooks.run("up.yml", "-e", f"prefix={PREFIX}", "-vvv", env={"ANSIBLE_DEBUG_BOTOCORE_LOGS": "1"}))
    assert short(run), run.output[-3000:]
    assert "AnsiballZ_short_way" in run.output
    for name, value in vault.values.items():
        assert value not in run.output, name


def test_a_check_run_after_an_idle_stop_takes_the_short_way_and_starts_nothing(first: PlaybookRun, playbooks: Playbooks,
                                                                               aws: Clients) -> None:
    idle_stop(aws)
    before = changes(aws)
    run = ok(playbooks.up(PREFIX, "--check"))
    assert short(run), run.output[-3000:]
    out = outputs(aws)
    group = aws.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[out["AutoScalingGroupName"]])
    assert group["AutoScalingGroups"][0]["DesiredCapacity"] == 0
    service = aws.ecs.describe_services(cluster=out["ClusterName"], services=[out["ServiceName"]])["services"][0]
    assert service["desiredCount"] == 1  # as the idle stop left it: not parked either
    assert changes(aws) == before


def test_a_restart_after_an_idle_stop_takes_the_short_way_and_starts_the_instance_then_the_task(
    first: PlaybookRun, playbooks: Playbooks, aws: Clients, emulator: Emulator
) -> None:
    idle_stop(aws)
    before = changes(aws)
    with Watch(emulator, outputs(aws)) as watch:
        run = ok(playbooks.up(PREFIX))
    assert short(run), run.output[-3000:]
    assert phases(run) == ["last_run"]
    assert "Started again after an idle stop" in run.text
    # The order of the whole way: the idle stop left the service at 1, and no task is asked for
    # while the group has started and the instance has not registered yet.
    waiting = [s for s in watch.samples if s.group >= 1 and not s.instance]
    assert waiting, watch.samples[:20]
    assert {s.service for s in waiting} == {0}, [s for s in waiting if s.service][:5]
    out = outputs(aws)
    group = aws.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[out["AutoScalingGroupName"]])
    assert group["AutoScalingGroups"][0]["DesiredCapacity"] == 1
    assert matching_instances(aws.ecs, out["ClusterName"], {"nbstack.prefix": PREFIX})
    service = aws.ecs.describe_services(cluster=out["ClusterName"], services=[out["ServiceName"]])["services"][0]
    assert service["desiredCount"] == 1
    assert changes(aws) == before


def test_a_changed_setting_goes_the_whole_way_and_so_does_its_undoing(first: PlaybookRun, playbooks: Playbooks,
                                                                      aws: Clients) -> None:
    idle = json.dumps({"notebook_idle": {"timeout_minutes": 30, "max_lifetime_hours": 0}})
    run = ok(playbooks.up(PREFIX, "-e", idle))
    assert not short(run)
    assert parameters(aws)["IdleTimeoutMinutes"] == "30"
    back = ok(playbooks.up(PREFIX))
    assert not short(back)
    assert parameters(aws)["IdleTimeoutMinutes"] == "60"
    assert short(ok(playbooks.up(PREFIX)))


def test_bad_input_is_refused_as_on_the_whole_way(first: PlaybookRun, playbooks: Playbooks) -> None:
    run = playbooks.up(PREFIX, "-e", "force=maybe", "-e", "recheck=maybe")
    assert run.returncode != 0
    assert "force: it must be true or false" in run.output
    assert "recheck: it must be true or false" in run.output


def test_a_secret_changed_in_secrets_manager_goes_the_whole_way_and_gets_the_vaults_value_back(
    first: PlaybookRun, playbooks: Playbooks, aws: Clients, vault: Vault
) -> None:
    name = f"{APP}/{PREFIX}/notebook-password"
    aws.secretsmanager.put_secret_value(SecretId=name, SecretString="set-by-someone-else-1234")
    run = ok(playbooks.up(PREFIX))
    assert not short(run)
    assert aws.secretsmanager.get_secret_value(SecretId=name)["SecretString"] == vault.values["vault_notebook_password"]
    assert short(ok(playbooks.up(PREFIX)))


def test_a_shared_stack_changed_by_someone_else_goes_the_whole_way(first: PlaybookRun, playbooks: Playbooks,
                                                                   aws: Clients) -> None:
    name = f"{APP}-persistent"
    stack = aws.cloudformation.describe_stacks(StackName=name)["Stacks"][0]

    def retain_logs(days: str) -> None:
        aws.cloudformation.update_stack(
            StackName=name,
            UsePreviousTemplate=True,
            Parameters=[{"ParameterKey": p["ParameterKey"], "UsePreviousValue": True} for p in stack["Parameters"]
                        if p["ParameterKey"] != "LogRetentionDays"] + [{"ParameterKey": "LogRetentionDays", "ParameterValue": days}],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        )

    # A teammate's run with another team-wide setting (team_update): this run's preflight sees the difference.
    retain_logs("14")
    run = playbooks.up(PREFIX)
    assert not short(run)
    assert "LogRetentionDays" in run.output or "notebook_log_retention_days" in run.output, run.output[-3000:]
    # Set back: the stack changed again since the record, so once more the whole way, then the short one.
    retain_logs("30")
    assert not short(ok(playbooks.up(PREFIX)))
    assert short(ok(playbooks.up(PREFIX)))


def test_a_newer_ami_waits_on_the_short_way_and_a_stopped_server_takes_it_the_whole_way(
    first: PlaybookRun, playbooks: Playbooks, aws: Clients
) -> None:
    ami = parameters(aws)["EcsAmiId"]
    newer = publish_newer_ami(aws)
    assert newer != ami
    running = ok(playbooks.up(PREFIX))
    assert short(running)
    assert f"A newer ECS-optimized AMI ({newer}) waits for the next stop" in running.text
    assert parameters(aws)["EcsAmiId"] == ami
    idle_stop(aws)
    restart = ok(playbooks.up(PREFIX))
    assert not short(restart)
    assert parameters(aws)["EcsAmiId"] == newer


def test_without_its_record_a_run_goes_the_whole_way_and_records_again(first: PlaybookRun, playbooks: Playbooks,
                                                                        emulator: Emulator) -> None:
    record(emulator).unlink()
    run = ok(playbooks.up(PREFIX))
    assert not short(run)
    assert record(emulator).is_file()
    assert short(ok(playbooks.up(PREFIX)))
