"""status_info reads deleted stacks from ListStacks's summaries alone: one call per page, none per stack.

CloudFormation keeps deleted stacks for 90 days; describing each one is a
call per stack on every status.yml, and throttled ones make it slow.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

from ansible_collections.nbstack.cloud.plugins.modules import status_info

ROOT = Path(__file__).resolve().parents[2]
INSTANCE = "nbstack notebook server for one person (stack <app>-<prefix>): ..."


class Pages:
    def __init__(self, result: dict[str, Any]) -> None:
        self.result = result

    def build_full_result(self) -> dict[str, Any]:
        return self.result


class CloudFormation:
    """A CloudFormation client that records every call and answers from a fixed account."""

    def __init__(self, live: list[dict[str, Any]], deleted: list[dict[str, Any]]) -> None:
        self.live, self.deleted, self.calls = live, deleted, []

    def get_paginator(self, operation: str) -> Any:
        client = self

        class Paginator:
            def paginate(self, **kwargs: Any) -> Pages:
                client.calls.append((operation, kwargs))
                if operation == "describe_stacks":
                    return Pages({"Stacks": client.live})
                assert operation == "list_stacks" and kwargs == {"StackStatusFilter": ["DELETE_COMPLETE"]}
                return Pages({"StackSummaries": client.deleted})

        return Paginator()

    def describe_stacks(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("describe_stacks", kwargs))
        return {"Stacks": [s for s in self.live if s["StackName"] == kwargs.get("StackName")]}


class Module:
    params = {"prefixes": ["dave"]}

    def __init__(self, cloudformation: CloudFormation) -> None:
        self.cloudformation = cloudformation

    def client(self, service: str, **_: Any) -> Any:
        assert service == "cloudformation", "no stack in this account has a service to read"
        return self.cloudformation


def live(name: str, **tags: str) -> dict[str, Any]:
    return {
        "StackName": name,
        "StackStatus": "CREATE_COMPLETE",
        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
    }


def deleted(name: str, day: int, description: str = INSTANCE) -> dict[str, Any]:
    return {
        "StackName": name,
        "StackId": f"arn:aws:cloudformation:eu-west-1:123456789012:stack/{name}/{day}",
        "StackStatus": "DELETE_COMPLETE",
        "TemplateDescription": description,
        "DeletionTime": datetime(2026, 11, day, 9, 0, tzinfo=timezone.utc),
    }


def test_deleted_stacks_are_read_from_the_summaries_alone() -> None:
    cloudformation = CloudFormation(
        live=[
            live("team-persistent", **{"nbstack:app": "team", "nbstack:kind": "persistent"}),
            live("team-x-persistent", **{"nbstack:app": "team-x", "nbstack:kind": "persistent"}),
        ],
        deleted=[
            deleted("team-bob", 3),
            deleted("team-bob", 5),  # down and up again, then down: the latest deletion
            deleted("team-carol", 4),
            deleted("team-persistent", 2),  # the shared stack, not a person
            deleted("team-notes", 2, description="some other project's stack"),
            deleted("team-x-erin", 2),  # team-x's person, not team's "x-erin"
            deleted("team-y-network", 1, description="nbstack network (optional) ..."),
            deleted("team-y-frank", 2),  # team-y's (its network stack is deleted too)
            deleted("other-gina", 2),
        ],
    )
    found = status_info.read(Module(cloudformation), "team", details=False)
    assert found["instances"] == [{"prefix": "dave", "stack": None, "work": None}]  # no details: no deleted stacks read

    cloudformation.calls.clear()
    facts = status_info.deleted_instances(cloudformation, "team", ["team-persistent", "team-x-persistent"])
    assert facts == {"bob": "2026-11-05T09:00:00+00:00", "carol": "2026-11-04T09:00:00+00:00"}
    assert cloudformation.calls == [("list_stacks", {"StackStatusFilter": ["DELETE_COMPLETE"]})]


def test_status_makes_no_call_per_deleted_stack() -> None:
    cloudformation = CloudFormation(
        live=[live("team-persistent", **{"nbstack:app": "team", "nbstack:kind": "persistent"})],
        deleted=[deleted(f"team-p{n}", 1 + n % 20) for n in range(50)],
    )

    class Details(Module):
        def client(self, service: str, **_: Any) -> Any:
            return self.cloudformation if service == "cloudformation" else None

    facts = status_info.read(Details(cloudformation), "team", details=True)
    assert len([i for i in facts["instances"] if i.get("deleted")]) == 50
    assert [call for call, _ in cloudformation.calls] == ["describe_stacks", "list_stacks"]


def test_a_person_with_only_a_work_volume_is_listed_with_its_stored_bytes() -> None:
    work = live("team-erin-work", **{"nbstack:app": "team", "nbstack:kind": "work", "nbstack:prefix": "erin"})
    work["Outputs"] = [{"OutputKey": "FileSystemId", "OutputValue": "fs-0e1"}]
    other_app = live("other-gina-work", **{"nbstack:app": "other", "nbstack:kind": "work", "nbstack:prefix": "gina"})
    cloudformation = CloudFormation(live=[work, other_app], deleted=[])

    class Efs:
        def get_paginator(self, operation: str) -> Any:
            assert operation == "describe_file_systems"

            class Paginator:
                def paginate(self) -> Pages:
                    size = {"Value": 3 * 1024**3, "ValueInIA": 1024**3, "ValueInStandard": 2 * 1024**3}
                    return Pages({"FileSystems": [{"FileSystemId": "fs-0e1", "SizeInBytes": size}]})

            return Paginator()

    class Details(Module):
        def client(self, service: str, **_: Any) -> Any:
            return {"cloudformation": self.cloudformation, "efs": Efs()}.get(service)

    listed = status_info.read(Module(cloudformation), "team", details=False)["instances"]
    assert [(entry["prefix"], entry["stack"], entry["work"]["name"]) for entry in listed if entry["work"]] == [
        ("erin", None, "team-erin-work")
    ]
    facts = status_info.read(Details(cloudformation), "team", details=True)
    (erin,) = [entry for entry in facts["instances"] if entry["prefix"] == "erin"]
    assert (erin["work"]["bytes"], erin["work"]["bytes_ia"], erin["work"]["bytes_standard"]) == (
        3 * 1024**3,
        1024**3,
        2 * 1024**3,
    )
    assert "gina" not in [entry["prefix"] for entry in facts["instances"]]


def test_the_instance_template_has_the_description_status_looks_for() -> None:
    template, matches = decode(str(ROOT / "files" / "cloudformation" / "instance.yml"))
    assert not matches, matches
    assert " ".join(template["Description"].split()).startswith(status_info.INSTANCE_DESCRIPTION_START)
