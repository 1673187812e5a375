"""The quota store contract: all-or-nothing reservations over a set of counters.

A request charges several counters at once (its agent's and its team's, per limit). `reserve`
either adds every amount or none, and a refusal names the first counter that would go over
its cap. `settle` replaces the reserved tokens and dollars by the real usage (requests stay
counted, the parallel slot is freed); `release` gives back exactly what was reserved.
Backends: `memory_store.MemoryQuotaStore` (one process) and `redis_store.RedisQuotaStore`
(replicas sharing Redis). Money is counted in integer nano-dollars, never as floats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple, Protocol

NANOS_PER_USD = 1_000_000_000


def usd_to_nanos(usd: float) -> int:
    return round(usd * NANOS_PER_USD)


class Dimension(StrEnum):
    """What a counter counts, which decides what `settle` does with it."""

    REQUESTS = "requests"
    """Kept as reserved: a request that reached the provider counts."""
    TOKENS = "tokens"
    """Replaced by the real tokens on settle."""
    USD = "usd"
    """Nano-dollars, replaced by the real cost on settle."""
    PARALLEL = "parallel"
    """A slot held while the request runs; freed on settle and release."""


class CounterItem(NamedTuple):
    """One counter a reservation charges. (NamedTuples here: several are built per request.)"""

    key: str
    """The counter's name inside the store (the store adds its own prefix)."""
    dimension: Dimension
    amount: int
    cap: int
    expires_at: float | None
    """Epoch seconds after which the counter may be dropped; None for parallel slots."""


class Reservation(NamedTuple):
    id: str
    items: tuple[CounterItem, ...]


class ReserveResult(NamedTuple):
    reservation: Reservation | None
    """None when refused."""
    used: tuple[int, ...]
    """Each counter's value after the reservation (or, when refused, as it stands)."""
    refused_index: int | None = None
    """Which item (first in order) would have gone over its cap."""

    @property
    def ok(self) -> bool:
        return self.reservation is not None


@dataclass(frozen=True, slots=True)
class Actual:
    """What a request really used."""

    tokens: int
    usd_nanos: int


def settle_delta(item: CounterItem, actual: Actual | None) -> int:
    """How much `settle(actual)` (or `release` when actual is None) adds to a counter."""
    if actual is None or item.dimension is Dimension.PARALLEL:
        return -item.amount
    if item.dimension is Dimension.TOKENS:
        return actual.tokens - item.amount
    if item.dimension is Dimension.USD:
        return actual.usd_nanos - item.amount
    return 0


class QuotaStoreUnavailable(Exception):
    """The store could not be reached or did not answer (connection refused, timeout)."""


class QuotaStore(Protocol):
    async def reserve(self, items: Sequence[CounterItem], now: float) -> ReserveResult:
        """Add every item's amount to its counter, or none if any would exceed its cap."""
        ...

    async def settle(self, reservation: Reservation, actual: Actual) -> None:
        """Replace the reserved tokens and dollars by `actual`; free the parallel slots."""
        ...

    async def release(self, reservation: Reservation) -> None:
        """Give back exactly what the reservation took."""
        ...

    def settle_in_place(self, reservation: Reservation, actual: Actual | None) -> bool:
        """`settle` (or, with None, `release`) done at once when it needs no I/O, so the request
        path need not start a task for it; False (nothing done) when it must be awaited."""
        ...

    async def close(self) -> None: ...
