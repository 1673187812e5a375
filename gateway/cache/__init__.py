"""Exact-match response cache: the same answer-relevant request to the same model group is
answered from a stored response instead of the provider.

Backends implement `ResponseCache` (one module each: `memory`, `redis_cache`) and are chosen by
the `response_cache` config section through `factory.build_cache`. A backend never raises into
a request: a failing store behaves as a miss (get) or a no-op (set).
"""

from __future__ import annotations

from typing import Protocol


class ResponseCache(Protocol):
    """Stored responses by key (see `gateway.cache.keys.cache_key`)."""

    async def get(self, key: str) -> bytes | None:
        """The stored value, or None when absent, expired or the store is unavailable."""
        ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store `value` for `ttl_s` seconds; a failure is logged, never raised."""
        ...

    async def close(self) -> None:
        """Release connections; called once from the app's lifespan shutdown."""
        ...


__all__ = ["ResponseCache"]
