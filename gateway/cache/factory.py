"""Builds the configured response cache; called from the app's lifespan, never at import."""

from __future__ import annotations

from gateway.cache import ResponseCache
from gateway.cache.memory import InMemoryCache
from gateway.cache.redis_cache import RedisCache
from meterline.config import ResponseCacheConfig
from meterline.secrets import live_secret


def build_cache(config: ResponseCacheConfig) -> ResponseCache | None:
    """The cache backend, or None when no model group opted in (the cache is off)."""
    if not config.model_groups:
        return None
    if config.backend == "redis":
        if config.redis_url is None:  # the config validator already refuses this
            raise ValueError("response_cache.backend redis needs redis_url")
        return RedisCache(live_secret(config.redis_url))
    return InMemoryCache(max_entries=config.max_entries)
