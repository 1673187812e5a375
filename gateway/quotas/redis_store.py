"""Quota counters in Redis, shared by every gateway replica.

Each `reserve` is one Lua script (EVALSHA, one round trip) that reads every counter, refuses
if any would pass its cap, and otherwise adds to all of them; `settle` and `release` are one
script each as well. Redis runs a script alone, so replicas can never interleave between the
check and the add. Counters are integers (tokens, requests, nano-dollars) under
`prefix + key`, expiring (PEXPIREAT) a grace period after their window ends. Parallel slots
are sorted-set members scored by a lease deadline, so slots held by a replica that died are
freed when the lease runs out. For Redis Cluster all keys must share a hash slot: use a
prefix with a hash tag, e.g. `{meterline}:quota:`.

A call that fails with a connection error or a timeout is retried once on a fresh connection
(a Redis that restarted or failed over leaves every pooled socket stale: each would fail once).
Both scripts are idempotent per reservation id (a marker key remembers a reserve's reply and
that a settle was applied, for `MARKER_TTL_S`), so a retry after a reply that was lost never
counts twice. A second failure becomes `QuotaStoreUnavailable` and the quota service applies
`quota_store.fail_mode`. The URL may be a live secret: a rotation swaps the client
(gateway/cache/redis_live.py), and settling a reservation made before it goes through the new
client.

Counter resets: every reserve also reads the store's epoch key (`prefix + "epoch"`, written
once, never expiring). A Redis that lost its data (restart without persistence, a failover to a
replica that never had the data, FLUSHALL) has lost that key too: the first reserve after the
loss writes a new epoch and says so, and every replica sees the value change. The store reports
it to `on_reset` (gateway/quotas/reset.py raises the metric, the log line and the alarm).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

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
MARKER_TTL_S = 30.0
"""How long a reserve's reply and a settle's "applied" mark are kept for a retry to find."""
EPOCH_KEY = "epoch"
"""Under the prefix: the store's epoch, a value that changes only when the data was lost."""
_STALE_SOCKET = (RedisConnectionError, RedisTimeoutError, OSError)
"""What a pooled socket to a Redis that restarted or moved fails with; worth one retry."""


@dataclass(frozen=True, slots=True)
class StoreReset:
    """The quota store's counters were lost: its epoch changed between two reserves."""

    previous_epoch: str
    epoch: str
    first_seen_here: bool
    """This process wrote the new epoch (its reserve was the first after the loss): of all the
    replicas, exactly one sees True, so exactly one raises the alarm."""
    already_reported: bool = False
    """This process had already reported the new epoch (another of its replies came first);
    told again only because it is the one that wrote it."""


ResetListener = Callable[[StoreReset], None]

# Arguments travel as one space-separated ARGV string and the reply as one string: encoding
# and parsing dozens of separate values costs the client more CPU than the script costs Redis.
# KEYS: counters, then the epoch key, then this reservation's marker key.
# ARGV[1]: "now_ms reservation_id lease_ms known_epoch marker_ms" then per counter
# "amount cap expire_at_ms kind" (kind "c" counter, "p" parallel slot).
# Reply: "ok refused_index epoch_flag epoch used..." (ok 1 or 0, refused_index 1-based, 0 when
# admitted; epoch_flag 0: the epoch is known_epoch (epoch "-"), 1: it was missing and this call
# wrote it, 2: it differs from known_epoch). An admitted reply is kept under the marker, and
# a retry of the same reservation gets it back instead of counting again.
RESERVE_LUA = """
local n = #KEYS - 2
local done = redis.call('GET', KEYS[n + 2])
if done then return done end
local a = {}
for word in string.gmatch(ARGV[1], '%S+') do a[#a + 1] = word end
local now = tonumber(a[1])
local flag = 0
local epoch = redis.call('GET', KEYS[n + 1])
if not epoch then
  epoch = a[2]
  redis.call('SET', KEYS[n + 1], epoch)
  flag = 1
elseif epoch ~= a[4] then
  flag = 2
end
local used = {}
local refused = 0
for i = 1, n do
  local base = 4 * i + 2
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
  for i = 1, n do
    local base = 4 * i + 2
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
local reply = {refused == 0 and 1 or 0, refused, flag, flag == 0 and '-' or epoch}
for i = 1, n do reply[i + 4] = string.format('%d', used[i]) end
reply = table.concat(reply, ' ')
if refused == 0 then redis.call('SET', KEYS[n + 2], reply, 'PX', a[5]) end
return reply
"""

