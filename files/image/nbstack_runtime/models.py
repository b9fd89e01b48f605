"""Save and load trained models in the team's versioned S3 bucket.

    from nbstack_runtime.models import save_model, load_model, list_models

    version = save_model(model, "churn")        # -> S3 version id
    model = load_model("churn")                 # latest
    model = load_model("churn", version=version)
    list_models()                               # [ModelInfo(name="churn", ...)]

Objects are pickled to `models/<name>` in NBSTACK_MODEL_BUCKET. The bucket
must have versioning enabled, so saving under an existing name adds a
version and never loses the previous one; save_model refuses to write
otherwise. Only load models you trust: unpickling runs code.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from typing import Any

PREFIX = "models/"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ModelStoreError(Exception):
    """Base of every error the model store raises."""


class BucketNotFoundError(ModelStoreError):
    pass


class VersioningNotEnabledError(ModelStoreError):
    pass


class ModelNotFoundError(ModelStoreError, LookupError):
    pass


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    last_modified: datetime
    size: int


def _client() -> Any:
    import boto3  # late: keeps `import nbstack_runtime` cheap

    return boto3.client("s3")


def _bucket(bucket: str | None) -> str:
    name = bucket or os.environ.get("NBSTACK_MODEL_BUCKET", "").strip()
    if not name:
        raise ModelStoreError("no bucket: NBSTACK_MODEL_BUCKET is not set and no bucket= was given")
    return name


def _key(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise ValueError(f"model name {name!r} must match {NAME_PATTERN.pattern}")
    return PREFIX + name


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _check_bucket(client: Any, bucket: str) -> None:
    """Raise a clear error unless the bucket exists and keeps versions."""
    from botocore.exceptions import ClientError

    try:
        status = client.get_bucket_versioning(Bucket=bucket).get("Status")
    except ClientError as error:
        if _error_code(error) in ("NoSuchBucket", "404"):
            raise BucketNotFoundError(f"bucket {bucket!r} does not exist") from error
        raise ModelStoreError(f"cannot read bucket {bucket!r}: {error}") from error
    if status != "Enabled":
        raise VersioningNotEnabledError(
            f"bucket {bucket!r} does not have versioning enabled (status: {status or 'never enabled'}); "
            "refusing to save, an overwrite would be irrecoverable"
        )


def save_model(obj: Any, name: str, *, bucket: str | None = None, client: Any = None) -> str:
    """Pickle `obj` to models/<name>; return the new S3 version id."""
    key, bucket, client = _key(name), _bucket(bucket), client or _client()
    _check_bucket(client, bucket)
    # Spool to disk beyond 64 MiB: big models should not need twice their size in memory.
    with tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024) as body:
        pickle.dump(obj, body, protocol=pickle.HIGHEST_PROTOCOL)
        body.seek(0)
        response = client.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType="application/x-python-pickle",
            Metadata={"nbstack-format": "pickle"},
        )
    version = response.get("VersionId")
    if not version or version == "null":
        raise VersioningNotEnabledError(f"bucket {bucket!r} returned no version id for {key}")
    return str(version)


def load_model(name: str, version: str | None = None, *, bucket: str | None = None, client: Any = None) -> Any:
    """Unpickle models/<name> (the latest version unless `version` is given)."""
    from botocore.exceptions import ClientError

    key, bucket, client = _key(name), _bucket(bucket), client or _client()
    args: dict[str, str] = {"Bucket": bucket, "Key": key}
    if version:
        args["VersionId"] = version
    try:
        response = client.get_object(**args)
    except ClientError as error:
        code = _error_code(error)
        if code == "NoSuchBucket":
            raise BucketNotFoundError(f"bucket {bucket!r} does not exist") from error
        if code in ("NoSuchKey", "404"):
            raise ModelNotFoundError(f"no model named {name!r} in bucket {bucket!r}") from error
        if code in ("NoSuchVersion", "InvalidArgument"):
            raise ModelNotFoundError(f"model {name!r} has no version {version!r}") from error
        raise ModelStoreError(f"cannot load model {name!r}: {error}") from error
    with response["Body"] as body:
        return pickle.loads(body.read())


def list_models(*, bucket: str | None = None, client: Any = None) -> list[ModelInfo]:
    """Every model's latest version, sorted by name."""
    bucket, client = _bucket(bucket), client or _client()
    models: list[ModelInfo] = []
    for page in _pages(client, "list_object_versions", bucket, name_prefix=PREFIX):
        for item in page.get("Versions", []):
            if item.get("IsLatest"):
                models.append(_info(item))
    return sorted(models, key=lambda m: m.name)


def list_versions(name: str, *, bucket: str | None = None, client: Any = None) -> list[ModelInfo]:
    """Every stored version of one model, newest first."""
    key, bucket, client = _key(name), _bucket(bucket), client or _client()
    versions = [
        _info(item)
        for page in _pages(client, "list_object_versions", bucket, name_prefix=key)
        for item in page.get("Versions", [])
        if item["Key"] == key
    ]
    if not versions:
        raise ModelNotFoundError(f"no model named {name!r} in bucket {bucket!r}")
    return sorted(versions, key=lambda m: m.last_modified, reverse=True)


def _pages(client: Any, operation: str, bucket: str, name_prefix: str) -> Any:
    from botocore.exceptions import ClientError

    try:
        yield from client.get_paginator(operation).paginate(Bucket=bucket, Prefix=name_prefix)
    except ClientError as error:
        if _error_code(error) == "NoSuchBucket":
            raise BucketNotFoundError(f"bucket {bucket!r} does not exist") from error
        raise


def _info(item: dict[str, Any]) -> ModelInfo:
    return ModelInfo(
        name=item["Key"][len(PREFIX) :],
        version=str(item["VersionId"]),
        last_modified=item["LastModified"],
        size=int(item["Size"]),
    )
