# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""up.yml's short way: the comparison with the last whole run's record, and the start when nothing differs.

The action plugin nbstack.cloud.short_way runs this in the controller's own
process (see its docstring for why); `module` is anything with
AnsibleAWSModule's params, check_mode, warn, fail_json and fail_json_aws.
"""

from __future__ import annotations

import re

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    pass  # the action plugin says so

from ansible_collections.nbstack.cloud.plugins.module_utils import applied
from ansible_collections.nbstack.cloud.plugins.module_utils.capacity import (
    REGISTER_TIMEOUT,
    START_TIMEOUT,
    WAIT_INTERVAL,
    Capacity,
    park_service,
)
from ansible_collections.nbstack.cloud.plugins.module_utils.capacity import start as capacity_start

#: An image in ECR: <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>.
ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(?P<repository>[^:@]+):(?P<tag>[^:@/]+)$"
)


class Different(Exception):
    """Something differs from the record: the run goes the whole way."""


class Comparison:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.client = applied.Clients(module)

    def record(self):
        cloudformation = self.client("cloudformation")
        account = self.client("sts").get_caller_identity(aws_retry=True)["Account"]
        path = applied.record_path(self.params["record_dir"], cloudformation.meta.endpoint_url, account,
                                   cloudformation.meta.region_name, self.params["app_name"], self.params["prefix"])
        self.account = account
        record = applied.read(path) if path else None
        if record is None:
            raise Different("no record of a whole run for this prefix from this checkout")
        if record.get("inputs") != self.params["inputs"]:
            raise Different("the settings, the vault's files, the code or the image tag changed since the last whole run")
        return cloudformation, record

    def stacks(self, cloudformation, record):
        found = {}
        for name, fingerprint in record["stacks"].items():
            stack = applied.describe_stack(cloudformation, name)
            if stack is None:
                raise Different(f"the stack {name} is gone")
            if applied.stack_fingerprint(stack) != fingerprint:
                raise Different(f"the stack {name} changed since (another run, or the console)")
            found[name] = stack
        return found

    def secrets(self, record):
        """The vault's values are the current ones, and no secret has a version the stack was not applied with."""
        secretsmanager = self.client("secretsmanager")
        given = self.params["secrets"]
        if not set(given) <= set(record["secrets"]):
            raise Different("the secrets are not the recorded ones")
        for name, version in record["secrets"].items():
            if name in given:
                # GetSecretValue answers with the AWSCURRENT value and its version.
                stored = secretsmanager.get_secret_value(SecretId=name, aws_retry=True)
                # A vault value YAML reads as a number reaches here as one; Secrets Manager holds its text.
                if given[name] is None or stored.get("SecretString") != str(given[name]):
                    raise Different(f"the vault's value of {name.rsplit('/', 1)[-1]} is not the one in Secrets Manager")
                current = stored.get("VersionId")
            else:
                current = applied.current_version(secretsmanager, name)
            if current != version:
                raise Different(f"the secret {name} has a new value in Secrets Manager")

    def server(self, record, instance_stack):
        """What the server is now, and a newer AMI it waits for.

        Different when a restart would update the stack (a newer AMI), when
        the AMI parameter is gone, or when the image the service runs is gone
        from the team's ECR repository (the whole way's preflight refuses
        then, and says to run image.yml).
        """
        outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in instance_stack.get("Outputs", [])}
        missing = sorted({"AutoScalingGroupName", "ClusterName", "ServiceName", "TargetGroupArn"} - set(outputs))
        if missing:
            raise Different(f"the stack {instance_stack.get('StackName', '')} has no output {', '.join(missing)}")
        group_name = outputs["AutoScalingGroupName"]
        groups = self.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group_name], aws_retry=True)
        if not groups["AutoScalingGroups"]:
            raise Different(f"the auto scaling group {group_name} is gone")
        running = int(groups["AutoScalingGroups"][0]["DesiredCapacity"]) > 0
        parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in instance_stack.get("Parameters", [])}
        newest = self.client("ssm").get_parameters(Names=[record["ami_parameter"]], aws_retry=True)["Parameters"]
        if not newest:
            raise Different(f"the AMI parameter {record['ami_parameter']} is gone")
        waiting = newest[0]["Value"] if newest[0]["Value"] != parameters.get("EcsAmiId", "") else ""
        if not running and waiting:
            raise Different(f"a newer ECS-optimized AMI ({waiting}) is due at this restart")
        self.image_there(parameters.get("ContainerImage", ""))
        serving, healthy = self.serving(outputs) if running else (False, False)
        return {"outputs": outputs, "running": running, "ami_waiting": waiting, "serving": serving, "healthy": healthy}

    def image_there(self, image):
        """Different when the image is gone from this account's ECR in this region (another registry is not looked at, as in preflight)."""
        found = ECR_IMAGE.match(image)
        ecr = self.client("ecr")
        if not found or found["account"] != self.account or found["region"] != ecr.meta.region_name:
            return
        try:
            ecr.describe_images(registryId=found["account"], repositoryName=found["repository"],
                                imageIds=[{"imageTag": found["tag"]}], aws_retry=True)
        except (ecr.exceptions.ImageNotFoundException, ecr.exceptions.RepositoryNotFoundException):
            raise Different(f"the image {image} is no longer in ECR (image.yml pushes it)") from None

    def serving(self, outputs):
        """Whether the service asks for its task and runs it, and whether a target is healthy (what the capacity module waits for)."""
        services = self.client("ecs").describe_services(cluster=outputs["ClusterName"], services=[outputs["ServiceName"]],
                                                        aws_retry=True)["services"]
        serving = any(service.get("status") != "INACTIVE" and int(service.get("desiredCount", 0)) >= 1
                      and int(service.get("runningCount", 0)) >= 1 for service in services)
        if not serving:
            return False, False
        targets = self.client("elbv2").describe_target_health(TargetGroupArn=outputs["TargetGroupArn"], aws_retry=True)
        return True, any(t.get("TargetHealth", {}).get("State") == "healthy" for t in targets["TargetHealthDescriptions"])


