#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""up.yml's short way: when its inputs and AWS are as its last whole run left them, only start the server.

The whole way reads each stack, the secrets, the instance type, the listener
and the AMI in a dozen module processes and compares them with what the
settings make. A run that went the whole way records (module
applied_record) a digest of its inputs and a fingerprint of the AWS state it
left; this task makes the reads that state needs, in one process, and
says whether anything differs. It never decides what to apply: when
anything differs, or cannot be read, up.yml goes the whole way. When nothing
differs, the server is started (a stopped one) with the capacity module's
own code, in this same process: a second process would cost more than
every read here.

The action plugin of the same name runs this work in Ansible's own process
(plugins/action/short_way.py, which says why and when it runs this module
instead); the work itself is module_utils/short_way.py.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: short_way
short_description: Take up.yml's short way when the last whole run left AWS as this run would
version_added: 0.1.0
description:
  - Reads the record the last whole C(up.yml) run for O(prefix) wrote from this checkout
    (M(nbstack.cloud.applied_record)) and compares it with this run's inputs and with AWS now.
  - The run has nothing to apply (RV(current)) when the inputs digest is the same (settings, code, image
    tag), every recorded stack has the same ID, status, last change, parameters, tags and outputs, each
    vault value equals the current value of its secret and each secret's current version is the one
    recorded, and a stopped server's stack already has the newest ECS-optimized AMI and its image is in
    ECR (the whole way would otherwise update the stack, or fail, on the restart).
  - Then it starts the server as M(nbstack.cloud.capacity) does with C(state=started) (the same code) - the
    group to 1, the person's container instance ACTIVE, the service to 1, the first healthy check - unless
    its task runs already and its target is healthy (or O(wait_timeout) is 0).
  - A read that fails makes RV(current) false with the reason, never a failure; the whole way then reads
    again and says what is wrong. Nothing is changed unless RV(current). In check mode nothing is started.
  - It runs in Ansible's own process on the controller (an action plugin), so boto3 and botocore must be
    installed in the controller's Python. It runs as a module process instead with O(debug_botocore_endpoint_logs)
    (whose RV(resource_actions) are the module's), and on macOS unless a proxy variable (C(https_proxy),
    C(no_proxy)...) is set, since looking up macOS's proxy settings is not safe in the process Ansible forks.
author:
  - nbstack (!UNKNOWN)
options:
  record_dir:
    description: Folder of the records (one file per endpoint, account, region, app and prefix).
    type: path
    required: true
  app_name:
    description: The app name (notebook_app_name).
    type: str
    required: true
  prefix:
    description: Whose server.
    type: str
    required: true
  inputs:
    description: Digest of this run's inputs (lookup nbstack.cloud.inputs_digest).
    type: str
    required: true
  secrets:
    description: The value each secret that comes from the vault is to have, by its name in Secrets Manager.
    type: dict
    required: true
  register_timeout:
    description: As M(nbstack.cloud.capacity)'s.
    type: int
    default: 900
  wait_timeout:
    description: As M(nbstack.cloud.capacity)'s; 0 does not wait for the health check.
    type: int
    default: 600
  wait_interval:
    description: As M(nbstack.cloud.capacity)'s.
    type: int
    default: 2
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Compare with what the last whole run applied, and start the server when that is all to do
  nbstack.cloud.short_way:
    record_dir: "{{ playbook_dir | dirname }}/.cache/applied"
    app_name: notebook-server
    prefix: alice
    inputs: "{{ last_run__inputs }}"
    secrets: {"notebook-server/alice/notebook-password": "{{ notebook_password }}"}
"""

RETURN = r"""
current:
  description: Whether this run has nothing to apply.
  type: bool
  returned: always
reason:
  description: Why not, in a few words ("" when current).
  type: str
  returned: always
  sample: the stack notebook-server-persistent changed since (by another run or the console)
phases:
  description: The results of the network, persistent, work and instance phases the last whole run reported, when current.
  type: dict
  returned: always
running:
  description: Whether the server's auto scaling group asks for an instance (the server is not stopped), when current.
  type: bool
  returned: always
serving:
  description: Whether the running server's service asks for its task and runs it, when current.
  type: bool
  returned: always
healthy:
  description: >-
    Whether it also has a healthy target (what the capacity module waits for), when current: after the start,
    if it had to start (null when not waited for).
  type: bool
  returned: always
started:
  description: Whether the group or the service had to be started.
  type: bool
  returned: always
timeline:
  description: What the start did, as M(nbstack.cloud.capacity) returns it (empty when nothing was started).
  type: list
  elements: dict
  returned: always
ami_waiting:
  description: A newer ECS-optimized AMI that the running server takes at its next stop, or "".
  type: str
  returned: always
resource_actions:
  description: The AWS calls made, with O(debug_botocore_endpoint_logs) (as amazon.aws's modules return them).
  type: list
  elements: str
  returned: when debug_botocore_endpoint_logs is true
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.nbstack.cloud.plugins.module_utils.short_way import ARGUMENT_SPEC, run


def main():
    module = AnsibleAWSModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
