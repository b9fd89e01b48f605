#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Record what a whole up.yml run applied, for the next run's short way (module short_way)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: applied_record
short_description: Record what up.yml applied, and the AWS state it left
version_added: 0.1.0
description:
  - Writes, into O(record_dir), the digest of the run's inputs, a fingerprint of each stack (ID, status,
    last change, parameters, tags, outputs), the current version of each secret, the AMI parameter the
    instance follows and the phases' results. M(nbstack.cloud.short_way) compares the next run with it.
  - Records only what this run saw. A stack whose last change is not the one the run saw (a teammate's
    update while this run waited for the server, say), or a secret whose current version is not the one
    the run applied, is not recorded, and the next run goes the whole way.
  - Reads only what it records; it holds no secret value. The file is replaced whole. A read or a write
    that fails is a warning, since the run went well; the next one goes the whole way.
  - The record is a cache of reads on this machine, not a change to AWS, so the task reports no change.
    In check mode nothing is written.
author:
  - nbstack (!UNKNOWN)
options:
  record_dir:
    description: Folder of the records.
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
    description: Digest of the run's inputs (lookup nbstack.cloud.inputs_digest).
    type: str
    required: true
  stacks:
    description: Names of the stacks the run applied (the network stack only when the run makes it).
    type: list
    elements: str
    required: true
  secret_versions:
    description: >-
      The version ID of each of the person's secrets the run applied (the secrets role's versions), by its
      name in Secrets Manager.
    type: dict
    required: true
  ami_parameter:
    description: The public SSM parameter that names the instance's ECS-optimized AMI.
    type: str
    required: true
  results:
    description: >-
      The network, persistent, work and instance results, as the summary takes them; each stack's
      C(changed_time) (the stack role's) is the change this run saw.
    type: dict
    required: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Record what this run applied
  nbstack.cloud.applied_record:
    record_dir: "{{ playbook_dir | dirname }}/.cache/applied"
    app_name: notebook-server
    prefix: alice
    inputs: "{{ last_run__inputs }}"
    stacks: [notebook-server-network, notebook-server-persistent, notebook-server-alice-work, notebook-server-alice]
    secret_versions: {notebook-server/alice/github-token: 0123abcd-..., notebook-server/alice/api-token: 4567cdef-...}
    ami_parameter: /aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id
    results: {network: {}, persistent: {}, work: {}, instance: {}}
"""

RETURN = r"""
path:
  description: The record's file ("" in check mode).
  type: str
  returned: always
"""

import datetime

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.nbstack.cloud.plugins.module_utils import applied


def main():
    module = AnsibleAWSModule(
        argument_spec={
            "record_dir": {"type": "path", "required": True},
            "app_name": {"type": "str", "required": True},
            "prefix": {"type": "str", "required": True},
            "inputs": {"type": "str", "required": True},
            "stacks": {"type": "list", "elements": "str", "required": True},
            "secret_versions": {"type": "dict", "required": True, "no_log": False},
            "ami_parameter": {"type": "str", "required": True},
            "results": {"type": "dict", "required": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    if module.check_mode:
        module.exit_json(changed=False, path="")
    retry = AWSRetry.jittered_backoff()
    cloudformation = module.client("cloudformation", retry_decorator=retry)
    secretsmanager = module.client("secretsmanager", retry_decorator=retry)
    try:
        account = module.client("sts", retry_decorator=retry).get_caller_identity(aws_retry=True)["Account"]
        stacks = {name: applied.describe_stack(cloudformation, name) for name in params["stacks"]}
        versions = {name: applied.current_version(secretsmanager, name) for name in params["secret_versions"]}
    except (ClientError, BotoCoreError) as error:
        # The run itself went well; only the next one is slower.
        module.warn(f"Could not read the stacks and secrets to record this run, so the next up.yml goes the whole way: {error}")
        module.exit_json(changed=False, path="")
    path = applied.record_path(params["record_dir"], cloudformation.meta.endpoint_url, account,
                               cloudformation.meta.region_name, params["app_name"], params["prefix"])
    seen = {result.get("name"): result.get("changed_time") for result in
            (params["results"]["network"].get("stack") or {}, *(params["results"][kind] for kind in ("persistent", "work", "instance")))}
    since = sorted(name for name, stack in stacks.items() if stack is None or not applied.same_time(seen.get(name), stack))
    since += sorted(name for name, version in versions.items() if version is None or version != params["secret_versions"][name])
    if path is None or since:
        # Something changed after this run saw it (or is gone): the next run goes the whole way.
        module.exit_json(changed=False, path="", not_recorded=f"changed since this run saw it: {', '.join(since) or 'none'}"
                         if path else "the app name, prefix or region is not a plain name")
    try:
        applied.write(path, {
            "inputs": params["inputs"],
            "account": account,
            "region": cloudformation.meta.region_name,
            "app": params["app_name"],
            "prefix": params["prefix"],
            "written_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "stacks": {name: applied.stack_fingerprint(stack) for name, stack in stacks.items()},
            "secrets": versions,
            "ami_parameter": params["ami_parameter"],
            "results": params["results"],
        })
    except OSError as error:
        module.warn(f"Could not write the record of this run to {path}, so the next up.yml goes the whole way: {error}")
        module.exit_json(changed=False, path="")
    module.exit_json(changed=False, path=path)


if __name__ == "__main__":
    main()
