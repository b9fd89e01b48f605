#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which image tags an ECR repository holds, and a login for it.

amazon.aws has no module for ECR images (community.aws's ecs_ecr manages
repositories, not images) nor for ECR's authorization token; image.yml needs
both to push only what is missing.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ecr_image_info
short_description: Find image tags in an ECR repository; optionally get a registry login
version_added: 0.1.0
description:
  - Reports which of the given tags exist in the repository and which are
    missing, and the repository's URI. When the repository does not exist,
    fails with a message naming image.yml (which creates it), or, with
    I(missing_repository=report), reports every tag missing and an empty
    URI (up.yml's preflight reports it with the other problems).
  - With I(login=true), also returns the user name and password that
    C(docker login) takes for the registry. Set C(no_log) on the task.
author:
  - nbstack (!UNKNOWN)
options:
  repository_name:
    description: Name of the repository, like notebook-server/notebook.
    type: str
    required: true
  image_tags:
    description: Tags to look for.
    type: list
    elements: str
    required: true
  login:
    description: Also return a registry login (valid for 12 hours).
    type: bool
    default: false
  missing_repository:
    description: What a repository that does not exist is, C(fail) (the task fails) or C(report) (no tag found).
    type: str
    choices: [fail, report]
    default: fail
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Ask ECR which tags are pushed
  nbstack.cloud.ecr_image_info:
    repository_name: notebook-server/notebook
    image_tags: [c-0123456789ab, gpu-c-0123456789ab]
  register: image__pushed

- name: Get a registry login
  nbstack.cloud.ecr_image_info:
    repository_name: notebook-server/notebook
    image_tags: []
    login: true
  register: image__login
  no_log: true
"""

RETURN = r"""
found_tags:
  description: The given tags that exist in the repository, in the given order.
  type: list
  elements: str
  returned: success
  sample: [c-0123456789ab]
missing_tags:
  description: The given tags that do not exist, in the given order.
  type: list
  elements: str
  returned: success
  sample: [gpu-c-0123456789ab]
repository_uri:
  description: URI of the repository, C(<registry>/<name>); empty when it does not exist.
  type: str
  returned: success
  sample: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/notebook-server/notebook
username:
  description: User name for docker login (AWS).
  type: str
  returned: when login is true
  sample: AWS
password:
  description: Password for docker login. Secret.
  type: str
  returned: when login is true
proxy_endpoint:
  description: Registry endpoint the login is for.
  type: str
  returned: when login is true
  sample: https://123456789012.dkr.ecr.eu-west-1.amazonaws.com
"""

import base64

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry


def repository_uri(module, client, repository):
    """The repository's URI, or "" when it does not exist (a failure unless missing_repository=report)."""
    try:
        found = client.describe_repositories(repositoryNames=[repository], aws_retry=True)["repositories"]
    except is_boto3_error_code("RepositoryNotFoundException"):
        found = []
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:  # pylint: disable=duplicate-except
        module.fail_json_aws(error, msg=f"Could not read the ECR repository {repository}")
    if not found and module.params["missing_repository"] == "fail":
        module.fail_json(
            msg=(f"The ECR repository {repository} does not exist. It is part of the persistent stack, which ansible-playbook image.yml creates: run it first.")
        )
    return str(found[0]["repositoryUri"]) if found else ""


def tag_exists(module, client, repository, tag):
    """Whether the tag is in the repository.

    One tag per call: DescribeImages fails as a whole when any listed tag is missing.
    """
    try:
        client.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}], aws_retry=True)
    except is_boto3_error_code("ImageNotFoundException"):
        return False
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:  # pylint: disable=duplicate-except
        module.fail_json_aws(error, msg=f"Could not look for tag {tag} in {repository}")
    return True


def login(module, client):
    try:
        data = client.get_authorization_token(aws_retry=True)["authorizationData"][0]
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        module.fail_json_aws(error, msg="Could not get an ECR authorization token")
    # The token is base64("<user>:<password>").
    username, _colon, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    return {"username": username, "password": password, "proxy_endpoint": data.get("proxyEndpoint", "")}


def main():
    module = AnsibleAWSModule(
        argument_spec={
            "repository_name": {"type": "str", "required": True},
            "image_tags": {"type": "list", "elements": "str", "required": True},
            "login": {"type": "bool", "default": False},
            "missing_repository": {"type": "str", "choices": ["fail", "report"], "default": "fail"},
        },
        supports_check_mode=True,
    )
    repository = module.params["repository_name"]
    client = module.client("ecr", retry_decorator=AWSRetry.jittered_backoff())
    uri = repository_uri(module, client, repository)
    found = [tag for tag in module.params["image_tags"] if uri and tag_exists(module, client, repository, tag)]
    result = {
        "changed": False,
        "repository_uri": uri,
        "found_tags": found,
        "missing_tags": [tag for tag in module.params["image_tags"] if tag not in found],
    }
    if module.params["login"]:
        result.update(login(module, client))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
