"""aws-secretsmanager:// through boto3 against moto in server mode."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meterline.secrets import SecretResolutionError, parse_reference
from meterline.secrets.aws import AwsSecretsManagerBackend


def fetch(reference: str) -> Any:
    return AwsSecretsManagerBackend().fetch(parse_reference(reference))


def test_resolves_by_name_and_by_arn_with_the_version_id(aws: Any) -> None:
    created = aws.create_secret(Name="prod/llm/plain", SecretString="sk-plain-value")
    by_name = fetch("aws-secretsmanager://prod/llm/plain")
    by_arn = fetch(f"aws-secretsmanager://{created['ARN']}")
    assert (by_name.value, by_name.version) == ("sk-plain-value", created["VersionId"])
    assert (by_arn.value, by_arn.version) == ("sk-plain-value", created["VersionId"])
    assert by_name.created_at is not None


def test_field_of_a_json_secret(aws: Any) -> None:
    aws.create_secret(Name="prod/llm/keys", SecretString=json.dumps({"OPENAI_API_KEY": "sk-o", "PORT": 5432}))
    assert fetch("aws-secretsmanager://prod/llm/keys#OPENAI_API_KEY").value == "sk-o"
    assert fetch("aws-secretsmanager://prod/llm/keys#PORT?region=us-east-1").value == "5432"


def test_version_stage_reads_the_previous_version(aws: Any) -> None:
    first = aws.create_secret(Name="rotating", SecretString="sk-old")
    second = aws.put_secret_value(SecretId="rotating", SecretString="sk-new")
    current = fetch("aws-secretsmanager://rotating")
    previous = fetch("aws-secretsmanager://rotating?version_stage=AWSPREVIOUS")
    assert (current.value, current.version) == ("sk-new", second["VersionId"])
    assert (previous.value, previous.version) == ("sk-old", first["VersionId"])


@pytest.mark.parametrize(
    ("reference", "reason"),
    [
        ("aws-secretsmanager://missing", "no such secret or version (ResourceNotFoundException)"),
        ("aws-secretsmanager://present#nope", "no field 'nope' in the secret (fields: A, B)"),
        ("aws-secretsmanager://plain#A", "the secret is not a JSON object, so it has no field 'A'"),
        ("aws-secretsmanager://present?version_stage=NOPE", "no such secret or version (ResourceNotFoundException)"),
    ],
)
def test_errors_name_reference_backend_and_reason(aws: Any, reference: str, reason: str) -> None:
    aws.create_secret(Name="present", SecretString=json.dumps({"A": "value-a-secret", "B": "value-b-secret"}))
    aws.create_secret(Name="plain", SecretString="plain-secret-value")
    with pytest.raises(SecretResolutionError) as caught:
        fetch(reference)
    assert str(caught.value) == f"cannot resolve secret reference {reference!r} (aws-secretsmanager): {reason}"
    assert "secret-value" not in str(caught.value) and "value-a-secret" not in str(caught.value)


def test_describe_gives_the_arn_and_kms_key(aws: Any) -> None:
    created = aws.create_secret(Name="with-key", SecretString="x", KmsKeyId="alias/meterline")
    plain = aws.create_secret(Name="default-key", SecretString="x")
    backend = AwsSecretsManagerBackend()
    described = backend.describe(parse_reference("aws-secretsmanager://with-key"))
    assert (described.arn, described.kms_key_id) == (created["ARN"], "alias/meterline")
    assert backend.describe(parse_reference("aws-secretsmanager://default-key")).kms_key_id is None
    assert plain["ARN"].startswith("arn:aws:secretsmanager:us-east-1:")


def test_the_endpoint_may_come_from_aws_endpoint_url_secretsmanager(
    aws: Any, moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws.create_secret(Name="elsewhere", SecretString="sk-elsewhere")
    monkeypatch.delenv("AWS_ENDPOINT_URL_SECRETS_MANAGER")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETSMANAGER", moto_url)
    assert fetch("aws-secretsmanager://elsewhere").value == "sk-elsewhere"
