"""Time to notebook: the critical path a person waits for on AWS, modelled.

    .venv/bin/python bench/time_to_notebook.py          (or: make bench)

Nothing is started: the model adds up step figures, published or
measured here (bench/time_to_notebook.yml, each with its source) along the path that the
templates' own settings choose, read from files/cloudformation/instance.yml:

- the target group's health check interval and healthy threshold (the wait
  between the container listening and the URL answering);
- whether the person's group has a warm pool, and its pool state (a restart
  starts a stopped instance instead of launching and booting a new one);
- whether a warming instance pulls the notebook image, and the ECS agent's
  ECS_IMAGE_PULL_BEHAVIOR (a restart then starts the cached image instead of
  pulling it);
- whether a cold launch starts the pull at boot (it then runs while the
  agent registers and the task is placed, and the agent's pull joins it).

It prints four paths step by step with their totals (a new person and a
restart after an idle stop, CPU and GPU) next to the issue's figures for
today and the targets. A change to a template moves the model
(tests/unit/test_time_to_notebook.py).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "files" / "cloudformation" / "instance.yml"
FIGURES = Path(__file__).with_suffix(".yml")

PATHS = ("new_person_cpu", "restart_cpu", "restart_gpu", "new_person_gpu")
TITLES = {
    "new_person_cpu": "A new person (CPU)",
    "restart_cpu": "A restart after an idle stop (CPU)",
    "restart_gpu": "A restart after an idle stop (GPU)",
    "new_person_gpu": "A new person (GPU)",
}
#: Pool states in which a restart skips the launch and the first boot.
WARM_STATES = ("Stopped", "Hibernated", "Running")
#: Pull behaviours under which the agent starts an image already on the instance.
CACHED_BEHAVIOURS = ("prefer-cached", "once")


@dataclass(frozen=True)
class Settings:
    """What the instance template decides about the path."""

    health_interval: float
    healthy_threshold: int
    pool_state: str | None  # None: no warm pool
    pulls_while_warming: bool
    pulls_from_cold_boot: bool
    pull_behaviour: str


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    template, matches = decode(str(path))
    if matches:
        raise SystemExit(f"{path} does not parse: {matches}")
    return dict(template)


def load_figures(path: Path = FIGURES) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text()))


def _user_data(template: dict[str, Any]) -> str:
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::EC2::LaunchTemplate":
            value = resource["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]
            return str(value[0] if isinstance(value, list) else value)
    raise ValueError("the instance template has no launch template")


def _between(text: str, start: str, end: str) -> str:
    """The text after `start` up to `end`; a template that lacks `start` fails loudly, not as a default."""
    if start not in text:
        raise ValueError(f"the instance template's user data no longer has {start!r}: the model cannot read it")
    return text.split(start, 1)[1].split(end, 1)[0]


def settings(template: dict[str, Any]) -> Settings:
    """The template's settings that choose the steps of each path."""
    resources = template["Resources"].values()
    (group,) = [r["Properties"] for r in resources if r["Type"] == "AWS::ElasticLoadBalancingV2::TargetGroup"]
    pools = [r["Properties"] for r in resources if r["Type"] == "AWS::AutoScaling::WarmPool"]
    user_data = _user_data(template)
    config = user_data.split("cat >> /etc/ecs/ecs.config <<'EOF'\n", 1)[-1].split("\nEOF\n", 1)[0]
    behaviour = re.search(r"^ECS_IMAGE_PULL_BEHAVIOR=(\S+)$", config, re.MULTILINE)
    warm_up = _between(user_data, "cat > /usr/local/sbin/nbstack-warm-up <<'EOF'\n", "\nEOF\n")
    branches = _between(warm_up, 'if [[ "$state" == Warmed:* ]]; then\n', "\nfi\n")
    warming, _, into_service = branches.partition("\nelse\n")
    pulls = "docker pull" in warm_up
    return Settings(
        # AWS's defaults when a property is left out (HTTP target group).
        health_interval=float(group.get("HealthCheckIntervalSeconds", 30)),
        healthy_threshold=int(group.get("HealthyThresholdCount", 5)),
        pool_state=str(pools[0].get("PoolState", "Stopped")) if pools else None,
        pulls_while_warming=pulls and "pull_image" in warming,
        pulls_from_cold_boot=pulls and "nbstack-warm-up pull" in into_service,
        pull_behaviour=behaviour.group(1) if behaviour else "default",
    )


