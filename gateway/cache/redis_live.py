"""A Redis client whose URL is a live secret (the response cache and the quota store share it).

When the URL rotates (a new password, a new endpoint) a new client is built and used by every
command from then on; the old one is closed `retire_after` seconds later, once commands already
sent on it have finished or timed out. Building a client does not connect, so the swap itself
is free; the first command on the new client connects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import redis.asyncio
from redis.exceptions import RedisError

from meterline.secrets import LiveSecret, SecretVersion

log = logging.getLogger(__name__)

Build = Callable[[str], redis.asyncio.Redis]


class LiveRedis:
    def __init__(self, url: str | LiveSecret, build: Build, *, retire_after: float, name: str) -> None:
        self._secret = url if isinstance(url, LiveSecret) else LiveSecret.fixed(url)
        self._build = build
        self._retire_after = retire_after
        self._name = name
        self.client: redis.asyncio.Redis = build(self._secret.reveal())
        """The client every new command goes through; read it once per command."""
        self.reconnects = 0
        self._retiring: dict[asyncio.Task[None], redis.asyncio.Redis] = {}
        self._secret.on_change(self._rotated)

    def __repr__(self) -> str:
        return f"LiveRedis({self._name!r})"

    def _rotated(self, new: SecretVersion, old: SecretVersion) -> None:
        previous, self.client = self.client, self._build(new.value)
        self.reconnects += 1
        log.info("%s: the redis_url rotated; new commands use the new connection", self._name)
        task = asyncio.get_running_loop().create_task(self._retire(previous))
        self._retiring[task] = previous
        task.add_done_callback(lambda done: self._retiring.pop(done, None))

    async def _retire(self, client: redis.asyncio.Redis) -> None:
        await asyncio.sleep(self._retire_after)
        await _close(client, self._name)

    async def aclose(self) -> None:
        for task, client in list(self._retiring.items()):
            task.cancel()
            await _close(client, self._name)
        await _close(self.client, self._name)


async def _close(client: redis.asyncio.Redis, name: str) -> None:
    try:
        await client.aclose()
    except (RedisError, OSError) as exc:  # closing a connection to a Redis that is already gone
        log.debug("%s: closing a Redis connection failed (%s)", name, type(exc).__name__)
