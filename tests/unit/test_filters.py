"""The roles' filters: the derived values and checks behind the playbooks."""

from __future__ import annotations

import hashlib
import random
import string
from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.nbstack.cloud.plugins.filter import instance, network, settings, stack, work
from ansible_collections.nbstack.cloud.plugins.plugin_utils import template


def allocate(prefixes: list[str]) -> dict[str, int]:
    """Bring prefixes up one after another, as successive up.yml runs would."""
    taken: dict[str, int] = {}
    for prefix in prefixes:
        taken[prefix] = instance.rule_priority(prefix, list(taken.values()))
    return taken


def test_priorities_of_many_prefixes_are_unique_and_in_range() -> None:
    rng = random.Random(7)
    prefixes = ["alice", "bob", "carol"] + [
        rng.choice(string.ascii_lowercase) + "".join(rng.choices(string.ascii_lowercase + string.digits + "-", k=rng.randint(0, 27)))
        for _ in range(500)
    ]
    prefixes = list(dict.fromkeys(prefixes))
    priorities = allocate(prefixes)
    assert len(set(priorities.values())) == len(prefixes)
    assert all(instance.FIRST_PRIORITY <= p <= instance.LAST_PRIORITY for p in priorities.values())


def colliding_prefixes(count: int) -> list[str]:
    """Prefixes whose preferred priorities are the same, found by search."""
    span = instance.LAST_PRIORITY - instance.FIRST_PRIORITY + 1
    by_start: dict[int, list[str]] = {}
    for n in range(400000):
        name = f"p{n}"
        start = int(hashlib.sha256(name.encode()).hexdigest(), 16) % span
        by_start.setdefault(start, []).append(name)
        if len(by_start[start]) == count:
            return by_start[start]
    raise AssertionError("no collision found")


def test_colliding_prefixes_get_distinct_priorities() -> None:
    prefixes = colliding_prefixes(3)
    # Alone, each would take the same number.
    assert len({instance.rule_priority(p, []) for p in prefixes}) == 1
    priorities = allocate(prefixes + [f"user{i}" for i in range(20)])
    assert len(set(priorities.values())) == len(priorities)


def test_priority_of_a_prefix_is_stable_when_nothing_is_in_its_way() -> None:
    assert instance.rule_priority("alice", [1, 2, 3]) == instance.rule_priority("alice", [])


def test_priority_skips_a_rule_added_by_hand() -> None:
    preferred = instance.rule_priority("alice", [])
    assert instance.rule_priority("alice", [preferred, str(preferred + 1)]) not in {preferred, preferred + 1}


def test_full_listener_is_an_error() -> None:
    everything = range(instance.FIRST_PRIORITY, instance.LAST_PRIORITY + 1)
    with pytest.raises(AnsibleFilterError, match="no free rule priority"):
        instance.rule_priority("alice", list(everything))


def test_invalid_cidrs_are_named() -> None:
    given = ["10.0.0.0/8", "2001:db8::/32", "10.0.0.1", "300.1.1.0/24", "10.0.0.1/24", "office"]
    assert settings.invalid_cidrs(given) == ["10.0.0.1", "300.1.1.0/24", "10.0.0.1/24", "office"]


def test_invalid_cidrs_refuse_a_trailing_newline_or_space() -> None:
    assert settings.invalid_cidrs(["10.0.0.0/8\n", " 10.0.0.0/8", "10.0.0.0/ 8", "10.0.0.0/8"]) == [
        "10.0.0.0/8\n", " 10.0.0.0/8", "10.0.0.0/ 8"
    ]


def test_public_cidrs_are_found() -> None:
    assert settings.public_cidrs(["0.0.0.0/0", "10.0.0.0/8", "::/0"]) == ["0.0.0.0/0", "::/0"]


@pytest.mark.parametrize(
    ("cidrs", "public"),
    [
        (["0.0.0.0/1", "128.0.0.0/1"], ["0.0.0.0/1", "128.0.0.0/1"]),
        (["::/1", "8000::/1", "10.0.0.0/8"], ["::/1", "8000::/1"]),
        (["0.0.0.0/1"], ["0.0.0.0/1"]),
        (["2000::/3"], ["2000::/3"]),
        # Sixteen /8s are 1/16 of IPv4, no more; a seventeenth is too much.
        ([f"{n}.0.0.0/8" for n in range(16)], []),
        ([f"{n}.0.0.0/8" for n in range(17)], [f"{n}.0.0.0/8" for n in range(17)]),
        # Overlapping entries count once.
        (["0.0.0.0/4"] + [f"{n}.0.0.0/8" for n in range(16)], []),
        (["10.0.0.0/8", "100.64.0.0/10", "198.51.100.0/24", "2001:db8::/32"], []),
        (["16.0.0.0/4", "2001:db8::/32"], []),
    ],
)
def test_ranges_are_public_by_their_union(cidrs: list[str], public: list[str]) -> None:
    assert settings.public_cidrs(cidrs) == public


