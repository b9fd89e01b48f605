"""The filters that make a changed secret reach the server, and say so."""

from __future__ import annotations

from ansible_collections.nbstack.cloud.plugins.filter import instance, summary

ARNS = {
    "github-token": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/alice/github-token-AbCdEf",
    "notebook-password": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/alice/notebook-password-AbCdEf",
    "warehouse-password": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/alice/warehouse-password-AbCdEf",
    "api-token": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/alice/api-token-AbCdEf",
}
VERSIONS = {
    "github-token": "6b1f7a52-0e27-4c43-9d0e-1f8f3c1b2a01",
    "notebook-password": "0c3e2d41-5a6b-4c7d-8e9f-a0b1c2d3e4f5",
    "warehouse-password": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
    "api-token": "2a3b4c5d-6e7f-4081-9283-a4b5c6d7e8f9",
}


def test_the_digest_follows_each_version_and_nothing_else() -> None:
    parameters = instance.secret_parameters(ARNS, VERSIONS)
    assert parameters["SecretsVersion"] == instance.secrets_version(dict(reversed(list(VERSIONS.items()))))
    assert len(parameters["SecretsVersion"]) == 64 and set(parameters["SecretsVersion"]) <= set("0123456789abcdef")
    for name in VERSIONS:
        rotated = dict(VERSIONS, **{name: "11111111-2222-4333-8444-555555555555"})
        assert instance.secret_parameters(ARNS, rotated)["SecretsVersion"] != parameters["SecretsVersion"], name
    assert {key: value for key, value in parameters.items() if key != "SecretsVersion"} == {
        "GitTokenSecretArn": ARNS["github-token"],
        "NotebookPasswordSecretArn": ARNS["notebook-password"],
        "WarehousePasswordSecretArn": ARNS["warehouse-password"],
        "ApiTokenSecretArn": ARNS["api-token"],
    }


def summary_lines(**instance_result: object) -> list[str]:
    result = {"name": "app-alice", "action": "updated", "outputs": {}, **instance_result}
    return summary.up_summary(result, {}, {}, "m5.xlarge", 60)


def test_the_summary_says_when_a_secret_change_restarted_the_server() -> None:
    assert "Secrets changed: the server was restarted to use them (its work was autosaved first)" in summary_lines(
        secrets_rotated=True, started=False
    )
    assert "Secrets changed: the server started with the new values" in summary_lines(secrets_rotated=True, started=True)
    assert not any(line.startswith("Secrets changed") for line in summary_lines(secrets_rotated=False))
