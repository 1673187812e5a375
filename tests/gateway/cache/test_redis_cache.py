"""The Redis response cache against a real Redis (METERLINE_TEST_REDIS_URL), and its behaviour
when Redis is unreachable: a miss and a no-op, never an exception."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.asyncio

from gateway.cache.redis_cache import RedisCache
from tests.conftest import REDIS_URL, free_port


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    """A prefix no other test uses; every key under it is deleted afterwards."""
    return redis_prefix


def test_round_trip_under_the_prefix_with_a_millisecond_ttl(prefix: str) -> None:
    async def scenario() -> tuple[bytes | None, bytes | None, int, int]:
        cache = RedisCache(REDIS_URL, prefix=prefix)
        raw = redis.asyncio.Redis.from_url(REDIS_URL)
        try:
            missing = await cache.get("k")
            await cache.set("k", b"\x00answer\xff", 60)
            found = await cache.get("k")
            pttl = await raw.pttl(prefix + "k")
            return missing, found, pttl, cache.failures
        finally:
            await cache.close()
            await raw.aclose()

    missing, found, pttl, failures = asyncio.run(scenario())
    assert (missing, found, failures) == (None, b"\x00answer\xff", 0)
    assert 0 < pttl <= 60_000


def test_prefixes_keep_caches_apart(prefix: str) -> None:
    async def scenario() -> tuple[bytes | None, bytes | None]:
        first = RedisCache(REDIS_URL, prefix=prefix + "a:")
        second = RedisCache(REDIS_URL, prefix=prefix + "b:")
        try:
            await first.set("k", b"first", 60)
            return await first.get("k"), await second.get("k")
        finally:
            await first.close()
            await second.close()

    assert asyncio.run(scenario()) == (b"first", None)


def test_unreachable_redis_is_a_miss_and_a_no_op(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> tuple[bytes | None, bytes | None, int]:
        cache = RedisCache(f"redis://:hunter2@127.0.0.1:{free_port()}/0", timeout_s=0.5)
        try:
            first = await cache.get("k")
            await cache.set("k", b"v", 60)
            second = await cache.get("k")
            return first, second, cache.failures
        finally:
            await cache.close()

    with caplog.at_level(logging.WARNING, logger="gateway.cache.redis_cache"):
        assert asyncio.run(scenario()) == (None, None, 3)
    [warning] = [r.getMessage() for r in caplog.records]
    assert "serving without the cache" in warning
    assert "hunter2" not in warning
