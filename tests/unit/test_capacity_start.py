"""The capacity module's start: instance first, then the task; the health wait only when asked for."""

from __future__ import annotations

from typing import Any

from ansible_collections.nbstack.cloud.plugins.modules import capacity as module_under_test

STOPPED = {"service": 1, "autoscaling_group": 0}


class Module:
    """What start() uses of AnsibleAWSModule: its parameters and its warnings."""

    check_mode = False

    def __init__(self, wait_timeout: int) -> None:
        self.params = {
            "prefix": "alice",
            "cluster": "app",
            "service": "app-alice",
            "autoscaling_group": "app-alice",
            "register_timeout": 5,
            "wait_timeout": wait_timeout,
            "wait_interval": 0,
        }
        self.warnings: list[str] = []

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def fail_json(self, **result: Any) -> None:
        raise AssertionError(result["msg"])


class Capacity(module_under_test.Capacity):
    """The module's own ordering, with AWS's answers: the instance registers, the health check is read."""

    def __init__(self, module: Module, healthy: bool, stale: tuple[str, ...] = ()) -> None:  # pylint: disable=super-init-not-called
        self.module, self.params = module, module.params
        self.began, self.timeline, self.waited = 0.0, [], 0.0
        self.calls: list[str] = []
        self._healthy = healthy
        self._stale = list(stale)

    def stale_warm_instances(self, group: dict[str, Any]) -> list[str]:
        return list(self._stale)

    def drop_warm_instances(self, instance_ids: list[str]) -> None:
        self.calls.append(f"drop {' '.join(instance_ids)}")

    def set_group(self, count: int) -> None:
        self.calls.append(f"group {count}")

    def set_service(self, count: int) -> None:
        self.calls.append(f"service {count}")

    def registered(self) -> bool:
        self.calls.append("registered?")
        return True

    def clear_stop_tags(self, service: dict[str, Any]) -> None:
        self.calls.append("clear stop tags")

    def healthy(self) -> bool:
        self.calls.append("healthy?")
        return self._healthy


def start(wait_timeout: int, healthy: bool, stale: tuple[str, ...] = ()) -> tuple[dict[str, Any], Capacity, Module]:
    module = Module(wait_timeout)
    found = Capacity(module, healthy, stale)
    result = module_under_test.start(module, found, {"serviceArn": "arn"}, {}, STOPPED)
    return result, found, module


def test_no_health_wait_asked_for_reads_no_health_and_warns_of_nothing() -> None:
    result, found, module = start(0, healthy=False)
    assert found.calls == ["group 1", "registered?", "clear stop tags"]
    assert result["healthy"] is None and result["started"] is True
    assert module.warnings == []


def test_a_health_wait_that_ends_unhealthy_warns() -> None:
    result, found, module = start(1, healthy=False)
    assert found.calls[:3] == ["group 1", "registered?", "clear stop tags"] and "healthy?" in found.calls
    assert result["healthy"] is False
    assert len(module.warnings) == 1 and "has not passed after 1 s" in module.warnings[0]


def test_a_health_check_that_passes_is_said_healthy() -> None:
    result, found, module = start(5, healthy=True)
    assert result["healthy"] is True and module.warnings == []


def test_warm_pool_instances_of_an_older_launch_template_go_before_the_group_starts() -> None:
    _, found, _ = start(0, healthy=True, stale=("i-old",))
    assert found.calls[:2] == ["drop i-old", "group 1"]


class Pool(module_under_test.Capacity):
    """stale_warm_instances on DescribeWarmPool's answer."""

    def __init__(self, instances: list[dict[str, Any]]) -> None:  # pylint: disable=super-init-not-called
        self.params = {"autoscaling_group": "app-alice"}
        answer = {"Instances": instances}
        self.autoscaling = type("AutoScaling", (), {"describe_warm_pool": lambda self, **kw: answer})()


def test_only_pool_instances_of_another_launch_template_version_are_stale() -> None:
    group = {"LaunchTemplate": {"LaunchTemplateId": "lt-1", "Version": "3"}}
    pool = Pool([
        {"InstanceId": "i-old", "LaunchTemplate": {"LaunchTemplateId": "lt-1", "Version": "2"}},
        {"InstanceId": "i-new", "LaunchTemplate": {"LaunchTemplateId": "lt-1", "Version": "3"}},
    ])
    assert pool.stale_warm_instances(group) == ["i-old"]
    assert pool.stale_warm_instances({"LaunchTemplate": {"Version": "$Latest"}}) == []
