"""Bad settings stop up.yml, down.yml and status.yml before anything in AWS is changed.

Each case runs the real playbook and checks three things: it fails, the
message names the setting (and how to fix it), and the account is as it was:
empty, or, for the cases that matter once a team is up, the same stacks with
the same parameters, the same secrets and versions, the same security group
rules (account_state).
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from nbstack_devkit.emulator import Clients, Emulator
from nbstack_devkit.paths import BIN, ROOT
from nbstack_devkit.playbooks import Playbooks, ok
from nbstack_devkit.waits import free_port


@pytest.fixture(autouse=True)
def empty_account(request: pytest.FixtureRequest, emulator: Emulator) -> None:
    """Each test starts from an empty account, except those that need a team up (team_up)."""
    if "team_up" not in request.fixturenames:
        emulator.reset()


def account_state(aws: Clients) -> dict[str, Any]:
    """What a playbook could change: stacks with their parameters and status, secrets with their versions, SG rules."""
    stacks = {
        stack["StackName"]: {
            "status": stack["StackStatus"],
            "updated": str(stack.get("LastUpdatedTime", "")),
            "parameters": {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])},
        }
        for stack in aws.cloudformation.describe_stacks()["Stacks"]
    }
    secrets = {
        secret["Name"]: sorted(
            (version["VersionId"], tuple(version.get("VersionStages", [])))
            for version in aws.secretsmanager.list_secret_version_ids(SecretId=secret["ARN"])["Versions"]
        )
        for secret in aws.secretsmanager.list_secrets()["SecretList"]
    }
    rules = sorted(
        json.dumps({key: rule.get(key) for key in ("GroupId", "IsEgress", "IpProtocol", "FromPort", "ToPort",
                                                   "CidrIpv4", "CidrIpv6", "ReferencedGroupInfo")}, sort_keys=True)
        for rule in aws.ec2.describe_security_group_rules()["SecurityGroupRules"]
    )
    return {"stacks": stacks, "secrets": secrets, "security_group_rules": rules}


def assert_nothing_created(aws: Clients) -> None:
    assert aws.cloudformation.describe_stacks()["Stacks"] == []
    assert aws.secretsmanager.list_secrets()["SecretList"] == []


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["-e", "prefix=Alice"], 'prefix "Alice" is not usable'),
        (["-e", "prefix=9lives"], 'prefix "9lives" is not usable'),
        (["-e", "prefix=" + "a" * 29], "at most 28 lower-case letters"),
        (["-e", "prefix=al_ice"], "Pass one with -e prefix=NAME"),
        (["-e", '{"notebook_allowed_cidrs": []}'], "notebook_allowed_cidrs: it must be a non-empty list"),
        (["-e", '{"notebook_allowed_cidrs": ["10.0.0.0/8", "office"]}'], 'notebook_allowed_cidrs: not valid: "office"'),
        (["-e", '{"notebook_allowed_cidrs": ["10.0.0.0/8", "0.0.0.0/0"]}'], "notebook_allow_public: true"),
        (["-e", "instance_type=m5xlarge"], "instance_type: it must be an EC2 instance type such as m6i.xlarge"),
        (["-e", "instance_type=M5.XLARGE"], "-e instance_type=TYPE"),
        (["-e", "notebook_certificate_arn=arn:aws:iam::123456789012:role/x"], "notebook_certificate_arn"),
        (["-e", "notebook_repo_url=https://user:pw@git.example.com/r.git"], "notebook_repo_url"),
        (["-e", '{"notebook_vpc_id": "vpc-0abc"}'], "notebook_public_subnet_ids"),
        (["-e", '{"notebook_vpc_id": "vpc-1"}'], "notebook_vpc_id vpc-1 is not a VPC ID (vpc- and 8 or 17 hexadecimal digits)"),
        (["-e", "notebook_port=80"], "notebook_port: it is below 1024"),
        (["-e", "notebook_health_port=8888"], "notebook_port and notebook_health_port: they must differ"),
        (["-e", "notebook_port=http"], "notebook_port: it is not a whole number"),
        (["-e", "notebook_port=2375"], "notebook_port: it is a host port the ECS agent reserves on every container instance"),
        (["-e", "notebook_health_port=51678"], "notebook_health_port: it is a host port the ECS agent reserves"),
        (["-e", "notebook_vpc_cidr=10.42.0.0/24"], "its size /24 is outside /16 to /19"),
        (["-e", "notebook_vpc_cidr=8.8.0.0/16"], "notebook_vpc_cidr: it cannot hold the network: it is not inside a private range"),
        (["-e", "notebook_vpc_cidr=169.254.0.0/16"], "it is not inside a private range"),
        (["-e", "notebook_vpc_cidr=127.0.0.0/16"], "it is not inside a private range"),
        (["-e", "notebook_vpc_cidr=172.17.0.0/16"], "overlaps 172.17.0.0/16, the Docker bridge"),
        (["-e", "notebook_vpc_cidr=10.42.0.1/16"], "host bits zero"),
        (["-e", '{"notebook_idle": {"timeout_minutes": 5}}'], "notebook_idle: it has no max_lifetime_hours"),
        (["-e", '{"notebook_idle": {"timeout_minutes": 99999, "max_lifetime_hours": 0}}'], "notebook_idle.timeout_minutes: it is above 10080"),
        (["-e", '{"notebook_root_volume": {"size": 20, "type": "gp3"}}'], "notebook_root_volume.size: it is below 30"),
        (["-e", '{"notebook_root_volume": {"size": 50, "type": "io2"}}'], "notebook_root_volume.type: it is not one of gp3, gp2"),
        (["-e", '{"notebook_warehouse": {"host": "db.example.com"}}'],
         "notebook_warehouse: it has no database, port, role_arn, user"),
        (["-e", '{"notebook_warehouse": {"host": "db.example.com", "port": 99999, "database": "d", "user": "u", "role_arn": ""}}'],
         "notebook_warehouse.port: it is above 65535"),
        (["-e", '{"notebook_warehouse": {"host": "db", "port": 5439.0, "database": "d", "user": "u", "role_arn": ""}}'],
         "notebook_warehouse.port: it is not a whole number"),
        (["-e", '{"notebook_warehouse": {"host": "db", "port": 5439, "database": "d", "user": "u", '
                '"role_arn": "arn:aws:iam::123456789012:role/*"}}'],
         "notebook_warehouse.role_arn: it must be empty, or the ARN of one IAM role (no wildcards)"),
        (["-e", 'notebook_idle={"timeout_minutes":5,"max_lifetime_hours":0}'], "notebook_idle: it is not a group of keys"),
        (["-e", "notebook_idle=5"], "notebook_idle: it is not a group of keys"),
        (["-e", '{"notebook_git": {"user_name": "x", "user_email": "nope"}}'], "notebook_git.user_email: it must be an e-mail address"),
        (["-e", "notebook_idle_timeout=0"], "notebook_idle_timeout is now notebook_idle.timeout_minutes"),
        (["-e", "instance_type=m6g.large"], "instance_type: m6g.large has arm64 processors"),
        (["-e", "instance_type=g5g.xlarge"], "the notebook image is built for linux/amd64 only"),
        (["-e", "instance_type=inf2.xlarge"], "instance_type: inf2.xlarge has 1 Neuron device (Inferentia2), which nbstack cannot use"),
        (["-e", "instance_type=trn1.2xlarge"], "for NVIDIA GPUs only"),
        (["-e", "instance_type=t3.micro"], "instance_type: t3.micro has 1024 MiB of memory, which leaves the notebook container"),
        # 31 + "-models-" + 12 + "-" + "eu-west-1" = 61: allowed by the app name's pattern; 35 + 26 = 65 is not.
        (["-e", "notebook_app_name=" + "a" * 31, "-e", "aws_region=ap-southeast-2"],
         "notebook_app_name and aws_region: the model bucket would be " + "a" * 31 + "-models-"),
        (["-e", "notebook_app_name=xn--team"], "notebook_app_name: the model bucket xn--team-models-"),
        (["-e", "notebook_model_bucket=Models_Bucket"], "notebook_model_bucket"),
        (["-e", "notebook_model_version_days=0"], "notebook_model_version_days: it is below 1"),
    ],
    ids=[
        "uppercase-prefix",
        "prefix-starting-with-digit",
        "too-long-prefix",
        "prefix-with-underscore",
        "empty-cidrs",
        "invalid-cidr",
        "public-cidr",
        "malformed-instance-type",
        "uppercase-instance-type",
        "wrong-certificate-arn",
        "credentials-in-repo-url",
        "half-given-network",
        "malformed-vpc-id",
        "privileged-port",
        "same-ports",
        "port-not-a-number",
        "port-the-ecs-agent-reserves-for-docker",
        "health-port-the-ecs-agent-reserves-for-itself",
        "vpc-range-too-small",
        "vpc-range-public",
        "vpc-range-link-local",
        "vpc-range-loopback",
        "vpc-range-on-the-docker-bridge",
        "vpc-range-with-host-bits",
        "idle-group-given-in-part",
        "idle-timeout-above-the-template-maximum",
        "root-volume-too-small",
        "root-volume-type-not-offered",
        "warehouse-group-given-in-part",
        "warehouse-port-out-of-range",
        "warehouse-port-not-whole",
        "warehouse-role-with-a-wildcard",
        "group-given-as-a-string",
        "group-given-as-a-number",
        "malformed-git-email",
        "old-setting-name",
        "graviton-instance-type",
        "graviton-gpu-instance-type",
        "inferentia-instance-type",
        "trainium-instance-type",
        "instance-type-too-small-for-the-container",
        "model-bucket-name-too-long",
        "model-bucket-name-reserved",
        "malformed-model-bucket",
        "model-versions-kept-no-day",
    ],
)
def test_bad_setting_is_refused(playbooks: Playbooks, aws: Clients, extra: list[str], expected: str) -> None:
    # up.yml itself on a new account (no image.yml first): its preflight reports the setting too.
    run = playbooks.up("alice", *extra, image=False)
    assert run.returncode != 0
    assert expected in run.text
    assert_nothing_created(aws)


def test_instance_type_problems_come_with_the_others_and_an_unread_quota_is_a_warning(playbooks: Playbooks, aws: Clients) -> None:
    """The emulator has no EC2 vCPU quotas (Service Quotas answers NoSuchResource): the run says so and goes on."""
    run = playbooks.up("alice", "-e", "instance_type=m6g.large", "-e", "notebook_port=80")
    assert run.returncode != 0
    assert "2 problems with the settings" in run.text, run.tail()
    assert "instance_type: m6g.large has arm64 processors" in run.text
    assert "notebook_port: it is below 1024" in run.text
    assert "vCPU quota for m6g.large (Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances, L-1216C47A)" in run.text
    assert "could not be read" in run.text
    assert_nothing_created(aws)


# --- Once a team is up: a bad setting changes none of its stacks, secrets or rules.

TEAM = "bob"


#: The account's state right after bob's up.yml, once it was made.
_TEAM: dict[str, Any] = {}


@pytest.fixture
def team_up(emulator: Emulator, playbooks: Playbooks, aws: Clients) -> dict[str, Any]:
    """The shared stacks and bob's server up, and the account's state; made again when a test left it otherwise."""
    try:
        now = account_state(aws)
    except Exception:  # an emulator left in a state it cannot describe is made again, as one that differs
        now = None
    if not _TEAM or now != _TEAM["state"]:
        emulator.reset()
        ok(playbooks.up(TEAM))
        _TEAM["state"] = account_state(aws)
    return _TEAM["state"]


def many_ranges(count: int, version: int = 4) -> list[str]:
    base = ipaddress.ip_network("198.18.0.0/15" if version == 4 else "2001:db8::/32")
    return [str(net) for net, _ in zip(base.subnets(new_prefix=27 if version == 4 else 64), range(count), strict=False)]


def settings(**values: Any) -> list[str]:
    return ["-e", json.dumps(values)]


@pytest.mark.parametrize(
    ("command", "extra", "expected"),
    [
        ("up.yml", settings(notebook_allowed_cidrs=["0.0.0.0/1", "128.0.0.0/1"]),
         "notebook_allowed_cidrs: 0.0.0.0/1, 128.0.0.0/1 let the internet at large reach the server"),
        ("up.yml", settings(notebook_allowed_cidrs=["198.51.100.0/24", "::/1", "8000::/1"]),
         "notebook_allowed_cidrs: ::/1, 8000::/1 let the internet at large reach the server"),
        ("up.yml", settings(notebook_allowed_cidrs=["2000::/3"]), "notebook_allowed_cidrs: 2000::/3 let the internet"),
        ("up.yml", settings(notebook_allowed_cidrs=["2001:db8::/32"]),
         "notebook_allowed_cidrs: it holds no IPv4 range, and the load balancer has IPv4 addresses only"),
        ("up.yml", settings(prefix="persistent"), "nbtest-persistent would name a shared persistent stack"),
        ("up.yml", settings(prefix="network"), "nbtest-network would name a shared network stack"),
        ("up.yml", settings(prefix="team-persistent"), "would name a shared persistent stack"),
        ("down.yml", settings(prefix="persistent"), "nbtest-persistent would name a shared persistent stack"),
        ("down.yml", settings(prefix="network"), "nbtest-network would name a shared network stack"),
        ("status.yml", settings(prefix="persistent"), "nbtest-persistent would name a shared persistent stack"),
        ("up.yml", settings(prefix="alice\n"), 'prefix "alice\\n" is not usable'),
        ("down.yml", settings(prefix="bob\n"), 'prefix "bob\\n" is not usable'),
        ("up.yml", settings(notebook_app_name="nbtest\n"), 'notebook_app_name "nbtest\\n" is not usable'),
        ("up.yml", settings(aws_region="eu-west-1\n"), 'aws_region "eu-west-1\\n" is not an AWS region name'),
        ("up.yml", settings(notebook_git={"user_name": "alice", "user_email": "alice@example.com\n"}),
         "notebook_git.user_email: it must be an e-mail address"),
        ("up.yml", settings(notebook_git={"user_name": "alice", "user_email": "alice at example.com"}),
         "notebook_git.user_email: it must be an e-mail address"),
        ("up.yml", settings(notebook_idle={"timeout_minutes": -5, "max_lifetime_hours": 0}),
         "notebook_idle.timeout_minutes: it is below 0"),
        ("up.yml", settings(notebook_idle={"timeout_minutes": 60, "max_lifetime_hours": -1}),
         "notebook_idle.max_lifetime_hours: it is below 0"),
        ("up.yml", ["-e", "notebook_port=99999"], "notebook_port: it is above 65535"),
        ("up.yml", ["-e", "rotate_api_token=ture"], "rotate_api_token: it must be true or false"),
        ("up.yml", ["-e", "notebook_health_port=0"], "notebook_health_port: it is below 1024"),
        ("up.yml", ["-e", "notebook_port=8888.5"], "notebook_port: it is not a whole number"),
        ("up.yml", settings(notebook_allowed_cidrs=many_ranges(61)),
         "notebook_allowed_cidrs: its 61 IPv4 ranges need 61 inbound rules"),
        ("up.yml", settings(notebook_allowed_cidrs=many_ranges(61, 6)),
         "notebook_allowed_cidrs: its 61 IPv6 ranges need 61 inbound rules"),
        ("up.yml", settings(notebook_allowed_cidrs=many_ranges(31), notebook_domain="notebooks.example.com",
                            notebook_certificate_arn="arn:aws:acm:eu-west-1:123456789012:certificate/0a1b"),
         "its 31 IPv4 ranges need 62 inbound rules (2 listener ports each)"),
        ("up.yml", ["-e", "instance_type=m5.enormous"], 'instance_type: "m5.enormous" is not offered in region eu-west-1'),
        ("up.yml", ["-e", "notebook_log_retention_days=2"], "notebook_log_retention_days: it is not one of 1, 3, 5"),
        ("up.yml", ["-e", "notebook_health_check_grace_period=-1"], "notebook_health_check_grace_period: it is below 0"),
        ("up.yml", ["-e", "notebook_health_check_grace_period=99999"], "notebook_health_check_grace_period: it is above 7200"),
        ("up.yml", settings(notebook_image="my image:1"), "notebook_image: it must be an image reference without spaces"),
        ("up.yml", settings(notebook_gpu_image="x" * 300), "notebook_gpu_image: it must be an image reference"),
        ("up.yml", settings(notebook_image_tag="v1 beta"), "notebook_image_tag: it must be an image tag"),
        ("up.yml", settings(notebook_root_volume={"size": 20000, "type": "gp3"}), "notebook_root_volume.size: it is above 16384"),
        ("up.yml", settings(notebook_root_volume={"size": 100, "type": "io2"}), "notebook_root_volume.type: it is not one of gp3, gp2"),
        ("up.yml", settings(notebook_warehouse={"host": "db example", "port": 5439, "database": "d", "user": "u", "role_arn": ""}),
         "notebook_warehouse.host: it must be empty, or a DNS host name"),
        ("up.yml", settings(notebook_warehouse={"host": "db", "port": 0, "database": "d", "user": "u", "role_arn": ""}),
         "notebook_warehouse.port: it is below 1"),
        ("up.yml", settings(notebook_warehouse={"host": "db", "port": 5439, "database": "d", "user": "u", "role_arn": "",
                                                "password": "x"}),
         "notebook_warehouse.password: notebook_warehouse has no such key"),
        ("up.yml", ["-e", "notebook_repo_url=http://git.example.com/team/notebooks.git"],
         "notebook_repo_url: it must be an https:// URL (the container accepts plain http:// only on this machine's loopback)"),
        ("up.yml", ["-e", "notebook_repo_url=ssh://git@git.example.com/team/notebooks.git"], "notebook_repo_url: it must be an https:// URL"),
        ("up.yml", settings(notebook_repo_url="https://git.example.com/team/notebooks.git\n"), "notebook_repo_url: it must be the https URL"),
        ("up.yml", settings(notebook_allow_public="maybe"), "notebook_allow_public: it must be true or false"),
    ],
    ids=[
        "ipv4-halves-together-are-public",
        "ipv6-halves-together-are-public",
        "all-global-ipv6-is-public",
        "ipv6-only-admits-no-one",
        "up-prefix-names-the-persistent-stack",
        "up-prefix-names-the-network-stack",
        "up-prefix-names-another-apps-persistent-stack",
        "down-prefix-names-the-persistent-stack",
        "down-prefix-names-the-network-stack",
        "status-prefix-names-the-persistent-stack",
        "prefix-with-a-trailing-newline",
        "down-prefix-with-a-trailing-newline",
        "app-name-with-a-trailing-newline",
        "region-with-a-trailing-newline",
        "git-email-with-a-trailing-newline",
        "git-email-without-at",
        "negative-idle-timeout",
        "negative-max-lifetime",
        "port-above-65535",
        "rotate-api-token-not-a-boolean",
        "health-port-zero",
        "port-not-whole",
        "more-ipv4-ranges-than-the-rule-quota",
        "more-ipv6-ranges-than-the-rule-quota",
        "rule-quota-counts-both-https-ports",
        "instance-type-that-does-not-exist",
        "log-retention-cloudwatch-does-not-offer",
        "negative-grace-period",
        "grace-period-above-the-maximum",
        "image-with-a-space",
        "image-name-too-long",
        "image-tag-with-a-space",
        "root-volume-too-large",
        "root-volume-type-not-offered-with-a-team-up",
        "warehouse-host-with-a-space",
        "warehouse-port-zero",
        "warehouse-group-with-an-unknown-key",
        "plain-http-repository-elsewhere-than-loopback",
        "ssh-repository",
        "repository-url-with-a-trailing-newline",
        "allow-public-not-a-boolean",
    ],
)
def test_bad_setting_changes_nothing_of_a_team_that_is_up(
    playbooks: Playbooks, aws: Clients, team_up: dict[str, Any], command: str, extra: list[str], expected: str
) -> None:
    run = playbooks.run(command, "-e", "prefix=alice", *extra, with_vault=command == "up.yml")
    assert run.returncode != 0
    assert expected in run.text, run.tail()
    assert "nothing in AWS was changed" in run.text
    assert account_state(aws) == team_up


def test_every_bad_setting_is_reported_in_one_run(playbooks: Playbooks, aws: Clients, team_up: dict[str, Any]) -> None:
    run = playbooks.up(
        "alice",
        *settings(
            notebook_allowed_cidrs=["0.0.0.0/1", "128.0.0.0/1"],
            notebook_idle={"timeout_minutes": -1, "max_lifetime_hours": 0},
            notebook_git={"user_name": "alice", "user_email": "nope"},
            notebook_port=99999,
            notebook_log_retention_days=2,
            notebook_repo_url="http://git.example.com/r.git",
            notebook_idle_timeout=5,
        ),
        "-e", "instance_type=m5.enormous",
    )
    assert run.returncode != 0
    for expected in (
        "9 problems with the settings",
        # bob is up and alice would get the team vault's values too.
        "the servers of bob already exist",
        "notebook_allowed_cidrs: 0.0.0.0/1, 128.0.0.0/1",
        "notebook_idle.timeout_minutes: it is below 0",
        "notebook_git.user_email: it must be an e-mail address",
        "notebook_port: it is above 65535",
        "notebook_log_retention_days: it is not one of",
        "notebook_repo_url: it must be an https:// URL",
        "notebook_idle_timeout is now notebook_idle.timeout_minutes",
        'instance_type: "m5.enormous" is not offered',
    ):
        assert expected in run.text, expected
    # One failure says it all: the run stopped at the report, not at the first problem.
    assert run.output.count("fatal: [localhost]") == 1
    assert account_state(aws) == team_up


def test_no_vault_value_reaches_the_report(playbooks: Playbooks, aws: Clients, team_up: dict[str, Any]) -> None:
    """A vault value given as a setting by mistake is not repeated by the message that refuses it."""
    assert playbooks.vault is not None
    token = playbooks.vault.values["vault_github_token"]
    run = playbooks.up("alice", "-e", f"notebook_app_name={token}")
    assert run.returncode != 0
    assert 'notebook_app_name "********" is not usable' in run.text
    assert token not in run.output
    assert account_state(aws) == team_up


def test_a_good_run_after_the_bad_ones_still_works(playbooks: Playbooks, aws: Clients, team_up: dict[str, Any]) -> None:
    """The checks refuse what is bad, not what the team runs: bob's up.yml again changes nothing."""
    run = ok(playbooks.up(TEAM))
    assert run.changed == 0
    assert account_state(aws) == team_up


