"""The emulator with IAM enforced, run as its own process: `python -m nbstack_devkit.iam_emulator PORT`.

moto evaluates identity policies (actions, and resources for the services
that tell it which resource a request is about) once its access control is
on. Two things make this a process of its own rather than a mode of the
in-process emulator: moto's switch (`INITIAL_NO_AUTH_ACTION_COUNT`) and its
resources are global to a Python process, so turning it on in the test
process would turn it on for every emulator there; and moto names no
resource for ECS and auto scaling requests (it checks them against `*`, so
every statement scoped to a service or a group would be ignored). Here each
of the calls the container makes is given the ARN AWS evaluates for it:

- ECS `DescribeServices` and `UpdateService`: the service's ARN;
  `TagResource`: the resource ARN in the request;
- auto scaling `SetDesiredCapacity` and `UpdateAutoScalingGroup`: the group's ARN;
- Secrets Manager `GetSecretValue`: the secret's ARN (with its random suffix).

S3 requests already name their bucket and key. Conditions are not evaluated
(moto ignores a condition whose key the request does not carry); those are
asserted on the templates instead.

The server starts with access control off, so a test can set up the account
(stacks, roles, buckets) with the emulator's dummy credentials; then
`Emulator.enforce_iam()` turns it on for every later request.
"""

from __future__ import annotations

import sys
from typing import Any

from moto.autoscaling.responses import AutoScalingResponse
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.secretsmanager.responses import SecretsManagerResponse
from moto.server import main as moto_server

from .emulator import fill_template_gaps

ECS_SERVICE_ACTIONS = frozenset({"DescribeServices", "UpdateService"})
AUTOSCALING_GROUP_ACTIONS = frozenset({"SetDesiredCapacity", "UpdateAutoScalingGroup"})


def _ecs_resource(self: Any) -> str:
    """The ARN AWS authorizes an ECS request against, for the calls the container makes."""
    action = self._get_action()
    if action == "TagResource":
        return str(self._get_param("resourceArn") or "*")
    if action not in ECS_SERVICE_ACTIONS:
        return "*"
    service = self._get_param("service") or (self._get_param("services") or ["*"])[0]
    if str(service).startswith("arn:"):
        return str(service)
    cluster = str(self._get_param("cluster") or "default").rsplit("/", 1)[-1]
    return f"arn:aws:ecs:{self.region}:{self.current_account}:service/{cluster}/{service}"


def _autoscaling_resource(self: Any) -> str:
    """The group's ARN (it holds a UUID that only the backend knows)."""
    if self._get_action() not in AUTOSCALING_GROUP_ACTIONS:
        return "*"
    name = self._get_param("AutoScalingGroupName")
    group = self.autoscaling_backend.autoscaling_groups.get(name)
    if group is None:
        return f"arn:aws:autoscaling:{self.region}:{self.current_account}:autoScalingGroup:*:autoScalingGroupName/{name}"
    return str(group.arn)


def _secret_resource(self: Any) -> str:
    """The secret's full ARN, as a policy's `secret:<name>-*` or `secret:<path>/*` matches it."""
    if self._get_action() != "GetSecretValue":
        return "*"
    secret_id = str(self._get_param("SecretId") or "")
    if secret_id.startswith("arn:"):
        return secret_id
    secrets = self.backend.secrets
    return str(secrets[secret_id].arn) if secret_id in secrets else "*"


def main(argv: list[str]) -> None:
    EC2ContainerServiceResponse._determine_resource = _ecs_resource  # type: ignore[attr-defined]
    SecretsManagerResponse._determine_resource = _secret_resource  # type: ignore[attr-defined]
    AutoScalingResponse._determine_resource = _autoscaling_resource  # type: ignore[attr-defined]
    fill_template_gaps()
    (port,) = argv
    moto_server(["-H", "127.0.0.1", "-p", port])


if __name__ == "__main__":
    main(sys.argv[1:])