def test_ingress_rules_fit_the_quota_per_family() -> None:
    v4 = [f"10.0.{n}.0/24" for n in range(60)]
    v6 = [f"2001:db8:{n:x}::/48" for n in range(60)]
    assert settings.ingress_rule_problems(v4 + v6, [8888]) == []
    (problem,) = settings.ingress_rule_problems(v4 + ["10.1.0.0/24"] + v6, [8888])
    assert problem.startswith("notebook_allowed_cidrs: its 61 IPv4 ranges need 61 inbound rules")
    (problem,) = settings.ingress_rule_problems(v4[:31], [443, 80])
    assert "its 31 IPv4 ranges need 62 inbound rules (2 listener ports each)" in problem
    assert "at most 30 IPv4 ranges" in problem
    assert settings.ingress_rule_problems(v4[:31], [443, 80], 120) == []


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ({"prefix": "alice", "notebook_app_name": "nb", "aws_region": "eu-west-1"}, []),
        ({"prefix": "alice\n", "notebook_app_name": "nb", "aws_region": "eu-west-1"}, ['prefix "alice\\n" is not usable']),
        ({"prefix": "alice", "notebook_app_name": "nb\n", "aws_region": "eu-west-1"}, ['notebook_app_name "nb\\n"']),
        ({"prefix": "alice", "notebook_app_name": "nb", "aws_region": "eu-west-1\n"}, ['aws_region "eu-west-1\\n"']),
        ({"prefix": "persistent", "notebook_app_name": "nb", "aws_region": "eu-west-1"},
         ["nb-persistent would name a shared persistent stack"]),
        ({"prefix": "network", "notebook_app_name": "nb", "aws_region": "eu-west-1"}, ["nb-network would name a shared network stack"]),
        ({"prefix": "x-persistent", "notebook_app_name": "nb", "aws_region": "eu-west-1"}, ["would name a shared persistent stack"]),
        ({"prefix": "alice-work", "notebook_app_name": "nb", "aws_region": "eu-west-1"},
         ["nb-alice-work would name a person's work stack"]),
        ({"prefix": 5, "notebook_app_name": None, "aws_region": "eu-west-1"}, ['prefix 5', 'notebook_app_name null']),
    ],
)
def test_name_problems_match_the_whole_text(names: dict, expected: list[str]) -> None:
    found = settings.name_problems(names)
    assert len(found) == len(expected)
    for problem, start in zip(found, expected, strict=True):
        assert start in problem


SENT_TEMPLATES = {
    "persistent": (
        "Parameters:\n"
        "  NotebookPort: {Type: Number, MinValue: 1024, MaxValue: 65535}\n"
        "  LogRetentionDays: {Type: Number, AllowedValues: [1, 3, 5]}\n"
        "  PublicSubnetIds: {Type: 'List<AWS::EC2::Subnet::Id>', AllowedPattern: '^subnet-[0-9a-f]+$'}\n"
    ),
    "instance": "Parameters:\n  RepoUrl: {Type: String, AllowedPattern: '^https://\\S+$', ConstraintDescription: an https URL}\n",
}


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ({"setting": "notebook_port", "template": "persistent", "parameter": "NotebookPort", "value": 8888, "whole": True}, ""),
        ({"setting": "notebook_port", "template": "persistent", "parameter": "NotebookPort", "value": "-1", "whole": True},
         "notebook_port: it is below 1024"),
        ({"setting": "notebook_port", "template": "persistent", "parameter": "NotebookPort", "value": "99999"},
         "notebook_port: it is above 65535"),
        ({"setting": "notebook_port", "template": "persistent", "parameter": "NotebookPort", "value": "8888.5", "whole": True},
         "notebook_port: it is not a whole number"),
        ({"setting": "notebook_log_retention_days", "template": "persistent", "parameter": "LogRetentionDays", "value": 2},
         "notebook_log_retention_days: it is not one of 1, 3, 5"),
        ({"setting": "notebook_public_subnet_ids", "template": "persistent", "parameter": "PublicSubnetIds",
          "value": ["subnet-0a", "subnet-0b\n"]}, "notebook_public_subnet_ids: it must be like ^subnet-[0-9a-f]+$"),
        ({"setting": "notebook_repo_url", "template": "instance", "parameter": "RepoUrl", "value": "https://x/r\n",
          "fix": "set it"}, "notebook_repo_url: it must be an https URL; set it"),
        # A parameter the template no longer declares is no constraint.
        ({"setting": "x", "template": "instance", "parameter": "Gone", "value": "anything"}, ""),
    ],
)
def test_parameter_problems_name_the_setting(item: dict, problem: str) -> None:
    assert settings.parameter_problems([item], SENT_TEMPLATES) == ([problem] if problem else [])


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://git.example.com/team/notebooks.git", ""),
        ("http://127.0.0.1:8080/r.git", ""),
        ("http://localhost/r.git", ""),
        ("http://[::1]:3000/r.git", ""),
        ("http://git.example.com/r.git", "must be an https:// URL"),
        ("http://127.0.0.1.example.com/r.git", "must be an https:// URL"),
        ("ssh://git@git.example.com/r.git", "must be an https:// URL"),
        ("git@github.com:team/r.git", "must be an https:// URL"),
        ("https://user:pw@git.example.com/r.git", "must not hold credentials"),
        ("https://token@git.example.com/r.git", "must not hold credentials"),
        ("https://git.example.com/r.git\n", "on one line without spaces"),
        ("", "must be the https URL"),
        ("https:///r.git", "names no host"),
    ],
)
def test_repo_url_is_refused_as_the_container_refuses_it(url: str, problem: str) -> None:
    found = settings.repo_url_problem(url)
    assert (found == "") if not problem else (problem in found)


