from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from collector.settings import DEFAULT_MAX_BODY_BYTES, CollectorSettings
from meterline.config import (
    CollectorConfig,
    CollectorTlsConfig,
    ConfigError,
    MeterlineConfig,
    StorageConfig,
    parse_config,
)


def test_data_dir_comes_from_the_flag_or_the_config(tmp_path: Path) -> None:
    config = MeterlineConfig(storage=StorageConfig(data_dir=str(tmp_path / "from-config")))
    assert CollectorSettings.from_config(config).data_dir == tmp_path / "from-config"
    assert CollectorSettings.from_config(config, tmp_path / "flag").data_dir == tmp_path / "flag"
    assert CollectorSettings.from_config(config).max_body_bytes == DEFAULT_MAX_BODY_BYTES == 16 * 1024 * 1024


def test_unknown_and_invalid_settings_are_errors(tmp_path: Path) -> None:
    with pytest.raises(pydantic.ValidationError, match="max_body_size"):
        CollectorSettings(data_dir=tmp_path, max_body_size=1)  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError, match="max_body_bytes"):
        CollectorSettings(data_dir=tmp_path, max_body_bytes=0)


def test_an_s3_data_dir_keeps_the_wal_in_the_local_dir(tmp_path: Path) -> None:
    storage = StorageConfig(
        data_dir="s3://ledger/prod", local_dir=str(tmp_path / "wal-home"), s3_endpoint_url="http://127.0.0.1:9"
    )
    settings = CollectorSettings.from_config(MeterlineConfig(storage=storage))
    assert (settings.storage_url, settings.data_dir) == ("s3://ledger/prod", tmp_path / "wal-home")
    assert settings.s3_endpoint_url == "http://127.0.0.1:9"
    flagged = CollectorSettings.from_config(MeterlineConfig(), "s3://other/x")
    assert (flagged.storage_url, flagged.data_dir) == ("s3://other/x", Path("data").resolve())


def test_compaction_and_retention_come_from_the_storage_section(tmp_path: Path) -> None:
    storage = StorageConfig(retention_days=30, compact_interval_seconds=60, compact_min_files=4)
    policy = CollectorSettings.from_config(MeterlineConfig(storage=storage), tmp_path).compaction
    assert (policy.retention_days, policy.interval_s, policy.min_files) == (30, 60.0, 4)
    assert policy.small_file_bytes == 64 * 1024 * 1024


def test_the_collector_section_becomes_the_access_settings(tmp_path: Path) -> None:
    (tmp_path / "tls.crt").write_text("cert")
    (tmp_path / "tls.key").write_text("key")
    config = parse_config(
        f"""
collector:
  ingest_tokens:
    - {{name: gateways, token: os.environ/GW_TOKEN, scopes: [usage, spans]}}
  tls: {{cert_file: {tmp_path}/tls.crt, key_file: {tmp_path}/tls.key}}
""",
        "m.yaml",
        environ={},
    )
    settings = CollectorSettings.from_config(config, tmp_path, "m.yaml")
    assert [(p.name, p.token, p.scopes) for p in settings.ingest_tokens] == [
        ("gateways", "os.environ/GW_TOKEN", ["usage", "spans"])
    ]
    assert (settings.tls_cert_file, settings.tls_key_file, settings.scheme) == (
        tmp_path / "tls.crt",
        tmp_path / "tls.key",
        "https",
    )
    assert settings.allow_unauthenticated is False
    assert CollectorSettings.from_config(MeterlineConfig(), tmp_path).scheme == "http"


def test_a_missing_tls_file_names_its_field(tmp_path: Path) -> None:
    (tmp_path / "tls.crt").write_text("cert")
    tls = CollectorTlsConfig(cert_file=str(tmp_path / "tls.crt"), key_file=str(tmp_path / "nope.key"))
    with pytest.raises(ConfigError) as refused:
        CollectorSettings.from_config(MeterlineConfig(collector=CollectorConfig(tls=tls)), tmp_path, "m.yaml")
    assert str(refused.value) == f"m.yaml: collector.tls.key_file: no file at {tmp_path / 'nope.key'}"


@pytest.mark.parametrize(
    ("section", "field", "message"),
    [
        ("{ingest_tokens: [{name: a, token: t, scopes: [write]}]}", "collector.ingest_tokens[0].scopes[0]", "'usage'"),
        ("{ingest_tokens: [{name: a, token: t, scopes: []}]}", "collector.ingest_tokens[0].scopes", "at least 1"),
        (
            "{ingest_tokens: [{name: a, token: t, scopes: [spans]}, {name: a, token: u, scopes: [spans]}]}",
            "collector.ingest_tokens[1].name",
            "duplicate principal name 'a'",
        ),
        ("{tls: {cert_file: c.pem}}", "collector.tls.key_file", "Field required"),
        ("{allow_unauthenticated: yes please}", "collector.allow_unauthenticated", "boolean"),
        ("{ingest_token: []}", "collector.ingest_token", "Extra inputs"),
    ],
)
def test_a_bad_collector_section_names_the_field(section: str, field: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(f"collector: {section}\n", "m.yaml", environ={})
    assert refused.value.field == field
    assert message in str(refused.value)
