"""MemoryQuotaStore: the shared store properties, and expiry of ended windows."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.quotas.memory_store import SWEEP_INTERVAL_S, MemoryQuotaStore
from gateway.quotas.store import Actual, CounterItem, Dimension
from tests.gateway.quotas import store_properties as props


def reader(store: MemoryQuotaStore) -> props.Read:
    async def read(key: str) -> int:
        return store.value(key)

    return read


@settings(max_examples=200, deadline=None)
@given(caps=props.caps_strategy, operations=props.operations_strategy)
def test_reservations_match_the_model(caps: props.Caps, operations: list[props.Operation]) -> None:
    store = MemoryQuotaStore()
    asyncio.run(props.check_against_model(store, reader(store), caps, operations))


@settings(max_examples=100, deadline=None)
@given(usages=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**12)), max_size=30))
def test_settled_totals_equal_the_real_usage(usages: list[tuple[int, int]]) -> None:
    store = MemoryQuotaStore()
    asyncio.run(props.check_settle_totals(store, reader(store), usages))


@settings(max_examples=100, deadline=None)
@given(amounts=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**12)), max_size=30))
def test_releases_return_exactly_what_was_reserved(amounts: list[tuple[int, int]]) -> None:
    store = MemoryQuotaStore()
    asyncio.run(props.check_releases(store, reader(store), amounts))


@settings(max_examples=50, deadline=None)
@given(cap=st.integers(0, 500), demand=st.integers(1, 60), attempts=st.integers(0, 200))
def test_concurrent_reserves_never_pass_the_cap(cap: int, demand: int, attempts: int) -> None:
    store = MemoryQuotaStore()
    asyncio.run(props.check_concurrent_reserves(store, reader(store), cap, demand, attempts))


@settings(max_examples=100, deadline=None)
@given(cap=st.integers(0, 2_000), requests=props.overshoot_strategy)
def test_overshoot_settles_and_is_bounded(cap: int, requests: list[tuple[int, int]]) -> None:
    store = MemoryQuotaStore()
    asyncio.run(props.check_overshoot_is_bounded(store, reader(store), cap, requests))


@settings(max_examples=100, deadline=None)
@given(cap=st.integers(0, 2_000), requests=props.overshoot_strategy)
def test_serial_overshoot_is_one_request(cap: int, requests: list[tuple[int, int]]) -> None:
    store = MemoryQuotaStore()
    asyncio.run(props.check_serial_overshoot_is_one_request(store, reader(store), cap, requests))


def test_ended_windows_are_swept_and_late_settles_leave_them_alone() -> None:
    async def scenario() -> None:
        store = MemoryQuotaStore()
        old = CounterItem("tok:m1", Dimension.TOKENS, 5, 10, 1000.0)
        result = await store.reserve([old, CounterItem("par", Dimension.PARALLEL, 1, 1, None)], 900.0)
        assert result.reservation is not None and len(store) == 2
        await store.reserve([CounterItem("tok:m2", Dimension.TOKENS, 1, 10, 2000.0)], 1000.0 + SWEEP_INTERVAL_S)
        assert (store.value("tok:m1"), store.value("par"), store.value("tok:m2")) == (0, 1, 1)
        await store.settle(result.reservation, Actual(tokens=3, usd_nanos=0))
        assert (len(store), store.value("tok:m1"), store.value("par")) == (1, 0, 0)

    asyncio.run(scenario())