def test_the_repo_url_rule_is_the_containers() -> None:
    """Every URL preflight lets through, the container takes (its parser is the authority)."""
    from nbstack_runtime import settings as runtime

    for url in ("https://git.example.com/r.git", "http://127.0.0.1:8080/r.git", "http://localhost/r.git"):
        assert settings.repo_url_problem(url) == ""
        runtime.VARIABLES[5].parse(url)
    for url in ("http://git.example.com/r.git", "https://u:p@git.example.com/r.git"):
        assert settings.repo_url_problem(url) != ""
        with pytest.raises(ValueError):
            runtime.VARIABLES[5].parse(url)


@pytest.mark.parametrize(("tag", "ok"), [("", True), ("c-0123456789ab", True), ("v1 beta", False), ("-x", False), ("a" * 129, False)])
def test_image_tags(tag: str, ok: bool) -> None:
    assert (settings.image_tag_problem(tag) == "") is ok


def test_redact_replaces_every_vault_value_in_any_nesting() -> None:
    secrets = ["s3cret-token", {"alice": {"password": "pa\"ss"}}, None, "", True]
    problems = ['prefix "s3cret-token" is not usable', 'user "pa\\"ss" and pa"ss', "nothing secret"]
    assert settings.redact(problems, secrets) == ['prefix "********" is not usable', 'user "********" and ********', "nothing secret"]


def test_unusable_secrets_are_named_not_shown() -> None:
    found = settings.unusable_secrets(
        {"a": "CHANGE-ME-x", "b": "", "c": None, "d": "real-value", "e": "  "}, "CHANGE-ME"
    )
    assert found == ["a", "b", "c", "e"]


def test_ingress_rules_follow_the_address_family() -> None:
    rules = network.ingress_rules(["10.0.0.0/8", "2001:db8::/32"], [443, "80"])
    assert rules[0]["cidr_ip"] == "10.0.0.0/8" and rules[0]["ports"] == [443, 80]
    assert rules[1]["cidr_ipv6"] == "2001:db8::/32" and "cidr_ip" not in rules[1]


CURRENT = {
    "stack_template": "Resources: {}\n",
    "stack_parameters": {"A": "1", "B": "x,y", "Defaulted": "d"},
    "stack_tags": {"nbstack:app": "app"},
}


def test_an_identical_stack_does_not_differ() -> None:
    result = stack.stack_changes(CURRENT, "Resources: {}", {"A": 1, "B": ["x", "y"]}, {"nbstack:app": "app"})
    assert result["differs"] is False
    assert result["after"]["parameters"] == {"A": "1", "B": "x,y"}


@pytest.mark.parametrize(
    ("template", "parameters", "tags", "reasons"),
    [
        ("Resources: {a: 1}", {"A": 1, "B": "x,y"}, {"nbstack:app": "app"}, ["template"]),
        ("Resources: {}", {"A": 2, "B": "x,y"}, {"nbstack:app": "app"}, ["parameter A"]),
        ("Resources: {}", {"A": 1, "B": "x,y", "C": True}, {"nbstack:app": "app"}, ["parameter C"]),
        ("Resources: {}", {"A": 1, "B": "x,y"}, {"nbstack:app": "other"}, ["tags"]),
    ],
)
def test_a_differing_stack_names_what_differs(template: str, parameters: dict, tags: dict, reasons: list) -> None:
    result = stack.stack_changes(CURRENT, template, parameters, tags)
    assert result["differs"] is True
    assert result["reasons"] == reasons