def start(module, comparison, outputs):
    """The capacity module's start (module_utils.capacity) on the instance stack's outputs: its result.

    As on the whole way, where the capacity module prepares the update
    first: a server the idle stop left with its group at 0 and its service
    at 1 gets its service set to 0 before the group starts, so that no task
    is asked for before its instance exists.
    """
    params = dict(
        module.params,
        cluster=outputs["ClusterName"],
        service=outputs["ServiceName"],
        autoscaling_group=outputs["AutoScalingGroupName"],
        target_group_arn=outputs["TargetGroupArn"],
    )
    server = Capacity(module, params, client=comparison.client)
    try:
        service, group = server.service(), server.group()
        if service is None or group is None:
            raise Different(f"the ECS service {params['service']} or the auto scaling group {params['autoscaling_group']} is gone")
        was = {"service": int(service["desiredCount"]), "autoscaling_group": int(group["DesiredCapacity"])}
        parked = park_service(module, server, was)
        done = capacity_start(module, server, dict(service, desiredCount=0) if parked else service, group,
                              dict(was, service=0) if parked else was)
        return dict(done, changed=done["changed"] or parked, was=was)
    except (ClientError, BotoCoreError) as error:
        server.fail(error, "Could not start the notebook server")


#: The module's own options (the AWS connection options come with them, as amazon.aws's modules have).
ARGUMENT_SPEC = {
    "record_dir": {"type": "path", "required": True},
    "app_name": {"type": "str", "required": True},
    "prefix": {"type": "str", "required": True},
    "inputs": {"type": "str", "required": True},
    "secrets": {"type": "dict", "required": True, "no_log": True},
    "register_timeout": {"type": "int", "default": REGISTER_TIMEOUT},
    "wait_timeout": {"type": "int", "default": START_TIMEOUT},
    "wait_interval": {"type": "int", "default": WAIT_INTERVAL},
}


def run(module):
    """Compare, and start when nothing differs: the task's result (a failure to start calls module.fail_json).

    A read that fails, or a record or stack not as expected, makes the
    result not current (the whole way then reads again and says what is
    wrong). Once the start has begun, an error is the start's own failure,
    which says what the start did first.
    """
    not_current = {"changed": False, "current": False, "phases": {}, "running": False, "serving": False,
                   "healthy": False, "started": False, "ami_waiting": "", "timeline": []}
    try:
        comparison = Comparison(module)
        cloudformation, record = comparison.record()
        stacks = comparison.stacks(cloudformation, record)
        comparison.secrets(record)
        instance = record["results"]["instance"]
        # What is started is what the stack just read says, never the record.
        server = comparison.server(record, stacks[instance["name"]])
        phases = dict(record["results"])
    except Different as difference:
        return dict(not_current, reason=str(difference))
    except (ClientError, BotoCoreError, KeyError, TypeError) as error:
        return dict(not_current, reason=f"the last run could not be compared ({error})")
    started: dict = {"changed": False, "started": False, "healthy": True if server["healthy"] else None, "timeline": []}
    # What the start would wait for is there already: the task runs, and a target is healthy (or no wait is asked).
    if not (server["serving"] and (server["healthy"] or module.params["wait_timeout"] == 0)):
        try:
            started = start(module, comparison, server["outputs"])
        except Different as difference:
            return dict(not_current, reason=str(difference))
    return dict(changed=started["changed"], current=True, reason="", phases=phases, running=server["running"],
                serving=server["serving"], healthy=started["healthy"], started=started["started"],
                ami_waiting=server["ami_waiting"], timeline=started["timeline"])
