from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path

import pytest

from collector import pipeline as pipeline_module
from collector.catalog import ensure_catalog, open_catalog
from collector.decode import DecodedBatch
from collector.errors import StorageUnavailable
from collector.pipeline import FlushPolicy, IngestResult, Pipeline
from meterline.layout import DataLayout
from tests.collector.otlp_fixtures import make_usage, read_rows


def _batch(*ids: str) -> DecodedBatch:
    return DecodedBatch(rows=[make_usage(i).as_row() for i in ids])


def test_only_a_tables_first_file_rewrites_the_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = DataLayout.at(tmp_path)
    calls: list[str] = []

    def counting(where: DataLayout) -> frozenset[str]:
        calls.append("ensure")
        return ensure_catalog(where)

    monkeypatch.setattr(pipeline_module, "ensure_catalog", counting)

    async def run() -> list[int]:
        pipeline = await Pipeline.start(layout, FlushPolicy(max_age_s=3600))
        counts = [len(calls)]
        for ids in (("a",), ("b", "c"), ("d",)):
            await pipeline.ingest_usage(_batch(*ids))
            await pipeline.publish()
            counts.append(len(calls))
        await pipeline.close()
        return counts

    # start: 1; the usage table's first file: 2; later files: the view's glob already reads them.
    assert asyncio.run(run()) == [1, 2, 2, 2]
    with open_catalog(layout) as con:
        assert con.execute("SELECT count(*) FROM usage").fetchone() == (4,)


def test_a_failed_commit_does_not_turn_a_waiting_duplicate_into_a_drop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second request carries an id the first is committing; the first commit fails, so the
    second must write that id rather than count it as already written."""
    layout = DataLayout.at(tmp_path)
    real_fdatasync = os.fdatasync
    failures = [OSError(errno.ENOSPC, "No space left on device")]

    def fdatasync(fd: int) -> None:
        if failures:
            raise failures.pop()
        real_fdatasync(fd)

    async def run() -> tuple[IngestResult | BaseException, IngestResult | BaseException]:
        pipeline = await Pipeline.start(layout, FlushPolicy(max_age_s=3600))
        monkeypatch.setattr(os, "fdatasync", fdatasync)
        try:
            return await asyncio.gather(
                pipeline.ingest_usage(_batch("x")), pipeline.ingest_usage(_batch("x", "y")), return_exceptions=True
            )
        finally:
            monkeypatch.setattr(os, "fdatasync", real_fdatasync)
            await pipeline.close()

    first, second = asyncio.run(run())
    assert isinstance(first, StorageUnavailable)
    assert isinstance(second, IngestResult) and (second.written, second.duplicates) == (2, 0)
    assert sorted(r["request_id"] for r in read_rows(layout, "usage")) == ["x", "y"]


def test_a_segment_that_cannot_be_published_is_set_aside_and_the_later_ones_land(tmp_path: Path) -> None:
    """A closed WAL segment whose bytes are not a table (overwritten with zeros after it was
    acknowledged): the publisher moves it to wal/set-aside/, counts it, and publishes the
    segments after it; later rounds go on."""
    layout = DataLayout.at(tmp_path)

    async def run() -> tuple[str, Pipeline]:
        pipeline = await Pipeline.start(layout, FlushPolicy(max_age_s=3600))
        await pipeline.ingest_usage(_batch("a", "b"))
        await asyncio.to_thread(pipeline.wal.rotate)
        (poisoned,) = pipeline.wal.closed_segments
        path = pipeline.wal.directory / poisoned
        path.write_bytes(b"\0" * path.stat().st_size)
        await pipeline.ingest_usage(_batch("c"))
        await pipeline.publish()
        await pipeline.ingest_usage(_batch("d"))
        await pipeline.publish()
        await pipeline.close()
        return poisoned, pipeline

    poisoned, pipeline = asyncio.run(run())
    assert sorted(r["request_id"] for r in read_rows(layout, "usage")) == ["c", "d"]
    assert [p.name for p in (tmp_path / "wal" / "set-aside").iterdir()] == [poisoned]
    registry = pipeline.metrics.registry
    assert registry.get_sample_value("meterline_collector_wal_segments_set_aside_total") == 1
    assert registry.get_sample_value("meterline_collector_loop_errors_total", {"loop": "publish"}) == 1


def test_the_publisher_loop_outlives_a_fault_in_a_round(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The background publisher (not driven by the test) meets an unexpected error in one round,
    counts it and publishes in the next."""
    layout = DataLayout.at(tmp_path)
    faults = [RuntimeError("boom")]

    async def run() -> Pipeline:
        pipeline = await Pipeline.start(layout, FlushPolicy(max_age_s=0.01))
        publish = pipeline._publish_closed

        def failing_once() -> set[str]:
            if faults:
                raise faults.pop()
            return publish()

        monkeypatch.setattr(pipeline, "_publish_closed", failing_once)
        await pipeline.ingest_usage(_batch("a"))
        while pipeline.wal.backlog_bytes or faults:  # noqa: ASYNC110 - the publisher signals nothing
            await asyncio.sleep(0.01)
        await pipeline.close()
        return pipeline

    pipeline = asyncio.run(asyncio.wait_for(run(), 60))
    assert [r["request_id"] for r in read_rows(layout, "usage")] == ["a"]
    assert pipeline.metrics.registry.get_sample_value("meterline_collector_loop_errors_total", {"loop": "publish"}) == 1
