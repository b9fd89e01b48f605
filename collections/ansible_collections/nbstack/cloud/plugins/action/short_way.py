# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""up.yml's short way (nbstack.cloud.short_way), run in the controller's own process.

The short way is all a no-op or a restart runs of AWS work: a dozen reads,
and the start. As a module it would cost more than those calls: Ansible
builds a module's payload (AnsiballZ) for every run, reading amazon.aws's
runtime metadata to resolve its imports (about 0.3 s on a small machine),
then starts another Python that imports Ansible's module code again (about
0.25 s more than the reads made from a process that has already started).
An action plugin runs in the worker Ansible has already forked for the
task, on the controller, which is where up.yml's AWS modules run anyway
(the inventory is localhost, with the controller's Python).

What a module has, this keeps: the task's arguments are validated against
the module's argument spec plus amazon.aws's connection options, with their
environment fallbacks (AWS_REGION, AWS_PROFILE...), as AnsibleAWSModule
validates them; the connection is amazon.aws's reading of those options
(module_utils.botocore); check mode is honoured; a no_log option's value
(the secrets, a secret key) is masked in whatever is returned or warned,
as AnsibleModule masks it.

It runs the module (modules/short_way.py, the same work) as a process of
its own instead:
- when the task has an `environment:` (AWS_PROFILE, a proxy...),
  `delegate_to` or `async`, which only a module process honours;
- with debug_botocore_endpoint_logs, whose list of the calls made
  (resource_actions) AnsibleAWSModule collects;
- on macOS, unless a proxy variable is set: a new boto3 client looks up the
  system's proxy settings (urllib's _scproxy), which is not safe in a
  process forked from one that runs threads, as Ansible's worker is (see
  the warning in the documentation of Python's urllib.request). With a
  proxy variable set, urllib reads that and never asks the system.
"""

from __future__ import annotations

import sys
import traceback
from urllib.request import getproxies_environment

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.amazon.aws.plugins.module_utils.botocore import (
    HAS_BOTO3,
    check_sdk_version_supported,
    gather_sdk_versions,
)
from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleBotocoreError
from ansible_collections.amazon.aws.plugins.module_utils.modules import aws_argument_spec

from ansible_collections.nbstack.cloud.plugins.module_utils import short_way

display = Display()

NAME = "nbstack.cloud.short_way"
#: Where the controller runs (a name the tests can change without changing sys.platform for everyone).
PLATFORM = sys.platform


class Finished(Exception):
    """What AnsibleModule's fail_json ends the module's process with: the result."""

    def __init__(self, result):
        super().__init__(result.get("msg", ""))
        self.result = result


class ControllerModule:
    """What module_utils.short_way and module_utils.capacity use of AnsibleAWSModule, in the controller."""

    def __init__(self, params, check_mode, hidden):
        self.params = params
        self.check_mode = check_mode
        self.hidden = hidden

    def warn(self, warning):
        display.warning(remove_values(warning, self.hidden))

    def fail_json(self, **result):
        raise Finished(dict(result, failed=True))

    def fail_json_aws(self, exception, msg=None, **result):
        """As AnsibleAWSModule's: the message, the SDK's versions, the exception's and the response's details."""
        failure = dict(result, msg=f"{msg}: {exception}" if msg else str(exception), exception=traceback.format_exc(),
                       **gather_sdk_versions())
        response = getattr(exception, "response", None)
        if response is not None:
            failure.update(camel_dict_to_snake_dict(response))
        self.fail_json(**failure)


def in_process(task, params):
    """Whether the work runs here rather than as the module's own process (see above)."""
    # A task's environment is a list of mappings, [{}] when none is given.
    if any(task.environment or ()) or task.delegate_to or task.async_val or params.get("debug_botocore_endpoint_logs"):
        return False
    return PLATFORM != "darwin" or bool(getproxies_environment())


class ActionModule(ActionBase):
    _supports_check_mode = True
    _supports_async = True  # as the module process

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        validated = ArgumentSpecValidator(dict(aws_argument_spec(), **short_way.ARGUMENT_SPEC)).validate(self._task.args)
        hidden = validated._no_log_values
        if validated.error_messages:
            said = [("unsupported parameters: " if isinstance(error, UnsupportedError) else "") + error.msg for error in validated.errors]
            raise AnsibleActionFail(remove_values(f"{NAME}: " + "; ".join(said), hidden))
        if not in_process(self._task, validated.validated_parameters):
            # As ansible.builtin.normal runs a module. A copy: Ansible adds its own keys to the arguments it is given.
            wrap_async = self._task.async_val and not self._connection.has_native_async
            result.update(self._execute_module(module_name=NAME, module_args=dict(self._task.args), task_vars=task_vars,
                                               wrap_async=wrap_async))
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
            return result
        # What AnsibleModule would warn of (an option given twice, by name and alias; a deprecated alias).
        for warning in validated._warnings:
            display.warning(f"{NAME}: both option {warning['option']} and its alias {warning['alias']} are set")
        for deprecation in validated._deprecations:
            display.warning(f"{NAME}: {deprecation['msg']}")
        if not HAS_BOTO3:
            raise AnsibleActionFail(f"{NAME} needs boto3 and botocore in the controller's Python"
                                    " (pip install -r requirements.txt)")
        try:
            check_sdk_version_supported(warn=display.warning)
        except AnsibleBotocoreError as error:
            raise AnsibleActionFail(f"{NAME}: {error}") from None
        module = ControllerModule(validated.validated_parameters, bool(self._task.check_mode), hidden)
        try:
            done = short_way.run(module)
        except Finished as finished:
            done = finished.result
        result.update(remove_values(done, hidden))
        return result
