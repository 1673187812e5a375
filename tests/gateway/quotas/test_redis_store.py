"""RedisQuotaStore against a real Redis (METERLINE_TEST_REDIS_URL): the shared store
properties, one script call per operation, key expiry, parallel leases, and an unreachable Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.quotas.redis_store import RedisQuotaStore
from gateway.quotas.store import Actual, CounterItem, Dimension, QuotaStoreUnavailable
from tests.conftest import REDIS_URL, free_port
from tests.gateway.quotas import store_properties as props

TIMEOUT_S = 5.0
"""Generous: a burst of concurrent connects on a busy machine must not time out in a test."""
# Each example works under its own sub-prefix of the test's prefix; the fixture deletes them all.
PER_EXAMPLE = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    """A prefix no other test uses; every key under it is deleted afterwards."""
    return redis_prefix


async def with_store(prefix: str, check: Any, *args: Any) -> None:
    """Run `check(store, read, *args)` on a fresh store under a fresh sub-prefix."""
    sub = f"{prefix}{uuid.uuid4().hex[:8]}:"
    store = RedisQuotaStore(REDIS_URL, sub, timeout_s=TIMEOUT_S)
    raw = redis.asyncio.Redis.from_url(REDIS_URL)

    async def read(key: str) -> int:
        if key == "par":
            return int(await raw.zcard(sub + key))
        value = await raw.get(sub + key)
        return int(value) if value is not None else 0

    try:
        await check(store, read, *args)
    finally:
        await store.close()
        await raw.aclose()


@settings(PER_EXAMPLE, max_examples=40)
@given(caps=props.caps_strategy, operations=props.operations_strategy)
def test_reservations_match_the_model(prefix: str, caps: props.Caps, operations: list[props.Operation]) -> None:
    asyncio.run(with_store(prefix, props.check_against_model, caps, operations))


@settings(PER_EXAMPLE, max_examples=25)
@given(usages=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**12)), max_size=30))
def test_settled_totals_equal_the_real_usage(prefix: str, usages: list[tuple[int, int]]) -> None:
    asyncio.run(with_store(prefix, props.check_settle_totals, usages))


@settings(PER_EXAMPLE, max_examples=25)
@given(amounts=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**12)), max_size=30))
def test_releases_return_exactly_what_was_reserved(prefix: str, amounts: list[tuple[int, int]]) -> None:
    asyncio.run(with_store(prefix, props.check_releases, amounts))


@settings(PER_EXAMPLE, max_examples=15)
@given(cap=st.integers(0, 500), demand=st.integers(1, 60), attempts=st.integers(0, 200))
def test_concurrent_reserves_never_pass_the_cap(prefix: str, cap: int, demand: int, attempts: int) -> None:
    asyncio.run(with_store(prefix, props.check_concurrent_reserves, cap, demand, attempts))


@settings(PER_EXAMPLE, max_examples=15)
@given(cap=st.integers(0, 2_000), requests=props.overshoot_strategy)
def test_overshoot_settles_and_is_bounded(prefix: str, cap: int, requests: list[tuple[int, int]]) -> None:
    asyncio.run(with_store(prefix, props.check_overshoot_is_bounded, cap, requests))


@settings(PER_EXAMPLE, max_examples=15)
@given(cap=st.integers(0, 2_000), requests=props.overshoot_strategy)
def test_serial_overshoot_is_one_request(prefix: str, cap: int, requests: list[tuple[int, int]]) -> None:
    asyncio.run(with_store(prefix, props.check_serial_overshoot_is_one_request, cap, requests))


def test_one_script_call_per_reserve_settle_and_release(prefix: str) -> None:
    async def scenario() -> list[str]:
        store = RedisQuotaStore(REDIS_URL, prefix)
        sent: list[str] = []
        client = store._redis.client
        original: Callable[..., Awaitable[Any]] = client.execute_command

        async def counting(*args: Any, **options: Any) -> Any:
            sent.append(str(args[0]))
            return await original(*args, **options)

        client.execute_command = counting  # type: ignore[method-assign]
        try:
            items = props.items_for(props.Caps(100, 10**9, 10, 5), 10, 1000)
            await store.reserve(items, props.NOW)  # loads the script on first use
            sent.clear()
            first = await store.reserve(items, props.NOW)
            second = await store.reserve(items, props.NOW)
            assert first.reservation is not None and second.reservation is not None
            await store.settle(first.reservation, Actual(4, 400))
            await store.release(second.reservation)
        finally:
            await store.close()
        return sent

    assert asyncio.run(scenario()) == ["EVALSHA"] * 4


def test_counters_expire_at_their_window_end_and_late_settles_do_not_recreate_them(prefix: str) -> None:
    now = time.time()  # PEXPIREAT is absolute: the window must end in the server's future
    expires_at = now + 600

    async def scenario() -> tuple[int, int, int, bool]:
        store = RedisQuotaStore(REDIS_URL, prefix, lease_s=30)
        raw = redis.asyncio.Redis.from_url(REDIS_URL)
        try:
            items = [
                CounterItem("tok", Dimension.TOKENS, 5, 10, expires_at),
                CounterItem("par", Dimension.PARALLEL, 1, 2, None),
            ]
            result = await store.reserve(items, now)
            assert result.reservation is not None
            expire_time_ms = int(await raw.pexpiretime(prefix + "tok"))
            lease_ttl_ms = int(await raw.pttl(prefix + "par"))
            await raw.delete(prefix + "tok")  # as if the window's TTL had run out
            await store.settle(result.reservation, Actual(tokens=3, usd_nanos=0))
            return (
                expire_time_ms,
                lease_ttl_ms,
                int(await raw.zcard(prefix + "par")),
                bool(await raw.exists(prefix + "tok")),
            )
        finally:
            await store.close()
            await raw.aclose()

    expire_time_ms, lease_ttl_ms, slots, recreated = asyncio.run(scenario())
    assert expire_time_ms == int(expires_at * 1000)
    assert 0 < lease_ttl_ms <= 30_000
    assert (slots, recreated) == (0, False)


def test_parallel_slots_of_a_dead_replica_free_when_their_lease_ends(prefix: str) -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        store = RedisQuotaStore(REDIS_URL, prefix, lease_s=60)
        try:
            slot = [CounterItem("par", Dimension.PARALLEL, 1, 1, None)]
            held = await store.reserve(slot, props.NOW)  # never released: its replica "died"
            during = await store.reserve(slot, props.NOW + 59)
            after = await store.reserve(slot, props.NOW + 60.001)
            return held.ok, during.ok, after.ok
        finally:
            await store.close()

    assert asyncio.run(scenario()) == (True, False, True)


def test_unreachable_redis_raises_store_unavailable() -> None:
    async def scenario() -> None:
        store = RedisQuotaStore(f"redis://127.0.0.1:{free_port()}/0")
        items = props.items_for(props.Caps(100, 10**9, 10, 5), 1, 1)
        try:
            with pytest.raises(QuotaStoreUnavailable, match="ConnectionError"):
                await store.reserve(items, props.NOW)
        finally:
            await store.close()

    asyncio.run(scenario())
