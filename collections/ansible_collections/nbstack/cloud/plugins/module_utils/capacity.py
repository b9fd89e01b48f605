# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Capacity before placement: the person's group, container instance and service, and the start in order.

Shared by the capacity module (start, stop, the preparation of an update)
and up.yml's short way (nbstack.cloud.short_way), which starts a stopped server
with this same code when nothing else is to apply.
"""

from __future__ import annotations

import time

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    pass  # the modules that use this say so (AnsibleAWSModule)

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict

from ansible_collections.nbstack.cloud.plugins.module_utils.contract import AUTOSAVE_TAG, PREFIX_ATTRIBUTE, STOP_TAGS, autosave_record

#: Seconds to wait for the person's container instance, and then for the first healthy check (0: not waited for).
REGISTER_TIMEOUT = 900
START_TIMEOUT = 600
#: Seconds between two looks while waiting.
WAIT_INTERVAL = 2


class Capacity:
    """The person's service, group and container instance, and a record of what was done to them."""

    def __init__(self, module, params=None, client=None):
        """params: cluster, service, autoscaling_group, prefix, target_group_arn and the timeouts (the module's by
        default); client: a function from a service's name to its client (AnsibleAWSModule.client's by default)."""
        self.module = module
        self.params = module.params if params is None else params
        retry = AWSRetry.jittered_backoff()
        client = client or (lambda service: module.client(service, retry_decorator=retry))
        self.ecs = client("ecs")
        self.autoscaling = client("autoscaling")
        self.elbv2 = client("elbv2")
        self.began = time.monotonic()
        self.timeline = []
        self.waited = 0.0
        #: Whether this run changed anything, and whether it asked the group for an instance.
        self.changed = False
        self.group_raised = False

    def note(self, step):
        self.timeline.append({"step": step, "at": round(time.monotonic() - self.began, 1)})

    def service(self):
        """The service, or None once it is deleted (ECS keeps it a while as INACTIVE)."""
        found = self.ecs.describe_services(cluster=self.params["cluster"], services=[self.params["service"]], aws_retry=True)["services"]
        found = [service for service in found if service.get("status") != "INACTIVE"]
        return found[0] if found else None

    def group(self):
        found = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.params["autoscaling_group"]], aws_retry=True)["AutoScalingGroups"]
        return found[0] if found else None

    def set_group(self, count):
        self.autoscaling.set_desired_capacity(AutoScalingGroupName=self.params["autoscaling_group"], DesiredCapacity=count, aws_retry=True)
        self.changed = True
        self.group_raised = count >= 1
        self.note(f"group to {count}")

    def set_service(self, count):
        self.ecs.update_service(cluster=self.params["cluster"], service=self.params["service"], desiredCount=count, aws_retry=True)
        self.changed = True
        self.note(f"service to {count}")

    def registered(self):
        """Whether a container instance of this person is ACTIVE in the cluster, on an instance the group has now.

        The cluster query filters by the attribute; the attributes are read
        back as well, so an endpoint that ignores the filter cannot pass
        another person's instance. The container instance must run on one
        of the group's in-service instances with its agent connected: an
        instance the group is terminating (a stop just before) can stay
        ACTIVE in the cluster for a while, and a task placed there would
        die with it.
        """
        prefix = self.params["prefix"]
        group = self.group() or {}
        in_service = {i["InstanceId"] for i in group.get("Instances", []) if i.get("LifecycleState") == "InService"}
        if not in_service:
            return False
        arns = self.ecs.list_container_instances(
            cluster=self.params["cluster"],
            filter=f"attribute:{PREFIX_ATTRIBUTE} == {prefix}",
            status="ACTIVE",
            aws_retry=True,
        )["containerInstanceArns"]
        if not arns:
            return False
        found = self.ecs.describe_container_instances(cluster=self.params["cluster"], containerInstances=arns, aws_retry=True)["containerInstances"]
        return any(
            instance.get("status") == "ACTIVE"
            and instance.get("agentConnected")
            and instance.get("ec2InstanceId") in in_service
            and any(a.get("name") == PREFIX_ATTRIBUTE and a.get("value") == prefix for a in instance.get("attributes", []))
            for instance in found
        )

    def healthy(self):
        service = self.service() or {}
        targets = self.elbv2.describe_target_health(TargetGroupArn=self.params["target_group_arn"], aws_retry=True)
        passing = any(t.get("TargetHealth", {}).get("State") == "healthy" for t in targets["TargetHealthDescriptions"])
        return passing and int(service.get("runningCount", 0)) >= 1

    def wait(self, condition, timeout):
        """Look every wait_interval seconds until condition() holds or timeout passes; whether it held."""
        began = time.monotonic()
        while True:
            try:
                held = condition()
            except (ClientError, BotoCoreError) as error:
                self.fail(error, "Could not read the notebook server's state")
            waited = time.monotonic() - began
            if held or waited >= timeout:
                self.waited += waited
                return held
            time.sleep(min(self.params["wait_interval"], max(0.0, timeout - waited)))

    def running_tasks(self):
        """The ARNs of the service's tasks whose containers have not exited yet.

        Those ECS wants running, and those it is stopping (desired status
        STOPPED, last status not yet STOPPED: a stop an earlier run began,
        its autosave perhaps still under way).
        """
        arns = []
        for desired in ("RUNNING", "STOPPED"):
            arns += self.ecs.list_tasks(cluster=self.params["cluster"], serviceName=self.params["service"], desiredStatus=desired, aws_retry=True)["taskArns"]
        live = []
        for start in range(0, len(arns), 100):  # DescribeTasks takes 100 tasks at most
            found = self.ecs.describe_tasks(cluster=self.params["cluster"], tasks=arns[start:start + 100], aws_retry=True)["tasks"]
            live += [task["taskArn"] for task in found if task.get("lastStatus") != "STOPPED"]
        return live

    def tasks_stopped(self, arns):
        """Whether every one of these tasks has stopped: its containers exited (the autosave is over).

        A stopping task leaves the service's runningCount and the RUNNING
        list before its containers have exited; only its lastStatus STOPPED
        says the container's stop, and so its autosave, is over. ECS keeps
        a stopped task describable for an hour at least; one not found has stopped.
        """
        arns = list(arns)
        for start in range(0, len(arns), 100):  # DescribeTasks takes 100 tasks at most
            found = self.ecs.describe_tasks(cluster=self.params["cluster"], tasks=arns[start:start + 100], aws_retry=True)["tasks"]
            if any(task.get("lastStatus") != "STOPPED" for task in found):
                return False
        return True

    def autosave(self, service):
        """The container's last recorded autosave result (contract.autosave_record), or None."""
        tags = boto3_tag_list_to_ansible_dict(self.ecs.list_tags_for_resource(resourceArn=service["serviceArn"], aws_retry=True).get("tags", []))
        return autosave_record(tags.get(AUTOSAVE_TAG))

    def clear_autosave(self, service):
        self.ecs.untag_resource(resourceArn=service["serviceArn"], tagKeys=[AUTOSAVE_TAG], aws_retry=True)

    def stale_warm_instances(self, group):
        """Warm pool instances launched from another launch template version than the group's.

        CloudFormation replaces no warm pool instance when the launch
        template changes (instance type, AMI): a start from the pool would
        run the old one. The group names its version as a number (the
        template's LatestVersionNumber).
        """
        wanted = str((group.get("LaunchTemplate") or {}).get("Version", ""))
        if not wanted.isdigit():
            return []
        pool = self.autoscaling.describe_warm_pool(AutoScalingGroupName=self.params["autoscaling_group"], aws_retry=True)
        return [
            instance["InstanceId"]
            for instance in pool.get("Instances", [])
            if str((instance.get("LaunchTemplate") or {}).get("Version", "")) not in ("", wanted)
        ]

    def drop_warm_instances(self, instance_ids):
        """Terminate these pool instances (the pool refills from the group's current launch template)."""
        for instance_id in instance_ids:
            self.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=instance_id, ShouldDecrementDesiredCapacity=False, aws_retry=True)
            self.changed = True
        self.note(f"{len(instance_ids)} warm pool instance(s) of an older launch template terminated")

    def left_up(self):
        """What a failure says when this run raised the group: it stays up, and is billed ("" otherwise)."""
        if not self.group_raised:
            return ""
        return (" (the auto scaling group stays at 1: an instance it started is billed until up.yml brings the"
                " server up or down.yml stops it)")

    def fail(self, error, msg):
        """Fail with an AWS error, with what this run did first."""
        self.module.fail_json_aws(error, msg=msg + self.left_up(), changed=self.changed, timeline=self.timeline)

    def clear_stop_tags(self, service):
        """Remove what the last stop left on the service: its time and reason, and its autosave record.

        The record goes too: from now on the work on the volume can be newer
        than it, so only a save of a later stop may vouch for it (a purge).
        """
        tags = self.ecs.list_tags_for_resource(resourceArn=service["serviceArn"], aws_retry=True).get("tags", [])
        left = sorted(set(boto3_tag_list_to_ansible_dict(tags)) & {*STOP_TAGS, AUTOSAVE_TAG})
        if left:
            self.ecs.untag_resource(resourceArn=service["serviceArn"], tagKeys=left, aws_retry=True)


