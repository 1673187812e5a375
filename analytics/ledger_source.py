"""Where the marts read the ledger: the local data dir, or the collector's storage target (S3).

A source lists the ledger's `date=...` partitions with each file's identity, and scans a
partition's files lazily. The identity is what the incremental run compares with the last run:
locally name, size, mtime and inode; on S3 key, size and LastModified (pyarrow's filesystem
does not expose the ETag; every PUT, a rewrite under the same key included, gets a new
LastModified). Listing goes through the target, so a partition mid-compaction on S3 shows
either the small files or the merged one, as the collector's own readers see it.

Marts are derived data and always land on local disk (`storage.local_dir` when the ledger is
in S3): they are small, rebuilt from the ledger at will, and the dashboard and alarms read them
with plain file access.
"""

from __future__ import annotations

from typing import Protocol

import polars as pl
import pyarrow.fs as pafs

from analytics.ledger import scan_files
from analytics.mart_state import Files, list_partitions
from meterline.config import StorageConfig
from meterline.layout import USAGE_TABLE, DataLayout
from meterline.storage import S3Location, S3Target, StorageTarget, open_s3
from meterline.storage.base import partition_name
from meterline.usage_record import usage_arrow_schema


class LedgerUnavailable(OSError):
    """The ledger's location itself is missing (not merely empty): a configuration error."""


class LedgerSource(Protocol):
    def describe(self) -> str:
        """Where the ledger is read from, for messages (never a credential)."""

    def partitions(self) -> dict[str, Files]:
        """Every `date=...` partition holding finished parts, with each file's identity."""

    def scan(self, partition: str, files: Files) -> pl.LazyFrame:
        """The usage rows of `files` in `partition`, lazily, in the ledger's contract schema.
        Raises FileNotFoundError when a file is gone (a compaction replaced it)."""


class LocalLedger:
    """The ledger under a local data dir, read by Polars' own Parquet reader."""

    def __init__(self, layout: DataLayout) -> None:
        self.layout = layout

    def describe(self) -> str:
        return str(self.layout.usage_dir)

    def partitions(self) -> dict[str, Files]:
        return list_partitions(self.layout)

    def scan(self, partition: str, files: Files) -> pl.LazyFrame:
        return scan_files([str(self.layout.usage_dir / partition / name) for name in sorted(files)])


class TargetLedger:
    """The ledger behind a storage target (S3): listed through the target's pyarrow filesystem,
    as the collector sees it, and read by Polars' own object-store reader at the same endpoint
    and region (a target without reader options is read through a pyarrow dataset)."""

    def __init__(self, target: StorageTarget, required: str | None = None) -> None:
        self.target = target
        self.required = required
        """A path that must exist (the bucket): listing a missing bucket finds nothing, and a
        typo in the bucket name must not read as an empty ledger and a zero bill."""
        self._paths: dict[tuple[str, str], str] = {}

    def describe(self) -> str:
        return f"{self.target.describe()}/{USAGE_TABLE}"

    def partitions(self) -> dict[str, Files]:
        if self.required is not None:
            info = self.target.filesystem.get_file_info(self.required)
            if info.type == pafs.FileType.NotFound:
                raise LedgerUnavailable(f"{self.required} does not exist")
        found: dict[str, Files] = {}
        paths: dict[tuple[str, str], str] = {}
        for day, parts in self.target.partitions(USAGE_TABLE).items():
            name = partition_name(day)
            found[name] = {part.name: [part.size, part.mtime_ns] for part in parts}
            paths.update({(name, part.name): part.path for part in parts})
        self._paths = paths  # replaced, not grown: `analytics serve` lists every few minutes for months
        return found

    def scan(self, partition: str, files: Files) -> pl.LazyFrame:
        paths = [self._path(partition, name) for name in sorted(files)]
        if not paths:
            return scan_files([])
        if isinstance(self.target, S3Target) and self.target.reader_options is not None:
            # Polars' own reader: ~2.5x less CPU than a pyarrow dataset converted to Polars.
            return scan_files([f"s3://{path}" for path in paths], self.target.reader_options)
        # Imported here: pyarrow.dataset pulls in pandas (~0.3 s), which a local ledger never needs
        # and every one-shot `meterline analytics run` would pay.
        import pyarrow.dataset as ds

        # With the contract schema, a part written before a column existed reads it as null.
        dataset = ds.dataset(paths, filesystem=self.target.filesystem, format="parquet", schema=usage_arrow_schema())
        return pl.scan_pyarrow_dataset(dataset)

    def _path(self, partition: str, name: str) -> str:
        try:
            return self._paths[(partition, name)]
        except KeyError:
            raise FileNotFoundError(f"{partition}/{name} was not in the last listing of {self.describe()}") from None


def open_ledger(storage: StorageConfig, data_dir: str | None = None) -> tuple[DataLayout, LedgerSource]:
    """The marts' local layout and the ledger to read, for `data_dir` (the `--data-dir` flag,
    else `storage.data_dir`): a local path holds both; with `s3://bucket/prefix` the marts go
    under `storage.local_dir`. Raises ValueError for a malformed S3 URL."""
    raw = data_dir or storage.data_dir
    if raw.startswith("s3://"):
        location = S3Location.parse(raw)
        target = open_s3(location, storage.s3_endpoint_url, storage.s3_region)
        return DataLayout.at(storage.local_dir), TargetLedger(target, required=location.bucket)
    layout = DataLayout.at(raw)
    return layout, LocalLedger(layout)