def test_a_missing_stack_differs() -> None:
    result = stack.stack_changes({}, "Resources: {}", {"A": True}, {})
    assert result["differs"] is True
    assert result["after"]["parameters"] == {"A": "true"}


def test_a_list_parameter_read_back_as_a_bracketed_list_is_the_same() -> None:
    current = dict(CURRENT, stack_parameters={"A": "1", "B": "['x', 'y']"})
    result = stack.stack_changes(current, "Resources: {}", {"A": 1, "B": ["x", "y"]}, {"nbstack:app": "app"})
    assert result["differs"] is False


SSM_TEMPLATE = """
Parameters:
  AmiId:
    Type: AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>
    Default: /aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id
  Size:
    Type: Number
Resources:
  Template:
    Type: AWS::EC2::LaunchTemplate
    Properties:
      LaunchTemplateData:
        ImageId: !Ref AmiId
"""
AMI_PATH = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"


def ssm_stack(resolved: str | None) -> dict:
    """A stack as cloudformation_info describes it; AWS adds resolved_value to SSM-typed parameters."""
    ami = {"parameter_key": "AmiId", "parameter_value": AMI_PATH}
    if resolved is not None:
        ami["resolved_value"] = resolved
    return {
        "stack_template": SSM_TEMPLATE,
        "stack_parameters": {"AmiId": AMI_PATH, "Size": "30"},
        "stack_tags": {},
        "stack_description": {"parameters": [ami, {"parameter_key": "Size", "parameter_value": "30"}]},
    }


def test_the_ssm_paths_are_those_of_ssm_typed_parameters() -> None:
    assert stack.ssm_parameter_paths(ssm_stack("ami-1"), SSM_TEMPLATE) == {"AmiId": AMI_PATH}
    assert stack.ssm_parameter_paths(ssm_stack("ami-1"), SSM_TEMPLATE, ["AmiId"]) == {"AmiId": AMI_PATH}
    # Only the parameters the stack uses: a GPU AMI is no concern of a CPU server.
    assert stack.ssm_parameter_paths(ssm_stack("ami-1"), SSM_TEMPLATE, ["GpuAmiId"]) == {}
    assert stack.ssm_parameter_paths({}, SSM_TEMPLATE) == {}
    assert stack.ssm_parameter_paths(CURRENT, "Resources: {}") == {}


def test_a_newer_ami_behind_an_ssm_parameter_is_a_change() -> None:
    result = stack.stack_changes(ssm_stack("ami-old"), SSM_TEMPLATE, {"Size": 30}, {}, {AMI_PATH: "ami-new"})
    assert result["differs"] is True
    assert result["reasons"] == ["parameter AmiId (its SSM parameter has a new value)"]
    assert result["before"]["resolved"] == {"AmiId": f"{AMI_PATH} = ami-old"}
    assert result["after"]["resolved"] == {"AmiId": f"{AMI_PATH} = ami-new"}
    # The update sends the same parameters: CloudFormation resolves the path again.
    assert result["after"]["parameters"] == {"Size": "30"}


@pytest.mark.parametrize(
    ("resolved", "now"),
    [("ami-same", {AMI_PATH: "ami-same"}), ("ami-old", {}), ("ami-old", {AMI_PATH: None}), (None, {AMI_PATH: "ami-new"})],
    ids=["unchanged", "not-looked-up", "lookup-found-nothing", "stack-without-resolved-value"],
)
def test_an_ami_is_only_a_change_when_both_values_are_known_and_differ(resolved: str | None, now: dict) -> None:
    result = stack.stack_changes(ssm_stack(resolved), SSM_TEMPLATE, {"Size": 30}, {}, now)
    assert result["differs"] is False
    assert "resolved" not in result["before"]


@pytest.mark.parametrize(
    ("replacement", "suffix"), [("True", " - REPLACED"), ("Conditional", " - may be replaced"), ("False", ""), ("n/a", "")]
)
def test_change_set_lines_say_what_is_replaced(replacement: str, suffix: str) -> None:
    change = {"action": "Modify", "logical_id": "LaunchTemplate", "type": "AWS::EC2::LaunchTemplate", "replacement": replacement}
    assert stack.change_line(change) == "Modify LaunchTemplate (AWS::EC2::LaunchTemplate)" + suffix


NUMBER = {"Type": "Number", "MinValue": 0, "MaxValue": 10080}
PATTERN = {"Type": "String", "AllowedPattern": "^[^@\\s]+@[^@\\s]+$", "ConstraintDescription": "an e-mail address."}


