"""Scaling the person's own capacity to zero, with the task role.

The task role may change only this person's ECS service (tags, desired
count) and auto scaling group (size); see files/cloudformation/instance.yml.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger("nbstack.scaler")


class Scaler(Protocol):
    """What the idle watcher needs: tag the service, and take the capacity to zero."""

    def publish(self, tags: dict[str, str]) -> None: ...

    def scale_to_zero(self) -> None: ...


@dataclass
class AwsScaler:
    """The person's own ECS service and auto scaling group, with the task role."""

    cluster: str
    service: str
    autoscaling_group: str
    region: str = ""
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def _client(self, name: str) -> Any:
        if name not in self._clients:
            import boto3  # imported late: only a watcher that stops needs it

            self._clients[name] = boto3.client(name, region_name=self.region or None)
        return self._clients[name]

    def _service_arn(self) -> str:
        found = self._client("ecs").describe_services(cluster=self.cluster, services=[self.service])["services"]
        if not found:
            raise RuntimeError(f"ECS service {self.service} not found in cluster {self.cluster}")
        return str(found[0]["serviceArn"])

    def publish(self, tags: dict[str, str]) -> None:
        """Set `tags` on the ECS service (status.yml reads them)."""
        self._client("ecs").tag_resource(
            resourceArn=self._service_arn(), tags=[{"key": k, "value": v} for k, v in tags.items()]
        )

    def scale_to_zero(self) -> None:
        """The service to 0 tasks, then the group to 0 instances."""
        # The service first: ECS then stops the task (whose autosave finds
        # nothing new). The group right after, before that stop reaches us.
        self._client("ecs").update_service(cluster=self.cluster, service=self.service, desiredCount=0)
        log.info("ECS service %s in %s set to 0 tasks", self.service, self.cluster)
        self._client("autoscaling").update_auto_scaling_group(
            AutoScalingGroupName=self.autoscaling_group, MinSize=0, DesiredCapacity=0
        )
        log.info("auto scaling group %s set to 0 instances", self.autoscaling_group)
