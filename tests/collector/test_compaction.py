from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from collector.catalog import open_catalog
from collector.compaction import CompactionPolicy, Compactor
from collector.decode import DecodedBatch
from collector.pipeline import FlushPolicy, Pipeline
from collector.writer import ParquetWriter
from meterline.layout import DataLayout
from meterline.storage.local import LocalTarget
from tests.collector.otlp_fixtures import all_files, make_usage, read_rows

DAY = dt.date(2025, 3, 14)
OLD_DAY = dt.date(2024, 1, 1)


def _write_files(layout: DataLayout, files: int, rows_per_file: int, day: dt.date = DAY, tag: str = "r") -> None:
    writer = ParquetWriter(layout)
    for f in range(files):
        rows = [make_usage(f"{tag}{f}-{i}", date=day, input_tokens=i + 1).as_row() for i in range(rows_per_file)]
        writer.write_sync("usage", rows)


def _compactor(layout: DataLayout, retention_days: int = 400, protected: Callable[[], set[str]] = set) -> Compactor:
    policy = CompactionPolicy(min_files=3, retention_days=retention_days)
    return Compactor(LocalTarget(layout), policy, protected, today=lambda: dt.date(2025, 3, 20))


def test_a_partitions_small_files_become_one_with_every_row(tmp_path: Path) -> None:
    layout = DataLayout.at(tmp_path)
    _write_files(layout, files=12, rows_per_file=7)
    before = sorted(r["request_id"] for r in read_rows(layout, "usage"))

    report = _compactor(layout).run()

    assert (report.partitions_compacted, report.files_merged, report.rows_merged) == (1, 12, 84)
    files = sorted(layout.partition_dir("usage", DAY).glob("*.parquet"))
    assert len(files) == 1 and files[0].name.startswith("part-compact-")
    after = read_rows(layout, "usage")
    assert sorted(r["request_id"] for r in after) == before and len(before) == 84
    assert sum(r["input_tokens"] for r in after) == 12 * sum(range(1, 8))
    assert pq.read_schema(files[0]).metadata[b"meterline.usage.schema_version"] == b"3"
    assert [p.name for p in all_files(tmp_path)] == [files[0].name]  # no staging folder, no temp file
    with open_catalog(layout) as con:
        assert con.execute("SELECT count(*), count(DISTINCT request_id) FROM usage").fetchone() == (84, 84)


def test_few_files_and_files_a_wal_segment_may_rewrite_stay(tmp_path: Path) -> None:
    layout = DataLayout.at(tmp_path)
    _write_files(layout, files=2, rows_per_file=3)
    _write_files(layout, files=4, rows_per_file=2, day=dt.date(2025, 3, 15))
    pending = sorted(p.name for p in layout.partition_dir("usage", dt.date(2025, 3, 15)).glob("*.parquet"))[:2]

    report = _compactor(layout, protected=lambda: set(pending)).run()

    assert report.partitions_compacted == 0  # 2 files below min_files; 2 of 4 protected
    assert len(read_rows(layout, "usage")) == 14
    assert len(list(layout.usage_dir.glob("date=*/*.parquet"))) == 6


def test_retention_removes_partitions_older_than_the_window(tmp_path: Path) -> None:
    layout = DataLayout.at(tmp_path)
    _write_files(layout, files=1, rows_per_file=5, day=OLD_DAY)
    _write_files(layout, files=1, rows_per_file=4, day=dt.date(2025, 3, 10))  # exactly 10 days back: kept
    _write_files(layout, files=1, rows_per_file=3, day=dt.date(2025, 3, 9), tag="s")  # 11 days back: removed

    report = _compactor(layout, retention_days=10).run()

    assert report.partitions_dropped == ["usage/2024-01-01", "usage/2025-03-09"]
    assert [(r["date"], r["request_id"]) for r in read_rows(layout, "usage")] == [
        (dt.date(2025, 3, 10), f"r0-{i}") for i in range(4)
    ]
    assert sorted(p.name for p in layout.usage_dir.iterdir()) == ["date=2025-03-10"]


