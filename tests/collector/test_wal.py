from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from collector import wal
from collector.decode import DecodedBatch
from collector.errors import Overloaded
from collector.pipeline import FlushPolicy, Pipeline
from meterline.frames import frame
from meterline.layout import DataLayout
from meterline.usage_record import usage_table
from tests.collector.otlp_fixtures import make_usage, read_rows


def make_usage_table(*ids: str) -> pa.Table:
    return usage_table([make_usage(i).as_row() for i in ids])


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


def test_a_frame_is_written_as_buffers_and_read_back_uncopied(tmp_path: Path) -> None:
    table = make_usage_table("a", "b")
    header, stream = wal.encode("usage", table)
    payload = header[8:] + stream.to_pybytes()
    # The same bytes the shared framing writes, so a segment stays readable by scan_frames.
    assert header + stream.to_pybytes() == frame(payload)
    (tmp_path / "seg").write_bytes(frame(payload) * 2 + b"\x01\x02")
    frames, end = wal.scan(wal.map_file(tmp_path / "seg"))
    assert (len(frames), end) == (2, 2 * len(frame(payload)))
    name, read = wal.decode(frames[1])
    assert (name, read.column("request_id").to_pylist()) == ("usage", ["a", "b"])


def test_a_short_write_is_cut_off_and_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log_ = wal.WriteAheadLog(tmp_path / "wal")
    log_.open()
    first = wal.encode("usage", make_usage_table("a"))
    log_._write([first], 1)
    real_writev = os.writev
    monkeypatch.setattr(os, "writev", lambda fd, buffers: real_writev(fd, buffers[:1]))  # the disk filled up
    with pytest.raises(OSError, match="short write"):
        log_._write([wal.encode("usage", make_usage_table("b"))], 1)
    monkeypatch.setattr(os, "writev", real_writev)
    log_.rotate()
    (segment,) = log_.closed_segments
    assert [data.column("request_id").to_pylist() for _, data in log_.read_segment(segment)] == [["a"]]
    assert (log_.backlog_bytes, log_.active_rows) == (len(first[0]) + first[1].size, 0)
    log_.close()


def test_an_empty_segment_maps_as_no_frames(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    assert wal.scan(wal.map_file(tmp_path / "empty")) == ([], 0)


def test_a_segment_this_process_wrote_is_sliced_where_scanning_finds_its_frames(tmp_path: Path) -> None:
    log_ = wal.WriteAheadLog(tmp_path / "wal")
    log_.open()
    log_._write([wal.encode("usage", make_usage_table("a")), wal.encode("usage", make_usage_table("b", "c"))], 3)
    log_._write([wal.encode("usage", make_usage_table("d"))], 1)
    log_.rotate()
    (segment,) = log_.closed_segments
    scanned, _ = wal.scan(wal.map_file(tmp_path / "wal" / segment))
    view = wal.map_file(tmp_path / "wal" / segment)
    assert [bytes(view[start : start + n]) for start, n in log_._written_frames[segment]] == [bytes(f) for f in scanned]
    batches = log_.read_segment(segment)
    assert [data.column("request_id").to_pylist() for _, data in batches] == [["a"], ["b", "c"], ["d"]]
    log_.remove(segment)
    assert log_._written_frames == {}
    log_.close()
