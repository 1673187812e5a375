"""The collector's write-ahead log: a batch is acknowledged once it is here and fdatasync'd.

Segments `<data_dir>/wal/wal-<n>-<random>.log` hold frames `<u32 length><u32 crc32><payload>`; the
payload is one byte naming the table and an Arrow IPC stream of the batch's rows. Appends are
group-committed: whoever arrives while a write is in flight joins the next one, so one fsync
serves many requests. The publisher (see `pipeline.py`) rotates the active segment, turns the
closed one into Parquet files named after it (so publishing a segment again after a crash
overwrites the same files instead of duplicating rows) and then deletes it.

On open, a truncated or corrupt tail (a crash mid-append) is cut off with one log line; those
bytes were never acknowledged. An open log holds an exclusive flock on its directory, so a second
collector (or `meterline collector compact`) on the same data cannot run beside it; the kernel
drops the lock when the process dies, however it dies.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import mmap
import os
import struct
import threading
import time
import uuid
import zlib
from pathlib import Path
from typing import cast

import pyarrow as pa

from collector.errors import StorageUnavailable
from meterline.frames import scan_frames
from meterline.layout import SPANS_TABLE, USAGE_TABLE, fsync_dir

log = logging.getLogger(__name__)

SET_ASIDE_DIR = "set-aside"
"""Where segments that cannot be published wait for an operator (see `WriteAheadLog.set_aside`)."""
_TABLE_IDS = {USAGE_TABLE: 1, SPANS_TABLE: 2}
_TABLE_NAMES = {v: k for k, v in _TABLE_IDS.items()}

Batch = tuple[str, pa.Table]
Frame = tuple[bytes, pa.Buffer]
"""One frame as the two buffers written for it: header plus table id, then the IPC stream."""

_HEADER = struct.Struct("<II")
"""`meterline.frames`' header (length, crc32 of the payload), written here without joining the
payload to it."""
_IOV_MAX = 1024
"""Buffers per writev call (Linux's IOV_MAX)."""


def _name(segment: int) -> str:
    # The random part keeps names unique across restarts (numbering starts again once the log
    # is empty), and Parquet files are named after their segment.
    return f"wal-{segment:012d}-{uuid.uuid4().hex[:8]}.log"


def parquet_name(segment: str) -> str:
    """The name of the Parquet files a segment is published as (one per day it holds)."""
    return f"part-{segment.removesuffix('.log')}.parquet"


def pending_parquet_names(directory: Path) -> set[str]:
    """Parquet names of every segment still on disk: files by these names may be written again."""
    return {parquet_name(path.name) for path in directory.glob("wal-*.log")}


class WalInUse(Exception):
    """Another process holds the write-ahead log's directory."""


def lock_directory(directory: Path, wait_s: float = 0.0) -> int:
    """An fd holding an exclusive flock on `directory` (closing it releases the lock); waits up
    to `wait_s` for a previous holder to go (a restart racing the old process's exit)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise WalInUse(f"{directory} is in use by another collector process") from None
        time.sleep(0.1)


def encode(table: str, data: pa.Table) -> Frame:
    """The frame for a batch, as buffers for `os.writev`: the IPC stream is never copied into
    a bytes object (a batch is ~1 KB per row; each copy was a fresh, page-faulted buffer)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, data.schema) as writer:
        writer.write_table(data)
    stream = sink.getvalue()
    table_id = bytes((_TABLE_IDS[table],))
    crc = zlib.crc32(stream, zlib.crc32(table_id))
    return _HEADER.pack(stream.size + 1, crc) + table_id, stream


def decode(payload: bytes | memoryview) -> Batch:
    table = _TABLE_NAMES[payload[0]]
    # A slice of the buffer, not of the bytes: the batch's columns point into `payload`, uncopied.
    return table, pa.ipc.open_stream(pa.py_buffer(payload).slice(1)).read_all()


def scan(data: bytes | memoryview) -> tuple[list[bytes], int]:
    """The intact frames' payloads at the start of `data` and the offset where they end; for a
    memoryview they are views into it, uncopied (scan_frames only slices and checksums)."""
    return scan_frames(cast("bytes", data), lambda payload: payload[0] in _TABLE_NAMES)


