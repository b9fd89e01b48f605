"""up.yml's short way, its parts alone: the inputs digest, the record and its key, and the secrets' comparison."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ansible_collections.nbstack.cloud.plugins.lookup.inputs_digest import digest
from ansible_collections.nbstack.cloud.plugins.module_utils import applied, short_way


@pytest.fixture
def code(tmp_path: Path) -> Path:
    (tmp_path / "roles" / "a" / "tasks").mkdir(parents=True)
    (tmp_path / "roles" / "a" / "tasks" / "main.yml").write_text("- name: One\n")
    (tmp_path / "up.yml").write_text("---\n")
    return tmp_path


def test_the_digest_changes_with_any_setting_or_file_and_with_nothing_else(code: Path) -> None:
    paths = [str(code / "up.yml"), str(code / "roles")]
    settings = {"prefix": "alice", "notebook_idle": {"timeout_minutes": 60}}
    first = digest(paths, settings)
    assert digest(paths, dict(settings)) == first
    assert digest(paths, {**settings, "notebook_idle": {"timeout_minutes": 30}}) != first
    (code / "roles" / "a" / "__pycache__").mkdir()
    (code / "roles" / "a" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert digest(paths, settings) == first  # byte-code caches are no input
    (code / "roles" / "a" / "tasks" / "main.yml").write_text("- name: Two\n")
    changed = digest(paths, settings)
    assert changed != first
    (code / "roles" / "a" / "tasks" / "other.yml").write_text("")
    assert digest(paths, settings) != changed  # a new (even empty) file too


def test_the_digest_refuses_a_path_that_is_not_there(code: Path) -> None:
    with pytest.raises(Exception, match="does not exist"):
        digest([str(code / "nowhere")], {})


@pytest.mark.parametrize(("app", "prefix"), [("app", "../alice"), ("app", "alice/x"), ("../app", "alice"), ("app", ""), ("App", "alice")])
def test_no_record_path_for_a_name_that_is_no_plain_name(app: str, prefix: str) -> None:
    assert applied.record_path("/records", "https://cloudformation.eu-west-1.amazonaws.com", "123456789012", "eu-west-1", app, prefix) is None


def test_each_endpoint_keeps_its_own_record() -> None:
    aws = applied.record_path("/r", "https://cloudformation.eu-west-1.amazonaws.com", "123456789012", "eu-west-1", "app", "alice")
    local = applied.record_path("/r", "http://127.0.0.1:5000", "123456789012", "eu-west-1", "app", "alice")
    assert aws and local and aws != local
    assert aws == applied.record_path("/r", "https://cloudformation.eu-west-1.amazonaws.com", "123456789012", "eu-west-1", "app", "alice")
    assert Path(aws).parent == Path("/r")


def stack(**changes: Any) -> dict[str, Any]:
    found = {
        "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/app-alice/1",
        "StackStatus": "UPDATE_COMPLETE",
        "CreationTime": datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc),
        "LastUpdatedTime": datetime.datetime(2026, 11, 2, tzinfo=datetime.timezone.utc),
        "Parameters": [{"ParameterKey": "InstanceType", "ParameterValue": "m5.xlarge"}],
        "Tags": [{"Key": "nbstack:app", "Value": "app"}],
        "Outputs": [{"OutputKey": "ServiceName", "OutputValue": "app-alice"}],
    }
    found.update(changes)
    return found


@pytest.mark.parametrize(
    "change",
    [
        {"StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/app-alice/2"},
        {"StackStatus": "UPDATE_ROLLBACK_COMPLETE"},
        {"LastUpdatedTime": datetime.datetime(2026, 11, 3, tzinfo=datetime.timezone.utc)},
        {"Parameters": [{"ParameterKey": "InstanceType", "ParameterValue": "m5.2xlarge"}]},
        {"Tags": []},
        {"Outputs": [{"OutputKey": "ServiceName", "OutputValue": "other"}]},
    ],
)
def test_any_change_to_a_stack_changes_its_fingerprint(change: dict[str, Any]) -> None:
    assert applied.stack_fingerprint(stack()) == applied.stack_fingerprint(stack())
    assert applied.stack_fingerprint(stack(**change)) != applied.stack_fingerprint(stack())


def test_a_record_is_read_back_whole_and_an_older_or_broken_one_is_none(tmp_path: Path) -> None:
    path = str(tmp_path / "records" / "r.json")
    applied.write(path, {"inputs": "abc"})
    assert applied.read(path) == {"inputs": "abc", "version": applied.VERSION}
    assert [p.name for p in (tmp_path / "records").iterdir()] == ["r.json"]  # no temporary file left
    Path(path).write_text(json.dumps({"inputs": "abc", "version": applied.VERSION - 1}))
    assert applied.read(path) is None
    Path(path).write_text("{not json")
    assert applied.read(path) is None
    assert applied.read(str(tmp_path / "none.json")) is None


class Secrets:
    """Secrets Manager's two answers the comparison reads: a value with its version, and a secret's stages."""

    class exceptions:  # noqa: N801 (boto3's spelling)
        ResourceNotFoundException = KeyError

    def __init__(self, stored: dict[str, tuple[str, str]]) -> None:
        self.stored = stored

    def get_secret_value(self, SecretId: str, aws_retry: bool) -> dict[str, str]:  # noqa: N803
        value, version = self.stored[SecretId]
        return {"SecretString": value, "VersionId": version}

    def describe_secret(self, SecretId: str, aws_retry: bool) -> dict[str, Any]:  # noqa: N803
        return {"VersionIdsToStages": {self.stored[SecretId][1]: ["AWSCURRENT"], "old": ["AWSPREVIOUS"]}}


def comparison(stored: dict[str, tuple[str, str]], given: dict[str, str]) -> short_way.Comparison:
    found = short_way.Comparison.__new__(short_way.Comparison)
    found.params = {"secrets": given}
    found.client = lambda service: Secrets(stored)
    found.module = SimpleNamespace()
    return found


RECORD = {"secrets": {"app/alice/notebook-password": "v1", "app/alice/api-token": "t1"}}


def test_the_vaults_values_and_the_recorded_versions_are_the_short_way() -> None:
    comparison({"app/alice/notebook-password": ("hunter2-long", "v1"), "app/alice/api-token": ("tok", "t1")},
               {"app/alice/notebook-password": "hunter2-long"}).secrets(RECORD)


@pytest.mark.parametrize(
    ("stored", "said"),
    [
        ({"app/alice/notebook-password": ("other-value", "v1"), "app/alice/api-token": ("tok", "t1")}, "vault's value of notebook-password"),
        ({"app/alice/notebook-password": ("hunter2-long", "v2"), "app/alice/api-token": ("tok", "t1")}, "new value"),
        ({"app/alice/notebook-password": ("hunter2-long", "v1"), "app/alice/api-token": ("tok", "t2")}, "api-token has a new value"),
    ],
)
def test_another_value_or_version_goes_the_whole_way_without_saying_the_value(stored: dict[str, tuple[str, str]], said: str) -> None:
    with pytest.raises(short_way.Different, match=said) as raised:
        comparison(stored, {"app/alice/notebook-password": "hunter2-long"}).secrets(RECORD)
    assert "hunter2-long" not in str(raised.value) and "other-value" not in str(raised.value)


def test_every_extra_var_counts_a_file_by_its_bytes_and_a_vault_key_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ansible_collections.nbstack.cloud.plugins.lookup import inputs_digest

    settings = tmp_path / "settings.yml"
    settings.write_text("a: 1\n")
    given = ("up__image_tag=c-123", f"@{settings}", "vault_notebook_password=hunter2-long", "recheck=true")
    monkeypatch.setattr(inputs_digest.context, "CLIARGS", {"extra_vars": given})
    found = inputs_digest.extra_vars(["recheck"])
    assert found[0] == "up__image_tag=c-123"
    assert len(found) == 2 and "hunter2-long" not in json.dumps(found)
    settings.write_text("a: 2\n")
    assert inputs_digest.extra_vars(["recheck"]) != found


class RefusedService:
    """AWS where the group starts and its instance registers, but UpdateService is refused."""

    def __init__(self) -> None:
        self.desired = 0

    def __call__(self, service: str) -> RefusedService:
        return self

    def describe_services(self, **_: Any) -> dict[str, Any]:
        return {"services": [{"status": "ACTIVE", "desiredCount": 0, "runningCount": 0, "serviceArn": "arn:service"}]}

    def describe_auto_scaling_groups(self, **_: Any) -> dict[str, Any]:
        instances = [{"InstanceId": "i-1", "LifecycleState": "InService"}] if self.desired else []
        return {"AutoScalingGroups": [{"DesiredCapacity": self.desired, "Instances": instances}]}

    def set_desired_capacity(self, DesiredCapacity: int, **_: Any) -> None:
        self.desired = DesiredCapacity

    def list_container_instances(self, **_: Any) -> dict[str, Any]:
        return {"containerInstanceArns": ["arn:ci"]}

    def describe_container_instances(self, **_: Any) -> dict[str, Any]:
        return {"containerInstances": [{"status": "ACTIVE", "agentConnected": True, "ec2InstanceId": "i-1",
                                        "attributes": [{"name": "nbstack.prefix", "value": "alice"}]}]}

    def update_service(self, **_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "UpdateService")


class Failed(Exception):
    pass


class StartingModule:
    check_mode = False
    params = {"prefix": "alice", "register_timeout": 5, "wait_timeout": 5, "wait_interval": 0}

    def fail_json_aws(self, error: Exception, msg: str, **result: Any) -> None:
        raise Failed(dict(result, msg=f"{msg}: {error}"))

    def fail_json(self, **result: Any) -> None:
        raise Failed(result)


def test_a_start_that_fails_after_the_group_started_says_so_and_that_it_changed_something() -> None:
    aws = RefusedService()
    outputs = {"ClusterName": "app", "ServiceName": "app-alice", "AutoScalingGroupName": "app-alice", "TargetGroupArn": "arn:tg"}
    with pytest.raises(Failed) as failed:
        short_way.start(StartingModule(), SimpleNamespace(client=aws), outputs)
    result = failed.value.args[0]
    assert aws.desired == 1
    assert result["changed"] is True
    assert "the auto scaling group stays at 1" in result["msg"] and "down.yml stops it" in result["msg"]
    assert "AccessDenied" in result["msg"]
    assert [step["step"] for step in result["timeline"]] == ["group to 1", "container instance ACTIVE"]


class NeverRegisters(RefusedService):
    def list_container_instances(self, **_: Any) -> dict[str, Any]:
        return {"containerInstanceArns": []}


def test_a_start_whose_instance_never_registers_says_the_group_it_raised_stays_up() -> None:
    aws = NeverRegisters()
    outputs = {"ClusterName": "app", "ServiceName": "app-alice", "AutoScalingGroupName": "app-alice", "TargetGroupArn": "arn:tg"}
    module = StartingModule()
    module.params = dict(module.params, register_timeout=0)
    with pytest.raises(Failed) as failed:
        short_way.start(module, SimpleNamespace(client=aws), outputs)
    result = failed.value.args[0]
    assert aws.desired == 1 and result["changed"] is True
    assert "became ACTIVE" in result["msg"] and "the auto scaling group stays at 1" in result["msg"]
