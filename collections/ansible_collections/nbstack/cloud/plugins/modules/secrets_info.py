#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The secrets under a name prefix, by name and ARN; never their values.

Neither amazon.aws nor community.aws lists Secrets Manager secrets (the
secretsmanager_secret lookup finds them by path but reads every value on
the way). The secrets role removes a whole app's secrets with it.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: secrets_info
short_description: List the Secrets Manager secrets whose names start with a prefix
version_added: 0.1.0
description:
  - Lists the names, ARNs and tags of the secrets whose names start with
    I(name_prefix). Secret values are never read.
author:
  - nbstack (!UNKNOWN)
options:
  name_prefix:
    description: Start of the secrets' names, like C(notebook-server/) for every person's secrets of an app.
    type: str
    required: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Find every person's secrets of the app
  nbstack.cloud.secrets_info:
    name_prefix: notebook-server/
  register: secrets__found
"""

RETURN = r"""
secrets:
  description: The secrets found, sorted by name.
  type: list
  elements: dict
  returned: success
  contains:
    name:
      description: Name of the secret.
      type: str
    arn:
      description: ARN of the secret.
      type: str
    tags:
      description: Tags of the secret.
      type: dict
  sample:
    - name: notebook-server/alice/github-token
      arn: arn:aws:secretsmanager:eu-west-1:123456789012:secret:notebook-server/alice/github-token-AbCdEf
      tags: {"nbstack:app": "notebook-server", "nbstack:prefix": "alice"}
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict


# Paginators are not retried by the client wrapper: the whole listing is.
@AWSRetry.jittered_backoff()
def list_secrets(client, name_prefix):
    # The "name" filter matches the start of the name; the check below keeps
    # only exact prefixes whatever the API's matching rules.
    pages = client.get_paginator("list_secrets").paginate(Filters=[{"Key": "name", "Values": [name_prefix]}])
    found = [
        {"name": entry["Name"], "arn": entry["ARN"], "tags": boto3_tag_list_to_ansible_dict(entry.get("Tags", []))}
        for entry in pages.build_full_result()["SecretList"]
        if entry["Name"].startswith(name_prefix)
    ]
    return sorted(found, key=lambda entry: entry["name"])


def main():
    module = AnsibleAWSModule(
        argument_spec={"name_prefix": {"type": "str", "required": True}},
        supports_check_mode=True,
    )
    client = module.client("secretsmanager", retry_decorator=AWSRetry.jittered_backoff())
    try:
        secrets = list_secrets(client, module.params["name_prefix"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        module.fail_json_aws(error, msg=f"Could not list the secrets under {module.params['name_prefix']}")
    module.exit_json(changed=False, secrets=secrets)


if __name__ == "__main__":
    main()
