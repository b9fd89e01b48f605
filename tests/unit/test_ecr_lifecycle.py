"""The image repository's lifecycle policy, read from the persistent template.

The emulator stores a repository's lifecycle policy but never applies it, so
the policy is rendered here from the template for each allowed setting and
applied to a history of pushes by the rules ECR documents ("Lifecycle
policy evaluation rules", Amazon ECR user guide): rules in priority order;
an image that an earlier rule's tag selection matches is never expired by a
later rule, but a later rule still counts it; imageCountMoreThan keeps the
newest images by push time.
"""

from __future__ import annotations

import fnmatch
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]


def template() -> dict[str, Any]:
    body, matches = decode(str(ROOT / "files" / "cloudformation" / "persistent.yml"))
    assert not matches, matches
    return dict(body)


def rendered_policy(kept: str | None = None) -> dict[str, Any]:
    """The LifecyclePolicyText CloudFormation sends for ImagesKeptPerVariant = kept (its default when None)."""
    body = template()
    kept = kept or str(body["Parameters"]["ImagesKeptPerVariant"]["Default"])
    (repository,) = [r for r in body["Resources"].values() if r["Type"] == "AWS::ECR::Repository"]
    text = repository["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"]["Fn::Sub"]
    assert isinstance(text, str), "the policy takes the setting as it is"
    text = text.replace("${ImagesKeptPerVariant}", kept)
    assert "${" not in text, text
    return dict(json.loads(text))


def matches(rule: dict[str, Any], tags: list[str]) -> bool:
    selection = rule["selection"]
    if selection["tagStatus"] == "untagged":
        return not tags
    if selection["tagStatus"] == "any":
        return True
    patterns = selection.get("tagPatternList") or [p + "*" for p in selection.get("tagPrefixList", [])]
    return any(all(fnmatch.fnmatchcase(tag, pattern) for pattern in patterns) for tag in tags)


def surviving(policy: dict[str, Any], images: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The images left after one evaluation of the policy (ECR's documented rules)."""
    expired: set[int] = set()
    claimed: set[int] = set()  # matched by an earlier rule's tag selection
    for rule in sorted(policy["rules"], key=lambda r: r["rulePriority"]):
        selected = [i for i, image in enumerate(images) if matches(rule, image["tags"])]
        selection = rule["selection"]
        if selection["countType"] == "imageCountMoreThan":
            newest_first = sorted(selected, key=lambda i: images[i]["pushed"], reverse=True)
            marked = newest_first[selection["countNumber"] :]
        else:
            age = timedelta(days=selection["countNumber"])
            marked = [i for i in selected if now - images[i]["pushed"] > age]
        expired |= {i for i in marked if i not in claimed}
        claimed |= set(selected)
    return [image for i, image in enumerate(images) if i not in expired]


def test_the_policy_is_valid_ecr_syntax() -> None:
    rules = rendered_policy()["rules"]
    priorities = [rule["rulePriority"] for rule in rules]
    assert len(set(priorities)) == len(priorities)
    assert [r for r in rules if r["selection"]["tagStatus"] == "untagged"] == [rules[-1]]
    for rule in rules:
        assert rule["action"] == {"type": "expire"}
        selection = rule["selection"]
        assert isinstance(selection["countNumber"], int) and selection["countNumber"] >= 1
        if selection["tagStatus"] == "tagged":
            assert all(p.count("*") <= 4 for p in selection["tagPatternList"])


def variant(image: dict[str, Any]) -> str:
    tag = image["tags"][0] if image["tags"] else ""
    return "gpu" if tag.startswith("gpu-c-") else "cpu" if tag.startswith("c-") else "other"


def of_variant(images: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return sorted((i for i in images if variant(i) == name), key=lambda i: i["pushed"])


def evaluated(policy: dict[str, Any], images: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    left = images
    for _day in range(3):  # ECR evaluates again; what is left must be stable
        left = surviving(policy, left, now)
    return left


@pytest.mark.parametrize("kept", [str(v) for v in template()["Parameters"]["ImagesKeptPerVariant"]["AllowedValues"]])
def test_the_newest_images_of_each_variant_are_kept(kept: str) -> None:
    policy = rendered_policy(kept)
    count = int(kept)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    images = []
    for n in range(2 * count):  # a run of CPU-only pushes (image_variant=cpu) first
        images.append({"tags": [f"c-{1000 + n:012x}"], "pushed": start - timedelta(days=30) + timedelta(hours=n)})
    for n in range(3 * count + 5):
        # Then as image.yml pushes by default: the CPU and the GPU image of each content change.
        images.append({"tags": [f"c-{n:012x}"], "pushed": start + timedelta(hours=n)})
        images.append({"tags": [f"gpu-c-{n:012x}"], "pushed": start + timedelta(hours=n, minutes=30)})
    images.append({"tags": ["team-v1"], "pushed": start})  # named by notebook_image_tag, pushed by hand
    images.append({"tags": ["gpu-team-v1"], "pushed": start})
    images.append({"tags": [], "pushed": start + timedelta(days=40)})  # a layer left by a replaced push
    images.append({"tags": [], "pushed": start + timedelta(days=45)})
    now = start + timedelta(days=45, hours=1)

    left = evaluated(policy, images, now)
    tags = [tag for image in left for tag in image["tags"]]
    assert of_variant(left, "gpu") == of_variant(images, "gpu")[-count:]
    assert of_variant(left, "cpu") == of_variant(images, "cpu")[-count:]
    assert "team-v1" in tags and "gpu-team-v1" in tags
    assert [i for i in left if not i["tags"]] == [images[-1]]  # the day-old untagged layer expired


@pytest.mark.parametrize("kept", [str(v) for v in template()["Parameters"]["ImagesKeptPerVariant"]["AllowedValues"]])
def test_pushes_of_one_variant_never_expire_the_other(kept: str) -> None:
    """Many GPU-only pushes (image_variant=gpu) after a few CPU images leave those CPU images, and the reverse."""
    policy = rendered_policy(kept)
    count = int(kept)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for few, many in (("c-", "gpu-c-"), ("gpu-c-", "c-")):
        images = [{"tags": [f"{few}{n:012x}"], "pushed": start + timedelta(hours=n)} for n in range(3)]
        images += [{"tags": [f"{many}{100 + n:012x}"], "pushed": start + timedelta(days=1, hours=n)} for n in range(2 * count + 1)]
        left = evaluated(policy, images, start + timedelta(days=10))
        assert [i["tags"][0] for i in left if i["tags"][0].startswith(few)] == [f"{few}{n:012x}" for n in range(3)]
        assert len([i for i in left if i["tags"][0].startswith(many)]) == count
