"""`SecretRegistry.preload`: what a gateway resolves at start, and what it leaves to the collector."""

from __future__ import annotations

import pytest

from meterline.config import parse_config
from meterline.secrets import SecretRegistry, SecretResolutionError, config_references

CONFIG = """
telemetry: {collector_token: os.environ/GW_INGEST_TOKEN}
collector:
  ingest_tokens:
    - {name: gateways, token: os.environ/COLLECTOR_ONLY_TOKEN, scopes: [usage, spans]}
"""


def test_the_gateway_preloads_its_collector_token_but_not_the_collectors_principals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = parse_config(CONFIG, "m.yaml", environ={})
    assert [path for path, _value, _provider in config_references(config)] == [
        "telemetry.collector_token",
        "collector.ingest_tokens[0].token",
    ]
    with pytest.raises(SecretResolutionError) as missing:
        SecretRegistry().preload(config)
    assert "(at telemetry.collector_token)" in str(missing.value)

    monkeypatch.setenv("GW_INGEST_TOKEN", "gw-ingest-token-0123456789")
    registry = SecretRegistry()
    registry.preload(config)  # COLLECTOR_ONLY_TOKEN is unset: the gateway host need not read it
    assert [status.reference for status in registry.status()] == ["os.environ/GW_INGEST_TOKEN"]
