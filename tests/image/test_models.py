"""The model helper against the S3 emulator: round trips, versions, writers, clear errors."""

from __future__ import annotations

import os
import pickle
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from nbstack_runtime import models


@pytest.fixture
def bucket(s3_env: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A versioned bucket; the caller is alice (NBSTACK_PREFIX, as the task definition sets it)."""
    monkeypatch.setenv("NBSTACK_PREFIX", "alice")
    name = f"models-{abs(hash(request.node.name)) % 10**8}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def test_models_round_trip_and_saving_twice_keeps_both_versions(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBSTACK_MODEL_BUCKET", bucket)
    first = models.save_model({"weights": [1, 2, 3]}, "churn")
    second = models.save_model({"weights": [4, 5, 6]}, "churn")
    assert first != second

    assert models.load_model("churn") == {"weights": [4, 5, 6]}
    assert models.load_model("churn", version=first) == {"weights": [1, 2, 3]}
    assert [v.version for v in models.list_versions("churn")] == [second, first]
    listed = models.list_models()
    assert [(m.writer, m.name, m.version) for m in listed] == [("alice", "churn", second)]
    # Stored where the contract says: models/<writer>/<name>, two versions, the writer recorded.
    s3 = boto3.client("s3")
    versions = s3.list_object_versions(Bucket=bucket, Prefix="models/")["Versions"]
    assert {v["Key"] for v in versions} == {"models/alice/churn"}
    assert sorted(v["VersionId"] for v in versions) == sorted([first, second])
    head = s3.head_object(Bucket=bucket, Key="models/alice/churn")
    assert head["Metadata"]["nbstack-writer"] == "alice"


def test_another_persons_model_is_unpickled_only_when_asked(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    class Boom:
        """What a poisoned model does when unpickled: run its writer's code."""

        def __reduce__(self) -> tuple[Any, tuple[str]]:
            return (exec, ("import os; os.environ['NBSTACK_POISONED'] = 'yes'",))

    monkeypatch.delenv("NBSTACK_POISONED", raising=False)
    models.save_model(Boom(), "churn", bucket=bucket, prefix="bob")
    models.save_model({"mine": True}, "churn", bucket=bucket)

    assert models.load_model("churn", bucket=bucket) == {"mine": True}  # alice's own, by default
    with pytest.raises(models.UntrustedModelError, match="written by 'bob'.*allow_from='bob'"):
        models.load_model("bob/churn", bucket=bucket)
    with pytest.raises(models.UntrustedModelError):
        models.load_model("bob/churn", bucket=bucket, allow_from=["carol"])
    assert "NBSTACK_POISONED" not in os.environ

    models.load_model("bob/churn", bucket=bucket, allow_from="bob")
    assert os.environ["NBSTACK_POISONED"] == "yes"
    # The whole team's models are listed, each with its writer.
    assert [m.ref for m in models.list_models(bucket=bucket)] == ["alice/churn", "bob/churn"]
    assert [m.ref for m in models.list_models(writer="bob", bucket=bucket)] == ["bob/churn"]
    assert len(models.list_versions("bob/churn", bucket=bucket)) == 1


def test_a_model_whose_recorded_writer_disagrees_with_its_key_is_refused(bucket: str) -> None:
    s3 = boto3.client("s3")
    for key, metadata in (("models/bob/forged", {"nbstack-writer": "alice"}), ("models/bob/unsigned", {})):
        s3.put_object(Bucket=bucket, Key=key, Body=pickle.dumps(1), Metadata=metadata)
        with pytest.raises(models.UntrustedModelError, match="records its writer"):
            models.load_model(key.removeprefix("models/"), bucket=bucket, allow_from="bob")


def test_saving_goes_under_ones_own_prefix_only(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(models.ModelStoreError, match="your own prefix"):
        models.save_model(1, "bob/churn", bucket=bucket)
    assert "Versions" not in boto3.client("s3").list_object_versions(Bucket=bucket)
    monkeypatch.delenv("NBSTACK_PREFIX")
    with pytest.raises(models.ModelStoreError, match="NBSTACK_PREFIX"):
        models.save_model(1, "churn", bucket=bucket)


def test_unknown_names_and_versions_are_clear_errors(bucket: str) -> None:
    with pytest.raises(models.ModelNotFoundError, match="no model named 'nope'"):
        models.load_model("nope", bucket=bucket)
    with pytest.raises(models.ModelNotFoundError):
        models.list_versions("nope", bucket=bucket)
    version = models.save_model(1, "one", bucket=bucket)
    assert models.load_model("one", version=version, bucket=bucket) == 1
    with pytest.raises(models.ModelNotFoundError):
        models.load_model("one", version="not-a-version", bucket=bucket)
    with pytest.raises(ValueError, match="must match"):
        models.save_model(1, "../escape", bucket=bucket)


def test_a_missing_bucket_is_a_clear_error(s3_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBSTACK_PREFIX", "alice")
    with pytest.raises(models.BucketNotFoundError, match="does not exist"):
        models.save_model(1, "m", bucket="no-such-bucket-anywhere")
    with pytest.raises(models.BucketNotFoundError):
        models.load_model("m", bucket="no-such-bucket-anywhere")
    with pytest.raises(models.BucketNotFoundError):
        models.list_models(bucket="no-such-bucket-anywhere")


def test_no_bucket_configured_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NBSTACK_MODEL_BUCKET", raising=False)
    with pytest.raises(models.ModelStoreError, match="NBSTACK_MODEL_BUCKET"):
        models.list_models()


def test_saving_refuses_a_bucket_without_versioning(s3_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBSTACK_PREFIX", "alice")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="unversioned", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    with pytest.raises(models.VersioningNotEnabledError, match="versioning"):
        models.save_model(1, "m", bucket="unversioned")
    assert "Contents" not in s3.list_objects_v2(Bucket="unversioned")
    s3.put_bucket_versioning(Bucket="unversioned", VersioningConfiguration={"Status": "Suspended"})
    with pytest.raises(models.VersioningNotEnabledError, match="Suspended"):
        models.save_model(1, "m", bucket="unversioned")


def test_a_large_model_goes_up_in_parts_and_keeps_its_versions(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # S3's smallest part is 5 MiB: an 11 MiB model above a 5 MiB threshold takes three parts.
    monkeypatch.setattr(models, "MULTIPART_THRESHOLD", 5 * 1024 * 1024)
    monkeypatch.setattr(models, "PART_SIZE", 5 * 1024 * 1024)
    weights = os.urandom(11 * 1024 * 1024)
    first = models.save_model({"weights": weights}, "big", bucket=bucket)
    second = models.save_model({"weights": weights[::-1]}, "big", bucket=bucket)

    s3 = boto3.client("s3")
    head = s3.head_object(Bucket=bucket, Key="models/alice/big", VersionId=first)
    # A multipart object's ETag ends in -<number of parts>; a single PUT's has none.
    assert head["ETag"].strip('"').endswith("-3")
    assert head["Metadata"]["nbstack-writer"] == "alice"
    assert head["ContentType"] == "application/x-python-pickle"
    assert [v.version for v in models.list_versions("big", bucket=bucket)] == [second, first]
    assert models.load_model("big", version=first, bucket=bucket) == {"weights": weights}
    assert models.load_model("big", bucket=bucket) == {"weights": weights[::-1]}
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)


def test_a_persons_last_autosave_is_recorded_under_their_own_prefix_and_is_no_model(bucket: str) -> None:
    assert models.recorded_autosave(bucket=bucket) is None
    models.record_autosave("autosave/alice/20261127T090000Z", "a" * 40, bucket=bucket)
    models.record_autosave("autosave/alice/20261128T090000Z", "b" * 40, bucket=bucket)
    assert models.recorded_autosave(bucket=bucket) == ("autosave/alice/20261128T090000Z", "b" * 40)
    assert boto3.client("s3").head_object(Bucket=bucket, Key="models/alice/.autosave")
    assert models.recorded_autosave(bucket=bucket, prefix="bob") is None
    assert models.list_models(bucket=bucket) == []


class TaskRoleS3:
    """S3 as AWS may answer the task role, which may list only with an s3:prefix under models/: 403 for a missing object.

    (The emulator answers 404 whatever the caller may list.) `denied`: keys
    whose reads the role may not make at all.
    """

    def __init__(self, denied: tuple[str, ...] = ()) -> None:
        self.real, self.denied = boto3.client("s3"), denied

    def get_object(self, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")
        if kwargs["Key"] in self.denied:
            raise denied
        try:
            return self.real.get_object(**kwargs)
        except ClientError as error:
            if error.response["Error"]["Code"] != "NoSuchKey":
                raise
            raise denied from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_missing_object_that_s3_answers_with_access_denied_reads_as_missing(bucket: str) -> None:
    s3 = TaskRoleS3()
    assert models.recorded_autosave(bucket=bucket, client=s3) is None
    with pytest.raises(models.ModelNotFoundError, match="no model named 'nope'"):
        models.load_model("nope", bucket=bucket, client=s3)
    models.save_model({"w": 1}, "churn", bucket=bucket)
    models.record_autosave("autosave/alice/20261128T090000Z", "b" * 40, bucket=bucket)
    assert models.load_model("churn", bucket=bucket, client=s3) == {"w": 1}
    assert models.recorded_autosave(bucket=bucket, client=s3) == ("autosave/alice/20261128T090000Z", "b" * 40)
    # An object that exists but may not be read stays an access error.
    denied = TaskRoleS3(denied=("models/alice/churn", "models/alice/.autosave"))
    with pytest.raises(models.ModelStoreError, match="AccessDenied"):
        models.load_model("churn", bucket=bucket, client=denied)
    with pytest.raises(ClientError, match="AccessDenied"):
        models.recorded_autosave(bucket=bucket, client=denied)
