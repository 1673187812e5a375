"""In-process quota counters: the default store, and the fallback while Redis is unreachable.

Single event loop only: `reserve` does its check-and-add over plain dicts without an `await`
in between, so no other coroutine can interleave. Counters of ended windows are swept at most
once a minute.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from gateway.quotas.store import Actual, CounterItem, Reservation, ReserveResult, settle_delta

SWEEP_INTERVAL_S = 60.0


class MemoryQuotaStore:
    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._expiry: dict[str, float] = {}
        self._ids = itertools.count(1)
        self._next_sweep = 0.0

    async def reserve(self, items: Sequence[CounterItem], now: float) -> ReserveResult:
        if now >= self._next_sweep:
            self._sweep(now)
        counts = self._counts
        used = [counts.get(item.key, 0) for item in items]
        for index, item in enumerate(items):
            if used[index] + item.amount > item.cap:
                return ReserveResult(None, tuple(used), index)
        expiry = self._expiry
        for index, item in enumerate(items):
            used[index] = counts[item.key] = used[index] + item.amount
            if item.expires_at is not None:
                expiry[item.key] = item.expires_at
        return ReserveResult(Reservation(str(next(self._ids)), tuple(items)), tuple(used))

    async def settle(self, reservation: Reservation, actual: Actual) -> None:
        self._adjust(reservation, actual)

    async def release(self, reservation: Reservation) -> None:
        self._adjust(reservation, None)

    def settle_in_place(self, reservation: Reservation, actual: Actual | None) -> bool:
        self._adjust(reservation, actual)
        return True

    async def close(self) -> None:
        self._counts.clear()
        self._expiry.clear()

    def value(self, key: str) -> int:
        """A counter's current value (0 when absent); for tests and diagnostics."""
        return self._counts.get(key, 0)

    def __len__(self) -> int:
        return len(self._counts)

    def _adjust(self, reservation: Reservation, actual: Actual | None) -> None:
        counts = self._counts
        for item in reservation.items:
            current = counts.get(item.key)
            if current is None:  # its window ended and was swept: nothing left to adjust
                continue
            value = current + settle_delta(item, actual)
            if value == 0 and item.expires_at is None:
                del counts[item.key]  # an idle parallel counter
            else:
                counts[item.key] = value

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + SWEEP_INTERVAL_S
        ended = [key for key, expires_at in self._expiry.items() if expires_at <= now]
        for key in ended:
            del self._expiry[key]
            self._counts.pop(key, None)
