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