@pytest.mark.parametrize(
    ("spec", "value", "reason"),
    [
        (NUMBER, "60", ""),
        (NUMBER, "10081", "it is above 10080"),
        (NUMBER, "-1", "it is below 0"),
        (NUMBER, "soon", "it is not a plain number"),
        (NUMBER, "1e3", "it is not a plain number"),
        (NUMBER, " 60", "it is not a plain number"),
        (PATTERN, "a@b", ""),
        (PATTERN, "a@b\n", "it must be an e-mail address"),
        ({"Type": "String", "AllowedValues": ["gp3", "gp2"]}, "io2", "it is not one of gp3, gp2"),
        ({"Type": "String", "MaxLength": 3}, "abcd", "it is longer than 3 characters"),
    ],
)
def test_a_parameter_refuses_what_cloudformation_refuses(spec: dict, value: str, reason: str) -> None:
    assert template.refusal(spec, value) == reason


def test_settings_groups_are_the_group_options_of_a_role_under_the_settings_names() -> None:
    options = {
        "instance_app_name": {"type": "str"},
        "instance_idle": {"type": "dict", "options": {"timeout_minutes": {"type": "int", "required": True}}},
    }
    assert settings.settings_groups(options, "instance_", "notebook_") == {
        "notebook_idle": {"type": "dict", "required": True, "options": options["instance_idle"]["options"]},
    }


def test_group_problems_name_the_setting() -> None:
    body = "Parameters:\n  IdleTimeoutMinutes:\n    Type: Number\n    MinValue: 0\n    MaxValue: 10080\n"
    groups = {"notebook_idle": {"timeout_minutes": 99999, "max_lifetime_hours": 0}}
    assert settings.group_problems(groups, body, "notebook_") == ["notebook_idle.timeout_minutes: it is above 10080"]
    groups = {"notebook_idle": {"timeout_minutes": -5, "max_lifetime_hours": 0}}
    assert settings.group_problems(groups, body, "notebook_") == ["notebook_idle.timeout_minutes: it is below 0"]


def test_group_problems_check_the_interface_without_showing_values() -> None:
    spec = {
        "notebook_root_volume": {
            "options": {"size": {"type": "int", "required": True}, "type": {"type": "str", "required": True, "choices": ["gp3", "gp2"]}}
        }
    }
    check = lambda values: settings.group_problems({"notebook_root_volume": values}, "Parameters: {}", "notebook_", spec)  # noqa: E731
    assert check({"size": 100, "type": "gp3"}) == []
    assert check({"size": 100}) == ["notebook_root_volume: it has no type (a group is given whole)"]
    assert check({"size": 100, "type": "s3cret", "iops": 1}) == [
        "notebook_root_volume.iops: notebook_root_volume has no such key",
        "notebook_root_volume.type: it is not one of gp3, gp2",
    ]
    assert check({"size": "big", "type": "gp3"}) == ["notebook_root_volume.size: it is not a whole number"]
    assert check({"size": True, "type": "gp3"}) == ["notebook_root_volume.size: it is not a whole number"]
    assert check({"size": 100, "type": ["gp3"]}) == ["notebook_root_volume.type: it is not a text"]


def test_group_problems_check_what_would_be_sent() -> None:
    body = "Parameters:\n  WarehouseRoleArn:\n    Type: String\n    AllowedPattern: ^$|^arn:.+$\n  WarehousePort:\n    Type: Number\n"
    spec = {"notebook_warehouse": {"options": {"port": {"type": "int"}, "role_arn": {"type": "str"}}}}
    assert settings.group_problems({"notebook_warehouse": {"role_arn": None, "port": 5439}}, body, "notebook_", spec) == []
    assert settings.group_problems({"notebook_warehouse": {"role_arn": "", "port": "5439.0"}}, body, "notebook_", spec) == [
        "notebook_warehouse.port: it is not a whole number"
    ]
    assert settings.group_problems({"notebook_warehouse": '{"port": 5439}'}, body, "notebook_", spec) == [
        "notebook_warehouse: it is not a group of keys (with -e, give it whole, as JSON)"
    ]


