"""AWS Secrets Manager for tests: moto in server mode on a free port, reached by boto3 over real
HTTP (never by patching boto3). The gateway finds it through the standard AWS environment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from tests.conftest import free_port

REGION = "us-east-1"


@contextmanager
def moto_server() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def reset(url: str) -> None:
    httpx.post(f"{url}/moto-api/reset").raise_for_status()


def use_moto(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Point boto3's standard configuration chain at the moto server, with dummy credentials."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", url)  # boto3's own name for it
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")


def s3_bucket(url: str, monkeypatch: pytest.MonkeyPatch, bucket: str) -> Any:
    """A boto3 S3 client on a fresh moto holding one empty `bucket`, the environment pointing at it."""
    reset(url)
    use_moto(monkeypatch, url)
    client = boto3.client("s3", endpoint_url=url, region_name=REGION)
    client.create_bucket(Bucket=bucket)
    return client


def secretsmanager(url: str) -> Any:
    return boto3.client(
        "secretsmanager",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """One moto server for the session; `aws` resets it for each test."""
    with moto_server() as url:
        yield url


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 Secrets Manager client on a fresh moto, and the environment pointing at it."""
    reset(moto_url)
    use_moto(monkeypatch, moto_url)
    return secretsmanager(moto_url)
