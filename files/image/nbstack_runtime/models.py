"""Save and load trained models in the team's versioned S3 bucket.

    from nbstack_runtime.models import save_model, load_model, list_models

    version = save_model(model, "churn")        # models/<your prefix>/churn -> S3 version id
    model = load_model("churn")                 # your own, latest
    model = load_model("churn", version=version)
    model = load_model("bob/churn", allow_from="bob")   # a colleague's: only when you say so
    list_models()                               # everyone's: [ModelInfo(writer="bob", name="churn", ...)]

Each person writes only under `models/<prefix>/` in NBSTACK_MODEL_BUCKET
(the task role allows no other key; NBSTACK_PREFIX is the person's prefix)
and reads the whole team's. The key names the writer, and save_model also
records the writer in the object's metadata (`nbstack-writer`).

Unpickling runs code, so load_model refuses, from the object's metadata
and before reading its body, an object that another person wrote unless the call names that person in
`allow_from`; and it refuses any object whose recorded writer is not the
one its key names. The bucket must have versioning enabled, so saving
under an existing name adds a version and never loses the previous one;
save_model refuses to write otherwise.

A model larger than MULTIPART_THRESHOLD goes up in parts (boto3's managed
transfer), so its size is not bounded by a single PUT's 5 GB; parts of an
upload that fails are aborted, and the bucket's lifecycle rule removes what
an interrupted process leaves behind.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

PREFIX = "models/"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: A person's prefix, as the contract has it (files/image/nbstack_runtime/contract.py).
WRITER_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,27}")
#: Object metadata that records who wrote a model.
WRITER_METADATA = "nbstack-writer"
#: Pickles from this size on are uploaded in parts of PART_SIZE (boto3
#: raises the part size itself when a model would need over 10,000 parts).
MULTIPART_THRESHOLD = 64 * 1024 * 1024
PART_SIZE = 64 * 1024 * 1024


class ModelStoreError(Exception):
    """Base of every error the model store raises."""


class BucketNotFoundError(ModelStoreError):
    pass


class VersioningNotEnabledError(ModelStoreError):
    pass


class ModelNotFoundError(ModelStoreError, LookupError):
    pass


class UntrustedModelError(ModelStoreError):
    """A model another person wrote, not named in allow_from: unpickling it would run their code."""


@dataclass(frozen=True)
class ModelInfo:
    writer: str
    name: str
    version: str
    last_modified: datetime
    size: int

    @property
    def ref(self) -> str:
        """What load_model takes for it: `<writer>/<name>`."""
        return f"{self.writer}/{self.name}"


def _client() -> Any:
    import boto3  # late: keeps `import nbstack_runtime` cheap

    return boto3.client("s3")


def _bucket(bucket: str | None) -> str:
    name = bucket or os.environ.get("NBSTACK_MODEL_BUCKET", "").strip()
    if not name:
        raise ModelStoreError("no bucket: NBSTACK_MODEL_BUCKET is not set and no bucket= was given")
    return name


def _me(prefix: str | None) -> str:
    """The person using the store: `prefix=`, else NBSTACK_PREFIX (set in the task definition)."""
    me = prefix or os.environ.get("NBSTACK_PREFIX", "").strip()
    if not WRITER_PATTERN.fullmatch(me):
        raise ModelStoreError(
            f"no valid prefix ({me!r}): NBSTACK_PREFIX must be your prefix, or give prefix= "
            f"(it must match {WRITER_PATTERN.pattern})"
        )
    return me


def _split(name: str, me: str) -> tuple[str, str]:
    """`churn` is the caller's own model, `bob/churn` bob's: (writer, model name)."""
    writer, _, model = name.rpartition("/")
    writer = writer or me
    if not WRITER_PATTERN.fullmatch(writer):
        raise ValueError(f"model {name!r}: the writer {writer!r} must match {WRITER_PATTERN.pattern}")
    if not NAME_PATTERN.fullmatch(model):
        raise ValueError(f"model name {model!r} must match {NAME_PATTERN.pattern}")
    return writer, model


def _key(writer: str, model: str) -> str:
    return f"{PREFIX}{writer}/{model}"


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _absent(client: Any, bucket: str, key: str, error: Exception) -> bool:
    """Whether a failed GetObject of `key` means that there is no such object.

    S3 answers a request for a missing object with 404 to a caller allowed
    s3:ListBucket on the bucket, and with 403 AccessDenied otherwise. The
    task role may list only with an s3:prefix under models/, which a
    GetObject does not carry, so on AWS a missing object may come back as
    AccessDenied: a listing of the key itself (allowed) tells the two apart.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    code = _error_code(error)
    if code in ("NoSuchKey", "404"):
        return True
    if code not in ("AccessDenied", "403"):
        return False
    try:
        listed = client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    except (BotoCoreError, ClientError):  # the listing failed too: the access error stands
        return False
    # The key itself sorts first among the keys it prefixes.
    return not any(item["Key"] == key for item in listed.get("Contents", []))


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