# KEYS: counters, then this reservation's marker key. ARGV[1]: "reservation_id marker_ms" then
# per counter "delta kind". A counter whose window has already expired is left alone (INCRBY
# would recreate it without a TTL). The marker makes a second call for the same reservation
# (a retry after a lost reply) a no-op.
ADJUST_LUA = """
local n = #KEYS - 1
local a = {}
for word in string.gmatch(ARGV[1], '%S+') do a[#a + 1] = word end
if not redis.call('SET', KEYS[n + 1], '1', 'NX', 'PX', a[2]) then return 0 end
for i = 1, n do
  local base = 2 * i + 1
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
        on_reset: ResetListener | None = None,
    ) -> None:
        self.prefix = prefix
        self._lease_ms = int(lease_s * 1000)
        self._marker_ms = int(MARKER_TTL_S * 1000)
        self._epoch_key = prefix + EPOCH_KEY
        self._reserved_prefix = prefix + "once:r:"
        self._settled_prefix = prefix + "once:s:"
        self._on_reset = on_reset
        self.epoch: str | None = None
        """The epoch of the counters this process has been counting in; None before the first reserve."""
        self._replaced: str | None = None
        self.resets = 0
        """Counter resets this process has seen."""
        self.retries = 0
        """Calls retried on a fresh connection after a stale one failed."""

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
        args = [f"{int(now * 1000)} {reservation_id} {self._lease_ms} {self.epoch or '-'} {self._marker_ms}"]
        for item in items:
            if item.dimension is Dimension.PARALLEL:
                if item.amount != 1:
                    raise ValueError("a parallel item takes exactly one slot")
                args.append(f"1 {item.cap} 0 p")
            else:
                args.append(f"{item.amount} {item.cap} {int((item.expires_at or 0) * 1000)} c")
        keys = [self.prefix + item.key for item in items]
        keys.append(self._epoch_key)
        keys.append(self._reserved_prefix + reservation_id)
        reply = await self._call(self._reserve, keys, [" ".join(args)])
        try:
            parts = reply.split()  # bytes (str if the URL asks for decoded replies)
            ok, refused, flag, used = int(parts[0]), int(parts[1]), parts[2], tuple(map(int, parts[4:]))
        except (AttributeError, ValueError, IndexError):
            raise QuotaStoreUnavailable(f"Redis quota store: unexpected reply {reply!r}") from None
        if flag != b"0" and flag != "0":
            epoch = parts[3].decode() if isinstance(parts[3], bytes) else parts[3]
            self._epoch_seen(epoch, wrote_it=flag in (b"1", "1"))
        if not ok:
            return ReserveResult(None, used, refused - 1)
        return ReserveResult(Reservation(reservation_id, tuple(items)), used)

    async def settle(self, reservation: Reservation, actual: Actual) -> None:
        await self._adjust_counters(reservation, actual)

    async def release(self, reservation: Reservation) -> None:
        await self._adjust_counters(reservation, None)

    def settle_in_place(self, reservation: Reservation, actual: Actual | None) -> bool:
        return False  # a round trip to Redis: the caller awaits `settle` / `release` off the path

    async def close(self) -> None:
        await self._redis.aclose()

    def _epoch_seen(self, epoch: str, *, wrote_it: bool) -> None:
        """A reserve found an epoch other than the one this process knew (or wrote a new one)."""
        previous = self.epoch
        if previous is None:  # the first reserve of this process: nothing was counted here yet
            self.epoch = epoch
            if wrote_it:
                log.warning(
                    "quota store: Redis held no epoch; this gateway wrote one (%s). A new store, or one that lost "
                    "its counters while no gateway ran: if gateways served today, run `meterline quotas rebuild`",
                    epoch,
                )
            return
        if epoch == previous:
            if not wrote_it or self._replaced is None:
                # Another reply of this process already reported the change, or adopted the
                # epoch this reply wrote at the first contact (no counts were lost then).
                return
            reset = StoreReset(self._replaced, epoch, first_seen_here=True, already_reported=True)
        else:
            self.resets += 1
            self._replaced, self.epoch = previous, epoch
            reset = StoreReset(previous, epoch, first_seen_here=wrote_it)
        if self._on_reset is not None:
            self._on_reset(reset)

    async def _adjust_counters(self, reservation: Reservation, actual: Actual | None) -> None:
        args = [f"{reservation.id} {self._marker_ms}"]
        for item in reservation.items:
            args.append(f"{settle_delta(item, actual)} {'p' if item.dimension is Dimension.PARALLEL else 'c'}")
        keys = [self.prefix + item.key for item in reservation.items]
        keys.append(self._settled_prefix + reservation.id)
        await self._call(self._adjust, keys, [" ".join(args)])

    async def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        client = self._redis.client
        try:
            return await script(keys=keys, args=args, client=client)
        except _STALE_SOCKET as exc:
            first = exc
        except RedisError as exc:
            raise QuotaStoreUnavailable(f"Redis quota store: {type(exc).__name__}: {exc}") from exc
        # The socket was stale (Redis restarted or failed over) or the reply was lost. redis-py has
        # closed that connection; its idle siblings are as old, so they go too, and the call is
        # made once more on a fresh connection. The scripts are idempotent per reservation.
        self.retries += 1
        try:
            await client.connection_pool.disconnect(inuse_connections=False)
            return await script(keys=keys, args=args, client=client)
        except (RedisError, OSError) as exc:
            raise QuotaStoreUnavailable(
                f"Redis quota store: {type(exc).__name__}: {exc} (after {type(first).__name__} on a pooled connection)"
            ) from exc
