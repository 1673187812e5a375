"""The exporter's way to the collector: TLS context from the CA file, the live bearer token."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from pathlib import Path

import pytest

from gateway.telemetry.collector_link import collector_tls, collector_token
from gateway.telemetry.exporter import TelemetryExporter
from gateway.telemetry.spool import Spool
from meterline.config import ConfigError, IngestTokenConfig, TelemetryConfig
from meterline.layout import DataLayout
from meterline.secrets import SecretRegistry
from tests.collector.otlp_fixtures import make_usage, read_rows, running_collector
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


def test_a_refused_token_keeps_the_records_until_the_rotated_one_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("COLLECTOR_SIDE_TOKEN", TOKEN)
    sent = tmp_path / "gateway-token"
    sent.write_text("gw-ingest-token-of-last-year-000000")
    principal = IngestTokenConfig(name="gateways", token="os.environ/COLLECTOR_SIDE_TOKEN", scopes=["usage", "spans"])
    end = dt.datetime.now(dt.UTC)
    start = end - dt.timedelta(seconds=1)
    ids = sorted(f"req_{uuid.uuid4().hex}" for _ in range(3))

    async def scenario(url: str) -> tuple[bool, int, bool, int]:
        secret = SecretRegistry().live(f"file://{sent}")
        exporter = TelemetryExporter(
            url, {"service.name": "gw"}, spool=Spool(tmp_path / "spool", 1 << 20), flush_ms=0, interval_s=3600,
            token=secret,
        )  # fmt: skip
        await exporter.start()
        for rid in ids:
            exporter.submit(make_usage(rid, ts_start=start, ts_end=end, date=start.date()), None)
        await exporter.durable()
        refused = await exporter.export_pending()
        held = exporter.pending
        sent.write_text(TOKEN)  # the operator fixes the gateway's secret
        await secret.refresh_now()
        accepted = await exporter.export_pending()
        await exporter.close(deadline_s=10)
        return refused, held, accepted, exporter.pending

    with running_collector(tmp_path / "data", ingest_tokens=(principal,)) as url:
        outcome = asyncio.run(asyncio.wait_for(scenario(url), 60))

    assert outcome == (False, 3, True, 0)
    assert sorted(r["request_id"] for r in read_rows(DataLayout.at(tmp_path / "data"), "usage")) == ids
    assert TOKEN not in caplog.text and "of-last-year" not in caplog.text
