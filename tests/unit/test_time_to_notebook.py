"""The time-to-notebook model follows the templates: a changed setting moves its totals."""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_bench() -> ModuleType:
    """bench/ is not a package: the model is loaded from its file, as `make bench` runs it."""
    spec = importlib.util.spec_from_file_location("time_to_notebook", ROOT / "bench" / "time_to_notebook.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bench = load_bench()


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return bench.load_template()


@pytest.fixture(scope="module")
def figures() -> dict[str, Any]:
    return bench.load_figures()


def totals(template: dict[str, Any], figures: dict[str, Any]) -> dict[str, float]:
    return {name: bench.total(steps) for name, steps in bench.model(template, figures).items()}


def resource(template: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    (found,) = [(key, r) for key, r in template["Resources"].items() if r["Type"] == kind]
    return found


def test_every_step_figure_names_its_source(figures: dict[str, Any]) -> None:
    for key, step in figures["steps"].items():
        assert float(step["seconds"]) >= 0 and step["what"], key
        assert step["source"].startswith(("https://", "bench/", "collections/", "playbooks/")), key


def test_the_model_reads_the_templates_settings(template: dict[str, Any]) -> None:
    found = bench.settings(template)
    assert (found.health_interval, found.healthy_threshold) == (5, 2)
    assert found.pool_state == "Stopped" and found.pulls_while_warming and found.pulls_from_cold_boot
    assert found.pull_behaviour == "prefer-cached"


def test_a_slower_health_check_moves_every_path(template: dict[str, Any], figures: dict[str, Any]) -> None:
    before = totals(template, figures)
    changed = copy.deepcopy(template)
    resource(changed, "AWS::ElasticLoadBalancingV2::TargetGroup")[1]["Properties"]["HealthCheckIntervalSeconds"] = 30
    after = totals(changed, figures)
    assert {name: after[name] - before[name] for name in before} == pytest.approx({name: 2 * (30 - 5) for name in before})


def test_without_the_warm_pool_a_restart_is_a_cold_start(template: dict[str, Any], figures: dict[str, Any]) -> None:
    before = totals(template, figures)
    changed = copy.deepcopy(template)
    del changed["Resources"][resource(changed, "AWS::AutoScaling::WarmPool")[0]]
    after = totals(changed, figures)
    step = {key: value["seconds"] for key, value in figures["steps"].items()}
    # A cold launch starts its pull at boot: the agent's registration and the placement overlap it.
    head_start = step["agent_registration"] + step["service_and_placement"]
    cold_cpu = step["ec2_launch"] + step["os_boot_cpu"] + step["image_pull_cpu"] - head_start
    warm_cpu = step["warm_start_from_stopped"] + step["boot_from_stopped_cpu"]
    assert after["restart_cpu"] - before["restart_cpu"] == pytest.approx(cold_cpu - warm_cpu)
    assert after["restart_gpu"] > before["restart_gpu"]
    # A new person never had a pool to draw from.
    assert after["new_person_cpu"] == before["new_person_cpu"]
    # A new person's path and a restart's differ then only by up.yml's way (the whole way's work before each
    # stack, against the short way's comparison) and the stacks' creation (the work volume's, the instance's).
    tool = step["tool_whole_way"] + step["tool_before_instance_stack"] - step["tool_short_way"]
    stacks = step["work_volume_create"] + step["stack_create_until_group"]
    assert after["new_person_cpu"] - after["restart_cpu"] == pytest.approx(tool + stacks)


def test_a_restart_pulls_again_unless_the_agent_prefers_the_cache(template: dict[str, Any], figures: dict[str, Any]) -> None:
    before = totals(template, figures)
    changed = copy.deepcopy(template)
    user_data = resource(changed, "AWS::EC2::LaunchTemplate")[1]["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]
    pattern = user_data["Fn::Sub"][0]
    assert "ECS_IMAGE_PULL_BEHAVIOR=prefer-cached\n" in pattern
    user_data["Fn::Sub"][0] = pattern.replace("ECS_IMAGE_PULL_BEHAVIOR=prefer-cached\n", "")
    after = totals(changed, figures)
    assert after["restart_cpu"] - before["restart_cpu"] == pytest.approx(figures["steps"]["image_pull_cpu"]["seconds"])
    assert after["restart_gpu"] - before["restart_gpu"] == pytest.approx(figures["steps"]["image_pull_gpu"]["seconds"])


def test_a_cold_launch_that_pulls_only_when_the_task_is_placed_waits_longer(
    template: dict[str, Any], figures: dict[str, Any]
) -> None:
    before = totals(template, figures)
    changed = copy.deepcopy(template)
    user_data = resource(changed, "AWS::EC2::LaunchTemplate")[1]["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]
    start = "systemd-run --no-block --unit nbstack-pull-image /usr/local/sbin/nbstack-warm-up pull\n"
    assert start in user_data["Fn::Sub"][0]
    user_data["Fn::Sub"][0] = user_data["Fn::Sub"][0].replace(start, "true\n")
    after = totals(changed, figures)
    step = {key: value["seconds"] for key, value in figures["steps"].items()}
    head_start = step["agent_registration"] + step["service_and_placement"]
    assert after["new_person_cpu"] - before["new_person_cpu"] == pytest.approx(head_start)
    assert after["new_person_gpu"] - before["new_person_gpu"] == pytest.approx(head_start)
    # A restart from the warm pool finds the image on its disk either way.
    assert after["restart_cpu"] == before["restart_cpu"]


def test_the_report_shows_todays_figures_and_the_targets(template: dict[str, Any], figures: dict[str, Any]) -> None:
    lines = bench.report(template, figures)
    assert any(line.startswith("A restart after an idle stop (CPU)") and "3.0m" in line for line in lines)
    assert any(line.startswith("A new person (CPU)") and "3.1m" in line and "2.0m" in line for line in lines)
    assert sum(line.strip().startswith("total") for line in lines) == 4
