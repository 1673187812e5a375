"""The storage-target Protocol: what the collector needs from wherever its Parquet lands, and
what analytics lists to read the ledger.

A target publishes files atomically (a reader sees a whole file or none), lists the files a
reader should see, merges a partition's small files into one without a reader ever seeing both
the merged file and its inputs (or neither), and drops whole partitions. Implementations:
`local.LocalTarget` (a directory; readers glob it) and `s3.S3Target` (pyarrow's S3 filesystem).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa
import pyarrow.fs as pafs

from meterline.layout import PARTITION_KEY

COMPACTED_PREFIX = "part-compact-"

WriteMerged = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class PartFile:
    """One published Parquet file: its path in the target's filesystem, its name and size."""

    path: str
    name: str
    size: int
    mtime_ns: int = 0
    """Last modified (an S3 object's LastModified): with the name and size, how analytics tells a
    rewritten file from the one it read before."""


class StorageTarget(Protocol):
    filesystem: pafs.FileSystem
    """Reads go through this (PartFile.path is a path in it)."""

    def describe(self) -> str:
        """Where the data lands, for logs and /health (never a credential)."""

    def write(self, table: str, day: dt.date, name: str, data: pa.Table, compression: str) -> str:
        """Publish `data` as `name` in the day's partition, atomically; writing the same name
        again replaces the file. Returns its path. Raises OSError or ArrowException."""

    def partitions(self, table: str) -> dict[dt.date, list[PartFile]]:
        """The files a reader should see, by day, in name order."""

    def compact(self, table: str, day: dt.date, inputs: list[PartFile], merged: str, write: WriteMerged) -> None:
        """Replace `inputs` by one file called `merged`, which `write(path)` writes (and checks),
        such that readers see either the inputs or the merged file, never both or neither."""

    def drop(self, table: str, day: dt.date) -> None:
        """Remove a whole partition (retention)."""

    def recover(self) -> None:
        """Finish or undo a compaction a crash interrupted (call before anything else)."""


def partition_name(day: dt.date) -> str:
    return f"{PARTITION_KEY}={day.isoformat()}"


def parse_partition(name: str) -> dt.date | None:
    """The day of a `date=YYYY-MM-DD` folder name; None for anything else."""
    prefix = f"{PARTITION_KEY}="
    if not name.startswith(prefix):
        return None
    try:
        return dt.date.fromisoformat(name[len(prefix) :])
    except ValueError:
        return None
