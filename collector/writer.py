"""Rows -> Parquet files in the date partitions, each published atomically (temp, fsync, rename)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from collector.errors import BadRequest, StorageUnavailable
from meterline.layout import PARTITION_KEY, SPANS_TABLE, USAGE_TABLE, DataLayout
from meterline.span_row import span_table
from meterline.storage.base import StorageTarget
from meterline.storage.local import LocalTarget
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


def as_target(where: StorageTarget | DataLayout) -> StorageTarget:
    return LocalTarget(where) if isinstance(where, DataLayout) else where


class ParquetWriter:
    """Writes one Parquet file per date partition per batch; readers only ever see finished files."""

    def __init__(self, target: StorageTarget | DataLayout, compression: str = "zstd") -> None:
        self.target = as_target(target)
        self._compression = compression

    async def write(self, table: str, rows: list[Row], on_published: OnPublished | None = None) -> list[str]:
        """`write_sync` in a worker thread, so encoding and fsync never block the event loop."""
        return await asyncio.to_thread(self.write_sync, table, rows, on_published)

    def write_sync(self, table: str, rows: list[Row], on_published: OnPublished | None = None) -> list[str]:
        """The published files' paths. `on_published` sees each partition's rows right after its
        file is durable, so a failure in a later partition still leaves the earlier ones accounted for."""
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
        published: list[str] = []
        for day, part, arrow_table in tables:
            published.append(self._write_partition(table, day, arrow_table, new_part_name()))
            if on_published is not None:
                on_published(part)
        return published

    def write_named_sync(self, table: str, data: pa.Table, name: str) -> list[str]:
        """One file called `name` per date partition of `data`. Writing the same rows under the
        same name again replaces the file, which makes republishing a WAL segment idempotent."""
        published: list[str] = []
        days = data.column(PARTITION_KEY)
        unique = sorted(pc.unique(days).to_pylist())
        for day in unique:
            # Nearly every segment holds one day: then the table is written as it is, uncopied.
            part = data if len(unique) == 1 else data.filter(pc.equal(days, pa.scalar(day, days.type)))
            published.append(self._write_partition(table, day, part, name))
        return published

    def _write_partition(self, table: str, day: dt.date, arrow_table: pa.Table, name: str) -> str:
        try:
            return self.target.write(table, day, name, arrow_table, self._compression)
        except (OSError, pa.ArrowException) as exc:
            raise StorageUnavailable(f"could not write {table} partition {day}: {exc}") from exc


def new_part_name() -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"part-{stamp}-{uuid.uuid4().hex[:8]}.parquet"
