"""Bad settings stop up.yml before anything in AWS is touched.

Each case runs the real playbook and checks three things: it fails, the
message names the setting (and how to fix it), and the account is still empty.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from nbstack_devkit.emulator import Clients, Emulator
from nbstack_devkit.paths import BIN, ROOT
from nbstack_devkit.playbooks import Playbooks
from nbstack_devkit.waits import free_port


@pytest.fixture(autouse=True)
def empty_account(emulator: Emulator) -> None:
    emulator.reset()


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
        (["-e", '{"notebook_allowed_cidrs": []}'], "notebook_allowed_cidrs must be a non-empty list"),
        (["-e", '{"notebook_allowed_cidrs": ["10.0.0.0/8", "office"]}'], "not valid: office"),
        (["-e", '{"notebook_allowed_cidrs": ["10.0.0.0/8", "0.0.0.0/0"]}'], "notebook_allow_public: true"),
        (["-e", "instance_type=m5xlarge"], 'instance_type "m5xlarge" is not an EC2 instance type name'),
        (["-e", "instance_type=M5.XLARGE"], "-e instance_type=TYPE"),
        (["-e", "notebook_certificate_arn=arn:aws:iam::123456789012:role/x"], "notebook_certificate_arn"),
        (["-e", "notebook_repo_url=https://user:pw@git.example.com/r.git"], "notebook_repo_url"),
        (["-e", '{"notebook_vpc_id": "vpc-0abc"}'], "notebook_public_subnet_ids"),
        (["-e", "notebook_port=80"], "notebook_port (80) and notebook_health_port (8889) must be two different"),
        (["-e", "notebook_health_port=8888"], "notebook_port (8888) and notebook_health_port (8888) must be two different"),
        (["-e", "notebook_port=http"], "Fix them in group_vars/all/main.yml"),
        (["-e", "notebook_vpc_cidr=10.42.0.0/24"], "its size /24 is outside /16 to /19"),
        (["-e", "notebook_vpc_cidr=8.8.0.0/16"], 'notebook_vpc_cidr "8.8.0.0/16" cannot hold the network: it is not inside a private range'),
        (["-e", "notebook_vpc_cidr=169.254.0.0/16"], "it is not inside a private range"),
        (["-e", "notebook_vpc_cidr=127.0.0.0/16"], "it is not inside a private range"),
        (["-e", "notebook_vpc_cidr=172.17.0.0/16"], "overlaps 172.17.0.0/16, the Docker bridge"),
        (["-e", "notebook_vpc_cidr=10.42.0.1/16"], "host bits zero"),
        (["-e", '{"notebook_idle": {"timeout_minutes": 5}}'], "missing required arguments: max_lifetime_hours found in notebook_idle"),
        (["-e", '{"notebook_idle": {"timeout_minutes": 99999, "max_lifetime_hours": 0}}'], "notebook_idle.timeout_minutes: it is above 10080"),
        (["-e", '{"notebook_root_volume": {"size": 20, "type": "gp3"}}'], "notebook_root_volume.size: it is below 30"),
        (["-e", '{"notebook_root_volume": {"size": 50, "type": "io2"}}'], "value of type must be one of: gp3, gp2, got: io2 found in notebook_root_volume"),
        (["-e", '{"notebook_warehouse": {"host": "db.example.com"}}'],
         "missing required arguments: database, port, role_arn, user found in notebook_warehouse"),
        (["-e", '{"notebook_warehouse": {"host": "db.example.com", "port": 99999, "database": "d", "user": "u", "role_arn": ""}}'],
         "notebook_warehouse.port: it is above 65535"),
        (["-e", '{"notebook_warehouse": {"host": "db", "port": 5439.0, "database": "d", "user": "u", "role_arn": ""}}'],
         "notebook_warehouse.port: it is not a whole number"),
        (["-e", '{"notebook_warehouse": {"host": "db", "port": 5439, "database": "d", "user": "u", '
                '"role_arn": "arn:aws:iam::123456789012:role/*"}}'],
         "notebook_warehouse.role_arn: it must be empty, or the ARN of one IAM role (no wildcards)"),
        (["-e", 'notebook_idle={"timeout_minutes":5,"max_lifetime_hours":0}'], "notebook_idle: it is not a group of keys"),
        (["-e", "notebook_idle=5"], "value of 'notebook_idle' must be of type dict"),
        (["-e", '{"notebook_git": {"user_name": "x", "user_email": "nope"}}'], "notebook_git.user_email: it must be an e-mail address"),
        (["-e", "notebook_idle_timeout=0"], "notebook_idle_timeout is now notebook_idle.timeout_minutes"),
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
        "privileged-port",
        "same-ports",
        "port-not-a-number",
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
    ],
)
def test_bad_setting_is_refused(playbooks: Playbooks, aws: Clients, extra: list[str], expected: str) -> None:
    run = playbooks.up("alice", *extra)
    assert run.returncode != 0
    assert expected in run.text
    assert_nothing_created(aws)


def test_public_access_is_allowed_when_asked(playbooks: Playbooks, aws: Clients) -> None:
    run = playbooks.up(
        "alice", "-e", '{"notebook_allowed_cidrs": ["0.0.0.0/0"], "notebook_allow_public": true}', "--check"
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


def test_unusable_default_prefix_is_refused(playbooks: Playbooks, aws: Clients) -> None:
    run = playbooks.run("up.yml", env=user_named({}, "2nd.User"))
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
    """group_vars/all/vault.yml as shipped holds placeholders."""
    run = playbooks.run("up.yml", "-e", "prefix=alice", with_vault=False)
    assert run.returncode != 0
    assert "vault_github_token, vault_notebook_password, vault_warehouse_password" in run.text
    assert "ansible-vault encrypt group_vars/all/vault.yml" in run.text
    assert_nothing_created(aws)


def test_short_password_is_refused(playbooks: Playbooks, aws: Clients, tmp_path) -> None:
    values = dict(playbooks.vault.values, vault_notebook_password="short")
    weak = tmp_path / "vault.yml"
    weak.write_text(json.dumps(values))
    run = playbooks.run("up.yml", "-e", "prefix=alice", "-e", f"@{weak}", with_vault=False)
    assert run.returncode != 0 and "vault_notebook_password is shorter than 8" in run.text
    assert_nothing_created(aws)


def test_unreachable_aws_is_explained(playbooks: Playbooks, monkeypatch: pytest.MonkeyPatch) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setattr(playbooks.emulator, "environ", lambda: Emulator.environ(playbooks.emulator) | {"AWS_ENDPOINT_URL": nowhere})
    run = playbooks.up("alice")
    monkeypatch.undo()
    assert run.returncode != 0
    assert f"AWS cannot be reached in region eu-west-1 at AWS_ENDPOINT_URL={nowhere}" in run.text
    assert "Nothing was changed" in run.text


def test_down_checks_the_prefix_too(playbooks: Playbooks) -> None:
    run = playbooks.down("Bad_Prefix")
    assert run.returncode != 0 and 'prefix "Bad_Prefix" is not usable' in run.text


def test_a_vault_value_hidden_inside_its_own_arn_is_refused(playbooks: Playbooks, aws: Clients) -> None:
    # Ansible masks a no_log value wherever it occurs, the secret's ARN included.
    run = playbooks.up("alice", "-e", "vault_warehouse_password=alice")
    assert run.returncode != 0
    assert "vault_warehouse_password occurs in the name or ARN of its own secret" in run.text
    assert [s["StackName"] for s in aws.cloudformation.describe_stacks()["Stacks"] if s["StackName"].endswith("-alice")] == []
