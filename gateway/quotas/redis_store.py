"""Quota counters in Redis, shared by every gateway replica.

Each `reserve` is one Lua script (EVALSHA, one round trip) that reads every counter, refuses
if any would pass its cap, and otherwise adds to all of them; `settle` and `release` are one
script each as well. Redis runs a script alone, so replicas can never interleave between the
check and the add. Counters are integers (tokens, requests, nano-dollars) under
`prefix + key`, expiring (PEXPIREAT) a grace period after their window ends. Parallel slots
are sorted-set members scored by a lease deadline, so slots held by a replica that died are
freed when the lease runs out. For Redis Cluster all keys must share a hash slot: use a
prefix with a hash tag, e.g. `{meterline}:quota:`.

Calls are never retried (a retried reserve could count twice); a connection error or timeout
becomes `QuotaStoreUnavailable` and the quota service applies `quota_store.fail_mode`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway.quotas.store import (
    Actual,
    CounterItem,
    Dimension,
    QuotaStoreUnavailable,
    Reservation,
    ReserveResult,
    settle_delta,
)

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "meterline:quota:"
DEFAULT_TIMEOUT_S = 0.25
DEFAULT_LEASE_S = 900.0
"""How long a parallel slot survives without being freed (a replica that died holding it)."""

# KEYS: counters. ARGV: now_ms, reservation id, lease_ms, then per key: amount, cap,
# expire_at_ms, kind ("c" counter, "p" parallel slot). Returns {ok, refused_index, used...}.
RESERVE_LUA = """
local now = tonumber(ARGV[1])
local used = {}
local refused = 0
for i = 1, #KEYS do
  local base = 4 * i
  local cur
  if ARGV[base + 3] == 'p' then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    cur = redis.call('ZCARD', KEYS[i])
  else
    cur = tonumber(redis.call('GET', KEYS[i]) or '0')
  end
  used[i] = cur
  if refused == 0 and cur + tonumber(ARGV[base]) > tonumber(ARGV[base + 1]) then
    refused = i
  end
end
if refused > 0 then
  return {0, refused, unpack(used)}
end
for i = 1, #KEYS do
  local base = 4 * i
  if ARGV[base + 3] == 'p' then
    redis.call('ZADD', KEYS[i], now + tonumber(ARGV[3]), ARGV[2])
    redis.call('PEXPIRE', KEYS[i], ARGV[3])
    used[i] = used[i] + 1
  else
    used[i] = redis.call('INCRBY', KEYS[i], ARGV[base])
    redis.call('PEXPIREAT', KEYS[i], ARGV[base + 2])
  end
end
return {1, 0, unpack(used)}
"""

# KEYS: counters. ARGV: reservation id, then per key: delta, kind. A counter whose window has
# already expired is left alone (INCRBY would recreate it without a TTL).
ADJUST_LUA = """
for i = 1, #KEYS do
  local base = 2 * i
  if ARGV[base + 1] == 'p' then
    redis.call('ZREM', KEYS[i], ARGV[1])
  elseif ARGV[base] ~= '0' and redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('INCRBY', KEYS[i], ARGV[base])
  end
end
return 1
"""


class RedisQuotaStore:
    def __init__(
        self,
        url: str,
        prefix: str = DEFAULT_PREFIX,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        lease_s: float = DEFAULT_LEASE_S,
        max_connections: int = 64,
    ) -> None:
        self.prefix = prefix
        self._lease_ms = int(lease_s * 1000)
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout_s * 4,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._client: redis.asyncio.Redis = redis.asyncio.Redis.from_pool(pool)
        self._reserve = self._client.register_script(RESERVE_LUA)
        self._adjust = self._client.register_script(ADJUST_LUA)

    async def reserve(self, items: Sequence[CounterItem], now: float) -> ReserveResult:
        reservation_id = uuid.uuid4().hex
        args: list[Any] = [int(now * 1000), reservation_id, self._lease_ms]
        for item in items:
            parallel = item.dimension is Dimension.PARALLEL
            if parallel and item.amount != 1:
                raise ValueError("a parallel item takes exactly one slot")
            expires_ms = 0 if item.expires_at is None else int(item.expires_at * 1000)
            args += (item.amount, item.cap, expires_ms, "p" if parallel else "c")
        reply = await self._call(self._reserve, [self.prefix + item.key for item in items], args)
        if not isinstance(reply, list):
            raise QuotaStoreUnavailable(f"Redis quota store: unexpected reply {reply!r}")
        used = tuple(int(value) for value in reply[2:])
        if reply[0] != 1:
            return ReserveResult(None, used, int(reply[1]) - 1)
        return ReserveResult(Reservation(reservation_id, tuple(items)), used)

    async def settle(self, reservation: Reservation, actual: Actual) -> None:
        await self._adjust_counters(reservation, actual)

    async def release(self, reservation: Reservation) -> None:
        await self._adjust_counters(reservation, None)

    async def close(self) -> None:
        try:
            await self._client.aclose()
        except (RedisError, OSError) as exc:  # closing a connection to a Redis that is already gone
            log.debug("closing the quota store's Redis connection failed (%s)", type(exc).__name__)

    async def _adjust_counters(self, reservation: Reservation, actual: Actual | None) -> None:
        args: list[Any] = [reservation.id]
        for item in reservation.items:
            args += (settle_delta(item, actual), "p" if item.dimension is Dimension.PARALLEL else "c")
        await self._call(self._adjust, [self.prefix + item.key for item in reservation.items], args)

    async def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise QuotaStoreUnavailable(f"Redis quota store: {type(exc).__name__}: {exc}") from exc
