"""Admission control for the request path: reserve before the provider is called, settle after.

    admission = await quotas.admit(identity, model=..., provider=..., input_tokens=...,
                                   max_output_tokens=...)   # raises QuotaExceeded (429)
    ... call the provider ...
    await quotas.settle(admission, tokens=usage_total, usd=cost)   # or release() on failure

`admission.headers` carries the x-ratelimit-* headers for the response. Settle and release are
idempotent per admission and never raise. With Redis configured and unreachable,
`quota_store.fail_mode` decides: `open` (default) admits against in-process counters, logs one
warning per outage and counts `fallback_admissions`, and tries Redis again `recheck_seconds`
after a failure; `closed` answers 503 and tries Redis on every request (its alternative is a
503), so no request is refused once Redis answers again. A counter reset the Redis store
detects goes to `on_reset` (gateway/quotas/reset.py).
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.auth import AgentIdentity
from gateway.pricing import PriceBook
from gateway.quotas.errors import QuotaExceeded, QuotaStoreDown, rate_limit_headers
from gateway.quotas.memory_store import MemoryQuotaStore
from gateway.quotas.plan import QuotaPlan, counter_items
from gateway.quotas.redis_store import RedisQuotaStore, ResetListener
from gateway.quotas.store import (
    Actual,
    CounterItem,
    QuotaStore,
    QuotaStoreUnavailable,
    Reservation,
    ReserveResult,
    usd_to_nanos,
)
from gateway.quotas.windows import Clock, WindowCalendar, ZoneCalendar, retry_after_seconds, system_clock
from meterline.config import MeterlineConfig
from meterline.secrets import live_secret

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Admission:
    headers: dict[str, str]
    """x-ratelimit-* headers for the response; empty for an agent without limits."""
    reservation: Reservation | None = field(default=None, repr=False)
    store: QuotaStore | None = field(default=None, repr=False)
    finished: bool = field(default=False, repr=False)


class QuotaService:
    def __init__(
        self,
        plan: QuotaPlan,
        store: QuotaStore,
        *,
        calendar: WindowCalendar | None = None,
        fail_mode: Literal["open", "closed"] = "open",
        recheck_seconds: float = 1.0,
        clock: Clock = system_clock,
    ) -> None:
        self._plan = plan
        self._store = store
        self._fallback = MemoryQuotaStore()
        self._calendar = calendar or ZoneCalendar("UTC")
        self._fail_mode = fail_mode
        self._recheck_seconds = recheck_seconds
        self._clock = clock
        self._retry_at = 0.0
        self.degraded = False
        """True while the shared store is failing (and, fail-open, the in-process one serves)."""
        self.store_failures = 0
        """Calls to the shared store that failed (a counter for /metrics)."""
        self.fallback_admissions = 0
        """Admissions served by in-process counters because the shared store failed."""

    @classmethod
    def from_config(
        cls,
        config: MeterlineConfig,
        prices: PriceBook,
        store: QuotaStore | None = None,
        *,
        clock: Clock = system_clock,
        on_reset: ResetListener | None = None,
    ) -> QuotaService:
        """`on_reset`: told when the Redis store finds its counters were lost."""
        settings = config.quota_store
        if store is None:
            if settings.redis_url:
                store = RedisQuotaStore(
                    live_secret(settings.redis_url),
                    settings.key_prefix,
                    timeout_s=settings.timeout_seconds,
                    lease_s=settings.parallel_lease_seconds,
                    on_reset=on_reset,
                )
            else:
                store = MemoryQuotaStore()
        return cls(
            QuotaPlan.from_config(config, prices),
            store,
            calendar=ZoneCalendar(config.timezone),
            fail_mode=settings.fail_mode,
            recheck_seconds=settings.recheck_seconds,
            clock=clock,
        )

    def has_limits(self, identity: AgentIdentity) -> bool:
        return bool(self._plan.limits_for(identity))

    async def admit(
        self,
        identity: AgentIdentity,
        *,
        model: str,
        provider: str | None,
        input_tokens: int,
        max_output_tokens: int | None,
        completions: int = 1,
        alternatives: Sequence[tuple[str, str | None]] = (),
    ) -> Admission:
        """Reserve the request's worst case against every limit of the agent and its team:
        `input_tokens` plus `completions` generations of `max_output_tokens` each, priced at the
        dearest of `model` and the `alternatives` (other deployments and fallbacks that may answer)."""
        limits = self._plan.limits_for(identity)
        if not limits:
            return Admission({})
        now = self._clock()
        demand = self._plan.demand(model, provider, input_tokens, max_output_tokens, completions)
        for other_model, other_provider in alternatives:
            other = self._plan.demand(other_model, other_provider, input_tokens, max_output_tokens, completions)
            demand = demand.most(other)
        items, frees_in = counter_items(limits, demand, self._calendar, now)
        store, result = await self._reserve(items, now)
        if result.reservation is None:
            index = result.refused_index or 0
            headers = rate_limit_headers(limits, result.used, frees_in, refused=index)
            raise QuotaExceeded(
                limits[index], result.used[index], items[index].amount, retry_after_seconds(frees_in[index]), headers
            )
        return Admission(rate_limit_headers(limits, result.used, frees_in), result.reservation, store)

    async def settle(self, admission: Admission, *, tokens: int, usd: float) -> None:
        """Replace the reserved tokens and dollars by the real usage; frees the parallel slot."""
        reservation, store = self._finish(admission)
        if reservation is not None and store is not None:
            await self._adjust(store, reservation, _actual(tokens, usd))

    def settle_soon(self, admission: Admission, *, tokens: int | None, usd: float) -> Coroutine[Any, Any, None] | None:
        """`settle` (or, with `tokens` None, `release`) done at once when the admission's store
        can (None is returned), else the coroutine that does it over the network, for the
        caller to run off the request path. At concurrency 1 the background task per request
        was ~3 % of a direct request's CPU."""
        reservation, store = self._finish(admission)
        if reservation is None or store is None:
            return None
        actual = None if tokens is None else _actual(tokens, usd)
        if store.settle_in_place(reservation, actual):
            return None
        return self._adjust(store, reservation, actual)

    async def release(self, admission: Admission) -> None:
        """Give back everything the admission reserved (the request failed or was cancelled)."""
        reservation, store = self._finish(admission)
        if reservation is not None and store is not None:
            await self._adjust(store, reservation, None)

    async def _adjust(self, store: QuotaStore, reservation: Reservation, actual: Actual | None) -> None:
        try:
            if actual is None:
                await store.release(reservation)
            else:
                await store.settle(reservation, actual)
        except QuotaStoreUnavailable as exc:
            self._store_failed(exc)

    async def close(self) -> None:
        await self._store.close()
        await self._fallback.close()

    def _finish(self, admission: Admission) -> tuple[Reservation | None, QuotaStore | None]:
        if admission.finished:
            return None, None
        admission.finished = True
        return admission.reservation, admission.store

    async def _reserve(self, items: list[CounterItem], now: float) -> tuple[QuotaStore, ReserveResult]:
        if not self.degraded or now >= self._retry_at or self._fail_mode == "closed":
            try:
                result = await self._store.reserve(items, now)
            except QuotaStoreUnavailable as exc:
                self._store_failed(exc)
                self._retry_at = now + self._recheck_seconds
            else:
                if self.degraded:
                    self.degraded = False
                    log.warning("quota store: Redis is answering again; shared counters are back in use")
                return self._store, result
        if self._fail_mode == "closed":
            raise QuotaStoreDown("The quota store is unavailable; the request was not admitted. Retry shortly.")
        self.fallback_admissions += 1
        return self._fallback, await self._fallback.reserve(items, now)

    def _store_failed(self, exc: QuotaStoreUnavailable) -> None:
        self.store_failures += 1
        if not self.degraded:
            self.degraded = True
            mode = "admitting against in-process counters" if self._fail_mode == "open" else "refusing with 503"
            log.warning("quota store unavailable (%s); %s until it recovers", exc, mode)


def _actual(tokens: int, usd: float) -> Actual:
    return Actual(tokens=max(0, tokens), usd_nanos=max(0, usd_to_nanos(usd)))