def save_model(
    obj: Any,
    name: str,
    *,
    bucket: str | None = None,
    client: Any = None,
    prefix: str | None = None,
    transfer_config: Any = None,
) -> str:
    """Pickle `obj` to models/<your prefix>/<name>; return the new S3 version id.

    `transfer_config` (a boto3.s3.transfer.TransferConfig) overrides when
    and in what parts a large model is uploaded.
    """
    me = _me(prefix)
    writer, model = _split(name, me)
    if writer != me:
        raise ModelStoreError(f"{name!r}: you save under your own prefix only ({me}/{model}), not {writer}'s")
    key, bucket, client = _key(me, model), _bucket(bucket), client or _client()
    _check_bucket(client, bucket)
    # Spool to disk beyond 64 MiB: big models should not need twice their size in memory.
    with tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024) as body:
        pickle.dump(obj, body, protocol=pickle.HIGHEST_PROTOCOL)
        body.seek(0)
        version = _upload(client, body, bucket, key, me, transfer_config)
    if not version or version == "null":
        raise VersioningNotEnabledError(f"bucket {bucket!r} returned no version id for {key}")
    return version


def _upload(client: Any, body: Any, bucket: str, key: str, writer: str, transfer_config: Any) -> str:
    """Upload with boto3's managed transfer (one PUT or a multipart upload); the new version's id.

    The managed transfer returns nothing, so the version id is read from
    the response of the call that creates the object (PutObject, or
    CompleteMultipartUpload for a multipart upload), seen through the
    client's event hooks while the transfer runs.
    """
    from boto3.s3.transfer import TransferConfig

    versions: list[str] = []

    def record(parsed: dict[str, Any], **_: Any) -> None:
        if parsed.get("VersionId") and parsed.get("Key", key) == key:
            versions.append(str(parsed["VersionId"]))

    hook_id = f"nbstack-model-version-{id(versions)}"
    events = client.meta.events
    for operation in ("PutObject", "CompleteMultipartUpload"):
        events.register(f"after-call.s3.{operation}", record, unique_id=f"{hook_id}-{operation}")
    try:
        client.upload_fileobj(
            body,
            bucket,
            key,
            ExtraArgs={
                "ContentType": "application/x-python-pickle",
                "Metadata": {"nbstack-format": "pickle", WRITER_METADATA: writer},
            },
            Config=transfer_config
            or TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=PART_SIZE),
        )
    finally:
        for operation in ("PutObject", "CompleteMultipartUpload"):
            events.unregister(f"after-call.s3.{operation}", unique_id=f"{hook_id}-{operation}")
    return versions[-1] if versions else ""


def load_model(
    name: str,
    version: str | None = None,
    *,
    allow_from: str | Iterable[str] = (),
    bucket: str | None = None,
    client: Any = None,
    prefix: str | None = None,
) -> Any:
    """Unpickle a model (the latest version unless `version` is given).

    `name` is one of your own models (`churn`) or another person's
    (`bob/churn`); another person's is loaded only when `allow_from` names
    them (`allow_from="bob"` or a list of prefixes), since unpickling runs
    whatever code its writer put in it.
    """
    from botocore.exceptions import ClientError

    me = _me(prefix)
    writer, model = _split(name, me)
    trusted = {me, *([allow_from] if isinstance(allow_from, str) else allow_from)}
    if writer not in trusted:
        raise UntrustedModelError(
            f"model {name!r} was written by {writer!r}, not by you ({me}); unpickling runs its writer's code. "
            f"If you trust {writer}, load it with allow_from={writer!r}"
        )
    key, bucket, client = _key(writer, model), _bucket(bucket), client or _client()
    args: dict[str, str] = {"Bucket": bucket, "Key": key}
    if version:
        args["VersionId"] = version
    try:
        response = client.get_object(**args)
    except ClientError as error:
        code = _error_code(error)
        if code == "NoSuchBucket":
            raise BucketNotFoundError(f"bucket {bucket!r} does not exist") from error
        if code in ("NoSuchKey", "404") or (not version and _absent(client, bucket, key, error)):
            raise ModelNotFoundError(f"no model named {name!r} in bucket {bucket!r}") from error
        if code in ("NoSuchVersion", "InvalidArgument"):
            raise ModelNotFoundError(f"model {name!r} has no version {version!r}") from error
        raise ModelStoreError(f"cannot load model {name!r}: {error}") from error
    with response["Body"] as body:
        recorded = response.get("Metadata", {}).get(WRITER_METADATA, "")
        if recorded != writer:
            raise UntrustedModelError(
                f"model {name!r} is under {writer}'s prefix but records its writer as {recorded or 'nobody'!r}; "
                "not unpickling it"
            )
        return pickle.loads(body.read())


