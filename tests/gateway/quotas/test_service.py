"""QuotaService: admission, refusal (429 body and headers), settlement, fail-open and
fail-closed, and atomicity across two services sharing one Redis."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.asyncio

from gateway.auth import AgentIdentity
from gateway.errors import error_response
from gateway.pricing import PriceBook
from gateway.quotas import Admission, QuotaExceeded, QuotaService, QuotaStoreDown
from meterline.config import Limits, MeterlineConfig
from tests.conftest import REDIS_URL, free_port, require_service

# $1 per million input tokens, $2 per million output: 100 in + 100 out = 300,000 nano-dollars.
PRICES = PriceBook({"cheap": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "max_output_tokens": 1000}})
T0 = datetime(2023, 11, 14, 22, 13, 30, tzinfo=UTC).timestamp()
"""30 s before a minute ends; 06:13:30 in Shanghai, so its day ends in 17h46m30s."""
SHANGHAI_DAY_LEFT = 17 * 3600 + 46 * 60 + 30


def redis_now() -> float:
    """A fixed instant near the real time (Redis expires keys at absolute times): 10 s into the
    next minute, so a test's few manual clock steps stay within one minute window."""
    return (int(time.time()) // 60 + 1) * 60 + 10.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def config(quota_store: dict[str, Any] | None = None) -> MeterlineConfig:
    return MeterlineConfig.model_validate(
        {
            "timezone": "Asia/Shanghai",
            "teams": [{"id": "support", "limits": {"rpm": 5}}],
            "quota_store": quota_store or {},
        }
    )


def agent(team: str = "solo", agent_id: str = "bot", **limits: Any) -> AgentIdentity:
    return AgentIdentity(agent_id, team, limits=Limits(**limits))


async def admit(service: QuotaService, identity: AgentIdentity, max_tokens: int | None = 100) -> Admission:
    return await service.admit(identity, model="cheap", provider=None, input_tokens=100, max_output_tokens=max_tokens)


def test_unlimited_agents_get_no_headers_and_no_counters() -> None:
    service = QuotaService.from_config(config(), PRICES)
    identity = agent()
    assert not service.has_limits(identity)
    admission = asyncio.run(admit(service, identity))
    assert admission.headers == {}
    asyncio.run(service.settle(admission, tokens=10, usd=0.5))
    assert service.has_limits(agent(team="support"))


def test_rpm_refusal_is_an_openai_429_with_retry_after_and_rate_limit_headers() -> None:
    clock = Clock()
    service = QuotaService.from_config(config(), PRICES, clock=clock)
    identity = agent(rpm=2, tpm=1000)

    async def scenario() -> tuple[list[dict[str, str]], QuotaExceeded]:
        admissions = [await admit(service, identity) for _ in range(2)]
        with pytest.raises(QuotaExceeded) as refused:
            await admit(service, identity)
        return [a.headers for a in admissions], refused.value

    headers, error = asyncio.run(scenario())
    assert headers[1] == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "30s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "600",
        "x-ratelimit-reset-tokens": "30s",
    }
    assert headers[0]["x-ratelimit-remaining-requests"] == "1"
    assert (error.status_code, error.retry_after) == (429, 30)
    assert error.response_headers == {**headers[1], "retry-after": "30"}
    response = error_response(error)
    assert response.status_code == 429 and response.headers["retry-after"] == "30"
    assert json.loads(bytes(response.body)) == {
        "error": {
            "message": "Rate limit reached for agent bot on requests per minute (rpm): Limit 2, Used 2, Requested 1. "
            "Please try again in 30s.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    clock.now += 30  # the next minute
    assert asyncio.run(admit(service, identity)).headers["x-ratelimit-remaining-requests"] == "1"


def test_tokens_per_day_refusal_waits_for_local_midnight() -> None:
    service = QuotaService.from_config(config(), PRICES, clock=Clock())
    identity = agent(tokens_per_day=500)

    async def scenario() -> QuotaExceeded:
        await admit(service, identity)
        await admit(service, identity)
        with pytest.raises(QuotaExceeded) as refused:
            await admit(service, identity)
        return refused.value

    error = asyncio.run(scenario())
    assert (error.code, error.error_type, error.retry_after) == ("tokens_per_day_exceeded", "tokens", SHANGHAI_DAY_LEFT)
    assert error.response_headers["x-ratelimit-reset-tokens"] == "17h46m30s"
    assert error.response_headers["x-ratelimit-remaining-tokens"] == "100"
    assert "agent bot on tokens per day (tokens_per_day): Limit 500, Used 400, Requested 200" in error.message


def test_budget_refusal_is_insufficient_quota_and_settle_frees_the_unused_worst_case() -> None:
    service = QuotaService.from_config(config(), PRICES, clock=Clock())
    identity = agent(usd_per_day=0.0006)

    async def scenario() -> QuotaExceeded:
        first = await admit(service, identity)
        second = await admit(service, identity)  # $0.0006 reserved: the cap
        with pytest.raises(QuotaExceeded) as refused:
            await admit(service, identity)
        await service.settle(first, tokens=120, usd=0.00012)
        await service.settle(second, tokens=120, usd=0.00012)
        await admit(service, identity)  # $0.00024 used + $0.0003 worst case fits again
        return refused.value

    error = asyncio.run(scenario())
    assert (error.code, error.error_type, error.status_code) == ("budget_exceeded", "insufficient_quota", 429)
    assert error.message == (
        "Budget exceeded for agent bot on USD per day (usd_per_day): Limit $0.0006, Used $0.0006, "
        "Requested $0.0003. Please try again in 17h46m30s."
    )


def test_team_limits_are_shared_by_the_team_and_named_in_the_refusal() -> None:
    service = QuotaService.from_config(config(), PRICES, clock=Clock())
    first, second = agent("support", "bot-a"), agent("support", "bot-b")

    async def scenario() -> QuotaExceeded:
        for identity in (first, second, first, second, first):
            await admit(service, identity)
        with pytest.raises(QuotaExceeded) as refused:
            await admit(service, second)
        return refused.value

    error = asyncio.run(scenario())
    assert error.message.startswith("Rate limit reached for team support on requests per minute (rpm): Limit 5")


def test_release_returns_everything_once_and_settle_after_release_changes_nothing() -> None:
    service = QuotaService.from_config(config(), PRICES, clock=Clock())
    identity = agent(rpm=10, tpm=1000, max_parallel=1)

    async def scenario() -> dict[str, str]:
        held = await admit(service, identity)
        with pytest.raises(QuotaExceeded) as refused:
            await admit(service, identity)  # the one parallel slot is taken
        assert (refused.value.code, refused.value.retry_after) == ("rate_limit_exceeded", 1)
        await service.release(held)
        await service.release(held)
        await service.settle(held, tokens=999, usd=1.0)
        return (await admit(service, identity)).headers

    headers = asyncio.run(scenario())
    assert (headers["x-ratelimit-remaining-requests"], headers["x-ratelimit-remaining-tokens"]) == ("9", "800")


def test_settle_replaces_reserved_tokens_by_real_ones_and_keeps_the_request_counted() -> None:
    service = QuotaService.from_config(config(), PRICES, clock=Clock())
    identity = agent(rpm=10, tpm=1000)

    async def scenario() -> dict[str, str]:
        await service.settle(await admit(service, identity), tokens=150, usd=0.0002)
        return (await admit(service, identity)).headers

    headers = asyncio.run(scenario())
    assert (headers["x-ratelimit-remaining-requests"], headers["x-ratelimit-remaining-tokens"]) == ("8", "650")


# --- Redis: replicas, fail-open, fail-closed --------------------------------------------------


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    parts = urlsplit(REDIS_URL)
    require_service("Redis", parts.hostname or "127.0.0.1", parts.port or 6379)
    unique = f"meterline:test:quota:{uuid.uuid4().hex}:"
    yield unique

    async def cleanup() -> None:
        client = redis.asyncio.Redis.from_url(REDIS_URL)
        try:
            keys = [key async for key in client.scan_iter(match=unique + "*", count=1000)]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()

    asyncio.run(cleanup())


async def burst(limits: dict[str, Any], prefix: str) -> tuple[int, list[QuotaExceeded], list[QuotaService]]:
    """200 admits at once, alternating between two services (replicas) sharing one Redis."""
    settings = {"redis_url": REDIS_URL, "key_prefix": prefix, "timeout_seconds": 5}
    clock = Clock(redis_now())
    replicas = [QuotaService.from_config(config(settings), PRICES, clock=clock) for _ in range(2)]
    identity = agent(**limits)
    results = await asyncio.gather(*(admit(replicas[i % 2], identity) for i in range(200)), return_exceptions=True)
    for replica in replicas:
        assert (replica.store_failures, replica.fallback_admissions) == (0, 0)
        await replica.close()
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    admitted = [r for r in results if isinstance(r, Admission)]
    assert len(admitted) + len(refused) == 200
    return len(admitted), refused, replicas


@pytest.mark.parametrize(
    ("limits", "code"),
    [
        ({"rpm": 20}, "rate_limit_exceeded"),
        ({"tokens_per_day": 20 * 200 + 199}, "tokens_per_day_exceeded"),
        ({"usd_per_day": 20 * 0.0003}, "budget_exceeded"),
    ],
)
def test_two_replicas_admit_exactly_the_cap(redis_prefix: str, limits: dict[str, Any], code: str) -> None:
    admitted, refused, _ = asyncio.run(burst(limits, redis_prefix))
    assert (admitted, len(refused)) == (20, 180)
    assert {error.code for error in refused} == {code}
    assert all(error.retry_after > 0 and int(error.response_headers["retry-after"]) > 0 for error in refused)


def test_fail_open_counts_locally_warns_once_and_counts_the_fallbacks(caplog: pytest.LogCaptureFixture) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    service = QuotaService.from_config(config({"redis_url": dead}), PRICES, clock=Clock())
    identity = agent(rpm=3)

    async def scenario() -> list[str]:
        outcomes = []
        for _ in range(5):
            try:
                admission = await admit(service, identity)
                await service.settle(admission, tokens=1, usd=0.0)
                outcomes.append("admitted")
            except QuotaExceeded as error:
                outcomes.append(error.code or "")
        await service.close()
        return outcomes

    with caplog.at_level(logging.WARNING, logger="gateway.quotas.service"):
        outcomes = asyncio.run(scenario())
    assert outcomes == ["admitted"] * 3 + ["rate_limit_exceeded"] * 2
    assert (service.degraded, service.store_failures, service.fallback_admissions) == (True, 1, 5)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "admitting against in-process counters" in warnings[0]


def test_fail_closed_answers_503_in_openai_error_json() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    service = QuotaService.from_config(config({"redis_url": dead, "fail_mode": "closed"}), PRICES, clock=Clock())

    async def scenario() -> QuotaStoreDown:
        with pytest.raises(QuotaStoreDown) as down:
            await admit(service, agent(rpm=3))
        await service.close()
        return down.value

    error = asyncio.run(scenario())
    assert error.status_code == 503
    assert json.loads(bytes(error_response(error).body))["error"] == {
        "message": "The quota store is unavailable; the request was not admitted. Retry shortly.",
        "type": "api_error",
        "param": None,
        "code": "quota_store_unavailable",
    }
    assert service.store_failures == 1


class TcpProxy:
    """A loopback TCP proxy to Redis that can be cut and restored: a Redis outage on demand."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.port = free_port()
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._writers += [writer, up_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass  # the other side is gone: the outage this proxy simulates
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


def test_redis_is_used_again_once_it_comes_back(redis_prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    parts = urlsplit(REDIS_URL)
    clock = Clock(redis_now())

    async def scenario() -> tuple[list[bool], int, QuotaService]:
        proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
        await proxy.start()
        settings = {"redis_url": f"redis://127.0.0.1:{proxy.port}/0", "key_prefix": redis_prefix, "timeout_seconds": 5}
        service = QuotaService.from_config(config(settings), PRICES, clock=clock)
        identity = agent(rpm=10)
        degraded = []
        await admit(service, identity)  # Redis
        degraded.append(service.degraded)
        await proxy.stop()
        await admit(service, identity)  # in-process
        degraded.append(service.degraded)
        await proxy.start()
        await admit(service, identity)  # still in-process: Redis is retried after recheck_seconds
        clock.now += 1.0
        await admit(service, identity)  # Redis again
        degraded.append(service.degraded)
        await service.close()
        await proxy.stop()
        raw = redis.asyncio.Redis.from_url(REDIS_URL)
        try:
            keys = [key async for key in raw.scan_iter(match=redis_prefix + "agent:bot:rpm:*")]
            counted = int(await raw.get(keys[0]) or 0)
        finally:
            await raw.aclose()
        return degraded, counted, service

    with caplog.at_level(logging.WARNING, logger="gateway.quotas.service"):
        degraded, counted, service = asyncio.run(scenario())
    assert degraded == [False, True, False]
    assert (counted, service.store_failures, service.fallback_admissions) == (2, 1, 2)
    assert [r.getMessage().split(";")[0] for r in caplog.records][-1] == "quota store: Redis is answering again"
