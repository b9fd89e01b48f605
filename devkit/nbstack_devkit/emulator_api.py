"""CloudFormation calls the emulator lacks, answered as AWS documents them.

The stack role turns termination protection on and off and continues a
rollback that failed; moto 5.2.5 has neither call (it answers 500, "not
implemented") and deletes a protected stack. `fill_api_gaps` adds them to
the emulator's CloudFormation, in the process that runs it, so that the
playbooks make the same calls as on AWS. One entry per call:

- `UpdateTerminationProtection`: sets the flag `DescribeStacks` reports.
- `DeleteStack` on a stack with termination protection: refused with
  CloudFormation's ValidationError, the stack left as it is.
- `ContinueUpdateRollback` from `UPDATE_ROLLBACK_FAILED`: the rollback
  completes (`UPDATE_ROLLBACK_COMPLETE`); from any other state, the
  ValidationError CloudFormation answers.

Documentation: CloudFormation API reference, UpdateTerminationProtection,
ContinueUpdateRollback; user guide, "Protect a stack from being deleted".
"""

from __future__ import annotations

from typing import Any

from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import CloudFormationBackend
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.responses import ActionResult, EmptyResult


def _stack(response: CloudFormationResponse, name_or_id: str) -> Any:
    return response.cloudformation_backend.get_stack(name_or_id)


def update_termination_protection(self: CloudFormationResponse) -> ActionResult:
    stack = _stack(self, self._get_param("StackName"))
    stack.enable_termination_protection = str(self._get_param("EnableTerminationProtection")).lower() == "true"
    return ActionResult({"StackId": stack.stack_id})


def continue_update_rollback(self: CloudFormationResponse) -> EmptyResult:
    stack = _stack(self, self._get_param("StackName"))
    if stack.status != "UPDATE_ROLLBACK_FAILED":
        raise ValidationError(
            message=f"Stack {stack.name} is in {stack.status} state and can not continue update rollback."
        )
    stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
    stack._add_stack_event("UPDATE_ROLLBACK_IN_PROGRESS", "ContinueUpdateRollback")
    stack.status = "UPDATE_ROLLBACK_COMPLETE"
    stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
    return EmptyResult()


def fill_api_gaps() -> None:
    """Add the calls above to this process's emulator; doing it twice changes nothing."""
    if getattr(CloudFormationResponse, "_nbstack_api_gaps_filled", False):
        return
    delete = CloudFormationBackend.delete_stack

    def delete_unless_protected(self: CloudFormationBackend, name_or_stack_id: str) -> None:
        for stack in list(self.stacks.values()):
            if name_or_stack_id in (stack.stack_id, stack.name) and stack.enable_termination_protection:
                raise ValidationError(
                    message=f"Stack [{stack.name}] cannot be deleted while TerminationProtection is enabled"
                )
        delete(self, name_or_stack_id)

    CloudFormationResponse.update_termination_protection = update_termination_protection  # type: ignore[attr-defined]
    CloudFormationResponse.continue_update_rollback = continue_update_rollback  # type: ignore[attr-defined]
    CloudFormationBackend.delete_stack = delete_unless_protected  # type: ignore[method-assign]
    CloudFormationResponse._nbstack_api_gaps_filled = True  # type: ignore[attr-defined]
