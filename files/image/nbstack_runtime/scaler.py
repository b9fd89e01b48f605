"""Scaling the person's own capacity to zero, with the task role.

The task role may only read and tag this person's ECS service and set the
desired capacity of this person's auto scaling group (SetDesiredCapacity,
not UpdateAutoScalingGroup: the group's MinSize is 0 and its MaxSize 1, so
setting the desired capacity is all a stop needs); see
files/cloudformation/instance.yml. It cannot update the service: the
service keeps its one task, which the task definition's placement
constraint holds to this person's own instances, so with the group at 0 the
task ends with its instance and waits for the next one (up.yml starts the
group again). Every call here is one that role allows.

Failed calls are retried at two levels. Each client retries a call itself
(botocore's "standard" mode, RETRY_ATTEMPTS attempts with exponential
backoff and jitter): throttling, 5xx answers and dropped connections pass
within seconds, while the server is still the same. What outlasts that (an
endpoint down for minutes, credentials not yet refreshed) raises, and the
idle watcher tries the whole stop again at its next poll, deciding again
first, so a person who came back in between is not stopped. A stop is never
recorded before the group call has succeeded.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger("nbstack.scaler")

#: What ECS accepts in a tag value besides letters, numbers and spaces; and how long one may be.
TAG_VALUE_PUNCTUATION = frozenset("_.:/=+-@")
TAG_VALUE_MAX_LENGTH = 256
#: Attempts per call (the first and its retries) in botocore's standard retry mode.
RETRY_ATTEMPTS = 5
#: Seconds to connect and to wait for an answer, per attempt (botocore's defaults are 60).
CONNECT_TIMEOUT_SECONDS = 10
READ_TIMEOUT_SECONDS = 20


def tag_value(text: str) -> str:
    r"""`text` as ECS accepts it in a tag value (pattern [\p{L}\p{Z}\p{N}_.:/=+\-@]*, 256 characters).

    A stop reason holds parentheses, commas and semicolons, which ECS
    refuses (the emulator does not check); each becomes a space.
    """
    kept = "".join(c if unicodedata.category(c)[0] in "LNZ" or c in TAG_VALUE_PUNCTUATION else " " for c in text)
    return " ".join(kept.split())[:TAG_VALUE_MAX_LENGTH]


class Scaler(Protocol):
    """What the idle watcher needs: tag the service, and take the capacity to zero."""

    def publish(self, tags: dict[str, str]) -> None: ...

    def scale_to_zero(self) -> None: ...


@dataclass
class AwsScaler:
    """The person's own ECS service (tags) and auto scaling group (capacity), with the task role."""

    cluster: str
    service: str
    autoscaling_group: str
    region: str = ""
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def _client(self, name: str) -> Any:
        if name not in self._clients:
            import boto3  # imported late: only a watcher that stops needs it
            from botocore.config import Config

            config = Config(
                retries={"mode": "standard", "total_max_attempts": RETRY_ATTEMPTS},
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                read_timeout=READ_TIMEOUT_SECONDS,
            )
            self._clients[name] = boto3.client(name, region_name=self.region or None, config=config)
        return self._clients[name]

    def _service_arn(self) -> str:
        found = self._client("ecs").describe_services(cluster=self.cluster, services=[self.service])["services"]
        if not found:
            raise RuntimeError(f"ECS service {self.service} not found in cluster {self.cluster}")
        return str(found[0]["serviceArn"])

    def publish(self, tags: dict[str, str]) -> None:
        """Set `tags` on the ECS service (status.yml reads them), each value made acceptable to ECS."""
        self._client("ecs").tag_resource(
            resourceArn=self._service_arn(), tags=[{"key": k, "value": tag_value(v)} for k, v in tags.items()]
        )

    def scale_to_zero(self) -> None:
        """The group to 0 instances; the task ends with its instance, the service keeps wanting it."""
        self._client("autoscaling").set_desired_capacity(
            AutoScalingGroupName=self.autoscaling_group, DesiredCapacity=0, HonorCooldown=False
        )
        log.info("auto scaling group %s set to 0 instances", self.autoscaling_group)
