"""Response cache in Redis, shared by gateway replicas.

Redis is an optimisation here, never a dependency of a request: every failure (refused
connection, timeout, error reply) is logged and answered as a miss (get) or a no-op (set).
The log says when Redis starts failing and when it recovers, not once per request. The URL may
be a live secret: a rotation swaps the client (redis_live.py).
"""

from __future__ import annotations

import logging

import redis.asyncio
from redis.exceptions import RedisError

from gateway.cache.redis_live import LiveRedis
from meterline.secrets import LiveSecret

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "meterline:cache:"
DEFAULT_TIMEOUT_S = 0.25
"""Socket connect and read timeout: a slow cache must not make a request slower than a miss."""


class RedisCache:
    """Values under `prefix + key`, written with `SET ... PX <ttl in ms>`."""

    def __init__(
        self, url: str | LiveSecret, prefix: str = DEFAULT_PREFIX, *, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.prefix = prefix
        self.failures = 0
        """Operations that failed and were treated as a miss or a no-op."""
        self._failing = False
        self._redis = LiveRedis(
            url,
            lambda u: redis.asyncio.Redis.from_url(u, socket_timeout=timeout_s, socket_connect_timeout=timeout_s),
            retire_after=timeout_s * 4 + 1.0,
            name="response cache",
        )

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._redis.client.get(self.prefix + key)
        except (RedisError, OSError) as exc:
            self._failed("get", exc)
            return None
        self._succeeded()
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        ttl_ms = int(ttl_s * 1000)
        if ttl_ms <= 0:
            return
        try:
            await self._redis.client.set(self.prefix + key, value, px=ttl_ms)
        except (RedisError, OSError) as exc:
            self._failed("set", exc)
            return
        self._succeeded()

    async def close(self) -> None:
        await self._redis.aclose()

    def _failed(self, operation: str, exc: Exception) -> None:
        self.failures += 1
        if not self._failing:
            self._failing = True
            log.warning(
                "response cache: Redis %s failed (%s: %s); serving without the cache until it recovers",
                operation,
                type(exc).__name__,
                exc,
            )

    def _succeeded(self) -> None:
        if self._failing:
            self._failing = False
            log.warning("response cache: Redis is answering again")
