"""The model helper against the S3 emulator: round trips, versions, clear errors."""

from __future__ import annotations

import boto3
import pytest

from nbstack_runtime import models


@pytest.fixture
def bucket(s3_env: str, request: pytest.FixtureRequest) -> str:
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
    assert [(m.name, m.version) for m in listed] == [("churn", second)]
    # Stored where the contract says: models/<name>, two versions.
    versions = boto3.client("s3").list_object_versions(Bucket=bucket, Prefix="models/churn")["Versions"]
    assert sorted(v["VersionId"] for v in versions) == sorted([first, second])


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


def test_a_missing_bucket_is_a_clear_error(s3_env: str) -> None:
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


def test_saving_refuses_a_bucket_without_versioning(s3_env: str) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="unversioned", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    with pytest.raises(models.VersioningNotEnabledError, match="versioning"):
        models.save_model(1, "m", bucket="unversioned")
    assert "Contents" not in s3.list_objects_v2(Bucket="unversioned")
    s3.put_bucket_versioning(Bucket="unversioned", VersioningConfiguration={"Status": "Suspended"})
    with pytest.raises(models.VersioningNotEnabledError, match="Suspended"):
        models.save_model(1, "m", bucket="unversioned")
