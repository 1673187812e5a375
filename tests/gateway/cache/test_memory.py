"""The in-memory response cache: TTL per entry, least recently used evicted first."""

from __future__ import annotations

import asyncio

import pytest

from gateway.cache.memory import InMemoryCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_stores_and_returns_values() -> None:
    async def scenario() -> None:
        cache = InMemoryCache()
        assert await cache.get("k") is None
        await cache.set("k", b"answer", 60)
        assert await cache.get("k") == b"answer"
        await cache.set("k", b"newer", 60)
        assert await cache.get("k") == b"newer"
        assert len(cache) == 1

    asyncio.run(scenario())


def test_entries_expire_after_their_ttl() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        cache = InMemoryCache(clock=clock)
        await cache.set("short", b"1", 10)
        await cache.set("long", b"2", 20)
        clock.now += 9.999
        assert await cache.get("short") == b"1"
        clock.now += 0.001
        assert await cache.get("short") is None
        assert await cache.get("long") == b"2"
        assert len(cache) == 1
        clock.now += 10
        assert await cache.get("long") is None
        assert len(cache) == 0

    asyncio.run(scenario())


def test_least_recently_used_goes_first() -> None:
    async def scenario() -> None:
        cache = InMemoryCache(max_entries=2)
        await cache.set("a", b"A", 60)
        await cache.set("b", b"B", 60)
        assert await cache.get("a") == b"A"  # "b" is now the least recently used
        await cache.set("c", b"C", 60)
        assert (await cache.get("a"), await cache.get("b"), await cache.get("c")) == (b"A", None, b"C")
        assert len(cache) == 2

    asyncio.run(scenario())


def test_non_positive_ttl_stores_nothing_and_close_empties() -> None:
    async def scenario() -> None:
        cache = InMemoryCache()
        await cache.set("k", b"v", 60)
        await cache.set("k", b"v", 0)
        assert await cache.get("k") is None
        await cache.set("j", b"v", 60)
        await cache.close()
        assert len(cache) == 0

    asyncio.run(scenario())


def test_needs_room_for_one_entry() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        InMemoryCache(max_entries=0)
