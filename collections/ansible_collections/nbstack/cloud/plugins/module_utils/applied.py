# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record of what up.yml last applied for a person, and the AWS state it was applied to.

up.yml writes it (module applied_record) after every run that went the
whole way, into a folder of the checkout that ran it; the next up.yml
(nbstack.cloud.short_way) takes the short way only while the record matches
both its own inputs (settings, code, image tag) and AWS now. The record
holds no secret: stack IDs, times and digests, secret version IDs, and the
results the summary prints.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import tempfile

try:
    import boto3
    import botocore.config
    from botocore.exceptions import ClientError
except ImportError:
    pass  # the modules that use this say so (AnsibleAWSModule)

from ansible_collections.amazon.aws.plugins.module_utils.botocore import get_aws_connection_info
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry, RetryingBotoClientWrapper

#: Bumped when the record's shape changes: an older record is then no record.
VERSION = 1

#: Where a record may be kept: names that are safe as a file name.
SAFE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*\Z")


class Clients:
    """Clients of one boto3 session, made on first use, each retrying as AnsibleAWSModule.client()'s do.

    AnsibleAWSModule.client() starts a new boto3 session for every client,
    and each session loads botocore's endpoint and service data again (about
    70 ms a client on a small machine). The short way talks to seven
    services in the one task that is most of its time, so it
    builds them from one session, with amazon.aws's own reading of the
    connection settings (region, endpoint, profile, keys, aws_config).
    """

    def __init__(self, module):
        region, endpoint, connect = get_aws_connection_info(module)
        connect = dict(connect)
        config = botocore.config.Config(user_agent_extra="nbstack")
        extra = connect.pop("aws_config", None) or connect.pop("config", None)
        if extra:
            config = config.merge(extra if isinstance(extra, botocore.config.Config) else botocore.config.Config(**extra))
        self._session = boto3.session.Session(profile_name=connect.pop("profile_name", None))
        self._settings = dict(connect, config=config, region_name=region, endpoint_url=endpoint)
        self._made = {}

    def __call__(self, service):
        if service not in self._made:
            client = self._session.client(service, **self._settings)
            self._made[service] = RetryingBotoClientWrapper(client, AWSRetry.jittered_backoff())
        return self._made[service]


def record_path(folder, endpoint, account, region, app, prefix):
    """The record's file: one per AWS endpoint, account, region, app and prefix; None for a name unsafe in a path."""
    if not (SAFE_NAME.match(app or "") and SAFE_NAME.match(prefix or "") and re.match(r"^[a-z0-9-]+\Z", region or "")):
        return None
    # CloudFormation's endpoint: a local emulator's account is not AWS's of the same number.
    where = hashlib.sha256(endpoint.encode()).hexdigest()[:8]
    return os.path.join(folder, f"{account}-{region}-{app}-{prefix}-{where}.json")


def stack_fingerprint(stack):
    """What changes whenever CloudFormation changes the stack: its ID, status, last change, parameters, tags, outputs."""
    parameters = sorted((p["ParameterKey"], p.get("ParameterValue", ""), p.get("ResolvedValue", "")) for p in stack.get("Parameters", []))
    tags = sorted((t["Key"], t["Value"]) for t in stack.get("Tags", []))
    outputs = sorted((o["OutputKey"], o.get("OutputValue", "")) for o in stack.get("Outputs", []))
    changed = stack.get("LastUpdatedTime") or stack.get("CreationTime")
    return {
        "id": stack["StackId"],
        "status": stack["StackStatus"],
        "changed": changed.isoformat() if hasattr(changed, "isoformat") else str(changed),
        "digest": hashlib.sha256(json.dumps([parameters, tags, outputs]).encode()).hexdigest(),
    }


def same_time(seen, stack):
    """Whether the stack's last change (DescribeStacks) is the one a run saw (seen: its ISO 8601 text)."""
    changed = stack.get("LastUpdatedTime") or stack.get("CreationTime")
    if not seen or not hasattr(changed, "isoformat"):
        return False
    try:
        return datetime.datetime.fromisoformat(str(seen).replace("Z", "+00:00")) == changed
    except ValueError:
        return False


def describe_stack(cloudformation, name):
    """The stack as DescribeStacks gives it, or None when there is none of that name."""
    try:
        return cloudformation.describe_stacks(StackName=name, aws_retry=True)["Stacks"][0]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ValidationError" and "does not exist" in str(error):
            return None
        raise


def current_version(secretsmanager, name):
    """The version ID of the secret's AWSCURRENT value (no value is read), or None when there is no such secret (or it is being deleted)."""
    try:
        described = secretsmanager.describe_secret(SecretId=name, aws_retry=True)
    except secretsmanager.exceptions.ResourceNotFoundException:
        return None
    if described.get("DeletedDate"):
        # Scheduled for deletion: the whole way restores it.
        return None
    return next((version for version, stages in described.get("VersionIdsToStages", {}).items() if "AWSCURRENT" in stages), None)


def read(path):
    """The record at path, or None when there is none (or an older shape, or a file that is not one)."""
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("version") == VERSION else None


def write(path, record):
    """Write the record whole or not at all (a run beside this one reads either the old one or the new)."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".applied-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(dict(record, version=VERSION), out, indent=1, sort_keys=True)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