def test_readers_never_see_both_or_neither_while_compacting(tmp_path: Path) -> None:
    layout = DataLayout.at(tmp_path)
    compactor = _compactor(layout)
    _write_files(layout, files=3, rows_per_file=5, tag="start")
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def read() -> None:
        con = duckdb.connect()
        while not stop.is_set():
            try:
                row = con.execute(f"SELECT count(*), count(DISTINCT request_id) FROM '{layout.table_glob('usage')}'")
                seen.append(row.fetchone())  # type: ignore[arg-type]
            except duckdb.IOException:
                continue  # listed the old folder, opened after the swap: retry, never a wrong answer

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for round_ in range(15):
            _write_files(layout, files=3, rows_per_file=5, tag=f"round{round_}-")
            assert compactor.run().partitions_compacted == 1
    finally:
        stop.set()
        reader.join()

    assert len(seen) > 15
    assert all(total == distinct for total, distinct in seen)  # "both" would count rows twice
    totals = [total for total, _ in seen]
    assert totals == sorted(totals)  # "neither" would make the total drop
    assert len(read_rows(layout, "usage")) == 16 * 15


def test_dedup_holds_across_compaction_and_restart(tmp_path: Path) -> None:
    layout = DataLayout.at(tmp_path)

    def batch(*ids: str) -> DecodedBatch:
        return DecodedBatch(rows=[make_usage(i).as_row() for i in ids])

    async def scenario() -> list[tuple[int, int]]:
        results: list[tuple[int, int]] = []
        pipeline = await Pipeline.start(
            layout, FlushPolicy(max_age_s=3600), compaction=CompactionPolicy(min_files=3, retention_days=36500)
        )
        try:
            for ids in (("a", "b"), ("c",), ("d", "e")):
                result = await pipeline.ingest_usage(batch(*ids))
                results.append((result.written, result.duplicates))
                await pipeline.publish()
            assert (await pipeline.compact()).files_merged == 3
            result = await pipeline.ingest_usage(batch("a", "f"))
            results.append((result.written, result.duplicates))
        finally:
            await pipeline.close()
        pipeline = await Pipeline.start(layout, FlushPolicy(max_age_s=3600))
        try:
            result = await pipeline.ingest_usage(batch("b", "e", "f", "g"))
            results.append((result.written, result.duplicates))
        finally:
            await pipeline.close()
        return results

    assert asyncio.run(scenario()) == [(2, 0), (1, 0), (2, 0), (1, 1), (1, 3)]
    assert sorted(r["request_id"] for r in read_rows(layout, "usage")) == list("abcdefg")
    names = sorted(p.name for p in layout.partition_dir("usage", DAY).glob("*.parquet"))
    assert len(names) == 3 and names[0].startswith("part-compact-")


def test_a_partition_that_cannot_be_compacted_keeps_its_files_and_the_pass_goes_on(tmp_path: Path) -> None:
    layout = DataLayout.at(tmp_path)
    next_day = DAY + dt.timedelta(days=1)
    _write_files(layout, files=4, rows_per_file=2)
    _write_files(layout, files=4, rows_per_file=2, day=next_day)
    (layout.partition_dir("usage", DAY) / "part-broken.parquet").write_bytes(b"not parquet")
    before = sorted(p.name for p in layout.partition_dir("usage", DAY).iterdir())

    report = _compactor(layout).run()

    assert report.partitions_failed == [f"usage/{DAY.isoformat()}"]
    assert (report.partitions_compacted, report.files_merged, report.rows_merged) == (1, 4, 8)
    assert sorted(p.name for p in layout.partition_dir("usage", DAY).iterdir()) == before
    assert [p.name[:13] for p in layout.partition_dir("usage", next_day).glob("*.parquet")] == ["part-compact-"]
