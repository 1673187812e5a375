"""A local directory as the storage target; readers (DuckDB views, Polars) glob it directly.

Publishing is temp name, fsync, rename. Compaction cannot rename many files at once, so it
swaps the whole partition folder instead: a hidden staging folder gets the merged file plus
hard links to the partition's other files, then one renameat2(RENAME_EXCHANGE) puts it where
the old folder was. A glob lists one folder or the other, never a mix. (A reader that listed the
old folder an instant before the swap and opens a file after it gets "file not found" and must
retry; it never counts a row twice or misses one.)
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import errno
import logging
import os
import shutil
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from meterline.layout import SPANS_TABLE, USAGE_TABLE, DataLayout, atomic_target, fsync_dir, publish
from meterline.storage.base import PartFile, WriteMerged, parse_partition

log = logging.getLogger(__name__)

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_STAGING = ".staging-"
_EXPIRED = ".expired-"


class SwapUnsupported(OSError):
    """The filesystem cannot exchange two folders atomically, so compaction is off."""


def exchange(a: Path, b: Path) -> None:
    """Atomically swap the paths `a` and `b` (Linux renameat2 with RENAME_EXCHANGE)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise SwapUnsupported(code, f"cannot swap {a} and {b} atomically here: {os.strerror(code)}")
        raise OSError(code, os.strerror(code), str(a))


class LocalTarget:
    def __init__(self, layout: DataLayout) -> None:
        self.layout = layout
        self.filesystem: pafs.FileSystem = pafs.LocalFileSystem()

    def describe(self) -> str:
        return str(self.layout.root)

    def write(self, table: str, day: dt.date, name: str, data: pa.Table, compression: str) -> str:
        folder = self.layout.partition_dir(table, day)
        final = folder / name
        temp = atomic_target(final)
        try:
            make_durable_dirs(folder)
            pq.write_table(data, temp, compression=compression)
            publish(temp, final)
        except BaseException:
            with contextlib.suppress(OSError):  # the original error is the one worth reporting
                temp.unlink(missing_ok=True)
            raise
        return str(final)

    def partitions(self, table: str) -> dict[dt.date, list[PartFile]]:
        out: dict[dt.date, list[PartFile]] = {}
        root = self.layout.table_dir(table)
        if not root.is_dir():
            return out
        for folder in sorted(root.iterdir()):
            day = parse_partition(folder.name)
            if day is None or not folder.is_dir():
                continue
            files = [_part(path) for path in sorted(folder.glob("*.parquet"))]
            if files:
                out[day] = files
        return out

    def compact(self, table: str, day: dt.date, inputs: list[PartFile], merged: str, write: WriteMerged) -> None:
        folder = self.layout.partition_dir(table, day)
        staging = folder.with_name(f"{_STAGING}{folder.name}-{uuid.uuid4().hex[:8]}")
        staging.mkdir()
        try:
            replaced = {f.name for f in inputs}
            for path in folder.glob("*.parquet"):
                if path.name not in replaced:
                    os.link(path, staging / path.name)
            temp = atomic_target(staging / merged)
            write(str(temp))
            publish(temp, staging / merged)
            exchange(staging, folder)  # from here on the staging name holds the old files
            fsync_dir(folder.parent)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def drop(self, table: str, day: dt.date) -> None:
        folder = self.layout.partition_dir(table, day)
        # One rename takes the whole partition out of readers' sight; deleting comes after.
        hidden = folder.with_name(f"{_EXPIRED}{folder.name}-{uuid.uuid4().hex[:8]}")
        os.rename(folder, hidden)
        fsync_dir(folder.parent)
        shutil.rmtree(hidden, ignore_errors=True)

    def recover(self) -> None:
        """Staging or expired folders left by a crash hold nothing a reader needs: before the swap
        the live folder still has every row, after it the live folder is the merged one."""
        for table_dir in (self.layout.table_dir(t) for t in (USAGE_TABLE, SPANS_TABLE)):
            if not table_dir.is_dir():
                continue
            for leftover in table_dir.iterdir():
                if leftover.name.startswith((_STAGING, _EXPIRED)):
                    log.info("collector: removing %s left by an interrupted compaction or retention run", leftover)
                    shutil.rmtree(leftover, ignore_errors=True)


def _part(path: Path) -> PartFile:
    stat = path.stat()
    return PartFile(str(path), path.name, stat.st_size, stat.st_mtime_ns)


def make_durable_dirs(folder: Path) -> None:
    """Create `folder` and any missing parents, fsyncing each new entry's parent so a crash
    cannot lose a published file by losing the directory that holds it."""
    missing: list[Path] = []
    current = folder
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
        fsync_dir(path.parent)
