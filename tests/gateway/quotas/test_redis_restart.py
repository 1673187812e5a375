"""RedisQuotaStore when Redis comes back: a call on a stale pooled connection is retried once on
a fresh one (and a retry never counts twice), and a counter reset (a restart without
persistence, FLUSHALL) is detected by every replica, with exactly one of them told it wrote
the new epoch. Each test runs its own redis-server child process (tests/gateway/quotas/redis_server.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import redis.asyncio
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.quotas.redis_store import RedisQuotaStore, StoreReset
from gateway.quotas.store import Actual, CounterItem, Dimension
from tests.conftest import REDIS_URL
from tests.gateway.quotas import store_properties as props
from tests.gateway.quotas.redis_server import redis_server

TIMEOUT_S = 5.0
CAPS = props.Caps(tokens=10**9, usd=10**15, requests=10**6, parallel=10**6)


def test_a_restart_fails_no_call_once_redis_answers_ping(tmp_path: Path) -> None:
    """64 pooled connections, all stale after the restart: every reserve after PING succeeds."""

    async def scenario(server: Any) -> tuple[int, int, int]:
        store = RedisQuotaStore(server.url, "q:", timeout_s=TIMEOUT_S, max_connections=64)
        try:
            items = props.items_for(CAPS, 10, 100)
            warm = await asyncio.gather(*(store.reserve(items, props.NOW) for _ in range(200)))
            assert all(result.ok for result in warm)
            await asyncio.to_thread(server.restart)  # returns once the new process answers PING
            after = await asyncio.gather(*(store.reserve(items, props.NOW) for _ in range(600)), return_exceptions=True)
            failed = sum(not (hasattr(r, "ok") and r.ok) for r in after)
            raw = redis.asyncio.Redis.from_url(server.url)
            try:
                counted = int(await raw.get("q:req") or 0)
            finally:
                await raw.aclose()
            return failed, counted, store.retries
        finally:
            await store.close()

    with redis_server(tmp_path) as server:
        failed, counted, retries = asyncio.run(scenario(server))
    assert (failed, counted) == (0, 600)  # nothing refused, each reserve counted once
    assert retries >= 1


def test_a_retry_after_a_lost_reply_counts_once(redis_prefix: str) -> None:
    """The first call of a reserve and of a settle runs in Redis but its reply is lost (a
    timeout): the retry gets the same answer and the counters hold one request's worth."""

    async def scenario() -> tuple[int, int, int, int]:
        store = RedisQuotaStore(REDIS_URL, redis_prefix, timeout_s=TIMEOUT_S)
        lost = {"reserve": 1, "settle": 1}

        def losing(script: Any, name: str) -> Any:
            async def call(**kwargs: Any) -> Any:
                reply = await script(**kwargs)
                if lost[name]:
                    lost[name] -= 1
                    raise RedisTimeoutError("Timeout reading from socket")
                return reply

            return call

        store._reserve = losing(store._reserve, "reserve")
        store._adjust = losing(store._adjust, "settle")
        raw = redis.asyncio.Redis.from_url(REDIS_URL)
        try:
            result = await store.reserve(props.items_for(CAPS, 100, 5_000), props.NOW)
            assert result.ok and result.used == (1, 100, 5_000, 1)
            assert result.reservation is not None
            await store.settle(result.reservation, Actual(tokens=40, usd_nanos=2_000))
            values = [int(await raw.get(redis_prefix + key) or 0) for key in ("req", "tok", "usd")]
            return values[0], values[1], values[2], int(await raw.zcard(redis_prefix + "par"))
        finally:
            await store.close()
            await raw.aclose()

    assert asyncio.run(scenario()) == (1, 40, 2_000, 0)


def test_a_flush_or_a_restart_is_detected_by_every_replica_and_written_by_one(tmp_path: Path) -> None:
    async def scenario(server: Any) -> tuple[list[StoreReset], list[StoreReset], list[int]]:
        seen: tuple[list[StoreReset], list[StoreReset]] = ([], [])
        replicas = [RedisQuotaStore(server.url, "q:", timeout_s=TIMEOUT_S, on_reset=seen[i].append) for i in range(2)]
        item = [CounterItem("tok", Dimension.TOKENS, 5, 1_000, props.FAR_FUTURE)]
        try:
            for replica in replicas:
                assert (await replica.reserve(item, props.NOW)).ok  # the first contact: nothing to report
            assert seen == ([], [])
            raw = redis.asyncio.Redis.from_url(server.url)
            try:
                await raw.flushall()
            finally:
                await raw.aclose()
            after_flush = [(await replica.reserve(item, props.NOW)).used[0] for replica in replicas]
            await asyncio.to_thread(server.restart)
            after_restart = [(await replica.reserve(item, props.NOW)).used[0] for replica in reversed(replicas)]
            await replicas[0].reserve(item, props.NOW)  # the same epoch again: nothing new
            return seen[0], seen[1], after_flush + after_restart + [r.resets for r in replicas]
        finally:
            for replica in replicas:
                await replica.close()

    with redis_server(tmp_path) as server:
        first, second, numbers = asyncio.run(scenario(server))
    # Counters restarted from zero both times: 5 then 10 after the flush, 5 then 10 after the restart.
    assert numbers == [5, 10, 5, 10, 2, 2]
    assert [r.first_seen_here for r in first] == [True, False]  # replica 0 reserved first after the flush
    assert [r.first_seen_here for r in second] == [False, True]  # replica 1 first after the restart
    assert [r.already_reported for r in first + second] == [False] * 4
    assert first[0].epoch == second[0].epoch != first[1].epoch == second[1].epoch
    assert first[0].previous_epoch == second[0].previous_epoch


def test_concurrent_first_reserves_report_nothing_and_one_reset_reports_once(tmp_path: Path) -> None:
    """A fresh store's first replies race (one wrote the epoch, others saw it): that is no reset.
    A real reset met by many concurrent reserves is reported once, with its alarm flag once."""

    async def scenario(server: Any) -> tuple[list[StoreReset], list[StoreReset], int]:
        seen: list[StoreReset] = []
        store = RedisQuotaStore(server.url, "q:", timeout_s=TIMEOUT_S, on_reset=seen.append)
        item = [CounterItem("tok", Dimension.TOKENS, 1, 10**6, props.FAR_FUTURE)]
        try:
            await asyncio.gather(*(store.reserve(item, props.NOW) for _ in range(64)))
            first = list(seen)
            raw = redis.asyncio.Redis.from_url(server.url)
            try:
                await raw.flushall()
            finally:
                await raw.aclose()
            await asyncio.gather(*(store.reserve(item, props.NOW) for _ in range(64)))
            return first, seen, store.resets
        finally:
            await store.close()

    with redis_server(tmp_path) as server:
        first, seen, resets = asyncio.run(scenario(server))
    assert (first, resets) == ([], 1)
    assert sum(not r.already_reported for r in seen) == 1  # counted and logged once
    assert sum(r.first_seen_here for r in seen) == 1  # alarmed once
