from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from collector.settings import DEFAULT_MAX_BODY_BYTES, CollectorSettings
from meterline.config import MeterlineConfig, StorageConfig


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
