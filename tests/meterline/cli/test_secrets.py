"""`meterline secrets check` and `meterline secrets iam-policy` against moto in server mode."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest

from meterline.cli.main import main
from tests.aws import REGION, aws, moto_url

__all__ = ["aws", "moto_url"]

VALUES = ("sk-cli-openai-value", "sk-cli-master-value", "sk-cli-file-value")


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "meterline.yaml"
    path.write_text(text)
    return path


def table(output: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in output.strip().splitlines()]


def test_check_prints_every_reference_without_values(
    aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    created = aws.create_secret(Name="prod/llm", SecretString=json.dumps({"OPENAI": VALUES[0]}))
    monkeypatch.setenv("METERLINE_TEST_MASTER", VALUES[1])
    (tmp_path / "key").write_text(VALUES[2])
    config = write_config(
        tmp_path,
        f"""
model_list:
  - model_name: a
    litellm_params: {{model: openai/gpt-4o-mini, api_key: "aws-secretsmanager://prod/llm#OPENAI"}}
  - model_name: b
    litellm_params: {{model: openai/gpt-4o, api_key: "aws-secretsmanager://prod/llm#OPENAI"}}
  - model_name: c
    litellm_params: {{model: openai/gpt-4o, api_key: "aws-secretsmanager://prod/missing"}}
general_settings: {{master_key: os.environ/METERLINE_TEST_MASTER}}
key_store: {{hash_secret: "file://{tmp_path}/key", jwt_signing_key: os.environ/METERLINE_TEST_UNSET}}
""",
    )
    code = main(["secrets", "check", "--config", str(config)])
    output = capsys.readouterr().out
    rows = table(output)
    assert code == 1
    assert rows[0] == ["reference", "backend", "version", "age", "status"]
    assert rows[1][:3] == ["aws-secretsmanager://prod/llm#OPENAI", "aws-secretsmanager", created["VersionId"]]
    assert re.fullmatch(r"\d+s", rows[1][3]) and rows[1][4] == "ok"
    assert rows[2] == [
        "aws-secretsmanager://prod/missing",
        "aws-secretsmanager",
        "-",
        "-",
        "error: no such secret or version (ResourceNotFoundException)",
    ]
    assert rows[3] == ["os.environ/METERLINE_TEST_MASTER", "env", "-", "-", "ok"]
    assert rows[4][:2] == [f"file://{tmp_path}/key", "file"] and rows[4][4] == "ok"
    assert rows[5] == [
        "os.environ/METERLINE_TEST_UNSET",
        "env",
        "-",
        "-",
        "error: environment variable METERLINE_TEST_UNSET is not set or empty",
    ]
    assert rows[6] == ["3 of 5 references resolved"]
    assert not any(value in output for value in VALUES)


def test_check_exits_0_when_all_resolve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("METERLINE_TEST_MASTER", VALUES[1])
    config = write_config(tmp_path, "general_settings: {master_key: os.environ/METERLINE_TEST_MASTER}\n")
    assert main(["secrets", "check", "--config", str(config)]) == 0
    assert table(capsys.readouterr().out)[-1] == ["1 of 1 references resolved"]


def test_iam_policy_names_exact_arns_and_kms_keys(
    aws: Any, moto_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", moto_url)
    kms = boto3.client("kms", endpoint_url=moto_url, region_name=REGION)
    key = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName="alias/meterline", TargetKeyId=key["KeyId"])
    by_key = aws.create_secret(Name="prod/llm", SecretString="{}", KmsKeyId=key["Arn"])
    by_alias = aws.create_secret(Name="prod/master", SecretString="x", KmsKeyId="alias/meterline")
    managed = aws.create_secret(Name="prod/redis", SecretString="x")
    account = by_key["ARN"].split(":")[4]
    config = write_config(
        tmp_path,
        f"""
model_list:
  - model_name: a
    litellm_params: {{model: openai/gpt-4o-mini, api_key: "aws-secretsmanager://prod/llm#OPENAI"}}
  - model_name: b
    litellm_params: {{model: openai/gpt-4o, api_key: "aws-secretsmanager://prod/llm#OTHER?version_stage=AWSPREVIOUS"}}
general_settings: {{master_key: "aws-secretsmanager://{by_alias["ARN"]}"}}
quota_store: {{redis_url: "aws-secretsmanager://prod/redis"}}
key_store: {{hash_secret: "aws-secretsmanager://prod/not-created-yet", jwt_signing_key: os.environ/X}}
""",
    )
    assert main(["secrets", "iam-policy", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "MeterlineReadSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": sorted(
                    [
                        by_key["ARN"],
                        by_alias["ARN"],
                        managed["ARN"],
                        f"arn:aws:secretsmanager:{REGION}:{account}:secret:prod/not-created-yet-??????",
                    ]
                ),
            },
            {
                "Sid": "MeterlineDecryptSecrets",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": [key["Arn"]],
                "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}},
            },
        ],
    }