def test_public_access_is_allowed_when_asked(playbooks: Playbooks, aws: Clients) -> None:
    run = playbooks.up(
        "alice", "-e", '{"notebook_allowed_cidrs": ["0.0.0.0/0"], "notebook_allow_public": true}', "--check",
        # The team's shared stacks may be up: other ranges are a team-wide change.
        "-e", "team_update=true",
    )
    assert run.returncode == 0, run.output[-3000:]


def user_named(env: dict[str, str], name: str) -> dict[str, str]:
    """The environment of a login of the given user name (as Python's getpass reads it)."""
    return {**env, "LOGNAME": name, "USER": name}


def test_default_prefix_comes_from_the_user_name(playbooks: Playbooks) -> None:
    env = user_named(playbooks.env(), "Jane.Doe_2")
    shown = subprocess.run(
        [str(BIN / "ansible"), "localhost", "-m", "ansible.builtin.debug", "-a", "var=prefix"],
        cwd=ROOT, capture_output=True, text=True, env=env, check=True,
    )
    assert "prefix: jane-doe-2" in shown.stdout


def test_unusable_default_prefix_is_refused(playbooks: Playbooks, aws: Clients, tmp_path: Path) -> None:
    # No such login here: Ansible's "~" for it stays literal, so its temporary
    # folder goes to tmp_path, not to a "~2nd.User" folder in the checkout.
    run = playbooks.run("up.yml", env=user_named({"ANSIBLE_REMOTE_TMP": str(tmp_path)}, "2nd.User"))
    assert not [*ROOT.glob("~2nd.User"), *ROOT.glob("*/~2nd.User")]
    assert run.returncode != 0
    assert 'prefix "2nd-user" is not usable' in run.output
    assert_nothing_created(aws)