@pytest.mark.parametrize(
    ("cidr", "problem"),
    [
        ("10.42.0.0/16", ""),
        ("192.168.0.0/19", ""),
        ("10.42.0.0/20", "outside /16 to /19"),
        ("169.254.0.0/16", "not inside a private range"),
        ("127.0.0.0/16", "not inside a private range"),
        ("100.64.0.0/16", "not inside a private range"),
        ("172.17.0.0/16", "overlaps 172.17.0.0/16"),
        ("10.42.0.1/16", "host bits zero"),
    ],
)
def test_vpc_ranges(cidr: str, problem: str) -> None:
    found = settings.vpc_cidr_problem(cidr)
    assert (found == "") if not problem else (problem in found)


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("template_name", "parameter", "variable"),
    [
        ("instance", "IdleTimeoutMinutes", "NBSTACK_IDLE_TIMEOUT_MINUTES"),
        ("instance", "IdleMaxLifetimeHours", "NBSTACK_MAX_LIFETIME_HOURS"),
        ("instance", "WarehousePort", "NBSTACK_WAREHOUSE_PORT"),
        ("instance", "GitAutosaveMaxFileMb", "NBSTACK_AUTOSAVE_MAX_FILE_MB"),
        ("persistent", "NotebookPort", "NBSTACK_NOTEBOOK_PORT"),
        ("persistent", "HealthPort", "NBSTACK_HEALTH_PORT"),
    ],
)
def test_what_the_template_accepts_the_container_accepts(template_name: str, parameter: str, variable: str) -> None:
    """Preflight checks against the template's bounds; the container must take every value inside them."""
    from nbstack_runtime import settings as runtime

    spec = template.parameters((ROOT / "files" / "cloudformation" / f"{template_name}.yml").read_text())[parameter]
    (parse,) = [v.parse for v in runtime.VARIABLES if v.name == variable]
    assert parse is not None
    low, high = int(spec["MinValue"]), int(spec["MaxValue"])
    for inside in (low, high):
        assert template.refusal(spec, str(inside)) == ""
        parse(str(inside))
    for outside in (low - 1, high + 1):
        assert template.refusal(spec, str(outside)) != ""


def slots(first: str = "", second: str = "", third: str = "") -> dict[str, str]:
    return {"MountTargetSubnet1": first, "MountTargetSubnet2": second, "MountTargetSubnet3": third}


def test_a_new_work_stack_takes_the_subnets_in_sorted_order() -> None:
    assert work.mount_target_plan(["subnet-c", "subnet-a"], {}) == {"slots": slots("subnet-a", "subnet-c"), "dropped": [], "first": None}
    assert work.mount_target_plan([], None)["slots"] == slots()  # check mode on a new account: no network yet
    many = work.mount_target_plan([f"subnet-{n}" for n in "edcba"])
    assert many["slots"] == slots("subnet-a", "subnet-b", "subnet-c")


def test_every_mount_target_keeps_its_subnet_when_one_is_added_or_the_setting_reordered() -> None:
    """A subnet that sorts first must not shift the others: each shift would replace a mount target."""
    current = {"AppName": "nb", **slots("subnet-b", "subnet-c")}
    plan = work.mount_target_plan(["subnet-c", "subnet-a", "subnet-b"], current)
    assert plan == {"slots": slots("subnet-b", "subnet-c", "subnet-a"), "dropped": [], "first": None}
    assert work.mount_target_plan(["subnet-c", "subnet-b"], current)["slots"] == slots("subnet-b", "subnet-c")


def test_a_dropped_subnet_empties_its_slot_and_a_swap_drops_first() -> None:
    current = slots("subnet-b", "subnet-c")
    assert work.mount_target_plan(["subnet-c"], current) == {"slots": slots("", "subnet-c"), "dropped": ["subnet-b"], "first": None}
    # subnet-d may be in subnet-b's zone: the first update deletes b's mount target, the second makes d's.
    swap = work.mount_target_plan(["subnet-d", "subnet-c"], current)
    assert swap == {"slots": slots("subnet-d", "subnet-c"), "dropped": ["subnet-b"], "first": slots("", "subnet-c")}


def test_mount_target_plan_refuses_what_is_not_a_list_of_ids() -> None:
    with pytest.raises(AnsibleFilterError, match="list of subnet ids"):
        work.mount_target_plan("subnet-a,subnet-b", {})


def subnet(subnet_id: str, zone: str, vpc: str = "vpc-1") -> dict[str, str]:
    """One of ec2_vpc_subnet_info's subnets, with the keys the filter reads."""
    return {"id": subnet_id, "availability_zone": f"eu-west-1{zone}", "vpc_id": vpc, "cidr_block": "10.0.0.0/24"}


def answer(subnets: list[dict[str, str]]) -> dict[str, Any]:
    """ec2_vpc_subnet_info's registered result."""
    return {"changed": False, "subnets": subnets}


def test_given_subnets_in_their_vpc_one_per_zone_have_no_problem() -> None:
    found = [subnet("subnet-pa", "a"), subnet("subnet-pb", "b"), subnet("subnet-xa", "a"), subnet("subnet-xb", "b")]
    assert network.given_subnet_problems(answer(found), "vpc-1", ["subnet-pa", "subnet-pb"], ["subnet-xa"], "eu-west-1") == []
    assert network.given_subnet_problems(answer(found), "vpc-1", ["subnet-pb", "subnet-pa"], ["subnet-xb", "subnet-xa"]) == []