def list_models(*, writer: str | None = None, bucket: str | None = None, client: Any = None) -> list[ModelInfo]:
    """Every model's latest version (the whole team's, or one writer's), sorted by writer and name."""
    if writer is not None and not WRITER_PATTERN.fullmatch(writer):
        raise ValueError(f"writer {writer!r} must match {WRITER_PATTERN.pattern}")
    bucket, client = _bucket(bucket), client or _client()
    models: list[ModelInfo] = []
    name_prefix = f"{PREFIX}{writer}/" if writer else PREFIX
    for page in _pages(client, "list_object_versions", bucket, name_prefix=name_prefix):
        for item in page.get("Versions", []):
            info = _info(item)
            if item.get("IsLatest") and info is not None:
                models.append(info)
    return sorted(models, key=lambda m: (m.writer, m.name))


def list_versions(
    name: str, *, bucket: str | None = None, client: Any = None, prefix: str | None = None
) -> list[ModelInfo]:
    """Every stored version of one model (`churn` or `bob/churn`), newest first."""
    key = _key(*_split(name, _me(prefix)))
    bucket, client = _bucket(bucket), client or _client()
    versions = [
        info
        for page in _pages(client, "list_object_versions", bucket, name_prefix=key)
        for item in page.get("Versions", [])
        if item["Key"] == key and (info := _info(item)) is not None
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


def _info(item: dict[str, Any]) -> ModelInfo | None:
    """A stored version as ModelInfo; None for a key outside the models/<writer>/<name> layout."""
    writer, _, model = item["Key"][len(PREFIX) :].partition("/")
    if not (WRITER_PATTERN.fullmatch(writer) and NAME_PATTERN.fullmatch(model)):
        return None
    return ModelInfo(
        writer=writer,
        name=model,
        version=str(item["VersionId"]),
        last_modified=item["LastModified"],
        size=int(item["Size"]),
    )


#: The person's last pushed autosave (branch and commit), under their own
#: prefix, which no other person's task role may write: a fresh work volume
#: offers that commit, never one that someone else with push access to the
#: repository put on a branch named after them. Not a model (a model name
#: starts with a letter or a digit).
AUTOSAVE_RECORD = ".autosave"
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def record_autosave(
    branch: str, sha: str, *, prefix: str | None = None, bucket: str | None = None, client: Any = None
) -> None:
    """Record `branch` at `sha` as the person's last pushed autosave (models/<prefix>/.autosave)."""
    (client or _client()).put_object(
        Bucket=_bucket(bucket),
        Key=f"{PREFIX}{_me(prefix)}/{AUTOSAVE_RECORD}",
        Body=f"{branch} {sha}\n".encode(),
        ContentType="text/plain",
    )


def recorded_autosave(
    *, prefix: str | None = None, bucket: str | None = None, client: Any = None
) -> tuple[str, str] | None:
    """(branch, sha) of the person's last recorded autosave; None when none is recorded."""
    from botocore.exceptions import ClientError

    key, bucket, client = f"{PREFIX}{_me(prefix)}/{AUTOSAVE_RECORD}", _bucket(bucket), client or _client()
    try:
        found = client.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if _absent(client, bucket, key, error):
            return None
        raise
    branch, _, sha = found["Body"].read().decode(errors="replace").strip().partition(" ")
    return (branch, sha) if branch and _SHA.fullmatch(sha) else None
