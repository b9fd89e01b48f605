"""The one rule for the image a person's service runs, shared by up.yml's preflight and the instance role."""

from __future__ import annotations

from pathlib import Path

from cfnlint.decode import decode

from ansible_collections.nbstack.cloud.plugins.filter import image

ROOT = Path(__file__).resolve().parents[2]
URI = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/notebook"


def test_the_team_image_follows_the_instance_type_and_the_settings() -> None:
    assert image.container_image(URI, "c-0123456789ab", False) == f"{URI}:c-0123456789ab"
    assert image.container_image(URI, "c-0123456789ab", True) == f"{URI}:gpu-c-0123456789ab"
    assert image.team_image_tag("team-v1", True) == "gpu-team-v1"  # notebook_image_tag: its gpu- variant
    # A named image is run as it is, and is not the team's: nothing to look for in its repository.
    assert image.container_image(URI, "c-1", False, "quay.io/jupyter/scipy-notebook:2025-03-14") == ("quay.io/jupyter/scipy-notebook:2025-03-14")
    assert image.team_image_tag("c-1", False, "quay.io/jupyter/scipy-notebook:2025-03-14") == ""
    # Each variant has its own setting: a CPU image named does not replace the GPU one.
    assert image.container_image(URI, "c-1", True, "quay.io/x:1") == f"{URI}:gpu-c-1"
    assert image.team_image_tag("c-1", False, "", "nvcr.io/y:2") == "c-1"


def test_the_repository_name_is_the_templates() -> None:
    template, matches = decode(str(ROOT / "files" / "cloudformation" / "persistent.yml"))
    assert not matches
    (repository,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::ECR::Repository"]
    name = repository["Properties"]["RepositoryName"]["Fn::Sub"]
    assert name.replace("${AppName}", "team") == image.image_repository("team")
