"""Team-wide changes that the persistent stack's exports in use would block (preflight, tasks/exports.yml)."""

from __future__ import annotations

from typing import Any

from ansible_collections.nbstack.cloud.plugins.filter.exports import export_problems

SETTINGS = {
    "VpcId": "notebook_vpc_id",
    "PrivateSubnetIds": "notebook_private_subnet_ids",
    "NotebookPort": "notebook_port",
    "HealthPort": "notebook_health_port",
}
HELD = {"VpcId": "vpc-0a", "PrivateSubnetIds": "subnet-01,subnet-02", "NotebookPort": "8888", "HealthPort": "8889"}


def stacks(*instances: dict[str, Any], persistent: dict[str, str] | None = HELD) -> dict[str, Any]:
    return {
        "persistent": None if persistent is None else {"name": "nb-persistent", "status": "UPDATE_COMPLETE", "parameters": persistent},
        "network": None,
        "instances": [{"prefix": s["name"].removeprefix("nb-"), "stack": s} for s in instances],
    }


# A stack of this version takes the ports and subnets as parameters; one made earlier imports them.
CURRENT = {"name": "nb-alice", "parameters": {"NotebookPort": "8888", "HealthPort": "8889", "PrivateSubnetIds": "subnet-01,subnet-02"}}
EARLIER = {"name": "nb-bob", "parameters": {"Prefix": "bob"}}


def wanted(**changes: Any) -> dict[str, Any]:
    return {**HELD, "PrivateSubnetIds": ["subnet-01", "subnet-02"], "NotebookPort": 8888, "HealthPort": 8889, **changes}


def test_nothing_changes_nothing_is_refused() -> None:
    assert export_problems(stacks(CURRENT, EARLIER), wanted(), SETTINGS) == []


def test_the_emulators_bracketed_list_is_the_same_list() -> None:
    held = {**HELD, "PrivateSubnetIds": "['subnet-01', 'subnet-02']"}
    assert export_problems(stacks(EARLIER, persistent=held), wanted(), SETTINGS) == []


def test_a_port_change_is_refused_while_an_earlier_stack_imports_the_port() -> None:
    (problem,) = export_problems(stacks(CURRENT, EARLIER), wanted(NotebookPort=9000), SETTINGS)
    assert problem.startswith("notebook_port: changing it from 8888 to 9000")
    assert "nb-persistent-NotebookPort" in problem
    assert "1 instance stack (nb-bob)" in problem and "nb-alice" not in problem
    assert "up.yml once with the current setting (8888)" in problem and "down.yml -e prefix=" in problem


def test_ports_and_subnets_change_freely_when_every_stack_takes_them_as_parameters() -> None:
    change = wanted(NotebookPort=9000, HealthPort=9001, PrivateSubnetIds=["subnet-03"])
    assert export_problems(stacks(CURRENT), change, SETTINGS) == []


def test_every_blocked_change_is_one_problem() -> None:
    change = wanted(HealthPort=9001, PrivateSubnetIds=["subnet-03"])
    problems = export_problems(stacks(EARLIER, {**EARLIER, "name": "nb-carol"}), change, SETTINGS)
    assert [p.split(":")[0] for p in problems] == ["notebook_private_subnet_ids", "notebook_health_port"]
    assert all("2 instance stacks (nb-bob, nb-carol)" in p for p in problems)


def test_a_vpc_change_is_refused_while_any_instance_stack_exists() -> None:
    (problem,) = export_problems(stacks(CURRENT), wanted(VpcId="vpc-0b"), SETTINGS)
    assert problem.startswith("notebook_vpc_id: the network would move from vpc-0a to vpc-0b")
    assert "nb-persistent-VpcId, nb-persistent-InstanceSecurityGroupId" in problem
    assert "1 instance stack (nb-alice) imports" in problem
    assert "down.yml -e persistent=absent" in problem


def test_a_vpc_change_is_refused_while_work_volumes_exist_with_no_server_up() -> None:
    """Every server down, their volumes kept: each work stack imports the work volume's security group."""
    found = stacks()
    found["instances"] = [{"prefix": p, "stack": None, "work": {"name": f"nb-{p}-work"}} for p in ("alice", "bob")]
    (problem,) = export_problems(found, wanted(VpcId="vpc-0b"), SETTINGS)
    assert "2 work volumes (nb-alice-work, nb-bob-work) import" in problem
    assert "nb-persistent-WorkVolumeSecurityGroupId" in problem
    assert "-e purge_work=true for each of them, with -e force=true when that person's server stack is gone" in problem
    assert "once its owner has copied off the files to keep" in problem
    found["instances"][0]["stack"] = CURRENT
    (problem,) = export_problems(found, wanted(VpcId="vpc-0b"), SETTINGS)
    assert "1 instance stack (nb-alice) and 2 work volumes (nb-alice-work, nb-bob-work) import" in problem


def test_a_vpc_change_is_one_problem_though_the_subnets_move_with_it() -> None:
    (problem,) = export_problems(stacks(EARLIER), wanted(VpcId="vpc-0b", PrivateSubnetIds=["subnet-0b"]), SETTINGS)
    assert problem.startswith("notebook_vpc_id:")


def test_without_instance_stacks_or_a_persistent_stack_nothing_is_in_use() -> None:
    change = wanted(VpcId="vpc-0b", NotebookPort=9000)
    assert export_problems(stacks(), change, SETTINGS) == []
    assert export_problems(stacks(EARLIER, persistent=None), change, SETTINGS) == []


def bucket_stacks(*instances: dict[str, Any], given: str = "", kept: str = "false", current: str = "nb-models-1-eu-west-1") -> dict[str, Any]:
    found = stacks(*instances, persistent={**HELD, "ExistingModelBucket": given, "KeptModelBucket": kept})
    found["persistent"]["outputs"] = {"ModelBucketName": current}
    return found


def test_another_model_bucket_is_refused_while_any_server_imports_the_bucket() -> None:
    (problem,) = export_problems(bucket_stacks(CURRENT), wanted(ModelBucket="other-bucket"), SETTINGS)
    assert problem.startswith("notebook_model_bucket: the models would move from the bucket nb-models-1-eu-west-1 to other-bucket")
    assert "nb-persistent-ModelBucketName" in problem and "(nb-alice)" in problem
    assert 'back to ""' in problem and "down.yml -e prefix=PREFIX" in problem


def test_the_same_bucket_or_no_server_is_no_problem() -> None:
    assert export_problems(bucket_stacks(CURRENT), wanted(ModelBucket=""), SETTINGS) == []
    assert export_problems(bucket_stacks(CURRENT), wanted(ModelBucket="nb-models-1-eu-west-1"), SETTINGS) == []
    assert export_problems(bucket_stacks(), wanted(ModelBucket="other-bucket"), SETTINGS) == []


def test_a_kept_bucket_is_the_teams_own_and_stays() -> None:
    found = bucket_stacks(CURRENT, given="nb-models-old", kept="true", current="nb-models-old")
    assert export_problems(found, wanted(ModelBucket="", OwnModelBucket="nb-models-1-eu-west-1"), SETTINGS) == []


def test_leaving_a_given_bucket_for_the_teams_own_is_refused_while_a_server_imports_it() -> None:
    found = bucket_stacks(CURRENT, EARLIER, given="their-bucket", current="their-bucket")
    (problem,) = export_problems(found, wanted(ModelBucket="", OwnModelBucket="nb-models-1-eu-west-1"), SETTINGS)
    assert "from the bucket their-bucket to nb-models-1-eu-west-1" in problem
    assert "2 instance stacks (nb-alice, nb-bob) import" in problem and "back to their-bucket" in problem
