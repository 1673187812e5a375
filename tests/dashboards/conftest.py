from __future__ import annotations

from pathlib import Path

import pytest

from meterline.layout import DataLayout


@pytest.fixture
def layout(tmp_path: Path) -> DataLayout:
    return DataLayout.at(tmp_path / "data")
