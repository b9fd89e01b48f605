"""A value that crosses layers has one meaning in each: settings, templates, container.

A setting is declared once per layer: in group_vars/all/main.yml (what a
person edits), as a parameter of the template that uses it (with the same
default, for a stack made by hand), and, where it reaches the notebook, as a
variable of the container's own contract (nbstack_runtime.settings). The
emulator enforces none of a template's parameter constraints, so each
default is also checked against them here: a default that CloudFormation
would refuse fails on a real account only.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.decode import decode

from ansible_collections.nbstack.cloud.plugins.plugin_utils.network import subnet_plan
from ansible_collections.nbstack.cloud.plugins.plugin_utils.template import parameter_value, refusal
from nbstack_runtime.settings import UNHEALTHY_AFTER_SECONDS, VARIABLES, Settings

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_PREFIX = "alice"

#: (setting, its path inside a group or "", template, parameter)
SETTINGS_TO_PARAMETERS = [
    ("notebook_port", "", "persistent", "NotebookPort"),
    ("notebook_health_port", "", "persistent", "HealthPort"),
    ("notebook_domain", "", "persistent", "DomainName"),
    ("notebook_hosted_zone_id", "", "persistent", "HostedZoneId"),
    ("notebook_certificate_arn", "", "persistent", "CertificateArn"),
    ("notebook_log_retention_days", "", "persistent", "LogRetentionDays"),
    ("notebook_vpc_cidr", "", "network", "VpcCidr"),
    ("notebook_instance_type", "", "instance", "InstanceType"),
    ("notebook_health_check_grace_period", "", "instance", "HealthCheckGracePeriod"),
    ("notebook_root_volume", "size", "instance", "RootVolumeSize"),
    ("notebook_root_volume", "type", "instance", "RootVolumeType"),
    ("notebook_git", "user_name", "instance", "GitUserName"),
    ("notebook_git", "user_email", "instance", "GitUserEmail"),
    ("notebook_git", "autosave_max_file_mb", "instance", "GitAutosaveMaxFileMb"),
    ("notebook_warehouse", "host", "instance", "WarehouseHost"),
    ("notebook_warehouse", "port", "instance", "WarehousePort"),
    ("notebook_warehouse", "database", "instance", "WarehouseDatabase"),
    ("notebook_warehouse", "user", "instance", "WarehouseUser"),
    ("notebook_warehouse", "role_arn", "instance", "WarehouseRoleArn"),
    ("notebook_idle", "timeout_minutes", "instance", "IdleTimeoutMinutes"),
    ("notebook_idle", "max_lifetime_hours", "instance", "IdleMaxLifetimeHours"),
]


def group_vars() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "group_vars" / "all" / "main.yml").read_text())


def setting(name: str, key: str) -> Any:
    value = group_vars()[name]
    value = value[key] if key else value
    # The defaults that follow the prefix, as they render for one person.
    return value.replace("{{ prefix }}", SAMPLE_PREFIX) if isinstance(value, str) else value


@functools.cache
def parameters(template: str) -> dict[str, Any]:
    decoded, matches = decode(str(ROOT / "files" / "cloudformation" / f"{template}.yml"))
    assert not matches, matches
    return dict(decoded["Parameters"])


@pytest.mark.parametrize(("name", "key", "template", "parameter"), SETTINGS_TO_PARAMETERS,
                         ids=[f"{n}.{k}" if k else n for n, k, _, _ in SETTINGS_TO_PARAMETERS])
def test_every_default_setting_is_accepted_by_its_parameter(name: str, key: str, template: str, parameter: str) -> None:
    reason = refusal(parameters(template)[parameter], parameter_value(setting(name, key)))
    assert not reason, f"{template}.yml {parameter} refuses the default of {name} {key}: {reason}"


def raw_setting(name: str, key: str) -> Any:
    value = group_vars()[name]
    return value[key] if key else value


#: The rows whose parameter has a default of its own, and whose setting's default is a value (not a template).
WITH_DEFAULTS = [
    row for row in SETTINGS_TO_PARAMETERS
    if "Default" in parameters(row[2])[row[3]] and "{{" not in str(raw_setting(row[0], row[1]))
]


def test_most_parameters_have_a_default_to_compare() -> None:
    """The rows left out have no parameter default (a required input) or a default that follows the prefix."""
    left_out = {row[3] for row in SETTINGS_TO_PARAMETERS} - {row[3] for row in WITH_DEFAULTS}
    assert left_out == {"InstanceType", "GitUserName", "GitUserEmail", "WarehouseDatabase", "WarehouseUser"}


@pytest.mark.parametrize(("name", "key", "template", "parameter"), WITH_DEFAULTS,
                         ids=[f"{n}.{k}" if k else n for n, k, _, _ in WITH_DEFAULTS])
def test_a_parameter_default_is_the_settings_default(name: str, key: str, template: str, parameter: str) -> None:
    default = parameters(template)[parameter]["Default"]
    assert str(default) == str(setting(name, key)), f"{template}.yml {parameter} defaults to {default!r}"


def test_the_subnet_defaults_are_the_plan_of_the_default_range() -> None:
    network = parameters("network")
    plan = subnet_plan(setting("notebook_vpc_cidr", ""))
    assert [network["PublicSubnet1Cidr"]["Default"], network["PublicSubnet2Cidr"]["Default"]] == plan["public"]
    assert [network["PrivateSubnet1Cidr"]["Default"], network["PrivateSubnet2Cidr"]["Default"]] == plan["private"]


def test_every_group_reaches_the_template_under_its_own_names() -> None:
    """The instance role forwards each group as <Group><Key> parameters: each must exist in the template."""
    spec = yaml.safe_load((ROOT / "roles" / "instance" / "meta" / "argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]
    template = parameters("instance")
    camel = lambda name: "".join(part.capitalize() for part in name.split("_"))  # noqa: E731
    for option, body in options.items():
        group = option.removeprefix("instance_")
        for key in body.get("options") or {}:
            assert camel(group) + camel(key) in template, f"instance.yml has no parameter for {option}.{key}"
            assert key in group_vars()[f"notebook_{group}"], f"group_vars has no notebook_{group}.{key}"


#: (setting, its path inside a group or "", container variable)
SETTINGS_TO_VARIABLES = [
    ("notebook_port", "", "NBSTACK_NOTEBOOK_PORT"),
    ("notebook_health_port", "", "NBSTACK_HEALTH_PORT"),
    ("notebook_warehouse", "host", "NBSTACK_WAREHOUSE_HOST"),
    ("notebook_warehouse", "port", "NBSTACK_WAREHOUSE_PORT"),
    ("notebook_warehouse", "role_arn", "NBSTACK_WAREHOUSE_ROLE_ARN"),
    ("notebook_idle", "timeout_minutes", "NBSTACK_IDLE_TIMEOUT_MINUTES"),
    ("notebook_idle", "max_lifetime_hours", "NBSTACK_MAX_LIFETIME_HOURS"),
    ("notebook_git", "autosave_max_file_mb", "NBSTACK_AUTOSAVE_MAX_FILE_MB"),
    ("notebook_health_check_grace_period", "", "NBSTACK_HEALTH_CHECK_GRACE_SECONDS"),
]


@pytest.mark.parametrize(("name", "key", "variable"), SETTINGS_TO_VARIABLES,
                         ids=[f"{n}.{k}" if k else n for n, k, _ in SETTINGS_TO_VARIABLES])
def test_the_containers_default_is_the_settings_default(name: str, key: str, variable: str) -> None:
    """A task definition always sets these; a container run without one must still mean the same."""
    (declared,) = [v for v in VARIABLES if v.name == variable]
    assert declared.default == str(setting(name, key)), f"{variable} defaults to {declared.default!r}"


def test_the_work_directory_is_where_the_task_mounts_the_work_volume() -> None:
    decoded, _ = decode(str(ROOT / "files" / "cloudformation" / "instance.yml"))
    (task,) = [r for r in decoded["Resources"].values() if r["Type"] == "AWS::ECS::TaskDefinition"]
    (container,) = task["Properties"]["ContainerDefinitions"]
    (mount,) = container["MountPoints"]
    environment = {entry["Name"]: entry["Value"] for entry in container["Environment"]}
    (declared,) = [v for v in VARIABLES if v.name == "NBSTACK_WORK_DIR"]
    assert environment["NBSTACK_WORK_DIR"] == mount["ContainerPath"] == declared.default


def test_the_clone_ends_before_ecs_would_replace_a_task_not_listening_yet() -> None:
    """The task gets the service's grace period, and the container knows how long the checks take to fail."""
    decoded, _ = decode(str(ROOT / "files" / "cloudformation" / "instance.yml"))
    kinds = {r["Type"]: r["Properties"] for r in decoded["Resources"].values()}
    (container,) = kinds["AWS::ECS::TaskDefinition"]["ContainerDefinitions"]
    environment = {entry["Name"]: entry["Value"] for entry in container["Environment"]}
    assert environment["NBSTACK_HEALTH_CHECK_GRACE_SECONDS"] == {"Ref": "HealthCheckGracePeriod"}
    assert kinds["AWS::ECS::Service"]["HealthCheckGracePeriodSeconds"] == {"Ref": "HealthCheckGracePeriod"}
    checks = kinds["AWS::ElasticLoadBalancingV2::TargetGroup"]
    assert checks["HealthCheckIntervalSeconds"] * checks["UnhealthyThresholdCount"] == UNHEALTHY_AFTER_SECONDS

    def clone_timeout(grace: str) -> float:
        return Settings.from_environ({"NBSTACK_PREFIX": "alice", "NBSTACK_HEALTH_CHECK_GRACE_SECONDS": grace}).clone_timeout

    assert clone_timeout(str(setting("notebook_health_check_grace_period", ""))) == 270
    assert clone_timeout("1800") == 1770
    # No grace: the load balancer's ten failed checks are all the time there is.
    assert clone_timeout("0") == 20
