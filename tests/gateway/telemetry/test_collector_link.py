"""The exporter's way to the collector: TLS context from the CA file, the live bearer token."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.telemetry.collector_link import collector_tls, collector_token
from meterline.config import ConfigError, TelemetryConfig
from meterline.secrets import SecretRegistry
from tests.tls import self_signed

TOKEN = "gw-ingest-token-5b0e2c11d9a84f07"


def test_http_needs_no_tls_and_https_verifies_with_the_ca_file(tmp_path: Path) -> None:
    tls = self_signed(tmp_path)
    assert collector_tls(TelemetryConfig(collector="http://127.0.0.1:4318")) is None
    context = collector_tls(TelemetryConfig(collector="https://c:4318", collector_ca_file=str(tls.ca_file)))
    assert context is not None
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "meterline-test"),),)]


@pytest.mark.parametrize("content", [None, "not a certificate"])
def test_a_missing_or_unreadable_ca_file_names_the_setting(tmp_path: Path, content: str | None) -> None:
    ca_file = tmp_path / "ca.pem"
    if content is not None:
        ca_file.write_text(content)
    with pytest.raises(ConfigError) as refused:
        collector_tls(TelemetryConfig(collector="https://c:4318", collector_ca_file=str(ca_file)))
    assert refused.value.field == "telemetry.collector_ca_file"
    if content is None:
        assert str(refused.value) == f"config: telemetry.collector_ca_file: no file at {ca_file}"


def test_the_token_is_live_and_a_cleartext_send_beyond_loopback_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GW_INGEST_TOKEN", TOKEN)
    registry = SecretRegistry()
    assert collector_token(TelemetryConfig(), registry) is None
    with caplog.at_level(logging.WARNING):
        loopback = collector_token(TelemetryConfig(collector_token="os.environ/GW_INGEST_TOKEN"), registry)
        assert caplog.records == []
        remote = TelemetryConfig(
            collector="http://collector.internal:4318", collector_token="os.environ/GW_INGEST_TOKEN"
        )
        collector_token(remote, registry)
    assert loopback is not None and loopback.reveal() == TOKEN
    assert [r.getMessage() for r in caplog.records] == [
        "telemetry: the collector token is sent in clear text to http://collector.internal:4318; "
        "use https:// (collector.tls)"
    ]
    assert TOKEN not in caplog.text
