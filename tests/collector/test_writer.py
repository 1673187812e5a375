from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from collector.errors import BadRequest, StorageUnavailable
from collector.writer import ParquetWriter
from meterline.layout import DataLayout
from tests.collector.otlp_fixtures import all_files, make_usage, read_rows

DAY1, DAY2 = dt.date(2025, 3, 14), dt.date(2025, 3, 15)


def _rows() -> list[dict[str, Any]]:
    late = dt.datetime(2025, 3, 15, 0, 0, 1, tzinfo=dt.UTC)
    return [
        make_usage("a").as_row(),
        make_usage("b", ts_start=late, ts_end=late, date=DAY2).as_row(),
        make_usage("c").as_row(),
    ]


def test_rows_land_in_one_file_per_date_partition(tmp_path: Path) -> None:
    layout = DataLayout.at(tmp_path)
    seen: list[list[str]] = []

    paths = ParquetWriter(layout).write_sync(
        "usage", _rows(), on_published=lambda rows: seen.append([r["request_id"] for r in rows])
    )

    assert [Path(p).parent.name for p in paths] == ["date=2025-03-14", "date=2025-03-15"]
    assert seen == [["a", "c"], ["b"]]
    assert [p.suffix for p in all_files(tmp_path)] == [".parquet", ".parquet"]
    rows = read_rows(layout, "usage")
    assert [(r["request_id"], r["date"]) for r in rows] == [("a", DAY1), ("c", DAY1), ("b", DAY2)]
    assert rows[0] | {"tags": dict(rows[0]["tags"])} == make_usage("a").as_row()


def test_polars_reads_the_hive_date_as_the_files_date_type(tmp_path: Path) -> None:
    layout = DataLayout.at(tmp_path)
    ParquetWriter(layout).write_sync("usage", _rows())

    frame = pl.scan_parquet(layout.table_glob("usage"), hive_partitioning=True).collect()

    assert frame.schema["date"] == pl.Date
    assert frame.group_by("date").len().sort("date").rows() == [(DAY1, 2), (DAY2, 1)]


def test_async_write_runs_off_the_loop_and_returns_paths(tmp_path: Path) -> None:
    paths = asyncio.run(ParquetWriter(DataLayout.at(tmp_path)).write("usage", _rows()[:1]))
    assert len(paths) == 1 and Path(paths[0]).exists()


def test_nothing_to_write_writes_nothing(tmp_path: Path) -> None:
    assert ParquetWriter(DataLayout.at(tmp_path)).write_sync("spans", []) == []
    assert all_files(tmp_path) == []


def test_rows_that_do_not_fit_the_schema_publish_nothing(tmp_path: Path) -> None:
    rows = _rows()
    rows[1]["input_tokens"] = "many"

    with pytest.raises(BadRequest, match="usage rows do not fit the table schema"):
        ParquetWriter(DataLayout.at(tmp_path)).write_sync("usage", rows)

    assert all_files(tmp_path) == []


def test_storage_failure_is_retryable_and_leaves_no_temp_file(tmp_path: Path) -> None:
    layout = DataLayout.at(tmp_path)
    ParquetWriter(layout).write_sync("usage", _rows()[:1])
    blocker = layout.partition_dir("usage", DAY2)
    blocker.write_text("not a directory")

    with pytest.raises(StorageUnavailable, match="could not write usage partition 2025-03-15") as caught:
        ParquetWriter(layout).write_sync("usage", _rows())

    assert caught.value.status_code == 503 and caught.value.retryable
    names = [p.name for p in all_files(tmp_path)]
    assert len(names) == 3 and "date=2025-03-15" in names
    assert not [n for n in names if n.endswith(".tmp")]