def test_given_subnets_that_are_missing_elsewhere_or_share_a_zone_are_each_named() -> None:
    found = [
        subnet("subnet-pa", "a"),
        subnet("subnet-pa2", "a"),
        subnet("subnet-pb", "b"),
        subnet("subnet-xa", "a"),
        subnet("subnet-xb", "b"),
        subnet("subnet-xb2", "b"),
        subnet("subnet-xb3", "b"),
        subnet("subnet-other", "c", vpc="vpc-2"),
    ]
    problems = network.given_subnet_problems(
        answer(found),
        "vpc-1",
        ["subnet-pa", "subnet-pa2", "subnet-pb", "subnet-gone"],
        ["subnet-xa", "subnet-xb", "subnet-xb2", "subnet-xb3", "subnet-other", 7],
        "eu-west-1",
    )
    assert problems == [
        "notebook_public_subnet_ids: subnet-gone does not exist in eu-west-1; set the ID of a subnet of vpc-1",
        "notebook_public_subnet_ids: subnet-pa and subnet-pa2 are in the same zone, eu-west-1a, and the load balancer"
        " takes one subnet per zone, in two zones or more; keep one subnet of each zone",
        "notebook_private_subnet_ids: subnet-other is in vpc-2, not in notebook_vpc_id vpc-1; set the ID of a subnet"
        " of vpc-1",
        "notebook_private_subnet_ids: subnet-xb, subnet-xb2 and subnet-xb3 are in the same zone, eu-west-1b, and the"
        " work volume has one mount target per zone; keep one subnet of each zone",
    ]


def test_a_subnet_given_twice_is_refused_not_counted_once() -> None:
    """[a, a] is two entries, so it passed the count of two public subnets; the load balancer needs two zones."""
    found = [subnet("subnet-pa", "a"), subnet("subnet-xa", "a")]
    assert network.given_subnet_problems(answer(found), "vpc-1", ["subnet-pa", "subnet-pa"], ["subnet-xa", "subnet-xa"]) == [
        "notebook_public_subnet_ids: subnet-pa is given 2 times; give each subnet once",
        "notebook_private_subnet_ids: subnet-xa is given 2 times; give each subnet once",
    ]


def test_a_private_subnet_in_a_zone_the_load_balancer_has_no_subnet_in_is_refused() -> None:
    """The load balancer sends nothing to a target in a zone it is not in: a server placed there never answers."""
    found = [subnet("subnet-pa", "a"), subnet("subnet-pb", "b"), subnet("subnet-xa", "a"), subnet("subnet-xc", "c")]
    assert network.given_subnet_problems(answer(found), "vpc-1", ["subnet-pa", "subnet-pb"], ["subnet-xa", "subnet-xc"]) == [
        "notebook_private_subnet_ids: subnet-xc is in eu-west-1c, where the load balancer has no subnet"
        " (notebook_public_subnet_ids are in eu-west-1a, eu-west-1b), so a server placed there would never be reached;"
        " give a public subnet in eu-west-1c too, or a private subnet in a zone the load balancer has"
    ]
    # A public subnet that is not found is its own problem: no second one about zones the others lack.
    assert network.given_subnet_problems(answer(found), "vpc-1", ["subnet-pa", "subnet-typo"], ["subnet-xa", "subnet-xc"]) == [
        "notebook_public_subnet_ids: subnet-typo does not exist; set the ID of a subnet of vpc-1"
    ]


def zone(name: str, kind: str = "availability-zone") -> dict[str, str]:
    """One of aws_az_info's availability_zones, with the keys the filter reads."""
    return {"zone_name": name, "zone_type": kind, "state": "available", "opt_in_status": "opted-in"}


def in_zone(subnet_id: str, zone_name: str, **extra: str) -> dict[str, str]:
    return {"id": subnet_id, "availability_zone": zone_name, "vpc_id": "vpc-1", "cidr_block": "10.0.0.0/24", **extra}


def zones_answer(*zones: dict[str, str]) -> dict[str, Any]:
    """aws_az_info's registered result."""
    return {"changed": False, "availability_zones": list(zones)}


WEST_2 = [zone("us-west-2a"), zone("us-west-2b")]


