from __future__ import annotations

import asyncio
from pathlib import Path

from collector.decode import DecodedBatch
from collector.dedup import UsageDeduplicator
from collector.pipeline import IngestResult, Pipeline
from collector.writer import ParquetWriter
from meterline.layout import DataLayout
from meterline.storage.local import LocalTarget
from tests.collector.otlp_fixtures import make_usage, read_rows


def test_drops_written_ids_and_repeats_within_a_batch() -> None:
    dedup = UsageDeduplicator(["a"])
    rows = [make_usage(i).as_row() for i in ("a", "b", "c", "b")]

    fresh = dedup.fresh(rows)

    assert [r["request_id"] for r in fresh] == ["b", "c"]
    assert "b" not in dedup  # only marked once durable
    dedup.mark(fresh)
    assert ("b" in dedup, len(dedup)) == (True, 3)


def test_load_reads_every_request_id_in_the_ledger(tmp_path: Path) -> None:
    layout = DataLayout.at(tmp_path)
    assert len(UsageDeduplicator.load(LocalTarget(layout))) == 0
    writer = ParquetWriter(layout)
    writer.write_sync("usage", [make_usage("a").as_row(), make_usage("b").as_row()])
    writer.write_sync("usage", [make_usage("c").as_row()])

    dedup = UsageDeduplicator.load(LocalTarget(layout))

    assert len(dedup) == 3 and all(i in dedup for i in "abc")


def test_concurrent_batches_with_the_same_id_write_it_once(tmp_path: Path) -> None:
    layout = DataLayout.at(tmp_path)

    def batch() -> DecodedBatch:
        return DecodedBatch(rows=[make_usage("same").as_row(), make_usage("other").as_row()])

    async def race() -> list[IngestResult]:
        pipeline = await Pipeline.start(layout)
        try:
            return await asyncio.gather(*(pipeline.ingest_usage(batch()) for _ in range(5)))
        finally:
            await pipeline.close()

    results = asyncio.run(race())

    assert sorted((r.written, r.duplicates) for r in results) == [(0, 2)] * 4 + [(2, 0)]
    assert sorted(r["request_id"] for r in read_rows(layout, "usage")) == ["other", "same"]


def test_fresh_mask_drops_written_ids_and_repeats_within_the_batch() -> None:
    dedup = UsageDeduplicator(["old"])

    assert dedup.fresh_mask(["a", "b", "c"]) == [True, True, True]
    assert dedup.fresh_mask(["a", "old", "a", "b"]) == [True, False, False, True]
    dedup.mark_ids(["a", None, "b"])
    assert dedup.fresh_mask(["a", "b", "z"]) == [False, False, True]
    assert (len(dedup), None in dedup) == (3, False)
