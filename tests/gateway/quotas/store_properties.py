"""Reservation arithmetic every QuotaStore must hold, run against each backend by its test
module (test_memory_store.py, test_redis_store.py) with a model of what the counters must be."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hypothesis import strategies as st

from gateway.quotas.store import Actual, CounterItem, Dimension, QuotaStore, Reservation

Read = Callable[[str], Awaitable[int]]
"""A counter's current value as the store holds it (0 when absent)."""

FAR_FUTURE = 4_000_000_000.0
NOW = 1_700_000_000.0


@dataclass(frozen=True)
class Caps:
    tokens: int
    usd: int
    requests: int
    parallel: int


def items_for(caps: Caps, tokens: int, usd: int) -> list[CounterItem]:
    return [
        CounterItem("req", Dimension.REQUESTS, 1, caps.requests, FAR_FUTURE),
        CounterItem("tok", Dimension.TOKENS, tokens, caps.tokens, FAR_FUTURE),
        CounterItem("usd", Dimension.USD, usd, caps.usd, FAR_FUTURE),
        CounterItem("par", Dimension.PARALLEL, 1, caps.parallel, None),
    ]


caps_strategy = st.builds(
    Caps,
    tokens=st.integers(0, 400),
    usd=st.integers(0, 10**10),
    requests=st.integers(0, 12),
    parallel=st.integers(1, 6),
)


@dataclass(frozen=True)
class Operation:
    kind: str
    """reserve, settle or release."""
    tokens: int
    usd: int
    which: int
    """Which open reservation to settle or release (modulo their number)."""
    used_tokens: float
    """Fraction of the reserved tokens really used, for settle."""
    used_usd: float


operations_strategy = st.lists(
    st.builds(
        Operation,
        kind=st.sampled_from(["reserve", "reserve", "settle", "release"]),
        tokens=st.integers(0, 120),
        usd=st.integers(0, 3 * 10**9),
        which=st.integers(0, 50),
        used_tokens=st.floats(0, 1),
        used_usd=st.floats(0, 1),
    ),
    max_size=40,
)


async def check_against_model(store: QuotaStore, read: Read, caps: Caps, operations: list[Operation]) -> None:
    """Every reserve is all-or-nothing and refuses exactly when the model says a cap would be
    passed; counters never pass a cap; settle leaves the real usage, release leaves nothing."""
    model = {"req": 0, "tok": 0, "usd": 0, "par": 0}
    open_reservations: list[Reservation] = []
    for operation in operations:
        if operation.kind == "reserve":
            items = items_for(caps, operation.tokens, operation.usd)
            result = await store.reserve(items, NOW)
            would_pass = [model[item.key] + item.amount > item.cap for item in items]
            if any(would_pass):
                assert result.reservation is None
                assert result.refused_index == would_pass.index(True)
                assert list(result.used) == [model[item.key] for item in items]
            else:
                assert result.reservation is not None
                for item in items:
                    model[item.key] += item.amount
                assert list(result.used) == [model[item.key] for item in items]
                open_reservations.append(result.reservation)
        elif open_reservations:
            reservation = open_reservations.pop(operation.which % len(open_reservations))
            reserved = {item.key: item.amount for item in reservation.items}
            if operation.kind == "settle":
                actual = Actual(int(reserved["tok"] * operation.used_tokens), int(reserved["usd"] * operation.used_usd))
                await store.settle(reservation, actual)
                model["tok"] += actual.tokens - reserved["tok"]
                model["usd"] += actual.usd_nanos - reserved["usd"]
            else:
                await store.release(reservation)
                model["req"] -= 1
                model["tok"] -= reserved["tok"]
                model["usd"] -= reserved["usd"]
            model["par"] -= 1
        for key, value in model.items():
            assert await read(key) == value
            assert value >= 0
        assert model["req"] <= caps.requests and model["tok"] <= caps.tokens and model["usd"] <= caps.usd


