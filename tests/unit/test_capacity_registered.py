"""Which container instance lets the capacity module ask for the task: only the person's, live, on the group's instance."""

from __future__ import annotations

from typing import Any

from ansible_collections.nbstack.cloud.plugins.module_utils.contract import PREFIX_ATTRIBUTE
from ansible_collections.nbstack.cloud.plugins.modules.capacity import Capacity


class Clients:
    """What ECS and Auto Scaling answer: the group's instances and the cluster's container instances."""

    def __init__(self, group_instances: list[dict[str, str]], container_instances: list[dict[str, Any]]) -> None:
        self.group_instances = group_instances
        self.container_instances = container_instances

    def describe_auto_scaling_groups(self, **_: Any) -> dict[str, Any]:
        return {"AutoScalingGroups": [{"AutoScalingGroupName": "app-alice", "Instances": self.group_instances}]}

    def list_container_instances(self, **_: Any) -> dict[str, Any]:
        return {"containerInstanceArns": [c["containerInstanceArn"] for c in self.container_instances]}

    def describe_container_instances(self, **_: Any) -> dict[str, Any]:
        return {"containerInstances": self.container_instances}


def capacity(clients: Clients) -> Capacity:
    found = Capacity.__new__(Capacity)
    found.params = {"prefix": "alice", "cluster": "app", "autoscaling_group": "app-alice"}
    found.ecs = found.autoscaling = clients
    return found


def container(instance: str, prefix: str = "alice", connected: bool = True) -> dict[str, Any]:
    return {
        "containerInstanceArn": f"arn:aws:ecs:eu-west-1:123456789012:container-instance/app/{instance}",
        "ec2InstanceId": instance,
        "status": "ACTIVE",
        "agentConnected": connected,
        "attributes": [{"name": PREFIX_ATTRIBUTE, "value": prefix}],
    }


NEW = {"InstanceId": "i-new", "LifecycleState": "InService"}


def test_the_persons_live_container_instance_on_the_groups_instance_counts() -> None:
    assert capacity(Clients([NEW], [container("i-new")])).registered()


def test_an_instance_the_group_is_terminating_does_not_count() -> None:
    """A stop just before leaves the old container instance ACTIVE a while; a task placed there dies with it."""
    leaving = {"InstanceId": "i-old", "LifecycleState": "Terminating"}
    assert not capacity(Clients([leaving, {**NEW, "LifecycleState": "Pending"}], [container("i-old")])).registered()
    assert not capacity(Clients([NEW], [container("i-old")])).registered()


def test_a_disconnected_agent_or_another_persons_instance_does_not_count() -> None:
    assert not capacity(Clients([NEW], [container("i-new", connected=False)])).registered()
    assert not capacity(Clients([NEW], [container("i-new", prefix="bob")])).registered()
