"""A rotated Redis password (a real ACL user on the machine's Redis, its URL a file:// secret):
the response cache and the quota store switch to the new URL, keep their data and counters, and
a reservation made before the rotation settles after it."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from gateway.cache.redis_cache import RedisCache
from gateway.quotas.redis_store import RedisQuotaStore
from gateway.quotas.store import Actual
from meterline.secrets import SecretRegistry
from tests.conftest import REDIS_URL, require_service
from tests.gateway.quotas import store_properties as props


@pytest.fixture
def acl_user() -> Iterator[tuple[str, redis.Redis]]:
    parts = urlsplit(REDIS_URL)
    require_service("Redis", parts.hostname or "127.0.0.1", parts.port or 6379)
    admin = redis.Redis.from_url(REDIS_URL)
    user = f"meterline-test-{uuid.uuid4().hex[:8]}"
    try:
        yield user, admin
    finally:
        admin.acl_deluser(user)
        for key in admin.scan_iter(match=f"{user}:*"):
            admin.delete(key)
        admin.close()


def url_with(user: str, password: str) -> str:
    parts = urlsplit(REDIS_URL)
    return f"redis://{user}:{password}@{parts.hostname or '127.0.0.1'}:{parts.port or 6379}/0"


def test_a_rotated_password_is_used_by_cache_and_quota_store(acl_user: tuple[str, redis.Redis], tmp_path: Path) -> None:
    user, admin = acl_user
    admin.acl_setuser(user, enabled=True, passwords=["+old-password-1"], keys=["*"], commands=["+@all"])
    path = tmp_path / "redis_url"
    path.write_text(url_with(user, "old-password-1") + "\n")

    async def scenario() -> tuple[list[bytes | None], tuple[int, ...], tuple[int, ...], int]:
        secret = SecretRegistry().live(f"file://{path}")
        cache = RedisCache(secret, prefix=f"{user}:cache:", timeout_s=1.0)
        quotas = RedisQuotaStore(secret, f"{user}:quota:", timeout_s=1.0)
        items = props.items_for(props.Caps(100, 10**9, 10, 5), 10, 1000)
        try:
            await cache.set("a", b"before", 60)
            first = await quotas.reserve(items, props.NOW)
            assert first.reservation is not None
            # The rotation as a secrets manager does it: add the new password, publish it,
            # then remove the old one and drop every connection that used it.
            admin.acl_setuser(user, enabled=True, passwords=["+new-password-2"])
            path.write_text(url_with(user, "new-password-2") + "\n")
            os.utime(path, ns=(2_000_000_000 * 10**9, 2_000_000_000 * 10**9))
            assert (await secret.refresh_now()).value == url_with(user, "new-password-2")
            admin.acl_setuser(user, enabled=True, passwords=["-old-password-1"])
            admin.client_kill_filter(user=user)
            await cache.set("b", b"after", 60)
            values = [await cache.get("a"), await cache.get("b")]
            await quotas.settle(first.reservation, Actual(tokens=4, usd_nanos=500))
            second = await quotas.reserve(items, props.NOW)
            return values, first.used, second.used, cache.failures
        finally:
            await cache.close()
            await quotas.close()

    values, first, second, failures = asyncio.run(scenario())
    assert values == [b"before", b"after"]
    assert first == (1, 10, 1000, 1)
    assert second == (2, 14, 1500, 1)  # settled 10 -> 4 tokens, 1000 -> 500 nano-dollars; slot freed
    assert failures == 0
