"""Rows -> Parquet files in the date partitions, each published atomically (temp, fsync, rename)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from collector.errors import BadRequest, StorageUnavailable
from meterline.layout import PARTITION_KEY, SPANS_TABLE, USAGE_TABLE, DataLayout, atomic_target, publish
from meterline.span_row import span_table
from meterline.usage_record import usage_table

Row = dict[str, Any]
OnPublished = Callable[[list[Row]], None]

_TABLE_BUILDERS: dict[str, Callable[[list[Row]], pa.Table]] = {USAGE_TABLE: usage_table, SPANS_TABLE: span_table}


def build_table(table: str, rows: list[Row]) -> pa.Table:
    """Rows as the table's Arrow schema; rows that do not fit are the sender's fault (400)."""
    try:
        return _TABLE_BUILDERS[table](rows)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise BadRequest(f"{table} rows do not fit the table schema: {exc}") from None


class ParquetWriter:
    """Writes one Parquet file per date partition per batch; readers only ever see finished files."""

    def __init__(self, layout: DataLayout, compression: str = "zstd") -> None:
        self._layout = layout
        self._compression = compression

    async def write(self, table: str, rows: list[Row], on_published: OnPublished | None = None) -> list[Path]:
        """`write_sync` in a worker thread, so encoding and fsync never block the event loop."""
        return await asyncio.to_thread(self.write_sync, table, rows, on_published)

    def write_sync(self, table: str, rows: list[Row], on_published: OnPublished | None = None) -> list[Path]:
        """The published files. `on_published` sees each partition's rows right after its file is
        durable, so a failure in a later partition still leaves the earlier ones accounted for."""
        if not rows:
            return []
        builder = _TABLE_BUILDERS[table]
        partitions: dict[dt.date, list[Row]] = {}
        for row in rows:
            partitions.setdefault(row[PARTITION_KEY], []).append(row)
        # Build every table before writing any file: rows that do not fit the schema are the
        # sender's fault (400), and must not leave half the batch published.
        try:
            tables = [(day, part, builder(part)) for day, part in sorted(partitions.items())]
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise BadRequest(f"{table} rows do not fit the table schema: {exc}") from None
        published: list[Path] = []
        for day, part, arrow_table in tables:
            published.append(self._write_partition(table, day, arrow_table))
            if on_published is not None:
                on_published(part)
        return published

    def write_named_sync(self, table: str, data: pa.Table, name: str) -> list[Path]:
        """One file called `name` per date partition of `data`. Writing the same rows under the
        same name again replaces the file, which makes republishing a WAL segment idempotent."""
        published: list[Path] = []
        days = data.column(PARTITION_KEY)
        for day in sorted(set(days.to_pylist())):
            part = data.filter(pc.equal(days, pa.scalar(day, days.type)))
            published.append(self._write_partition(table, day, part, name))
        return published

    def _write_partition(self, table: str, day: dt.date, arrow_table: pa.Table, name: str | None = None) -> Path:
        folder = self._layout.partition_dir(table, day)
        final = folder / (name or self._layout.new_part_name())
        temp = atomic_target(final)
        try:
            _make_durable_dirs(folder)
            pq.write_table(arrow_table, temp, compression=self._compression)
            publish(temp, final)
        except (OSError, pa.ArrowException) as exc:
            with contextlib.suppress(OSError):  # the original error is the one worth reporting
                temp.unlink(missing_ok=True)
            raise StorageUnavailable(f"could not write {table} partition {day}: {exc}") from exc
        return final


def _make_durable_dirs(folder: Path) -> None:
    """Create `folder` and any missing parents, fsyncing each new entry's parent so a crash
    cannot lose a published file by losing the directory that holds it."""
    missing: list[Path] = []
    current = folder
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
