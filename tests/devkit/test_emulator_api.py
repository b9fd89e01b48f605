"""The emulator answers the CloudFormation calls it lacks as AWS documents them (nbstack_devkit.emulator_api's list)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError
from moto.cloudformation.models import cloudformation_backends

from nbstack_devkit.emulator import ACCOUNT_ID, REGION, Emulator

TEMPLATE = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    server = Emulator().start()
    yield server
    server.stop()


def test_a_protected_stack_is_deleted_only_once_its_protection_is_off(emulator: Emulator) -> None:
    cloudformation = emulator.client("cloudformation")
    cloudformation.create_stack(StackName="shared", TemplateBody=TEMPLATE, EnableTerminationProtection=True)
    with pytest.raises(ClientError, match="cannot be deleted while TerminationProtection is enabled"):
        cloudformation.delete_stack(StackName="shared")
    assert cloudformation.describe_stacks(StackName="shared")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    cloudformation.update_termination_protection(StackName="shared", EnableTerminationProtection=False)
    assert cloudformation.describe_stacks(StackName="shared")["Stacks"][0]["EnableTerminationProtection"] is False
    cloudformation.delete_stack(StackName="shared")
    # The emulator's state is the process's: other tests' stacks may be listed too.
    listed = [s["StackStatus"] for s in cloudformation.list_stacks()["StackSummaries"] if s["StackName"] == "shared"]
    assert listed == ["DELETE_COMPLETE"]


def test_only_a_failed_rollback_is_continued(emulator: Emulator) -> None:
    cloudformation = emulator.client("cloudformation")
    cloudformation.create_stack(StackName="shared", TemplateBody=TEMPLATE)
    with pytest.raises(ClientError, match="can not continue update rollback"):
        cloudformation.continue_update_rollback(StackName="shared")
    (stack,) = [s for s in cloudformation_backends[ACCOUNT_ID][REGION].stacks.values() if s.name == "shared"]
    stack.status = "UPDATE_ROLLBACK_FAILED"
    cloudformation.continue_update_rollback(StackName="shared")
    assert cloudformation.describe_stacks(StackName="shared")["Stacks"][0]["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
