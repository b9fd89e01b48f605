"""The short way's action plugin: what a module would do for it (argument checks, no_log, check mode, failures)."""

from __future__ import annotations

import os
from typing import Any
from unittest.mock import MagicMock

import pytest
from ansible.errors import AnsibleActionFail
from botocore.exceptions import ClientError

from ansible_collections.nbstack.cloud.plugins.action import short_way as plugin
from ansible_collections.nbstack.cloud.plugins.action.short_way import ActionModule, ControllerModule
from ansible_collections.nbstack.cloud.plugins.module_utils import short_way

SECRET = "s3cr3t-value-Zq81"
ARGS = {"record_dir": "/records", "app_name": "app", "prefix": "alice", "inputs": "digest",
        "secrets": {"app/alice/notebook-password": SECRET}, "region": "eu-west-1"}


def action(args: dict[str, Any], check_mode: bool = False) -> ActionModule:
    task = MagicMock(args=args, check_mode=check_mode, async_val=0, diff=False, environment=None, delegate_to=None)
    return ActionModule(task, MagicMock(), MagicMock(), MagicMock(), MagicMock(), MagicMock())


def test_bad_arguments_are_refused_by_name_and_no_secret_is_shown() -> None:
    args = dict(ARGS, secrets=f"password={SECRET}x,", register_timeout="soon", colour="blue")
    with pytest.raises(AnsibleActionFail) as refused:
        action(args).run(task_vars={})
    said = str(refused.value)
    assert "secrets" in said and "register_timeout" in said and "unsupported parameters: colour" in said
    assert SECRET not in said


def test_the_connection_options_come_from_the_environment_as_amazon_aws_modules_read_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = {}
    monkeypatch.setenv("AWS_PROFILE", "team")
    monkeypatch.setattr(short_way, "run", lambda module: seen.update(module.params) or {"current": False})
    action({k: v for k, v in ARGS.items() if k != "region"} | {"aws_region": "eu-central-1"}).run(task_vars={})
    assert seen["profile"] == "team"
    assert seen["region"] == "eu-central-1"
    assert seen["wait_timeout"] == 600 and seen["wait_interval"] == 2


@pytest.mark.parametrize("check_mode", [True, False])
def test_check_mode_reaches_the_start(monkeypatch: pytest.MonkeyPatch, check_mode: bool) -> None:
    monkeypatch.setattr(short_way, "run", lambda module: {"check_mode": module.check_mode})
    assert action(ARGS, check_mode=check_mode).run(task_vars={})["check_mode"] is check_mode


def test_a_failure_is_the_tasks_result_with_no_secret_in_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(module: Any) -> dict[str, Any]:
        try:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": f"not for {SECRET}"}}, "UpdateService")
        except ClientError as error:
            module.fail_json_aws(error, msg="Could not start the notebook server", timeline=[{"step": "group to 1"}])
        return {}

    monkeypatch.setattr(short_way, "run", failing)
    result = action(ARGS).run(task_vars={})
    assert result["failed"] is True
    assert result["msg"].startswith("Could not start the notebook server: An error occurred (AccessDenied)")
    assert result["error"]["code"] == "AccessDenied"
    assert result["timeline"] == [{"step": "group to 1"}]
    assert SECRET not in repr(result)


def test_a_warning_shows_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr(plugin.display, "warning", shown.append)
    ControllerModule({}, False, {SECRET}).warn(f"the health check of {SECRET} has not passed")
    assert shown and SECRET not in shown[0]


def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("platform", "proxy", "keywords", "debug_logs", "here"),
    [
        ("linux", None, {}, False, True),
        ("linux", None, {"environment": [{}]}, False, True),  # what a task without environment: has
        ("linux", None, {}, True, False),  # AnsibleAWSModule collects the calls made (resource_actions)
        ("darwin", None, {}, False, False),  # macOS's proxy lookup is not safe in a forked process
        ("darwin", "http://proxy.example:3128", {}, False, True),  # urllib reads the variable, never asks the system
        # What only a module process honours.
        ("linux", None, {"environment": [{"AWS_PROFILE": "team"}]}, False, False),
        ("linux", None, {"delegate_to": "bastion"}, False, False),
        ("linux", None, {"async_val": 600}, False, False),
    ],
)
def test_where_the_work_runs(monkeypatch: pytest.MonkeyPatch, platform: str, proxy: str | None, keywords: dict[str, Any],
                             debug_logs: bool, here: bool) -> None:
    no_proxy_variables(monkeypatch)
    if proxy:
        monkeypatch.setenv("https_proxy", proxy)
    monkeypatch.setattr(plugin, "PLATFORM", platform)
    monkeypatch.setattr(short_way, "run", lambda module: {"ran": "here"})
    args = dict(ARGS, debug_botocore_endpoint_logs=debug_logs)
    task = action(args)
    for keyword, value in keywords.items():
        setattr(task._task, keyword, value)
    modules: list[tuple[str, dict[str, Any]]] = []

    def execute_module(module_name: str, module_args: dict[str, Any], task_vars: dict[str, Any], wrap_async: bool) -> dict[str, Any]:
        modules.append((module_name, dict(module_args)))
        module_args["_ansible_check_mode"] = False  # as ActionBase._update_module_args does
        return {"ran": "as a module"}

    monkeypatch.setattr(task, "_execute_module", execute_module)
    monkeypatch.setattr(task, "_remove_tmp_path", lambda path: None)
    assert task.run(task_vars={})["ran"] == ("here" if here else "as a module")
    assert modules == ([] if here else [("nbstack.cloud.short_way", args)])
    # Ansible's own keys went into a copy: a retry (until:) validates the task's arguments again.
    assert task._task.args == args
    assert task.run(task_vars={})["ran"] == ("here" if here else "as a module")