def result(capacity, **values):
    values.setdefault("autosave", None)
    values.setdefault("autosave_problem", "")
    # Whether the container's autosave record was read: a purge trusts nothing else.
    values.setdefault("autosave_read", False)
    return dict(values, timeline=capacity.timeline, waited=round(capacity.waited, 1))


def park_service(module, capacity, was):
    """A server the idle stop left with its group at 0 and its service at 1: the service to 0; whether it had to.

    Before a stack update (so that one with a new task definition completes
    at once) and before a start (so that no task is asked for before its
    instance exists). Nothing is changed in check mode.
    """
    if was["autoscaling_group"] >= 1 or was["service"] < 1:
        return False
    if not module.check_mode:
        capacity.set_service(0)
    return True


def start(module, capacity, service, group, was):
    """After the stack update: group, container instance ACTIVE, service, health; in that order."""
    params = capacity.params
    starting = was["autoscaling_group"] < 1 or was["service"] < 1
    if module.check_mode:
        return result(capacity, changed=starting, started=starting, stopped=False, was=was, healthy=None)
    if was["autoscaling_group"] < 1:
        stale = capacity.stale_warm_instances(group)
        if stale:
            # A cold launch of the right instance rather than a warm start of the wrong one.
            capacity.drop_warm_instances(stale)
        capacity.set_group(1)
    if not capacity.wait(capacity.registered, params["register_timeout"]):
        module.fail_json(
            msg=(
                f"No container instance with {PREFIX_ATTRIBUTE} = {params['prefix']} became ACTIVE in the"
                f" cluster {params['cluster']} within {params['register_timeout']} s, so no task was asked for."
                f" Look at the activity of the auto scaling group {params['autoscaling_group']} (capacity in"
                " the zones, the vCPU quota) and at the instance's system log, then run up.yml again"
                f"{capacity.left_up()}."
            ),
            **result(capacity, changed=capacity.changed, started=starting, stopped=False, was=was, healthy=None),
        )
    capacity.note("container instance ACTIVE")
    if was["service"] < 1:
        capacity.set_service(1)
    if starting:
        capacity.clear_stop_tags(service)
    if params["wait_timeout"] == 0:
        # Asked not to wait (scripts that look at the server themselves): no check, no warning.
        return result(capacity, changed=starting, started=starting, stopped=False, was=was, healthy=None)
    healthy = capacity.wait(capacity.healthy, params["wait_timeout"])
    if healthy:
        capacity.note("healthy")
    else:
        module.warn(
            f"The notebook server's health check has not passed after {params['wait_timeout']} s"
            " (the instance pulls the image and the container clones the repository first). Look at the ECS"
            " service's events and the task's logs if it does not come up in a few minutes; running up.yml"
            " again does not restart it."
        )
    return result(capacity, changed=starting, started=starting, stopped=False, was=was, healthy=healthy)