async def check_settle_totals(store: QuotaStore, read: Read, usages: list[tuple[int, int]]) -> None:
    """Reserve each request's worst case, settle each to its real usage: the counters hold the
    sum of the real usage, every request stays counted, no parallel slot stays taken."""
    caps = Caps(tokens=10**9, usd=10**15, requests=10**6, parallel=10**6)
    reservations = []
    for tokens, usd in usages:
        result = await store.reserve(items_for(caps, tokens * 3 + 7, usd * 2 + 1000), NOW)
        assert result.reservation is not None
        reservations.append(result.reservation)
    for reservation, (tokens, usd) in zip(reservations, usages, strict=True):
        await store.settle(reservation, Actual(tokens, usd))
    totals = (await read("req"), await read("tok"), await read("usd"), await read("par"))
    assert totals == (len(usages), sum(t for t, _ in usages), sum(u for _, u in usages), 0)


async def check_releases(store: QuotaStore, read: Read, amounts: list[tuple[int, int]]) -> None:
    """On top of existing usage, releasing reservations gives back exactly what they took."""
    caps = Caps(tokens=10**9, usd=10**15, requests=10**6, parallel=10**6)
    base = await store.reserve(items_for(caps, 11, 13), NOW)
    assert base.reservation is not None
    held = []
    for tokens, usd in amounts:
        result = await store.reserve(items_for(caps, tokens, usd), NOW)
        assert result.reservation is not None
        held.append(result.reservation)
    for reservation in held:
        await store.release(reservation)
    assert (await read("req"), await read("tok"), await read("usd"), await read("par")) == (1, 11, 13, 1)


async def check_concurrent_reserves(store: QuotaStore, read: Read, cap: int, demand: int, attempts: int) -> None:
    """Many reserves at once against one cap: exactly cap // demand succeed (when enough try)."""
    item = CounterItem("tok", Dimension.TOKENS, demand, cap, FAR_FUTURE)
    results = await asyncio.gather(*(store.reserve([item], NOW) for _ in range(attempts)))
    admitted = sum(1 for result in results if result.ok)
    assert admitted == min(attempts, cap // demand)
    assert await read("tok") == admitted * demand <= cap
    for result in results:
        assert all(0 <= value <= cap for value in result.used)


overshoot_strategy = st.lists(
    st.tuples(st.integers(1, 300), st.integers(0, 600)),  # (worst case reserved, what the provider billed)
    max_size=40,
)


async def check_overshoot_is_bounded(store: QuotaStore, read: Read, cap: int, requests: list[tuple[int, int]]) -> None:
    """Worst cases reserved at once, then settled to what the provider billed (more than the
    reservation where it ignored max_tokens): the excess settles, the cap is passed by at most
    the admitted requests' excess, and once it is passed every further reserve is refused."""
    items = [[CounterItem("tok", Dimension.TOKENS, reserved, cap, FAR_FUTURE)] for reserved, _ in requests]
    results = await asyncio.gather(*(store.reserve(request, NOW) for request in items))
    admitted: list[tuple[Reservation, tuple[int, int]]] = [
        (result.reservation, request)
        for result, request in zip(results, requests, strict=True)
        if result.reservation is not None
    ]
    assert sum(reserved for _, (reserved, _) in admitted) <= cap
    for reservation, (_, billed) in admitted:
        await store.settle(reservation, Actual(billed, 0))
    total = sum(billed for _, (_, billed) in admitted)
    assert await read("tok") == total
    assert total <= cap + sum(max(0, billed - reserved) for _, (reserved, billed) in admitted)
    after = await store.reserve([CounterItem("tok", Dimension.TOKENS, 1, cap, FAR_FUTURE)], NOW)
    assert after.ok == (total + 1 <= cap)


async def check_serial_overshoot_is_one_request(
    store: QuotaStore, read: Read, cap: int, requests: list[tuple[int, int]]
) -> None:
    """Requests one at a time (reserve, then settle, then the next): the counter passes the cap
    by at most one request's excess (billed - reserved), and the first request after that is refused."""
    total = 0
    for reserved, billed in requests:
        result = await store.reserve([CounterItem("tok", Dimension.TOKENS, reserved, cap, FAR_FUTURE)], NOW)
        assert result.ok == (total + reserved <= cap)
        if result.reservation is None:
            assert total > cap - reserved
            continue
        excess = max(0, billed - reserved)
        await store.settle(result.reservation, Actual(billed, 0))
        total += billed
        assert total <= cap + excess  # the one-request bound
        assert await read("tok") == total
