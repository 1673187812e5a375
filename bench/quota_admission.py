"""Per-request cost of identity plus quota admission and settlement (issue 4's budget).

In-process: CPU per `AgentDirectory.authenticate` + `QuotaService.admit` + `settle` for an
agent with every limit set (rpm, tpm, tokens/day, USD/day, USD/month, max_parallel) and a team
limit: seven counters per request. With Redis: the same through `RedisQuotaStore`, one request
at a time on loopback; reports Redis round trips per admit and per settle, their latency
(p50/p99) beside a plain PING, and the client CPU per request.

    .venv/bin/python -m bench.quota_admission [--requests 20000] [--redis-url redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis.asyncio

from gateway.auth import AgentDirectory
from gateway.keys.service import KeyRuntime
from gateway.pricing import PriceBook
from gateway.quotas import QuotaService
from meterline.config import MeterlineConfig

KEY = "sk-bench-" + "x" * 40
PRICES = PriceBook({"gpt-4o-mini": {"input_cost_per_token": 1.5e-7, "output_cost_per_token": 6e-7}})


def bench_config(quota_store: dict[str, Any], data_dir: str) -> MeterlineConfig:
    big = 10**12
    return MeterlineConfig.model_validate(
        {
            "timezone": "Asia/Shanghai",
            "storage": {"data_dir": data_dir},
            "agents": [
                {
                    "id": "bench-bot",
                    "team": "bench",
                    "key": KEY,
                    "limits": {
                        "rpm": big,
                        "tpm": big,
                        "tokens_per_day": big,
                        "usd_per_day": 10**6,
                        "usd_per_month": 10**6,
                        "max_parallel": 10**6,
                    },
                }
            ],
            "teams": [{"id": "bench", "limits": {"usd_per_month": 10**6}}],
            "quota_store": quota_store,
        }
    )


@contextlib.asynccontextmanager
async def key_directory(config: MeterlineConfig) -> AsyncIterator[AgentDirectory]:
    """The gateway's own identity side: the SQLite key store with the declared agent's key."""
    runtime = KeyRuntime(config)
    await runtime.start()
    try:
        yield runtime.directory
    finally:
        await runtime.close()


async def one_request(directory: AgentDirectory, service: QuotaService) -> None:
    identity = directory.authenticate("Bearer " + KEY)
    admission = await service.admit(
        identity, model="gpt-4o-mini", provider=None, input_tokens=120, max_output_tokens=256
    )
    await service.settle(admission, tokens=180, usd=0.000054)


async def cpu_per_request(directory: AgentDirectory, service: QuotaService, requests: int) -> float:
    for _ in range(min(1000, requests)):  # warm-up: caches, script load, connections
        await one_request(directory, service)
    started = time.process_time()
    for _ in range(requests):
        await one_request(directory, service)
    return (time.process_time() - started) / requests * 1e6


async def latencies(call: Callable[[], Awaitable[Any]], n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


async def in_process(requests: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        config = bench_config({}, data_dir)
        service = QuotaService.from_config(config, PRICES)
        async with key_directory(config) as directory:
            started = time.process_time()
            for _ in range(requests):
                directory.authenticate("Bearer " + KEY)
            auth_us = (time.process_time() - started) / requests * 1e6
            total_us = await cpu_per_request(directory, service, requests)
    print(f"in-process: authenticate {auth_us:.1f} us CPU; authenticate + admit + settle {total_us:.1f} us CPU")


async def with_redis(url: str, requests: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        config = bench_config({"redis_url": url, "key_prefix": f"meterline:bench:{uuid.uuid4().hex}:"}, data_dir)
        async with key_directory(config) as directory:
            await _with_redis(config, directory, url, requests)


async def _with_redis(config: MeterlineConfig, directory: AgentDirectory, url: str, requests: int) -> None:
    prefix = config.quota_store.key_prefix
    service = QuotaService.from_config(config, PRICES)
    store = service._store
    client: redis.asyncio.Redis = store._client  # type: ignore[attr-defined]
    commands: list[str] = []
    original: Callable[..., Awaitable[Any]] = client.execute_command

    async def counting(*args: Any, **options: Any) -> Any:
        commands.append(str(args[0]))
        return await original(*args, **options)

    raw = redis.asyncio.Redis.from_url(url)
    try:
        user_before = os.times()
        cpu_us = await cpu_per_request(directory, service, requests)
        spent = os.times()
        warmup = min(1000, requests)
        user_us = (spent.user - user_before.user) / (requests + warmup) * 1e6
        sys_us = (spent.system - user_before.system) / (requests + warmup) * 1e6
        client.execute_command = counting  # type: ignore[method-assign]
        identity = directory.authenticate("Bearer " + KEY)
        commands.clear()
        admission = await service.admit(
            identity, model="gpt-4o-mini", provider=None, input_tokens=1, max_output_tokens=1
        )
        admit_calls = len(commands)
        await service.settle(admission, tokens=2, usd=0.0)
        settle_calls = len(commands) - admit_calls
        admissions = []

        async def admit() -> None:
            admissions.append(
                await service.admit(
                    identity, model="gpt-4o-mini", provider=None, input_tokens=120, max_output_tokens=256
                )
            )

        async def settle() -> None:
            await service.settle(admissions.pop(), tokens=180, usd=0.000054)

        n = min(requests, 5000)
        ping = await latencies(raw.ping, n)
        admit_ms = await latencies(admit, n)
        settle_ms = await latencies(settle, n)
        print(f"redis: round trips per admit {admit_calls} ({commands[0]}), per settle {settle_calls}")
        print(f"redis: PING p50/p99 {ping[0]:.3f}/{ping[1]:.3f} ms")
        print(f"redis: admit p50/p99 {admit_ms[0]:.3f}/{admit_ms[1]:.3f} ms (7 counters, one script)")
        print(f"redis: settle p50/p99 {settle_ms[0]:.3f}/{settle_ms[1]:.3f} ms")
        print(
            f"redis: client CPU per authenticate + admit + settle {cpu_us:.1f} us"
            f" (user {user_us:.0f} us, kernel {sys_us:.0f} us, warm-up included in the split)"
        )
        print(f"redis: store failures {service.store_failures}")
    finally:
        keys = [key async for key in raw.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await raw.delete(*keys)
        await raw.aclose()
        await service.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop", help="the gateway runs on uvloop")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        run: Callable[[Awaitable[None]], None] = uvloop.run  # type: ignore[assignment]
    else:
        run = asyncio.run  # type: ignore[assignment]
    run(in_process(args.requests))
    run(with_redis(args.redis_url, args.requests))


if __name__ == "__main__":
    main()