def path(name: str, found: Settings, figures: dict[str, Any]) -> list[tuple[str, float]]:
    """The steps of one path, in order, with their seconds."""
    step = {key: float(value["seconds"]) for key, value in figures["steps"].items()}
    kind = "gpu" if name.endswith("_gpu") else "cpu"
    restart = name.startswith("restart")
    warm = restart and found.pool_state in WARM_STATES
    if restart:
        steps: list[tuple[str, float]] = [("up.yml's short way until the scale-up", step["tool_short_way"])]
    else:
        steps = [("up.yml until the work stack's create", step["tool_whole_way"])]
        steps.append(("work volume created (file system, mount targets)", step["work_volume_create"]))
        steps.append(("secrets, instance checks until its stack create", step["tool_before_instance_stack"]))
        steps.append(("stack create until the group launches", step["stack_create_until_group"]))
    if warm and found.pool_state == "Running":
        steps.append(("warm pool instance (running) into service", 0.0))
    elif warm:
        steps.append((f"warm pool instance started from {found.pool_state}", step["warm_start_from_stopped"]))
        steps.append((f"second boot ({kind.upper()} AMI)", step[f"boot_from_stopped_{kind}"]))
    else:
        steps.append(("instance launch", step["ec2_launch"]))
        steps.append((f"first boot and user data ({kind.upper()} AMI)", step[f"os_boot_{kind}"]))
    steps.append(("ECS agent registers", step["agent_registration"]))
    steps.append(("service to 1, task placed", step["service_and_placement"]))
    cached = warm and found.pulls_while_warming and found.pull_behaviour in CACHED_BEHAVIOURS
    if cached:
        steps.append((f"image already on the instance ({found.pull_behaviour})", 0.0))
    elif found.pulls_from_cold_boot and not warm:
        head_start = step["agent_registration"] + step["service_and_placement"]
        steps.append(
            (
                f"image pull ({kind.upper()} image), less {head_start:g} s from boot",
                max(0.0, step[f"image_pull_{kind}"] - head_start),
            )
        )
    else:
        steps.append((f"image pull ({kind.upper()} image)", step[f"image_pull_{kind}"]))
    steps.append(("container start", step["container_start"]))
    steps.append(("hooks, clone, Jupyter listens", step["jupyter_ready"]))
    steps.append(("target registered, first check sent", step["target_registration"]))
    steps.append(
        (
            f"{found.healthy_threshold} passing checks every {found.health_interval:g} s",
            found.healthy_threshold * found.health_interval,
        )
    )
    steps.append(("capacity module's polling", step["poll_delay"]))
    steps.append(("up.yml's summary until the URL is printed", step["tool_summary"]))
    return steps


def total(steps: list[tuple[str, float]]) -> float:
    return sum(seconds for _what, seconds in steps)


def model(template: dict[str, Any], figures: dict[str, Any]) -> dict[str, list[tuple[str, float]]]:
    """Every path's steps for this template."""
    found = settings(template)
    return {name: path(name, found, figures) for name in PATHS}


def report(template: dict[str, Any], figures: dict[str, Any]) -> list[str]:
    found = settings(template)
    lines = [
        "Time to notebook, modelled (step figures, published or measured here: bench/time_to_notebook.yml;"
        " settings: files/cloudformation/instance.yml)",
        f"  health check every {found.health_interval:g} s, healthy after {found.healthy_threshold};"
        f" warm pool: {found.pool_state or 'none'}; pulled while warming: {'yes' if found.pulls_while_warming else 'no'};"
        f" pulled from a cold boot: {'yes' if found.pulls_from_cold_boot else 'no'};"
        f" ECS_IMAGE_PULL_BEHAVIOR={found.pull_behaviour}",
        "",
    ]
    paths = model(template, figures)
    for name in PATHS:
        lines.append(TITLES[name])
        for what, seconds in paths[name]:
            lines.append(f"  {what:<48} {seconds:6.{0 if seconds.is_integer() else 1}f} s")
        lines.append(f"  {'total':<48} {total(paths[name]):6.0f} s  = {total(paths[name]) / 60:.1f} min")
        lines.append("")
    lines.append(f"{'':<36} {'model':>7} {'today':>7} {'target':>7}")
    for name in PATHS:
        minutes = total(paths[name]) / 60
        today = figures["today"].get(name)
        target = figures["targets"].get(name)
        verdict = "" if target is None else ("  met" if round(minutes, 1) <= target else "  MISSED")
        lines.append(
            f"{TITLES[name]:<36} {minutes:6.1f}m {today if today is not None else '-':>6}m"
            f" {target if target is not None else '-':>6}{'m' if target is not None else ' '}{verdict}"
        )
    estimates = sorted(key for key, value in figures["steps"].items() if value.get("basis") == "estimate")
    lines.append("")
    lines.append(
        "A restart as modelled takes up.yml's short way (nothing changed since this checkout's last whole run)."
        " After a change (settings, code, image tag, another checkout's update), or with a newer ECS-optimized"
        " AMI due, it goes the whole way: every check and a stack update come first."
    )
    lines.append("Estimates (no published figure; make test-aws records the real phases): " + ", ".join(estimates))
    return lines


def main() -> int:
    print("\n".join(report(load_template(), load_figures())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