def map_file(path: Path) -> memoryview:
    """The file's bytes, mapped read-only rather than read: a just-written segment is in the page
    cache, so this neither copies it nor clears fresh pages for it. The mapping lives as long as
    a table decoded from it; an empty file maps as an empty view."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if not size:
            return memoryview(b"")
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)  # one fault-in, not one per page
        return memoryview(mmap.mmap(handle.fileno(), size, flags=flags, prot=mmap.PROT_READ))


class WriteAheadLog:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.closed_segments: list[str] = []
        """Segments no longer appended to and not yet published, oldest first."""
        self._active = 0
        self._active_name = ""
        self._handle: int | None = None
        self._active_bytes = 0
        self._active_rows = 0
        self._active_frames: list[tuple[int, int]] = []
        self._written_frames: dict[str, list[tuple[int, int]]] = {}
        """(offset, length) of every payload in the segments this process wrote: publishing
        slices them out of the mapped file without a second crc32 pass (~0.2 us per span)."""
        self._closed_bytes = 0
        self._lock = threading.Lock()
        self._queue: list[tuple[Frame, int, asyncio.Future[None]]] = []
        self._committer: asyncio.Task[None] | None = None
        self._dir_lock: int | None = None

    # -- recovery ------------------------------------------------------------------------------

    def open(self) -> list[Batch]:
        """Cut damaged tails, start a fresh active segment and return every batch still in the
        log (blocking). Those segments stay in `closed_segments` until published."""
        self._dir_lock = lock_directory(self.directory, wait_s=5.0)
        batches: list[Batch] = []
        for path in sorted(self.directory.glob("wal-*.log")):
            segment = int(path.name[4:16])
            data = path.read_bytes()
            frames, end = scan(data)
            if end < len(data):
                log.warning(
                    "collector: WAL %s has a truncated or corrupt tail at byte %d; cut %d unacknowledged bytes, "
                    "recovered %d batches before it",
                    path.name,
                    end,
                    len(data) - end,
                    len(frames),
                )
                os.truncate(path, end)
            if not frames:
                path.unlink()
                continue
            batches.extend(decode(f) for f in frames)
            self.closed_segments.append(path.name)
            self._closed_bytes += end
            self._active = segment
        self._active += 1
        self._open_active()
        return batches

    def _open_active(self) -> None:
        self._active_name = _name(self._active)
        self._handle = os.open(self.directory / self._active_name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._active_bytes = self._active_rows = 0
        self._active_frames = []
        fsync_dir(self.directory)

    # -- appending -------------------------------------------------------------------------------

    @property
    def backlog_bytes(self) -> int:
        """Bytes acknowledged but not yet published as Parquet."""
        return self._closed_bytes + self._active_bytes

    @property
    def active_rows(self) -> int:
        return self._active_rows

    @property
    def active_bytes(self) -> int:
        return self._active_bytes

    async def append(self, table: str, data: pa.Table) -> None:
        """Return once the batch is fdatasync'd; StorageUnavailable when the disk refuses it."""
        frame = encode(table, data)
        waiter = asyncio.get_running_loop().create_future()
        self._queue.append((frame, data.num_rows, waiter))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit())
        await waiter

    async def _commit(self) -> None:
        while self._queue:
            group, self._queue = self._queue, []
            try:
                await asyncio.to_thread(self._write, [f for f, _, _ in group], sum(n for _, n, _ in group))
            except OSError as exc:
                error = StorageUnavailable(f"could not append to the write-ahead log: {exc}")
                for _, _, waiter in group:
                    if not waiter.done():
                        waiter.set_exception(error)
                continue
            for _, _, waiter in group:
                if not waiter.done():
                    waiter.set_result(None)

    def _write(self, frames: list[Frame], rows: int) -> None:
        buffers: list[bytes | pa.Buffer] = [buffer for f in frames for buffer in f]
        size = sum(len(header) + stream.size for header, stream in frames)
        with self._lock:
            assert self._handle is not None
            try:
                written = 0
                for start in range(0, len(buffers), _IOV_MAX):
                    written += os.writev(self._handle, buffers[start : start + _IOV_MAX])
                if written != size:  # a regular file writes short only when the disk is full
                    raise OSError(f"short write: {written} of {size} bytes")
                os.fdatasync(self._handle)
            except OSError:
                # A torn append must not sit in front of later, acknowledged frames.
                os.ftruncate(self._handle, self._active_bytes)
                raise
            offset = self._active_bytes
            for header, stream in frames:
                self._active_frames.append((offset + _HEADER.size, len(header) - _HEADER.size + stream.size))
                offset += len(header) + stream.size
            self._active_bytes += size
            self._active_rows += rows

    # -- publishing ------------------------------------------------------------------------------

    def rotate(self) -> None:
        """Close the active segment (if it holds anything) and start the next one (blocking)."""
        with self._lock:
            if not self._active_bytes:
                return
            assert self._handle is not None
            os.close(self._handle)
            self.closed_segments.append(self._active_name)
            self._written_frames[self._active_name] = self._active_frames
            self._closed_bytes += self._active_bytes
            self._active += 1
            self._open_active()

    def read_segment(self, segment: str) -> list[Batch]:
        """The segment's batches; their columns point into the mapped file (see `map_file`). A
        segment this process wrote is sliced where its frames were written; one recovered at
        startup was checked when it was opened, and is checked again here."""
        view = map_file(self.directory / segment)
        written = self._written_frames.get(segment)
        frames = scan(view)[0] if written is None else [view[start : start + n] for start, n in written]
        return [decode(f) for f in frames]

    def remove(self, segment: str) -> None:
        """Trim a published segment (blocking)."""
        path = self.directory / segment
        with self._lock:
            self._closed_bytes -= path.stat().st_size
            path.unlink()
            self.closed_segments.remove(segment)
            self._written_frames.pop(segment, None)
        fsync_dir(self.directory)

    def set_aside(self, segment: str) -> Path:
        """Move a closed segment that cannot be published (its content, not the storage, is at
        fault) to `set-aside/` beside the log, so the segments after it can be (blocking). Its
        records stay on disk for an operator; their request ids stay known to dedup."""
        aside = self.directory / SET_ASIDE_DIR
        aside.mkdir(exist_ok=True)
        path = self.directory / segment
        with self._lock:
            self._closed_bytes -= path.stat().st_size
            os.replace(path, aside / segment)
            self.closed_segments.remove(segment)
            self._written_frames.pop(segment, None)
        fsync_dir(aside)
        fsync_dir(self.directory)
        return aside / segment

    def close(self) -> None:
        """Close the active segment, deleting it when empty, and release the directory."""
        with self._lock:
            if self._handle is not None:
                os.close(self._handle)
                self._handle = None
                if not self._active_bytes:
                    (self.directory / self._active_name).unlink(missing_ok=True)
            if self._dir_lock is not None:
                os.close(self._dir_lock)
                self._dir_lock = None
