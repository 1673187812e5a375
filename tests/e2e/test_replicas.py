"""Two gateway processes sharing PostgreSQL (keys) and Redis (quota counters): a burst split
across both replicas never gets past an agent's limits."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from redis import Redis

from gateway.testing.behaviour import MockBehaviour, prompt_tokens, words
from gateway.testing.mock_openai import create_mock_openai
from tests.conftest import POSTGRES_URL, REDIS_URL, free_port, require_service
from tests.e2e.processes import meterline_env, meterline_process
from tests.servers import serve_in_thread

pytestmark = pytest.mark.e2e

MESSAGES = [{"role": "user", "content": "count my tokens please"}]
REPLY = "four words of reply"


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    pg = urlsplit(POSTGRES_URL)
    require_service("PostgreSQL", pg.hostname or "127.0.0.1", pg.port or 5432)
    redis = urlsplit(REDIS_URL)
    require_service("Redis", redis.hostname or "127.0.0.1", redis.port or 6379)
    name = f"meterline_replicas_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    behaviour = MockBehaviour(accepted_keys={"sk-mock"}, reply=REPLY, record=False)
    with serve_in_thread(create_mock_openai(behaviour)) as url:
        yield url


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, database: str, provider: str) -> Iterator[list[str]]:
    root = tmp_path_factory.mktemp("replicas")
    prefix = f"meterline:test:{uuid.uuid4().hex}:"
    config = root / "meterline.yaml"
    config.write_text(
        f"""
model_list:
  - model_name: gpt
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{provider}/v1", api_key: sk-mock}}
agents:
  - {{id: rpm-bot, team: a, key: key-rpm-bot-replicas-01, limits: {{rpm: 20}}}}
  - {{id: token-bot, team: b, key: key-token-bot-replicas-02, limits: {{tokens_per_day: 1500}}}}
  - {{id: dollar-bot, team: c, key: key-dollar-bot-replicas-03, limits: {{usd_per_day: 0.0005}}}}
key_store: {{database_url: "{database}", hash_secret: shared-test-secret, refresh_seconds: 1}}
quota_store: {{redis_url: "{REDIS_URL}", key_prefix: "{prefix}", fail_mode: closed, timeout_seconds: 5}}
telemetry: {{collector: "http://127.0.0.1:{free_port()}"}}
"""
    )
    urls: list[str] = []
    try:
        with (
            _gateway(root / "one", config, urls) as _one,
            _gateway(root / "two", config, urls) as _two,
        ):
            yield urls
    finally:
        client = Redis.from_url(REDIS_URL)
        try:
            keys = list(client.scan_iter(match=prefix + "*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


def _gateway(data_dir: Path, config: Path, urls: list[str]) -> AbstractContextManager[subprocess.Popen[bytes]]:
    port = free_port()
    urls.append(f"http://127.0.0.1:{port}")
    return meterline_process(
        ["--config", str(config), "--data-dir", str(data_dir), "gateway", "--port", str(port)],
        config.parent,
        meterline_env(),
        f"http://127.0.0.1:{port}/health/readiness",
    )


async def burst(urls: list[str], key: str, count: int, body: dict[str, object]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=count)) as client:
        calls = [
            client.post(f"{urls[i % 2]}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
            for i in range(count)
        ]
        return list(await asyncio.gather(*calls))


def test_rpm_holds_across_replicas(replicas: list[str]) -> None:
    responses = asyncio.run(burst(replicas, "key-rpm-bot-replicas-01", 200, {"model": "gpt", "messages": MESSAGES}))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 20, 429: 180}
    assert all(int(r.headers["retry-after"]) >= 1 for r in responses if r.status_code == 429)
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 429} == {"rate_limit_exceeded"}
    # Each replica took 100 of the burst; without shared counters each would admit 20 (40 in all).
    for url in replicas:
        mine = [r for r in responses if str(r.url).startswith(url)]
        assert len(mine) == 100
        assert sum(r.status_code == 429 for r in mine) >= 80


def test_tokens_per_day_cap_is_never_exceeded(replicas: list[str]) -> None:
    body = {"model": "gpt", "messages": MESSAGES, "max_tokens": 50}
    responses = asyncio.run(burst(replicas, "key-token-bot-replicas-02", 200, body))
    ok = [r for r in responses if r.status_code == 200]
    real_tokens = prompt_tokens(MESSAGES) + words(REPLY)
    assert all(r.json()["usage"]["total_tokens"] == real_tokens for r in ok)
    assert 0 < len(ok) * real_tokens <= 1500
    refused = [r for r in responses if r.status_code == 429]
    assert len(ok) + len(refused) == 200
    assert {r.json()["error"]["code"] for r in refused} == {"tokens_per_day_exceeded"}


def test_usd_per_day_cap_is_never_exceeded(replicas: list[str]) -> None:
    body = {"model": "gpt", "messages": MESSAGES, "max_tokens": 20}
    responses = asyncio.run(burst(replicas, "key-dollar-bot-replicas-03", 200, body))
    ok = [r for r in responses if r.status_code == 200]
    # gpt-4o-mini: $0.15 per 1M input, $0.60 per 1M output
    per_request = prompt_tokens(MESSAGES) * 0.15e-6 + words(REPLY) * 0.6e-6
    assert 0 < len(ok) * per_request <= 0.0005
    refused = [r for r in responses if r.status_code == 429]
    assert len(ok) + len(refused) == 200
    assert {r.json()["error"]["type"] for r in refused} == {"insufficient_quota"}
