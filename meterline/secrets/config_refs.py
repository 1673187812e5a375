"""Every place in meterline.yaml that may hold a secret reference, with its field path."""

from __future__ import annotations

from collections.abc import Iterator

from meterline.config import MeterlineConfig
from meterline.secrets.reference import is_reference, unknown_scheme


def _settings(config: MeterlineConfig) -> Iterator[tuple[str, str | None]]:
    yield "general_settings.master_key", config.general_settings.master_key
    for index, agent in enumerate(config.agents):
        yield f"agents[{index}].key", agent.key
    for name, channel in config.alerts.channels.items():
        yield f"alerts.channels.{name}.webhook", channel.webhook
        yield f"alerts.channels.{name}.secret", channel.secret
    yield "quota_store.redis_url", config.quota_store.redis_url
    yield "response_cache.redis_url", config.response_cache.redis_url
    yield "key_store.database_url", config.key_store.database_url
    yield "key_store.hash_secret", config.key_store.hash_secret
    yield "key_store.jwt_signing_key", config.key_store.jwt_signing_key
    yield "telemetry.collector_token", config.telemetry.collector_token
    for index, principal in enumerate(config.collector.ingest_tokens):
        yield f"collector.ingest_tokens[{index}].token", principal.token


def _is_reference(value: object) -> bool:
    return isinstance(value, str) and (is_reference(value) or unknown_scheme(value) is not None)


def config_references(config: MeterlineConfig) -> list[tuple[str, str, bool]]:
    """(field path, reference, provider) for every reference in `config` (and every value with
    an unknown reference scheme, so that resolving it fails); literals are left out. `provider`:
    a provider api_key (refreshed at once on a 401/403 as well as in the background)."""
    found: list[tuple[str, str, bool]] = []
    for index, entry in enumerate(config.model_list):
        params = entry.litellm_params
        if isinstance(params.api_key, str) and _is_reference(params.api_key):
            found.append((f"model_list[{index}].litellm_params.api_key", params.api_key, True))
        if isinstance(params.api_base, str) and _is_reference(params.api_base):
            found.append((f"model_list[{index}].litellm_params.api_base", params.api_base, False))
    found.extend((path, value, False) for path, value in _settings(config) if value and _is_reference(value))
    return found
