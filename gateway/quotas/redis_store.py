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
becomes `QuotaStoreUnavailable` and the quota service applies `quota_store.fail_mode`. The URL
may be a live secret: a rotation swaps the client (gateway/cache/redis_live.py), and settling a
reservation made before it goes through the new client.
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

from gateway.cache.redis_live import LiveRedis
from gateway.quotas.store import (
    Actual,
    CounterItem,
    Dimension,
    QuotaStoreUnavailable,
    Reservation,
    ReserveResult,
    settle_delta,
)
from meterline.secrets import LiveSecret

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "meterline:quota:"
DEFAULT_TIMEOUT_S = 0.25
DEFAULT_LEASE_S = 900.0
"""How long a parallel slot survives without being freed (a replica that died holding it)."""

# Arguments travel as one space-separated ARGV string and the reply as one string: encoding
# and parsing dozens of separate values costs the client more CPU than the script costs Redis.
# KEYS: counters. ARGV[1]: "now_ms reservation_id lease_ms" then per key
# "amount cap expire_at_ms kind" (kind "c" counter, "p" parallel slot).
# Reply: "ok refused_index used..." (ok 1 or 0, refused_index 1-based, 0 when admitted).
RESERVE_LUA = """
local a = {}
for word in string.gmatch(ARGV[1], '%S+') do a[#a + 1] = word end
local now = tonumber(a[1])
local used = {}
local refused = 0
for i = 1, #KEYS do
  local base = 4 * i
  local cur
  if a[base + 3] == 'p' then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    cur = redis.call('ZCARD', KEYS[i])
  else
    cur = tonumber(redis.call('GET', KEYS[i]) or '0')
  end
  used[i] = cur
  if refused == 0 and cur + tonumber(a[base]) > tonumber(a[base + 1]) then
    refused = i
  end
end
if refused == 0 then
  for i = 1, #KEYS do
    local base = 4 * i
    if a[base + 3] == 'p' then
      redis.call('ZADD', KEYS[i], now + tonumber(a[3]), a[2])
      redis.call('PEXPIRE', KEYS[i], a[3])
      used[i] = used[i] + 1
    else
      used[i] = redis.call('INCRBY', KEYS[i], a[base])
      redis.call('PEXPIREAT', KEYS[i], a[base + 2])
    end
  end
end
local reply = {refused == 0 and 1 or 0, refused}
for i = 1, #KEYS do reply[i + 2] = string.format('%d', used[i]) end
return table.concat(reply, ' ')
"""

# KEYS: counters. ARGV[1]: "reservation_id" then per key "delta kind". A counter whose window
# has already expired is left alone (INCRBY would recreate it without a TTL).
ADJUST_LUA = """
local a = {}
for word in string.gmatch(ARGV[1], '%S+') do a[#a + 1] = word end
for i = 1, #KEYS do
  local base = 2 * i
  if a[base + 1] == 'p' then
    redis.call('ZREM', KEYS[i], a[1])
  elseif a[base] ~= '0' and redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('INCRBY', KEYS[i], a[base])
  end
end
return 1
"""


class RedisQuotaStore:
    def __init__(
        self,
        url: str | LiveSecret,
        prefix: str = DEFAULT_PREFIX,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        lease_s: float = DEFAULT_LEASE_S,
        max_connections: int = 64,
    ) -> None:
        self.prefix = prefix
        self._lease_ms = int(lease_s * 1000)

        def build(text: str) -> redis.asyncio.Redis:
            pool = redis.asyncio.BlockingConnectionPool.from_url(
                text,
                max_connections=max_connections,
                timeout=timeout_s * 4,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                retry=Retry(NoBackoff(), 0),
            )
            return redis.asyncio.Redis.from_pool(pool)

        self._redis = LiveRedis(url, build, retire_after=timeout_s * 4 + 1.0, name="quota store")
        self._reserve = self._redis.client.register_script(RESERVE_LUA)
        self._adjust = self._redis.client.register_script(ADJUST_LUA)

    async def reserve(self, items: Sequence[CounterItem], now: float) -> ReserveResult:
        reservation_id = uuid.uuid4().hex
        args = [f"{int(now * 1000)} {reservation_id} {self._lease_ms}"]
        for item in items:
            if item.dimension is Dimension.PARALLEL:
                if item.amount != 1:
                    raise ValueError("a parallel item takes exactly one slot")
                args.append(f"1 {item.cap} 0 p")
            else:
                args.append(f"{item.amount} {item.cap} {int((item.expires_at or 0) * 1000)} c")
        reply = await self._call(self._reserve, [self.prefix + item.key for item in items], [" ".join(args)])
        try:
            ok, refused, *used = map(int, reply.split())
        except (AttributeError, ValueError):
            raise QuotaStoreUnavailable(f"Redis quota store: unexpected reply {reply!r}") from None
        if not ok:
            return ReserveResult(None, tuple(used), refused - 1)
        return ReserveResult(Reservation(reservation_id, tuple(items)), tuple(used))

    async def settle(self, reservation: Reservation, actual: Actual) -> None:
        await self._adjust_counters(reservation, actual)

    async def release(self, reservation: Reservation) -> None:
        await self._adjust_counters(reservation, None)

    def settle_in_place(self, reservation: Reservation, actual: Actual | None) -> bool:
        return False  # a round trip to Redis: the caller awaits `settle` / `release` off the path

    async def close(self) -> None:
        await self._redis.aclose()

    async def _adjust_counters(self, reservation: Reservation, actual: Actual | None) -> None:
        args = [reservation.id]
        for item in reservation.items:
            args.append(f"{settle_delta(item, actual)} {'p' if item.dimension is Dimension.PARALLEL else 'c'}")
        await self._call(self._adjust, [self.prefix + item.key for item in reservation.items], [" ".join(args)])

    async def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return await script(keys=keys, args=args, client=self._redis.client)
        except (RedisError, OSError) as exc:
            raise QuotaStoreUnavailable(f"Redis quota store: {type(exc).__name__}: {exc}") from exc
