"""QuotaService over Redis: atomicity across two services (replicas) sharing one Redis,
fail-open and fail-closed with Redis unreachable, and recovery when Redis comes back."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.asyncio

from gateway.errors import error_response
from gateway.quotas import Admission, QuotaExceeded, QuotaService, QuotaStoreDown
from tests.conftest import REDIS_URL, free_port
from tests.gateway.quotas.test_service import PRICES, Clock, admit, agent, config, redis_now


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
    assert all(
        error.retry_after is not None and error.retry_after > 0 and int(error.response_headers["retry-after"]) > 0
        for error in refused
    )


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