def test_subnets_outside_the_regions_availability_zones_are_each_refused() -> None:
    """A Local or Wavelength Zone, or an Outpost: an ALB's zones are all of one type, every private subnet holds
    a mount target, and EFS has none there. Whatever the list, each such subnet is named with the fix."""
    outpost = "arn:aws:outposts:us-west-2:111122223333:outpost/op-0123456789abcdef0"
    found = [
        in_zone("subnet-pa", "us-west-2a"),
        in_zone("subnet-pl", "us-west-2-lax-1a"),
        in_zone("subnet-xb", "us-west-2b", outpost_arn=outpost),
        in_zone("subnet-xw", "us-west-2-wl1-sea-wlz-1"),
        in_zone("subnet-xq", "us-west-2-new-1a"),
        in_zone("subnet-xu", "us-west-2-odd-1a"),
    ]
    zones = zones_answer(
        *WEST_2,
        zone("us-west-2-lax-1a", "local-zone"),
        zone("us-west-2-wl1-sea-wlz-1", "wavelength-zone"),
        {"zone_name": "us-west-2-odd-1a", "state": "available"},
    )
    problems = network.given_subnet_problems(
        answer(found),
        "vpc-1",
        ["subnet-pa", "subnet-pl"],
        ["subnet-xb", "subnet-xw", "subnet-xq", "subnet-xu"],
        "us-west-2",
        zones,
    )
    tail = (
        ", not in an Availability Zone, and the load balancer and the work volume's mount targets are placed in"
        " Availability Zones only; set the ID of a subnet of vpc-1 in one of us-west-2's Availability Zones"
    )
    assert problems == [
        "notebook_public_subnet_ids: subnet-pl is in us-west-2-lax-1a, a local-zone" + tail,
        f"notebook_private_subnet_ids: subnet-xb is on an Outpost ({outpost})" + tail,
        "notebook_private_subnet_ids: subnet-xw is in us-west-2-wl1-sea-wlz-1, a wavelength-zone" + tail,
        "notebook_private_subnet_ids: subnet-xq is in us-west-2-new-1a, a zone DescribeAvailabilityZones did not list"
        + tail,
        "notebook_private_subnet_ids: subnet-xu is in us-west-2-odd-1a, a zone of no known type" + tail,
    ]


def test_subnets_in_availability_zones_pass_the_zone_type_check() -> None:
    found = [in_zone("subnet-pa", "us-west-2a"), in_zone("subnet-pb", "us-west-2b"), in_zone("subnet-xa", "us-west-2a")]
    zones = zones_answer(*WEST_2)
    assert network.given_subnet_problems(answer(found), "vpc-1", ["subnet-pa", "subnet-pb"], ["subnet-xa"], "", zones) == []
    # Skipped (no subnet found to look up): the types are not checked, the rest still is.
    skipped = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}
    assert network.given_subnet_problems(answer(found), "vpc-1", ["subnet-pa", "subnet-pb"], ["subnet-xa"], "", skipped) == []


def test_a_lookup_that_failed_is_a_problem_naming_the_permission_when_refused() -> None:
    refused = {
        "failed": True,
        "msg": "Failed to describe subnets: An error occurred (UnauthorizedOperation) when calling the DescribeSubnets"
        " operation: You are not authorized to perform this operation.",
    }
    assert network.given_subnet_problems(refused, "vpc-1", ["subnet-pa"], ["subnet-xa"]) == [
        "notebook_public_subnet_ids, notebook_private_subnet_ids: the subnets could not be looked up: "
        + refused["msg"] + "; check that the credentials may call ec2:DescribeSubnets"
    ]
    # The zones' lookup failing is said beside every other problem; no zone type is assumed.
    found = [in_zone("subnet-pa", "us-west-2a"), in_zone("subnet-pl", "us-west-2-lax-1a")]
    timeout = {"failed": True, "msg": "Unable to describe availability zones.: Read timeout on endpoint URL"}
    assert network.given_subnet_problems(answer(found), "vpc-1", ["subnet-pa", "subnet-pl", "subnet-gone"], [], "", timeout) == [
        "notebook_public_subnet_ids, notebook_private_subnet_ids: the subnets' zones could not be looked up: "
        "Unable to describe availability zones.: Read timeout on endpoint URL",
        "notebook_public_subnet_ids: subnet-gone does not exist; set the ID of a subnet of vpc-1",
    ]
    denied = {"failed": True, "msg": "An error occurred (AccessDenied) when calling DescribeAvailabilityZones"}
    assert network.given_subnet_problems(answer(found[:1]), "vpc-1", ["subnet-pa"], [], "", denied) == [
        "notebook_public_subnet_ids, notebook_private_subnet_ids: the subnets' zones could not be looked up: "
        + denied["msg"] + "; check that the credentials may call ec2:DescribeAvailabilityZones"
    ]


def test_a_refused_lookup_names_the_permission_and_another_failure_only_its_error() -> None:
    refused = {"failed": True, "msg": "An error occurred (UnauthorizedOperation) when calling the DescribeVpcs operation"}
    assert network.lookup_failure(refused, "ec2:DescribeVpcs") == (
        "could not be looked up: " + refused["msg"] + "; check that the credentials may call ec2:DescribeVpcs"
    )
    assert network.lookup_failure({"failed": True}, "ec2:DescribeVpcs") == "could not be looked up: no answer"