@pytest.mark.parametrize("missing", ["vault_github_token", "vault_notebook_password", "vault_warehouse_password"])
def test_missing_vault_value_is_named(playbooks: Playbooks, aws: Clients, tmp_path, missing: str) -> None:
    values = {key: value for key, value in playbooks.vault.values.items() if key != missing}
    partial = tmp_path / "vault.yml"
    partial.write_text(json.dumps(values))
    run = playbooks.run("up.yml", "-e", "prefix=alice", "-e", f"@{partial}", with_vault=False)
    assert run.returncode != 0
    assert f"still the example value: {missing}" in run.text
    for value in values.values():
        assert value not in run.output
    assert_nothing_created(aws)


def test_example_vault_is_refused(playbooks: Playbooks, aws: Clients) -> None:
    """The team vault as shipped, vault/team.yml, holds placeholders."""
    run = playbooks.run("up.yml", "-e", "prefix=alice", with_vault=False)
    assert run.returncode != 0
    assert "vault_github_token, vault_notebook_password, vault_warehouse_password" in run.text
    assert f'ansible-vault encrypt {ROOT / "vault" / "team.yml"}' in run.text
    assert_nothing_created(aws)


@pytest.mark.parametrize("key", ["vault_notebook_password", "vault_warehouse_password"])
def test_short_secrets_are_refused(playbooks: Playbooks, aws: Clients, tmp_path, key: str) -> None:
    values = dict(playbooks.vault.values, **{key: "short"})
    weak = tmp_path / "vault.yml"
    weak.write_text(json.dumps(values))
    run = playbooks.run("up.yml", "-e", "prefix=alice", "-e", f"@{weak}", with_vault=False)
    assert run.returncode != 0 and f"{key} has fewer than 8" in run.text
    assert_nothing_created(aws)


