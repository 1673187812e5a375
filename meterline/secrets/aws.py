"""`aws-secretsmanager://NAME_OR_ARN[#field][?version_stage=..&region=..]` through boto3.

The endpoint and credentials come from boto3's standard chain (`AWS_REGION`, `AWS_ENDPOINT_URL`,
`AWS_ENDPOINT_URL_SECRETS_MANAGER`, instance or task roles, ...; `AWS_ENDPOINT_URL_SECRETSMANAGER`
is honoured too); the region from `?region=`, an ARN, or that chain. The version is the secret
version's VersionId.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from meterline.secrets.base import SecretVersion, now
from meterline.secrets.fields import pick_field
from meterline.secrets.reference import Reference

ENDPOINT_ENV = "AWS_ENDPOINT_URL_SECRETSMANAGER"
"""Read besides boto3's own `AWS_ENDPOINT_URL_SECRETS_MANAGER`."""
_CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"})


@dataclass(frozen=True, slots=True)
class SecretDescription:
    arn: str
    kms_key_id: str | None
    """None: the account's AWS managed key `aws/secretsmanager`."""


def region_of(reference: Reference) -> str | None:
    if region := reference.params.get("region"):
        return region
    if reference.target.startswith("arn:"):
        parts = reference.target.split(":")
        if len(parts) > 3 and parts[3]:
            return parts[3]
    return None


class AwsSecretsManagerBackend:
    name = "aws-secretsmanager"

    def __init__(self, *, endpoint_url: str | None = None, region: str | None = None) -> None:
        self._endpoint_url = endpoint_url
        self._region = region
        self._clients: dict[str | None, Any] = {}
        self._lock = threading.Lock()

    def client(self, reference: Reference) -> Any:
        region = region_of(reference) or self._region
        with self._lock:
            if region not in self._clients:
                session = boto3.session.Session()
                try:
                    self._clients[region] = session.client(
                        "secretsmanager",
                        region_name=region,
                        endpoint_url=self._endpoint_url or os.environ.get(ENDPOINT_ENV) or None,
                        config=_CLIENT_CONFIG,
                    )
                except BotoCoreError as exc:
                    raise reference.error(str(exc)) from None
            return self._clients[region]

    def fetch(self, reference: Reference) -> SecretVersion:
        kwargs: dict[str, str] = {"SecretId": reference.target}
        if stage := reference.params.get("version_stage"):
            kwargs["VersionStage"] = stage
        response = self._call(reference, "get_secret_value", kwargs)
        text = response.get("SecretString")
        if text is None:
            binary = response.get("SecretBinary")
            try:
                text = bytes(binary).decode("utf-8") if binary is not None else None
            except UnicodeDecodeError:
                raise reference.error("the secret is binary, not UTF-8 text") from None
        if not text:
            raise reference.error("the secret is empty")
        created = response.get("CreatedDate")
        return SecretVersion(
            pick_field(reference, text),
            str(response.get("VersionId")) if response.get("VersionId") else None,
            now(),
            created if isinstance(created, dt.datetime) else None,
        )

    def describe(self, reference: Reference) -> SecretDescription:
        response = self._call(reference, "describe_secret", {"SecretId": reference.target})
        kms = response.get("KmsKeyId")
        return SecretDescription(str(response["ARN"]), str(kms) if kms else None)

    def _call(self, reference: Reference, operation: str, kwargs: dict[str, str]) -> dict[str, Any]:
        client = self.client(reference)
        try:
            response: dict[str, Any] = getattr(client, operation)(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "ClientError")
            message = error.get("Message") or ""
            if code == "ResourceNotFoundException":
                raise reference.error(f"no such secret or version ({code})") from None
            raise reference.error(f"{code}: {message}" if message else code) from None
        except BotoCoreError as exc:
            raise reference.error(str(exc)) from None
        return response
