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
    with pytest.raises(ValueError, match="S3 is not supported yet"):
        CollectorSettings.from_config(MeterlineConfig(), "s3://bucket/prefix")
