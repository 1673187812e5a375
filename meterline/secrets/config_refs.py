"""Every place in meterline.yaml that may hold a secret reference, with its field path."""

from __future__ import annotations

from collections.abc import Iterator

from meterline.config import MeterlineConfig
from meterline.secrets.reference import is_reference, refused_form


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
    yield "dashboard.password", config.dashboard.password
    for index, principal in enumerate(config.collector.ingest_tokens):
        yield f"collector.ingest_tokens[{index}].token", principal.token


def _is_reference(value: object) -> bool:
    return isinstance(value, str) and (is_reference(value) or refused_form(value) is not None)


def secret_fields(config: MeterlineConfig) -> Iterator[tuple[str, str | None, bool]]:
    """(field path, value or None, provider) for every field of `config` that may hold a secret
    reference; every one is typed `SecretRef` in meterline/config.py (tests/meterline/test_config.py
    checks that a mistyped reference in each is refused at load)."""
    for index, entry in enumerate(config.model_list):
        params = entry.litellm_params
        yield f"model_list[{index}].litellm_params.api_key", params.api_key, True
        yield f"model_list[{index}].litellm_params.api_base", params.api_base, False
    for path, value in _settings(config):
        yield path, value, False


def config_references(config: MeterlineConfig) -> list[tuple[str, str, bool]]:
    """(field path, reference, provider) for every reference in `config` (and every value that
    looks like a mistyped one, `gcp-sm://x`, `${NAME}`, `vault:/x`..., so that resolving it
    fails); literals are left out. `provider`: a provider api_key (refreshed at once on a
    401/403 as well as in the background)."""
    return [
        (path, value, provider) for path, value, provider in secret_fields(config) if value and _is_reference(value)
    ]
