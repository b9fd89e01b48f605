"""up.yml refuses, before anything changes, an image that is not in ECR; image.yml sets up a new account.

Without the check, a service whose image tag is not in ECR never becomes
stable, and CloudFormation waits about three hours before it rolls back (the
emulator has no stabilisation wait, so the refusal itself is what is tested:
the run fails in its preflight, with the message, and no stack is touched).

One scenario, in order: a new account (no repository); image.yml (creates the
network and persistent stacks and pushes both variants through the registry
stand-in); the GPU image deleted, a GPU type refused; a GPU image named by
notebook_gpu_image (not looked for); a notebook_image_tag that was never
pushed.
"""

from __future__ import annotations

from typing import Any

import pytest
from team import APP

from ansible_collections.nbstack.cloud.plugins.plugin_utils import image_context
from nbstack_devkit.emulator import Clients, Emulator
from nbstack_devkit.paths import ROOT
from nbstack_devkit.playbooks import Playbooks, ok

REPOSITORY = f"{APP}/notebook"
#: A second problem in every refused run: the image's is reported with the others, in one report.
OTHER_PROBLEM = ["-e", "rotate_api_token=maybe"]
OTHER_MESSAGE = "rotate_api_token: it must be true or false"


def stacks(aws: Clients) -> dict[str, str]:
    return {s["StackName"]: s["StackStatus"] for s in aws.cloudformation.describe_stacks()["Stacks"]}


def tags(aws: Clients) -> set[str]:
    return {i.get("imageTag", "") for i in aws.ecr.list_images(repositoryName=REPOSITORY)["imageIds"]}


@pytest.fixture(scope="module")
def scenario(emulator: Emulator, playbooks: Playbooks, aws: Clients) -> dict[str, Any]:
    tag = image_context.content_tag(ROOT / "files" / "image")
    result: dict[str, Any] = {"tag": tag}
    emulator.reset()
    result["new_account"] = playbooks.up("alice", *OTHER_PROBLEM, image=False)
    result["stacks_after_refusal"] = stacks(aws)
    result["preview"] = playbooks.up("alice", "--check")

    result["image"] = playbooks.image("-e", "prefix=alice")
    result["stacks_after_image"] = stacks(aws)
    result["tags_after_image"] = tags(aws)
    result["uri"] = aws.ecr.describe_repositories(repositoryNames=[REPOSITORY])["repositories"][0]["repositoryUri"]

    aws.ecr.batch_delete_image(repositoryName=REPOSITORY, imageIds=[{"imageTag": f"gpu-{tag}"}])
    result["gpu_missing"] = playbooks.up("bob", "-e", "instance_type=g5.xlarge", *OTHER_PROBLEM, image=False)
    result["gpu_named"] = playbooks.up(
        "bob",
        "-e",
        "instance_type=g5.xlarge",
        "-e",
        "notebook_gpu_image=quay.io/jupyter/scipy-notebook:2025-03-14",
        *OTHER_PROBLEM,
        image=False,
    )
    result["tag_not_pushed"] = playbooks.up("alice", "-e", "notebook_image_tag=team-v1", *OTHER_PROBLEM, image=False)
    result["stacks_at_end"] = stacks(aws)
    return result


def test_a_new_account_is_told_to_run_image_yml_first(scenario: dict[str, Any]) -> None:
    run = scenario["new_account"]
    assert run.returncode != 0
    assert "2 problems with the settings; nothing in AWS was changed" in run.text
    assert f"the team's ECR repository {REPOSITORY} does not exist yet" in run.text
    assert 'run "ansible-playbook image.yml -e image_variant=cpu"' in run.text
    assert OTHER_MESSAGE in run.text
    assert run.output.count("fatal: [localhost]") == 1
    assert scenario["stacks_after_refusal"] == {}


def test_image_yml_on_a_new_account_creates_the_team_stacks_and_pushes_both_variants(scenario: dict[str, Any]) -> None:
    ok(scenario["image"])
    assert scenario["stacks_after_image"] == {f"{APP}-network": "CREATE_COMPLETE", f"{APP}-persistent": "CREATE_COMPLETE"}
    tag = scenario["tag"]
    assert scenario["tags_after_image"] == {tag, f"gpu-{tag}"}


def test_a_gpu_type_without_the_gpu_image_is_refused_naming_the_variant(scenario: dict[str, Any]) -> None:
    run = scenario["gpu_missing"]
    assert run.returncode != 0
    assert "2 problems with the settings" in run.text
    assert f"the GPU image for instance_type g5.xlarge, {scenario['uri']}:gpu-{scenario['tag']}" in run.text
    assert 'run "ansible-playbook image.yml -e image_variant=gpu"' in run.text
    assert f"{APP}-bob" not in scenario["stacks_at_end"]


def test_an_image_from_another_registry_is_not_looked_for_in_ecr(scenario: dict[str, Any]) -> None:
    run = scenario["gpu_named"]
    assert run.returncode != 0
    assert "1 problem with the settings" in run.text
    assert OTHER_MESSAGE in run.text
    assert "image.yml" not in run.text


def test_a_tag_that_was_never_pushed_is_refused_naming_the_setting(scenario: dict[str, Any]) -> None:
    run = scenario["tag_not_pushed"]
    assert run.returncode != 0
    assert f"notebook_image_tag: the CPU image {scenario['uri']}:team-v1" in run.text
    assert "is not in ECR" in run.text
    assert scenario["stacks_at_end"] == {f"{APP}-network": "CREATE_COMPLETE", f"{APP}-persistent": "CREATE_COMPLETE"}


def test_a_preview_on_a_new_account_says_so_without_failing(scenario: dict[str, Any]) -> None:
    run = ok(scenario["preview"])
    assert "WARNING: up.yml without --check would stop here" in run.text
    assert f"ECR repository {REPOSITORY} does not exist yet" in run.text
    assert scenario["stacks_after_refusal"] == {}
