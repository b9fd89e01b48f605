"""Idle stop and restart timings, against a real Jupyter Server and the AWS emulator.

    python bench/idle.py

1. Stop latency: a notebook server started as the container starts it, with
   a 0.5-minute idle timeout and the watcher polling every 5 s, scaling a real
   ECS service and auto scaling group on the emulator. Measured from the
   moment the timeout passes (Jupyter's last_activity + timeout) to the stop
   decision (the watcher's log line), and from the decision to the group's
   desired capacity at zero (autosave with a dirty checkout, tags, one API
   call; the service keeps its desired count 1).
   The decision delay is bounded by the poll interval (60 s by default).
2. up.yml on the emulator: a new prefix (stacks created) against the same
   prefix after an idle stop (stack unchanged, group scaled back to one; the health-check wait is skipped with instance_start_timeout=0,
   since no instance ever becomes healthy on the emulator), and an unchanged
   re-run for reference.

Wall-clock seconds on this machine, one run each.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import requests

from nbstack_devkit.emulator import REGION, Emulator, quiet
from nbstack_devkit.gitserver import GitHttpServer
from nbstack_devkit.notebook import NOTEBOOK_FILES, container_environ, start_notebook, wait_until_serving
from nbstack_devkit.paths import ROOT
from nbstack_devkit.playbooks import Playbooks, ok
from nbstack_devkit.vault import random_values, write_vault
from nbstack_devkit.waits import wait_until
from nbstack_runtime.scaler import AwsScaler
from nbstack_runtime.watcher import parse_time

TIMEOUT_MINUTES = 0.5
POLL_SECONDS = 5


def clients(emulator: Emulator) -> tuple:
    return tuple(emulator.client(name) for name in ("ecs", "autoscaling", "ec2"))


def capacity(emulator: Emulator, name: str) -> tuple[str, str, str]:
    ecs, autoscaling, ec2 = clients(emulator)
    cluster = ecs.create_cluster(clusterName=f"{name}-cluster")["cluster"]["clusterName"]
    task = ecs.register_task_definition(
        family=name, containerDefinitions=[{"name": "notebook", "image": "x", "memory": 512}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=task, desiredCount=1, launchType="EC2")
    template = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={"ImageId": "ami-12c6146b"})
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name, MinSize=0, MaxSize=1, DesiredCapacity=1,
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplate"]["LaunchTemplateId"], "Version": "$Latest"},
        VPCZoneIdentifier=ec2.describe_subnets()["Subnets"][0]["SubnetId"],
    )
    return cluster, name, name


def desired(emulator: Emulator, cluster: str, service: str, group: str) -> tuple[int, int]:
    ecs, autoscaling, _ = clients(emulator)
    s = ecs.describe_services(cluster=cluster, services=[service])["services"][0]["desiredCount"]
    g = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["DesiredCapacity"]
    return int(s), int(g)


def log_time(log: str, marker: str) -> datetime:
    for line in log.splitlines():
        if marker in line:
            stamp = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)", line)
            if stamp:
                return datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").astimezone()
    raise AssertionError(f"{marker!r} not in the log")


def bench_stop(emulator: Emulator, tmp: Path) -> dict[str, float]:
    git_server = GitHttpServer(tmp / "git", token=secrets.token_hex(16)).start()
    try:
        git_server.create_repo("notebooks.git", NOTEBOOK_FILES, commits=2)
        cluster, service, group = capacity(emulator, "bench-idle")
        env = container_environ(tmp / "home", tmp / "work", git_server.url("notebooks.git"), git_server.token, None)
        (tmp / "home").mkdir()
        env.update(
            NBSTACK_IDLE_TIMEOUT_MINUTES=str(TIMEOUT_MINUTES), NBSTACK_IDLE_POLL_SECONDS=str(POLL_SECONDS),
            NBSTACK_CLUSTER=cluster, NBSTACK_SERVICE=service, NBSTACK_AUTOSCALING_GROUP=group,
            AWS_ENDPOINT_URL=emulator.url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        )
        notebook = start_notebook(env, tmp / "server.log")
        try:
            wait_until_serving(notebook)
            (notebook.work_dir / "scratch.py").write_text("dirty = True\n")
            wait_until(lambda: desired(emulator, cluster, service, group) == (1, 0), 300, interval=0.1, what="the stop")
            zero_at = datetime.now().astimezone()
            token = (notebook.home / ".nbstack" / "idle-watcher-token").read_text().strip()
            status = requests.get(f"{notebook.url}api/status?no_track_activity=1",
                                  headers={"Authorization": f"token {token}"}, timeout=10).json()
            deadline = parse_time(status["last_activity"]) + timedelta(minutes=TIMEOUT_MINUTES)
            log = notebook.log()
            decided = log_time(log, "STOPPING THE NOTEBOOK SERVER")
            return {
                "decision after the timeout passed": (decided - deadline).total_seconds(),
                "scale-down after the decision (autosave + API calls)": (zero_at - decided).total_seconds(),
                "group at zero after the timeout passed": (zero_at - deadline).total_seconds(),
            }
        finally:
            notebook.stop()
    finally:
        git_server.stop()


def bench_up(emulator: Emulator, tmp: Path) -> dict[str, float]:
    playbooks = Playbooks(emulator, ROOT / "tests" / "integration" / "settings.yml", write_vault(tmp, random_values()))
    emulator.reset()

    def timed(*args: str) -> float:
        began = time.monotonic()
        ok(playbooks.up("bench", *args))
        return time.monotonic() - began

    figures = {"up.yml, new prefix": timed()}
    figures["up.yml, running prefix (no change)"] = timed()
    stack = emulator.client("cloudformation").describe_stacks(StackName=f"{playbooks.app}-bench")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    saved = dict(os.environ)
    os.environ.update(emulator.environ({}))
    try:
        AwsScaler(outputs["ClusterName"], outputs["ServiceName"], outputs["AutoScalingGroupName"], REGION).scale_to_zero()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    figures["up.yml, stopped prefix (started again)"] = timed("-e", "instance_start_timeout=0")
    return figures


def main() -> None:
    quiet()
    emulator = Emulator().start()
    try:
        with tempfile.TemporaryDirectory(prefix="nbstack-bench-idle-") as tmp:
            stop = bench_stop(emulator, Path(tmp))
            up = bench_up(emulator, Path(tmp))
    finally:
        emulator.stop()
    print(f"Idle stop (timeout {TIMEOUT_MINUTES} min, poll every {POLL_SECONDS} s; default poll is 60 s):")
    for name, seconds in stop.items():
        print(f"  {name:<55} {seconds:7.1f} s")
    print("up.yml against the emulator:")
    new = up["up.yml, new prefix"]
    for name, seconds in up.items():
        print(f"  {name:<55} {seconds:7.1f} s  ({seconds / new:.2f} x new prefix)")


if __name__ == "__main__":
    main()