def test_unreachable_aws_is_explained(playbooks: Playbooks, monkeypatch: pytest.MonkeyPatch) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setattr(playbooks.emulator, "environ", lambda: Emulator.environ(playbooks.emulator) | {"AWS_ENDPOINT_URL": nowhere})
    run = playbooks.up("alice", image=False)
    monkeypatch.undo()
    assert run.returncode != 0
    assert f"AWS cannot be reached in region eu-west-1 at AWS_ENDPOINT_URL={nowhere}" in run.text
    assert "nothing in AWS was changed" in run.text


def test_down_checks_the_prefix_too(playbooks: Playbooks) -> None:
    run = playbooks.down("Bad_Prefix")
    assert run.returncode != 0 and 'prefix "Bad_Prefix" is not usable' in run.text


@pytest.mark.parametrize("value", ["warehouse-password", "secretsmanager:eu-west-1"])
def test_a_vault_value_hidden_inside_its_own_arn_is_refused(playbooks: Playbooks, aws: Clients, value: str) -> None:
    # Ansible masks a no_log value wherever it occurs, the secret's ARN included.
    run = playbooks.up("alice", "-e", f"vault_warehouse_password={value}", image=False)
    assert run.returncode != 0
    assert "vault_warehouse_password occurs in the name or ARN of its own secret" in run.text
    assert_nothing_created(aws)
