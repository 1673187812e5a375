from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from collector.pipeline import Pipeline
from collector.writer import ParquetWriter
from meterline.cli.main import main
from meterline.layout import DataLayout
from tests.collector.otlp_fixtures import make_usage, read_rows


def _config(tmp_path: Path) -> Path:
    # Fixture rows are dated 2025-03-14; a long retention keeps them.
    config = tmp_path / "meterline.yaml"
    config.write_text("storage: {retention_days: 36500, compact_min_files: 4}\n")
    return config


def test_compact_merges_a_stopped_collectors_small_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = DataLayout.at(tmp_path / "data")
    writer = ParquetWriter(layout)
    for f in range(5):
        writer.write_sync("usage", [make_usage(f"r{f}-{i}").as_row() for i in range(4)])
    writer.write_sync("usage", [make_usage("old", date=dt.date(1990, 1, 1)).as_row()])

    code = main(["collector", "compact", "--config", str(_config(tmp_path)), "--data-dir", str(layout.root)])

    assert code == 0
    assert capsys.readouterr().out == "compacted 5 files (20 rows) in 1 partitions; removed 0 expired partitions\n"
    assert len(read_rows(layout, "usage")) == 21
    assert len(list(layout.usage_dir.glob("date=2025-03-14/*.parquet"))) == 1


def test_compact_refuses_to_run_beside_a_collector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = DataLayout.at(tmp_path / "data")

    async def while_running() -> int:
        pipeline = await Pipeline.start(layout)
        try:
            return main(["collector", "compact", "--config", str(_config(tmp_path)), "--data-dir", str(layout.root)])
        finally:
            await pipeline.close()

    assert asyncio.run(while_running()) == 2
    assert capsys.readouterr().err == (
        f"meterline: error: {layout.root / 'wal'} is in use by another collector process; "
        "a running collector compacts every 300 s by itself\n"
    )
