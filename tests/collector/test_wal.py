from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

import pytest

from collector.decode import DecodedBatch
from collector.errors import Overloaded
from collector.pipeline import FlushPolicy, Pipeline
from meterline.layout import DataLayout
from tests.collector.otlp_fixtures import make_usage, read_rows


def _batch(*ids: str) -> DecodedBatch:
    return DecodedBatch(rows=[make_usage(i).as_row() for i in ids])


def _ingest_without_publishing(layout: DataLayout, *ids: str) -> None:
    """Acknowledge rows, then stop the way a SIGKILL would: the WAL is left as it is."""

    async def run() -> None:
        pipeline = await Pipeline.start(layout, FlushPolicy(max_age_s=3600))
        await pipeline.ingest_usage(_batch(*ids))
        pipeline.wal.close()

    asyncio.run(run())


def _restart(layout: DataLayout, *ids: str) -> None:
    async def run() -> None:
        pipeline = await Pipeline.start(layout)
        if ids:
            await pipeline.ingest_usage(_batch(*ids))
        await pipeline.close()

    asyncio.run(run())


def test_a_corrupt_wal_tail_is_cut_with_one_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    layout = DataLayout.at(tmp_path)
    _ingest_without_publishing(layout, "a", "b")
    (segment,) = (tmp_path / "wal").glob("wal-*.log")
    with open(segment, "ab") as handle:
        handle.write(b"\x40\x00\x00\x00\xde\xad\xbe\xef torn write")
    with caplog.at_level(logging.INFO):
        _restart(layout, "b", "c")
    tails = [r.getMessage() for r in caplog.records if "truncated or corrupt tail" in r.getMessage()]
    assert len(tails) == 1 and "recovered 1 batches" in tails[0]
    assert sorted(r["request_id"] for r in read_rows(layout, "usage")) == ["a", "b", "c"]


def test_a_segment_published_but_not_trimmed_is_not_counted_twice(tmp_path: Path) -> None:
    layout = DataLayout.at(tmp_path)
    _ingest_without_publishing(layout, "a", "b")
    (segment,) = (tmp_path / "wal").glob("wal-*.log")
    kept = tmp_path / "kept.log"
    shutil.copy(segment, kept)
    _restart(layout)  # publishes and trims the segment
    shutil.copy(kept, segment)  # as if the crash came between publishing and trimming
    _restart(layout, "a", "c")
    assert sorted(r["request_id"] for r in read_rows(layout, "usage")) == ["a", "b", "c"]


def test_a_wal_backlog_over_its_limit_pushes_back(tmp_path: Path) -> None:
    async def run() -> None:
        pipeline = await Pipeline.start(DataLayout.at(tmp_path), FlushPolicy(max_age_s=3600, max_backlog_bytes=1))
        await pipeline.ingest_usage(_batch("a"))
        with pytest.raises(Overloaded) as refused:
            await pipeline.ingest_usage(_batch("b"))
        assert (refused.value.status_code, refused.value.retry_after_s) == (503, 2)
        await pipeline.close()
        assert pipeline.wal.backlog_bytes == 0

    asyncio.run(run())
