"""The `response_cache` config section and the backend it builds."""

from __future__ import annotations

import asyncio

import pytest

from gateway.cache.factory import build_cache
from gateway.cache.memory import InMemoryCache
from gateway.cache.redis_cache import RedisCache
from meterline.config import ConfigError, ResponseCacheConfig, parse_config
from meterline.secret_refs import SecretResolutionError


def test_off_unless_a_model_group_opts_in() -> None:
    config = parse_config("response_cache: {backend: memory}", "t.yaml", environ={})
    assert config.response_cache == ResponseCacheConfig()
    assert (config.response_cache.ttl_seconds, config.response_cache.max_entries) == (3600, 10000)
    assert build_cache(config.response_cache) is None


def test_memory_backend_takes_its_size_from_the_config() -> None:
    config = parse_config("response_cache: {model_groups: [demo], max_entries: 5}", "t.yaml", environ={})
    cache = build_cache(config.response_cache)
    assert isinstance(cache, InMemoryCache)
    assert cache.max_entries == 5


def test_redis_backend_resolves_a_secret_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_REDIS_URL", "redis://127.0.0.1:6379/3")
    text = "response_cache: {backend: redis, redis_url: os.environ/CACHE_REDIS_URL, model_groups: [demo]}"
    cache = build_cache(parse_config(text, "t.yaml", environ={}).response_cache)
    assert isinstance(cache, RedisCache)
    assert cache.prefix == "meterline:cache:"
    asyncio.run(cache.close())


def test_redis_backend_with_an_unset_reference_names_the_reference() -> None:
    config = ResponseCacheConfig(backend="redis", redis_url="os.environ/METERLINE_TEST_UNSET_URL", model_groups=["d"])
    with pytest.raises(SecretResolutionError, match="METERLINE_TEST_UNSET_URL"):
        build_cache(config)


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        ("response_cache: {backend: redis, model_groups: [demo]}", "response_cache", "backend redis needs redis_url"),
        ("response_cache: {backend: memcached}", "response_cache.backend", "'memory' or 'redis'"),
        ("response_cache: {ttl_seconds: 0}", "response_cache.ttl_seconds", "greater than 0"),
        ("response_cache: {max_entries: 0}", "response_cache.max_entries", "greater than or equal to 1"),
        ("response_cache: {ttl: 60}", "response_cache.ttl", "Extra inputs"),
    ],
)
def test_bad_section_names_the_field(text: str, field: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "t.yaml", environ={})
    assert raised.value.field == field
    assert fragment in str(raised.value)
